package checker

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink/bleve"
	"github.com/slatehq/slate/consumer/sink/es"
	"github.com/slatehq/slate/consumer/sink/es/estest"
	"github.com/slatehq/slate/consumer/sink/hive"
	"github.com/slatehq/slate/dedupe"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

var (
	seeds = flag.Int("seeds", 3, "number of seeds TestChecker runs")
	seed  = flag.Uint64("seed", 0, "replay only this seed (0: run -seeds seeds from 1)")
)

var (
	titleSchema = avro.MustParse(`{"type":"record","name":"Title","namespace":"checker.v1","fields":[
		{"name":"id","type":"string"},{"name":"name","type":"string"},{"name":"version","type":"long"}]}`).(*avro.RecordSchema)
	scheduleSchema = avro.MustParse(`{"type":"record","name":"Schedule","namespace":"checker.v1","fields":[
		{"name":"id","type":"string"},{"name":"title_id","type":"string"},{"name":"shoot_days","type":"int"}]}`).(*avro.RecordSchema)
)

type title struct {
	ID      string `avro:"id"`
	Name    string `avro:"name"`
	Version int64  `avro:"version"`
}

type schedule struct {
	ID        string `avro:"id"`
	TitleID   string `avro:"title_id"`
	ShootDays int    `avro:"shoot_days"`
}

// Features switches the scenario's parts on one by one.
type Features struct {
	Deletes    bool // deletes and re-creates of titles
	Reorder    bool // publishes of a burst land shuffled
	Duplicates bool // some publishes are sent twice
	Seq0       bool // some publishes carry sequence 0 (no version)
	FanOut     bool // schedule changes re-materialize the titles joined with them
	Restarts   bool // enricher and sink consumers are stopped and restarted mid-run
	Rebalance  bool // a second enricher group member joins and leaves
}

func (f Features) String() string {
	var on []string
	for _, x := range []struct {
		name string
		on   bool
	}{{"deletes", f.Deletes}, {"reorder", f.Reorder}, {"duplicates", f.Duplicates}, {"seq0", f.Seq0},
		{"fanout", f.FanOut}, {"restarts", f.Restarts}, {"rebalance", f.Rebalance}} {
		if x.on {
			on = append(on, x.name)
		}
	}
	return strings.Join(on, ",")
}

// Config is one run.
type Config struct {
	Seed      uint64
	Titles    int // key space
	Schedules int
	Ops       int
	Features  Features
}

// op is one generated operation.
type op struct {
	Kind string // put, del, sched, burst, restart, join, leave
	ID   string
	Seq  int64 // the sequence published (0 when the publish carries none)
	Dup  bool
	Val  int
}

func (o op) String() string {
	switch o.Kind {
	case "restart", "join", "leave", "burst":
		return o.Kind
	}
	s := fmt.Sprintf("%s(%s,seq=%d,v=%d)", o.Kind, o.ID, o.Seq, o.Val)
	if o.Dup {
		s += "x2"
	}
	return s
}

// generate draws the run's operations from cfg.Seed.
func generate(cfg Config) []op {
	r := rand.New(rand.NewPCG(cfg.Seed, 0x5a7e))
	f := cfg.Features
	version := map[string]int64{}
	alive := map[string]bool{}
	var ops []op
	for len(ops) < cfg.Ops {
		n := r.IntN(100)
		id := fmt.Sprintf("t%d", r.IntN(cfg.Titles))
		o := op{Kind: "put", ID: id, Val: r.IntN(1000)}
		switch {
		case f.FanOut && n < 20:
			o = op{Kind: "sched", ID: fmt.Sprintf("s%d", r.IntN(cfg.Schedules)), Val: 1 + r.IntN(90)}
		case f.Deletes && n < 35 && alive[id]:
			o.Kind = "del"
		case f.Reorder && n < 42:
			o = op{Kind: "burst"}
		case f.Restarts && n < 45:
			o = op{Kind: "restart"}
		case f.Rebalance && n < 47:
			o = op{Kind: "join"}
			if r.IntN(2) == 0 {
				o.Kind = "leave"
			}
		}
		switch o.Kind {
		case "put", "del":
			version[id]++
			alive[id] = o.Kind == "put"
			o.Seq = version[id]
			if f.Seq0 && r.IntN(4) == 0 {
				o.Seq = 0
			}
		}
		if o.Kind == "sched" {
			o.Seq = int64(len(ops) + 1)
		}
		if f.Duplicates && o.ID != "" && r.IntN(5) == 0 {
			o.Dup = true
		}
		ops = append(ops, o)
	}
	return ops
}

