package checker

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/redis/go-redis/v9"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/bleve"
	"github.com/slatehq/slate/consumer/sink/es"
	"github.com/slatehq/slate/consumer/sink/es/estest"
	"github.com/slatehq/slate/consumer/sink/hive"
	kafkasink "github.com/slatehq/slate/consumer/sink/kafka"
	"github.com/slatehq/slate/dedupe"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

var (
	seeds   = flag.Int("seeds", 12, "number of seeds TestChecker runs")
	first   = flag.Uint64("first", 1, "the first seed TestChecker runs")
	seed    = flag.Uint64("seed", 0, "replay only this seed (0: run -seeds seeds from -first)")
	without = flag.String("without", "", "comma-separated features to turn off: "+strings.Join(featureNames, ","))
	prefix  = flag.Int("ops", 0, "run only the first ops operations of each seed's trace (0: all)")
	shrink  = flag.Bool("shrink", true, "on failure, look for the shortest failing prefix of the trace")
)

// env is what one seed runs against; the broker and registry are shared.
type env struct {
	brokers string
	reg     schema.Registry
	redis   redis.UniversalClient // nil: no Redis server (SLATE_REDIS_ADDR unset)
}

var shared env

func TestChecker(t *testing.T) {
	features, err := allFeatures(*without)
	if err != nil {
		t.Fatal(err)
	}
	shared = env{brokers: testenv.Kafka(t, broker.WithPartitions(3))}
	_, shared.reg = testenv.Registry(t)
	if addr := os.Getenv("SLATE_REDIS_ADDR"); addr != "" {
		c := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { c.Close() })
		shared.redis = c
	}
	var list []uint64
	if *seed != 0 {
		list = []uint64{*seed}
	} else {
		for i := range *seeds {
			list = append(list, *first+uint64(i))
		}
	}
	start := time.Now()
	failed := 0
	for _, s := range list {
		cfg := Config{Seed: s, Titles: 8, Schedules: 6, Ops: 60, Features: features}
		t.Run(fmt.Sprintf("seed=%d", s), func(t *testing.T) {
			ops := generate(cfg)
			if *prefix > 0 && *prefix < len(ops) {
				ops = ops[:*prefix]
			}
			diffs := run(t, cfg, ops)
			if len(diffs) == 0 {
				return
			}
			failed++
			t.Errorf("seed %d [%s] failed:\n  %s\ntrace (%d ops): %v", s, cfg.Features, strings.Join(diffs, "\n  "), len(ops), ops)
			if !*shrink {
				return
			}
			// Shrink: the shortest failing prefix, halving.
			best := ops
			for n := len(ops) / 2; n >= 1; n /= 2 {
				if d := run(t, cfg, ops[:n]); len(d) > 0 {
					best = ops[:n]
				} else {
					break
				}
			}
			t.Errorf("shortest failing prefix found (%d ops): %v\nreplay: go test -run Checker ./internal/checker/ -seed %d -v", len(best), best, s)
		})
	}
	t.Logf("%d seeds (%d failed) in %v (%.1f seeds/minute), features %s", len(list), failed,
		time.Since(start).Round(time.Millisecond), float64(len(list))/time.Since(start).Minutes(), features)
}

