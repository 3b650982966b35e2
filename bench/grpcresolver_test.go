package bench

import (
	"context"
	"strconv"
	"testing"

	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/enricher/grpcresolver"
	"github.com/slatehq/slate/services/titles"
)

// BenchmarkGenericResolver compares the generic resolver
// (enricher/grpcresolver: descriptors from server reflection, dynamic
// messages, a derived Avro schema) with the generated-code
// titles.Resolver, against the same titles service in the same run:
//
//   - lookup: each side resolves the 1,000 titles in calls of 100 ids,
//     one after another (what one enricher worker does);
//   - enricher: an enricher over each side handles the BenchmarkEnricher
//     workload (10,000 change events in batches of 500, lookups of up to
//     100 ids on 4 workers, publishing to the embedded broker).
//
// Sides alternate within each op (see runRounds); it reports each side's
// rate and generic/generated, the median of the per-round ratios.
func BenchmarkGenericResolver(b *testing.B) {
	f := newEnrFixture(b, 0)
	ctx := context.Background()
	generic, err := grpcresolver.New(ctx, grpcresolver.Spec{
		Target:       f.addr,
		Method:       "slate.titles.v1.Titles/BatchGetTitles",
		RecordsField: "titles",
		VersionField: "version",
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { generic.Close() })
	generated := titles.NewResolver(f.client)

	b.Run("lookup", func(b *testing.B) {
		ids := make([]string, enrIDs)
		for i := range ids {
			ids[i] = "bench-" + strconv.Itoa(i)
		}
		lookup := func(r enricher.Resolver) func() error {
			return func() error {
				for lo := 0; lo < len(ids); lo += 100 {
					got, err := r.Resolve(ctx, titles.EntityType, ids[lo:lo+100])
					if err != nil {
						return err
					}
					if len(got) != 100 {
						b.Fatalf("resolved %d of 100 titles", len(got))
					}
				}
				return nil
			}
		}
		sides := []side{{"generated", lookup(generated)}, {"generic", lookup(generic)}}
		for _, s := range sides {
			if err := s.run(); err != nil {
				b.Fatal(err)
			}
		}
		rs := runRounds(b, len(ids), sides)
		b.ReportMetric(rs.ratio(1, 0), "generic/generated")
		b.ReportMetric(0, "ns/op")
	})

	b.Run("enricher", func(b *testing.B) {
		handle := func(r enricher.Resolver) func() error {
			e, err := enricher.New(titles.EntityType, r, f.pub, f.reg, enricher.WithMaxLookup(100), enricher.WithConcurrency(4))
			if err != nil {
				b.Fatal(err)
			}
			return func() error {
				for lo := 0; lo < len(f.events); lo += enrBatch {
					if err := e.Handle(ctx, f.events[lo:min(lo+enrBatch, len(f.events))]); err != nil {
						return err
					}
				}
				return nil
			}
		}
		sides := []side{{"generated", handle(generated)}, {"generic", handle(generic)}}
		// A warm-up pass registers both schemas and opens the connections.
		for _, s := range sides {
			if err := s.run(); err != nil {
				b.Fatal(err)
			}
		}
		rs := runRounds(b, len(f.events), sides)
		b.ReportMetric(rs.ratio(1, 0), "generic/generated")
		b.ReportMetric(0, "ns/op")
	})
}
