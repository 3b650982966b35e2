// Package checker holds slate's randomized, seeded end-to-end checker: a
// test that drives producers, the joining and fanning-out enricher, the
// deduplicating consumer and its sinks against the embedded broker with
// random interleavings of changes, reorderings, duplicates and process
// restarts, and then compares every view with the source of truth.
//
//	go test -run Checker ./internal/checker/                 # the CI budget
//	go test -run Checker ./internal/checker/ -seeds 1000     # more, locally
//	go test -run Checker ./internal/checker/ -seed 42 -v     # replay one seed
//
// A failing seed prints its trace of operations and the smallest failing
// prefix found.
package checker