// run runs ops on a fresh set of topics and groups and returns what the
// views got wrong.
func run(t *testing.T, cfg Config, ops []op) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	f := cfg.Features
	// Each run has its own entity types, so topics, groups and indices
	// never mix between runs.
	tag := fmt.Sprintf("c%d%04d", cfg.Seed, rand.IntN(10000))
	titleType, schedType := "title"+tag, "schedule"+tag
	w := newWorld(cfg)
	pub := testenv.Producer(t, shared.brokers, shared.reg, "//checker/"+tag)
	flt := &faults{refused: map[string]bool{}, accepted: map[string]bool{}}
	var sinkKills, enrKills atomic.Int64
	mpub := &mortalPublisher{Publisher: pub, f: flt, kills: &enrKills}

	opts := []enricher.Option{enricher.WithSource("//checker/enricher")}
	topics := []string{schema.ChangesTopic(titleType)}
	if f.FanOut {
		opts = append(opts,
			enricher.WithJoin(enricher.Join{Field: "schedules", EntityType: schedType, Resolver: enricher.ResolverFunc(w.resolveSchedules),
				Schema: scheduleSchema, Keys: func(id string, _ enricher.Record) []string { return w.scheduleKeys(id) }}),
			enricher.WithFanOut(enricher.FanOut{EntityType: schedType, Dependents: enricher.DependentsFunc(w.dependents)}))
		topics = append(topics, schema.ChangesTopic(schedType))
	}
	enr, err := enricher.New(titleType, enricher.ResolverFunc(w.resolveTitles), mpub, shared.reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	viewTopic := "studio." + titleType + ".view"

	// Sinks.
	dir := t.TempDir()
	esd := estest.New()
	hs := httptest.NewServer(esd)
	defer hs.Close()
	esc, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{hs.URL}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	ess, err := es.New(ctx, esc, es.WithRegistry(shared.reg), es.WithRefresh("true"))
	if err != nil {
		t.Fatal(err)
	}
	bs, err := bleve.New(filepath.Join(dir, "bleve"), bleve.WithRegistry(shared.reg))
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close(context.Background())
	hv, err := hive.New(filepath.Join(dir, "hive"), "audit", hive.WithRegistry(shared.reg))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := kafkasink.New(pub, kafkasink.ToTopic(viewTopic))
	if err != nil {
		t.Fatal(err)
	}
	var store consumer.DedupeStore
	if cfg.redis() && shared.redis != nil {
		rs, err := dedupe.NewRedis(shared.redis, dedupe.WithKeyPrefix("checker:"+tag+":"))
		if err != nil {
			t.Fatal(err)
		}
		store = rs
	} else {
		m := dedupe.NewMemory()
		defer m.Close()
		store = m
	}
	dcfg := consumer.DedupeConfig{}
	if f.Kills {
		dcfg.Lease = time.Second // a killed process's claims run out soon
	}

	var wg sync.WaitGroup
	start := func(h consumer.Handler, group string, topics ...string) *incarnation {
		copts := []consumer.Option{consumer.WithBrokers(shared.brokers), consumer.WithGroup(group), consumer.WithTopics(topics...),
			consumer.WithRegistry(shared.reg), consumer.WithDeadLetter(pub), consumer.WithBackoff(5*time.Millisecond, 50*time.Millisecond),
			consumer.WithBatch(20, 5*time.Millisecond),
			consumer.WithLogger(slog.New(journalHandler{f: flt}))}
		if cfg.syncCommit() {
			copts = append(copts, consumer.WithSyncCommit())
		}
		c, err := consumer.New(h, copts...)
		if err != nil {
			t.Fatal(err)
		}
		cctx, stop := context.WithCancel(ctx)
		inc := &incarnation{cancel: stop}
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Run(cctx) }()
		return inc
	}
	enrGroup, sinkGroup := "checker-enricher-"+tag, "checker-sink-"+tag
	startEnr := func() *incarnation {
		inc := start(enr, enrGroup, topics...)
		mpub.set(inc)
		return inc
	}
	startSink := func() *incarnation {
		inc := &incarnation{}
		k := &killer{name: "kill", f: flt, inc: inc, kills: &sinkKills}
		h := consumer.Deduplicate(mortalStore{store, inc, flt}, dcfg, consumer.ToSinks(hv, k, ess,
			&faulty{Sink: bs, name: "bleve", f: flt}, ks))
		started := start(h, sinkGroup, enr.Topic())
		inc.cancel = started.cancel
		return inc
	}
	groups := map[string][]string{enrGroup: topics, sinkGroup: {enr.Topic(), schema.ReplayTopic(enr.Topic())}}
	if err := prepare(ctx, shared.brokers, append(slices.Clone(topics), enr.Topic(), viewTopic), nil); err != nil {
		t.Fatal(err)
	}
	enrInc, sinkInc := startEnr(), startSink()
	if err := prepare(ctx, shared.brokers, nil, groups); err != nil {
		t.Fatal(err)
	}
	var second []*incarnation

	r := rand.New(rand.NewPCG(cfg.Seed, 0xb0))
	var pending []schema.Envelope
	var pendingTopic []string
	flush := func() {
		if f.Reorder {
			r.Shuffle(len(pending), func(i, j int) {
				pending[i], pending[j] = pending[j], pending[i]
				pendingTopic[i], pendingTopic[j] = pendingTopic[j], pendingTopic[i]
			})
		}
		for i, e := range pending {
			if err := pub.Publish(ctx, pendingTopic[i], e); err != nil {
				t.Fatalf("publish: %v", err)
			}
		}
		pending, pendingTopic = pending[:0], pendingTopic[:0]
	}
	// revive restarts a killed process, as a supervisor would.
	revive := func() {
		if enrInc.dead.Load() {
			enrInc = startEnr()
		}
		if sinkInc.dead.Load() {
			sinkInc = startSink()
		}
	}
	for _, o := range ops {
		// Operations are paced so that they interleave with the
		// consumers' batches, restarts and rebalances.
		time.Sleep(time.Duration(r.IntN(20)) * time.Millisecond)
		w.apply(o)
		flt.note("op: %v", o)
		revive()
		switch o.Kind {
		case "put", "del", "sched":
			entity, typ := titleType, schema.OpUpdate
			if o.Kind == "del" {
				typ = schema.OpDelete
			}
			if o.Kind == "sched" {
				entity = schedType
			}
			e := pub.NewChange(ctx, entity, o.ID, typ, o.Seq)
			n := 1
			if o.Dup {
				n = 2
			}
			for range n {
				pending = append(pending, e)
				pendingTopic = append(pendingTopic, schema.ChangesTopic(entity))
			}
			if !f.Reorder {
				flush()
			}
		case "burst":
			flush()
		case "restart":
			flush()
			enrInc.cancel()
			sinkInc.cancel()
			enrInc, sinkInc = startEnr(), startSink()
		case "join":
			if len(second) == 0 {
				second = []*incarnation{start(enr, enrGroup, topics...), startSink()}
			}
		case "leave":
			for _, inc := range second {
				inc.cancel()
			}
			second = nil
		case "refuse":
			flt.mu.Lock()
			flt.refuse++
			flt.mu.Unlock()
		case "outage":
			flt.mu.Lock()
			flt.downUntil = time.Now().Add(time.Duration(o.Val) * time.Millisecond)
			flt.mu.Unlock()
		case "kill":
			flush()
			flt.mu.Lock()
			flt.killSink = true
			flt.mu.Unlock()
		case "ekill":
			flush()
			flt.mu.Lock()
			flt.killEnr = true
			flt.mu.Unlock()
		}
	}
	flush()

	// Quiescence: every group committed everything it was given (a killed
	// process is restarted meanwhile); then the refused events' dead
	// letters are replayed, and the groups drain again.
	flt.mu.Lock()
	flt.killSink, flt.killEnr = false, false
	flt.mu.Unlock()
	var diffs []string
	settle := func(what string) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			revive()
			err := quiesce(ctx, shared.brokers, time.Second, groups)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				diffs = append(diffs, what+": "+err.Error())
				return
			}
		}
	}
	settle("drain")
	replayed := 0
	if err := consumer.ReadDeadLetters(ctx, shared.brokers, schema.DLQTopic(enr.Topic()), func(d consumer.DeadLetter) error {
		replayed++
		flt.note("consumer: replaying the dead letter of %s/%d@%d (%s)", d.OriginTopic, d.OriginPartition, d.OriginOffset, d.Error)
		return consumer.Replay(ctx, pub, d)
	}); err != nil {
		diffs = append(diffs, "dead-letter replay: "+err.Error())
	}
	settle("drain after replay")
	// Every refused event reached the refusing sink in the end: through
	// its dead letter's replay, or as a redelivery (its partition moved
	// before it was dead-lettered).
	flt.mu.Lock()
	refusedN := len(flt.refused)
	for _, id := range sortedKeys(flt.refused) {
		if !flt.accepted[id] {
			diffs = append(diffs, fmt.Sprintf("bleve: refused event %s never written (%d dead letters replayed); its story:\n    %s",
				id, replayed, strings.Join(flt.about(id), "\n    ")))
		}
	}
	flt.mu.Unlock()

	exp := w.expected(f.FanOut)
	diffs = append(diffs, compareSearch(ctx, exp, titleType, esd, ess, bs)...)
	diffs = append(diffs, compareTopic(ctx, t, "materialized topic", exp, enr.Topic())...)
	diffs = append(diffs, compareTopic(ctx, t, "kafka sink", exp, viewTopic)...)
	enrInc.cancel()
	sinkInc.cancel()
	for _, inc := range second {
		inc.cancel()
	}
	wg.Wait()
	if err := hv.Close(context.Background()); err != nil {
		diffs = append(diffs, "hive close: "+err.Error())
	}
	diffs = append(diffs, compareHive(t, filepath.Join(dir, "hive"), "audit")...)
	if testing.Verbose() {
		t.Logf("seed %d: %d sink kills, %d enricher kills, %d refused, %d dead letters replayed, redis=%v sync=%v",
			cfg.Seed, sinkKills.Load(), enrKills.Load(), refusedN, replayed, cfg.redis() && shared.redis != nil, cfg.syncCommit())
	}
	return diffs
}

var _ sink.Sink = (*faulty)(nil)