// world is the source of truth the resolvers answer from.
type world struct {
	mu        sync.Mutex
	titles    map[string]*title // nil: deleted
	version   map[string]int64
	schedules map[string]schedule
	byTitle   map[string][]string
}

func newWorld(cfg Config) *world {
	w := &world{titles: map[string]*title{}, version: map[string]int64{}, schedules: map[string]schedule{}, byTitle: map[string][]string{}}
	for i := range cfg.Schedules {
		s := schedule{ID: fmt.Sprintf("s%d", i), TitleID: fmt.Sprintf("t%d", i%cfg.Titles), ShootDays: 1}
		w.schedules[s.ID] = s
		w.byTitle[s.TitleID] = append(w.byTitle[s.TitleID], s.ID)
	}
	return w
}

func (w *world) apply(o op) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch o.Kind {
	case "put":
		w.version[o.ID]++
		w.titles[o.ID] = &title{ID: o.ID, Name: fmt.Sprintf("n%d", o.Val), Version: w.version[o.ID]}
	case "del":
		w.version[o.ID]++
		w.titles[o.ID] = nil
	case "sched":
		s := w.schedules[o.ID]
		s.ShootDays = o.Val
		w.schedules[o.ID] = s
	}
}

func (w *world) resolveTitles(_ context.Context, _ string, ids []string) (map[string]enricher.Record, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]enricher.Record{}
	for _, id := range ids {
		if t := w.titles[id]; t != nil {
			out[id] = enricher.Record{Version: t.Version, Schema: titleSchema, Value: *t}
		}
	}
	return out, nil
}

func (w *world) resolveSchedules(_ context.Context, _ string, ids []string) (map[string]enricher.Record, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]enricher.Record{}
	for _, id := range ids {
		if s, ok := w.schedules[id]; ok {
			out[id] = enricher.Record{Version: 1, Schema: scheduleSchema, Value: s}
		}
	}
	return out, nil
}

func (w *world) dependents(_ context.Context, ids []string) (map[string][]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string][]string{}
	for _, id := range ids {
		if s, ok := w.schedules[id]; ok {
			out[id] = []string{s.TitleID}
		}
	}
	return out, nil
}

// want is the expected view of one title.
type want struct {
	alive   bool
	version int64
	name    string
	days    []int
}

func (w *world) expected(joined bool) map[string]want {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]want{}
	for id, t := range w.titles {
		if t == nil {
			out[id] = want{}
			continue
		}
		v := want{alive: true, version: t.Version, name: t.Name}
		for _, sid := range w.byTitle[id] {
			if !joined {
				break
			}
			v.days = append(v.days, w.schedules[sid].ShootDays)
		}
		out[id] = v
	}
	return out
}

// env is what one seed runs against; the broker and registry are shared.
type env struct {
	brokers string
	reg     schema.Registry
}

var shared env

