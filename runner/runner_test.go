package runner_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/slatehq/slate/consumer/sink/bleve"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/runner"
	"github.com/slatehq/slate/schema"
)

// sinkEvents returns slate_sink_events_total of a sink in g, -1 if g has
// none of it.
func sinkEvents(t testing.TB, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "slate_sink_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "sink" && l.GetValue() == name {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return -1
}

// TestRunEnrichAndSink runs one enrich and one sink pipeline of a YAML
// file against a gRPC service slate has no code for: ID-only change
// events become full records in the search index, tombstones delete.
func TestRunEnrichAndSink(t *testing.T) {
	for _, tt := range []struct {
		name          string
		reflect       bool
		transactional bool
		redis         bool
	}{
		{"reflection", true, false, false},
		{"descriptor_set", false, false, false},
		{"transactional_redis", true, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if testing.Short() {
				t.Skip("runs a broker, a registry and two pipelines")
			}
			dedupe := "{type: memory}"
			if tt.redis {
				addr := os.Getenv("SLATE_REDIS_ADDR")
				if addr == "" {
					t.Skip("needs SLATE_REDIS_ADDR (a local Redis)")
				}
				prefix := fmt.Sprintf("slatetest:runner:%d:", time.Now().UnixNano())
				dedupe = fmt.Sprintf("{type: redis, addr: %q, key_prefix: %q}", addr, prefix)
				t.Cleanup(func() {
					rc := redis.NewClient(&redis.Options{Addr: addr})
					defer rc.Close()
					ctx := context.Background()
					iter := rc.Scan(ctx, 0, prefix+"*", 1000).Iterator()
					for iter.Next(ctx) {
						rc.Unlink(ctx, iter.Val())
					}
				})
			}
			env := testenv.Start(t, "//test/assets")
			addr, srv := startServer(t, tt.reflect)
			srv.put(t, `{"id": "a1", "revision": "3", "name": "Pilot", "tags": ["drama"]}`)
			srv.put(t, `{"id": "a2", "revision": "1", "name": "Trailer"}`)
			srv.put(t, `{"id": "a3", "revision": "5", "deleted": true, "name": "gone"}`)

			et := fmt.Sprintf("asset%d", time.Now().UnixNano()%1_000_000_000)
			sinkName := "search-" + et
			descriptors := ""
			if !tt.reflect {
				abs, err := filepath.Abs(descriptorSet)
				if err != nil {
					t.Fatal(err)
				}
				descriptors = "descriptor_set: " + abs
			}
			txID := "" // a stable transactional.id of the instance's own
			if tt.transactional {
				txID = "\n    transactional_id: " + et + "-enricher-0"
			}
			index := filepath.Join(t.TempDir(), "search")
			yml := fmt.Sprintf(`
kafka:
  brokers: %s
registry:
  url: %s
enrich:
  - name: %s-enricher
    entity_type: %s
    primary: assets
    resolvers:
      assets:
        target: %s
        rpc: studio.test.v1.Assets/BatchGetAssets
        records_field: assets
        version_field: revision
        deleted_field: deleted
        %s
    dead_letter: {enabled: true}
    transactional: %t%s
sink:
  - name: %s-sink
    inputs: [studio.%s.materialized]
    dedupe: %s
    sinks:
      - {type: bleve, name: %s, path: %s}
    dead_letter: {enabled: true}
`, env.Brokers, env.RegistryURL, et, et, addr, descriptors, tt.transactional, txID, et, et, dedupe, sinkName, index)
			cfg, err := runner.Load(strings.NewReader(yml))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			metrics := prometheus.NewRegistry()
			enrich, err := runner.Start(ctx, cfg, runner.Which{Kind: runner.KindEnrich}, runner.WithStartTimeout(20*time.Second),
				runner.WithRegisterer(metrics))
			if err != nil {
				t.Fatal(err)
			}
			sinks, err := runner.Start(ctx, cfg, runner.Which{Kind: runner.KindSink, Name: et + "-sink"}, runner.WithStartTimeout(20*time.Second),
				runner.WithRegisterer(metrics))
			if err != nil {
				cancel()
				_ = enrich.Wait()
				t.Fatal(err)
			}
			for _, c := range []struct {
				id  string
				op  schema.Op
				seq int64
			}{{"a1", schema.OpUpdate, 3}, {"a2", schema.OpCreate, 1}, {"a3", schema.OpUpdate, 5}} {
				if err := env.Producer.PublishChange(ctx, et, c.id, c.op, c.seq); err != nil {
					t.Fatal(err)
				}
			}
			testenv.WaitFor(t, 60*time.Second, "three events in the sink", func() bool { return sinkEvents(t, metrics, sinkName) >= 3 })
			if v := sinkEvents(t, prometheus.DefaultGatherer, sinkName); v != -1 {
				t.Errorf("slate_sink_events_total{sink=%q} = %v on the default registry, want it only on the runner's", sinkName, v)
			}
			cancel()
			if err := enrich.Wait(); err != nil {
				t.Errorf("enrich pipeline stopped with %v, want nil", err)
			}
			if err := sinks.Wait(); err != nil {
				t.Errorf("sink pipeline stopped with %v, want nil", err)
			}

			ix, err := bleve.New(index, bleve.WithRegistry(env.Registry))
			if err != nil {
				t.Fatal(err)
			}
			defer ix.Close(context.Background())
			bg := context.Background()
			for _, want := range []struct {
				id      string
				name    string
				version int64
			}{{"a1", "Pilot", 3}, {"a2", "Trailer", 1}} {
				doc, v, found, err := ix.Get(bg, et, want.id)
				if err != nil || !found || v != want.version || doc["name"] != want.name {
					t.Errorf("%s: found %v at version %d, doc %v, err %v; want %q at version %d", want.id, found, v, doc, err, want.name, want.version)
				}
			}
			if doc, v, found, err := ix.Get(bg, et, "a3"); err != nil || found || v != 5 {
				t.Errorf("a3 (tombstone at 5): found %v at version %d, doc %v, err %v; want deleted at 5", found, v, doc, err)
			}
		})
	}
}

