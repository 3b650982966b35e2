// Package bench holds slate's end-to-end and comparative benchmarks: each
// measures slate against a baseline in the same run (raw clients, naive
// designs), so the ratio survives a noisy, shared machine. Results and the
// commands that produced them are kept in RESULTS.md.
package bench