func TestChecker(t *testing.T) {
	shared = env{brokers: testenv.Kafka(t, broker.WithPartitions(3))}
	_, shared.reg = testenv.Registry(t)
	features := Features{Deletes: true, Reorder: true, Duplicates: true, Restarts: true, Rebalance: true}
	var list []uint64
	if *seed != 0 {
		list = []uint64{*seed}
	} else {
		for i := range *seeds {
			list = append(list, uint64(i+1))
		}
	}
	start := time.Now()
	for _, s := range list {
		cfg := Config{Seed: s, Titles: 8, Schedules: 6, Ops: 60, Features: features}
		t.Run(fmt.Sprintf("seed=%d", s), func(t *testing.T) {
			ops := generate(cfg)
			diffs := run(t, cfg, ops)
			if len(diffs) == 0 {
				return
			}
			t.Errorf("seed %d [%s] failed:\n  %s\ntrace (%d ops): %v", s, cfg.Features, strings.Join(diffs, "\n  "), len(ops), ops)
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
	t.Logf("%d seeds in %v (%.1f seeds/minute)", len(list), time.Since(start).Round(time.Millisecond),
		float64(len(list))/time.Since(start).Minutes())
}

// run runs ops on a fresh set of topics and groups and returns what the
// views got wrong.
func run(t *testing.T, cfg Config, ops []op) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Each run has its own entity types, so topics, groups and indices
	// never mix between runs.
	tag := fmt.Sprintf("c%d%04d", cfg.Seed, rand.IntN(10000))
	titleType, schedType := "title"+tag, "schedule"+tag
	w := newWorld(cfg)
	pub := testenv.Producer(t, shared.brokers, shared.reg, "//checker/"+tag)

	opts := []enricher.Option{enricher.WithSource("//checker/enricher")}
	topics := []string{schema.ChangesTopic(titleType)}
	if cfg.Features.FanOut {
		opts = append(opts,
			enricher.WithJoin(enricher.Join{Field: "schedules", EntityType: schedType, Resolver: enricher.ResolverFunc(w.resolveSchedules),
				Schema: scheduleSchema, Keys: func(id string, _ enricher.Record) []string { return w.byTitle[id] }}),
			enricher.WithFanOut(enricher.FanOut{EntityType: schedType, Dependents: enricher.DependentsFunc(w.dependents)}))
		topics = append(topics, schema.ChangesTopic(schedType))
	}
	enr, err := enricher.New(titleType, enricher.ResolverFunc(w.resolveTitles), pub, shared.reg, opts...)
	if err != nil {
		t.Fatal(err)
	}

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
	store := dedupe.NewMemory()
	defer store.Close()
	sinkHandler := consumer.Deduplicate(store, consumer.DedupeConfig{}, consumer.ToSinks(hv, bs, ess))

	var wg sync.WaitGroup
	start := func(h consumer.Handler, group string, topics ...string) context.CancelFunc {
		c, err := consumer.New(h, consumer.WithBrokers(shared.brokers), consumer.WithGroup(group), consumer.WithTopics(topics...),
			consumer.WithRegistry(shared.reg), consumer.WithDeadLetter(pub), consumer.WithBackoff(5*time.Millisecond, 50*time.Millisecond),
			consumer.WithBatch(20, 5*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		cctx, stop := context.WithCancel(ctx)
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Run(cctx) }()
		return stop
	}
	enrGroup, sinkGroup := "checker-enricher-"+tag, "checker-sink-"+tag
	stopEnr := start(enr, enrGroup, topics...)
	stopSink := start(sinkHandler, sinkGroup, enr.Topic())
	var stopSecond context.CancelFunc

	r := rand.New(rand.NewPCG(cfg.Seed, 0xb0))
	var pending []schema.Envelope
	var pendingTopic []string
	flush := func() {
		if cfg.Features.Reorder {
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
	for _, o := range ops {
		w.apply(o)
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
			if !cfg.Features.Reorder {
				flush()
			}
		case "burst":
			flush()
		case "restart":
			flush()
			stopEnr()
			stopSink()
			stopEnr = start(enr, enrGroup, topics...)
			stopSink = start(sinkHandler, sinkGroup, enr.Topic())
		case "join":
			if stopSecond == nil {
				stopSecond = start(enr, enrGroup, topics...)
			}
		case "leave":
			if stopSecond != nil {
				stopSecond()
				stopSecond = nil
			}
		}
	}
	flush()

	// Quiescence: the views converge to the truth, or the deadline shows
	// what stayed wrong.
	exp := w.expected(cfg.Features.FanOut)
	var diffs []string
	deadline := time.Now().Add(20 * time.Second)
	for {
		diffs = compareSearch(ctx, exp, titleType, esd, ess, bs)
		if len(diffs) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A late wrong write after convergence is a failure too.
	time.Sleep(300 * time.Millisecond)
	if len(diffs) == 0 {
		diffs = compareSearch(ctx, exp, titleType, esd, ess, bs)
	}
	diffs = append(diffs, compareTopic(ctx, t, exp, enr.Topic())...)
	stopEnr()
	stopSink()
	if stopSecond != nil {
		stopSecond()
	}
	wg.Wait()
	if err := hv.Close(context.Background()); err != nil {
		diffs = append(diffs, "hive close: "+err.Error())
	}
	diffs = append(diffs, compareHive(t, filepath.Join(dir, "hive"), "audit")...)
	return diffs
}

func checkDoc(where, id string, w want, doc map[string]any, version int64, found bool) string {
	switch {
	case !w.alive && found:
		return fmt.Sprintf("%s: %s alive at version %d, deleted at the source", where, id, version)
	case !w.alive:
		return ""
	case !found:
		return fmt.Sprintf("%s: %s missing, want version %d", where, id, w.version)
	case version != w.version:
		return fmt.Sprintf("%s: %s at version %d, want %d", where, id, version, w.version)
	case fmt.Sprint(doc["name"]) != w.name:
		return fmt.Sprintf("%s: %s name %v, want %s", where, id, doc["name"], w.name)
	}
	if w.days != nil {
		var days []int
		s, _ := doc["schedules"].([]any)
		for _, x := range s {
			m, _ := x.(map[string]any)
			switch d := m["shoot_days"].(type) {
			case float64:
				days = append(days, int(d))
			case int:
				days = append(days, d)
			case int64:
				days = append(days, int(d))
			}
		}
		if !slices.Equal(days, w.days) {
			return fmt.Sprintf("%s: %s schedules %v, want %v", where, id, days, w.days)
		}
	}
	return ""
}

func compareSearch(ctx context.Context, exp map[string]want, entity string, esd *estest.Server, ess *es.Sink, bs *bleve.Sink) []string {
	var diffs []string
	for _, id := range sortedKeys(exp) {
		w := exp[id]
		src, v, ok := esd.Doc(ess.Index(entity), id)
		var doc map[string]any
		if ok {
			_ = json.Unmarshal(src, &doc)
		}
		if d := checkDoc("elasticsearch", id, w, doc, v, ok); d != "" {
			diffs = append(diffs, d)
		}
		bdoc, bv, bok, err := bs.Get(ctx, entity, id)
		if err != nil {
			diffs = append(diffs, "bleve: "+err.Error())
			continue
		}
		if d := checkDoc("bleve", id, w, bdoc, bv, bok); d != "" {
			diffs = append(diffs, d)
		}
	}
	return diffs
}

// compareTopic checks the last record per key of the materialized topic.
func compareTopic(ctx context.Context, t *testing.T, exp map[string]want, topic string) []string {
	cl, err := kgo.NewClient(kgo.SeedBrokers(shared.brokers), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	codec, err := schema.NewCodec(shared.reg)
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]schema.Envelope{}
	for {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			e, err := codec.Decode(ctx, r.Value)
			if err != nil {
				t.Errorf("materialized topic: offset %d: %v", r.Offset, err)
				return
			}
			last[string(r.Key)] = e
		})
		if n == 0 {
			break
		}
	}
	var diffs []string
	for _, id := range sortedKeys(exp) {
		w := exp[id]
		e, ok := last[id]
		found := ok && e.Type != schema.OpDelete
		var doc map[string]any
		if found {
			if err := schema.DecodeData(ctx, shared.reg, e.Data, &doc); err != nil {
				diffs = append(diffs, fmt.Sprintf("materialized topic: %s: %v", id, err))
				continue
			}
		}
		if d := checkDoc("materialized topic", id, w, doc, e.Sequence, found); d != "" {
			diffs = append(diffs, d)
		}
	}
	return diffs
}

// compareHive checks that no event is in the audit table twice.
func compareHive(t *testing.T, root, table string) []string {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	glob := filepath.Join(root, table, "**", "*.parquet")
	if m, _ := filepath.Glob(filepath.Join(root, table, "*", "*.parquet")); len(m) == 0 {
		if m2, _ := filepath.Glob(filepath.Join(root, table, "*", "*", "*.parquet")); len(m2) == 0 {
			return []string{"hive: no parquet files written"}
		}
	}
	rows, err := db.Query(fmt.Sprintf(`SELECT id, count(*) FROM read_parquet('%s', hive_partitioning=true) GROUP BY id HAVING count(*) > 1`, glob))
	if err != nil {
		return []string{"hive: " + err.Error()}
	}
	defer rows.Close()
	var diffs []string
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		diffs = append(diffs, fmt.Sprintf("hive: event %s appended %d times", id, n))
	}
	return diffs
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