// A resolver entry that does not fit the service fails the start, named
// by its YAML path.
func TestStartRejectsBadResolver(t *testing.T) {
	addr, _ := startServer(t, true)
	for _, tt := range []struct {
		name, resolver, want, detail string
	}{
		{"method not found", "rpc: studio.test.v1.Assets/ListAssets, records_field: assets", "enrich[0].resolvers.assets: ", "rpc: service studio.test.v1.Assets has no method ListAssets"},
		{"ids field wrong type", "rpc: studio.test.v1.Assets/GetAsset, method: batch_get, ids_field: asset_id, records_field: asset",
			"enrich[0].resolvers.assets: ", "ids_field: field asset_id of studio.test.v1.GetAssetRequest is string, need a repeated string"},
		{"unreachable target", "rpc: studio.test.v1.Assets/BatchGetAssets, records_field: assets, target: 127.0.0.1:1",
			"enrich[0].resolvers.assets: ", "unreachable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			target := "target: " + addr + ", "
			if strings.Contains(tt.resolver, "target:") {
				target = ""
			}
			yml := fmt.Sprintf(`
kafka: {brokers: 127.0.0.1:1}
registry: {url: http://127.0.0.1:1}
enrich:
  - entity_type: asset
    primary: assets
    resolvers:
      assets: {%s%s}
`, target, tt.resolver)
			cfg, err := runner.Load(strings.NewReader(yml))
			if err != nil {
				t.Fatal(err)
			}
			err = runner.Run(context.Background(), cfg, runner.Which{Kind: runner.KindEnrich}, runner.WithStartTimeout(time.Second))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("err %v, want one starting %q and saying %q", err, tt.want, tt.detail)
			}
		})
	}
	cfg, err := runner.Load(strings.NewReader(`
kafka: {brokers: 127.0.0.1:1}
registry: {url: http://127.0.0.1:1}
sink: [{name: audit, inputs: [x], sinks: [{type: bleve, path: /nonexistent}]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.Run(context.Background(), cfg, runner.Which{Kind: runner.KindSink, Name: "search"}); err == nil ||
		!strings.Contains(err.Error(), `no sink pipeline is named "search" (have audit)`) {
		t.Errorf("unknown pipeline: err %v", err)
	}
}
