package consumer_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/redis/go-redis/v9"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/es"
	"github.com/slatehq/slate/consumer/sink/es/estest"
	"github.com/slatehq/slate/consumer/sink/hive"
	"github.com/slatehq/slate/dedupe"
	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

// envStormChild carries the JSON-encoded [stormChildConfig] of a child
// process of TestDuplicateStormSurvivesSIGKILL.
const envStormChild = "SLATE_STORM_KILL_CHILD"

// stormKillLease is the dedupe lease of the children. An id claimed by a
// process that is then killed stays leased until the lease ends. It is
// longer than the killed member's session (session.timeout.ms, 10s in
// kafkaconf), so the restarted child is handed the partitions while those
// claims are still live: it must find them held and wait for the lease to
// run out, not drop them as duplicates (which would lose them).
const stormKillLease = 15 * time.Second

// stormChildConfig is what a child consumer needs to join the run.
type stormChildConfig struct {
	Brokers     string
	RegistryURL string
	ESURL       string
	HiveRoot    string
	RedisAddr   string
	RedisPrefix string
	Topic       string
	Group       string
	// StallAt, if positive, makes the child stop in the middle of the
	// batch that takes the events written to Elasticsearch to StallAt or
	// beyond, and say so, so that the parent can kill it there.
	StallAt int
}

// Lines a child writes to stdout for its parent.
const (
	stormLineFirst   = "storm: first batch"
	stormLineCall    = "storm: call"    // handed=<records> fresh=<events applied and done>
	stormLineStalled = "storm: stalled" // id=<an id of the stalled lane> events=<written to Elasticsearch>
)

type stormStatsKey struct{}

// stormCall is what one handler call of a child applied.
type stormCall struct{ fresh int }

// TestStormKillChild is the consumer process of
// TestDuplicateStormSurvivesSIGKILL; it does nothing on its own.
//
// It consumes the storm topic with two lanes through Redis dedupe into the
// parent's Elasticsearch double and Hive table, and reports each handler
// call that succeeded. With StallAt set, the lane whose Elasticsearch
// write crosses StallAt waits until the other lanes of its batch are done
// and then blocks, before its Hive write and before its ids are marked
// done, until the parent kills the process. An interrupt stops it cleanly.
func TestStormKillChild(t *testing.T) {
	raw := os.Getenv(envStormChild)
	if raw == "" {
		t.Skip("child process of TestDuplicateStormSurvivesSIGKILL")
	}
	var cfg stormChildConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatalf("%s: %v", envStormChild, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	say := func(format string, args ...any) {
		// Unbuffered: a line written before the kill reaches the parent.
		fmt.Printf(format+"\n", args...)
	}

	rc := redis.NewClient(&redis.Options{Addr: cfg.RedisAddr})
	defer rc.Close()
	store, err := dedupe.NewRedis(rc, dedupe.WithKeyPrefix(cfg.RedisPrefix))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	esc, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{cfg.ESURL}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	esSink, err := es.New(ctx, esc, es.WithEntityTypes("title"))
	if err != nil {
		t.Fatal(err)
	}
	table, err := hive.New(cfg.HiveRoot, "audit")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = table.Close(context.Background()) }()
	reg, err := schema.NewRegistryClient(cfg.RegistryURL)
	if err != nil {
		t.Fatal(err)
	}

	toES, toHive := consumer.ToSinks(esSink), consumer.ToSinks(table)
	var written, inflight atomic.Int64
	var stalled, first atomic.Bool
	apply := consumer.HandlerFunc(func(ctx context.Context, batch []sink.Event) error {
		if err := toES.Handle(ctx, batch); err != nil {
			return err
		}
		if w := written.Add(int64(len(batch))); cfg.StallAt > 0 && w >= int64(cfg.StallAt) && stalled.CompareAndSwap(false, true) {
			// Let the other lanes of the batch finish, so that the kill
			// leaves events that are done but not committed beside the
			// ones of this lane, which are in Elasticsearch only.
			for deadline := time.Now().Add(10 * time.Second); inflight.Load() > 1 && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
			say("%s id=%s events=%d", stormLineStalled, batch[0].ID, len(batch))
			<-ctx.Done()
			return ctx.Err()
		}
		if err := toHive.Handle(ctx, batch); err != nil {
			return err
		}
		ctx.Value(stormStatsKey{}).(*stormCall).fresh = len(batch)
		return nil
	})
	dd := consumer.Deduplicate(store, consumer.DedupeConfig{Group: cfg.Group, Lease: stormKillLease, TTL: time.Hour}, apply)
	h := consumer.HandlerFunc(func(ctx context.Context, batch []sink.Event) error {
		if first.CompareAndSwap(false, true) {
			say(stormLineFirst)
		}
		inflight.Add(1)
		defer inflight.Add(-1)
		var call stormCall
		if err := dd.Handle(context.WithValue(ctx, stormStatsKey{}, &call), batch); err != nil {
			return err
		}
		say("%s handed=%d fresh=%d", stormLineCall, len(batch), call.fresh)
		return nil
	})
	c, err := consumer.New(h, consumer.WithBrokers(cfg.Brokers), consumer.WithGroup(cfg.Group), consumer.WithTopics(cfg.Topic),
		consumer.WithRegistry(reg), consumer.WithConcurrency(2), consumer.WithBatch(1000, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// stormProc is a running child consumer and what it reported.
type stormProc struct {
	cmd     *exec.Cmd
	stderr  lockedBuffer
	exited  chan struct{} // closed once stdout is drained and the process reaped
	waitErr error

	mu      sync.Mutex
	handed  int // records handed to calls that succeeded
	fresh   int // events those calls applied and marked done
	firstAt time.Time
	stall   chan stormStall
	other   []string // lines that are not part of the protocol
}

type stormStall struct {
	id     string
	events int
}

// startStormChild runs TestStormKillChild in a new process of this test
// binary; it is killed at the end of the test if still running.
func startStormChild(t *testing.T, cfg stormChildConfig) *stormProc {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &stormProc{exited: make(chan struct{}), stall: make(chan stormStall, 1)}
	p.cmd = exec.Command(os.Args[0], "-test.run=^TestStormKillChild$", "-test.count=1", "-test.timeout=5m")
	p.cmd.Env = append(os.Environ(), envStormChild+"="+string(raw))
	p.cmd.Stderr = &p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.line(sc.Text())
		}
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

func (p *stormProc) line(l string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case l == stormLineFirst:
		p.firstAt = time.Now()
	case strings.HasPrefix(l, stormLineCall+" "):
		var h, f int
		if _, err := fmt.Sscanf(l, stormLineCall+" handed=%d fresh=%d", &h, &f); err == nil {
			p.handed += h
			p.fresh += f
			return
		}
		p.other = append(p.other, l)
	case strings.HasPrefix(l, stormLineStalled+" "):
		var s stormStall
		if _, err := fmt.Sscanf(l, stormLineStalled+" id=%s events=%d", &s.id, &s.events); err == nil {
			p.stall <- s
			return
		}
		p.other = append(p.other, l)
	default:
		p.other = append(p.other, l)
	}
}

// counts returns the records handed to succeeded calls, the events they
// applied, and when the first batch arrived.
func (p *stormProc) counts() (handed, fresh int, firstAt time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.handed, p.fresh, p.firstAt
}

// output returns what the child wrote besides the protocol lines.
func (p *stormProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.other, "\n") + "\n" + p.stderr.String()
}

// stop interrupts the child and waits for it to leave the group and exit.
func (p *stormProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("the child did not stop within 30s after an interrupt:\n%s", p.output())
	}
	if p.waitErr != nil {
		t.Fatalf("child: %v\n%s", p.waitErr, p.output())
	}
}

// groupLag returns how many records of topic's partitions the group has
// not committed yet.
func groupLag(t *testing.T, kc *kafka.Consumer, topic string, partitions int32) int64 {
	t.Helper()
	tps := make([]kafka.TopicPartition, partitions)
	for i := range tps {
		tps[i] = kafka.TopicPartition{Topic: &topic, Partition: int32(i)}
	}
	committed, err := kc.Committed(tps, 5000)
	if err != nil {
		t.Fatal(err)
	}
	var lag int64
	for _, tp := range committed {
		_, high, err := kc.QueryWatermarkOffsets(topic, tp.Partition, 5000)
		if err != nil {
			t.Fatal(err)
		}
		lag += high - max(0, int64(tp.Offset))
	}
	return lag
}

// A duplicate storm through a consumer that is SIGKILLed mid-stream: N
// events (SLATE_STORM_EVENTS, default 100,000) with 20% of them
// redelivered by the producer side at later offsets, consumed by a child
// process with Redis dedupe into the Elasticsearch double and a Hive
// table. Between 30% and 55% of the way, the child is killed in the middle
// of a batch: one lane of it is in Elasticsearch but neither in Hive nor
// marked done, and the rest is done but its offsets not committed. A
// second child takes over the group. Every redelivery is dropped or
// absorbed: Elasticsearch holds each event once at its version, the Hive
// table read back with DuckDB holds each event once, nothing is missing,
// and every event was marked done by exactly one of the two processes.
func TestDuplicateStormSurvivesSIGKILL(t *testing.T) {
	redisAddr := os.Getenv("SLATE_REDIS_ADDR")
	if redisAddr == "" {
		testenv.Unavailable(t, "Redis (SLATE_REDIS_ADDR unset)",
			"start one with `redis-server` or `docker run -p 6379:6379 redis:7` and set SLATE_REDIS_ADDR=127.0.0.1:6379",
			errors.New("the child processes share their dedupe store through Redis"))
	}
	rc := redis.NewClient(&redis.Options{Addr: redisAddr})
	t.Cleanup(func() { _ = rc.Close() })
	pctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	err := rc.Ping(pctx).Err()
	cancel()
	if err != nil {
		testenv.Unavailable(t, "Redis at "+redisAddr, "start one with `redis-server` or set SLATE_REDIS_ADDR", err)
	}
	n := defaultStormEvents
	if v := os.Getenv("SLATE_STORM_EVENTS"); v != "" {
		if n, err = strconv.Atoi(v); err != nil || n < 100 {
			t.Fatalf("SLATE_STORM_EVENTS=%q: want a number >= 100", v)
		}
	}
	if testing.Short() {
		n = min(n, 10_000)
	}
	start := time.Now()

	prefix := fmt.Sprintf("slatetest:stormkill:%d:%d:", time.Now().UnixNano(), os.Getpid())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		iter := rc.Scan(ctx, 0, prefix+"*", 5000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			if keys = append(keys, iter.Val()); len(keys) == 5000 {
				_ = rc.Unlink(ctx, keys...).Err()
				keys = keys[:0]
			}
		}
		if len(keys) > 0 {
			_ = rc.Unlink(ctx, keys...).Err()
		}
	})
	keys, err := dedupe.NewRedis(rc, dedupe.WithKeyPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}

	const partitions = 2
	env := testenv.Start(t, "//test", broker.WithPartitions(partitions))
	double := estest.New()
	hs := httptest.NewServer(double)
	t.Cleanup(hs.Close)
	index := es.DefaultIndexPrefix + "title"
	root := t.TempDir()

	topic := "studio.title.materialized.stormkill"
	envs := titleEvents(n, "kill")
	deliveries := withRedeliveries(envs, 5)
	publishChunked(t, env.Producer, topic, deliveries)
	published := time.Since(start)

	cfg := stormChildConfig{
		Brokers: env.Brokers, RegistryURL: env.RegistryURL, ESURL: hs.URL, HiveRoot: root,
		RedisAddr: redisAddr, RedisPrefix: prefix, Topic: topic, Group: "storm-kill",
		StallAt: n*3/10 + rand.N(n/4),
	}

	// The first child runs until it stalls mid-batch, and is killed there.
	c1 := startStormChild(t, cfg)
	var st stormStall
	select {
	case st = <-c1.stall:
	case <-c1.exited:
		t.Fatalf("the first child exited before it stalled: %v\n%s", c1.waitErr, c1.output())
	case <-time.After(3 * time.Minute):
		t.Fatalf("the first child did not reach %d events in 3m:\n%s", cfg.StallAt, c1.output())
	}
	if err := c1.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	<-c1.exited
	handed1, fresh1, _ := c1.counts()
	inES := double.Count(index)
	t.Logf("killed the first child after %s, stalled at %d: %d events in Elasticsearch (%.0f%%), %d of them marked done, %d of the stalled lane not",
		killedAt.Sub(start).Round(time.Millisecond), cfg.StallAt, inES, 100*float64(inES)/float64(n), fresh1, st.events)
	if inES <= 0 || inES >= n {
		t.Fatalf("killed with %d of %d events applied, want it killed mid-stream", inES, n)
	}
	if inES != fresh1+st.events {
		t.Errorf("Elasticsearch holds %d documents at the kill, want %d done + %d of the stalled lane", inES, fresh1, st.events)
	}
	// What the kill left behind: the stalled lane's ids are still leased
	// by the dead process, and its events are in Elasticsearch only.
	if v, err := rc.Get(t.Context(), keys.Key(st.id)).Result(); err != nil || !strings.HasPrefix(v, "lease:") {
		t.Errorf("dedupe key of stalled event %s after the kill: %q, %v; want a lease", st.id, v, err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	hiveCounts := func() (rows, ids int) {
		t.Helper()
		glob := strings.ReplaceAll(filepath.ToSlash(filepath.Join(root, "audit"))+"/**/*.parquet", "'", "''")
		err := db.QueryRowContext(t.Context(), "SELECT count(*), count(DISTINCT id) FROM read_parquet('"+glob+
			"', hive_partitioning = true, hive_types_autocast = false)").Scan(&rows, &ids)
		if err != nil {
			t.Fatal(err)
		}
		return rows, ids
	}
	if rows, ids := hiveCounts(); rows != fresh1 || ids != fresh1 {
		t.Errorf("Hive table after the kill: %d rows, %d distinct ids; want the %d done events", rows, ids, fresh1)
	}

	// A second child takes over the group and runs until the group has
	// committed everything.
	cfg.StallAt = 0
	c2 := startStormChild(t, cfg)
	admin, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": env.Brokers, "group.id": cfg.Group, "enable.metrics.push": false})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	deadline := time.Now().Add(3 * time.Minute)
	for groupLag(t, admin, topic, partitions) > 0 {
		select {
		case <-c2.exited:
			t.Fatalf("the second child exited: %v\n%s", c2.waitErr, c2.output())
		default:
		}
		if time.Now().After(deadline) {
			h, fr, _ := c2.counts()
			t.Fatalf("timed out waiting for the group to commit everything (second child: %d records handed, %d applied):\n%s",
				h, fr, c2.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	c2.stop(t)
	elapsed := time.Since(start)
	handed2, fresh2, firstAt := c2.counts()

	replayed := handed1 + handed2 - len(deliveries) // records both children handled
	t.Logf("N=%d events, %d records (%d producer redeliveries); published in %s; first child: %d records, %d applied; "+
		"second child: first batch %s after the kill (lease %s), %d records (%d handled before the kill), %d applied, "+
		"%d dropped as duplicates; total %s",
		n, len(deliveries), n/5, published.Round(time.Millisecond), handed1, fresh1,
		firstAt.Sub(killedAt).Round(time.Millisecond), stormKillLease, handed2, replayed, fresh2, handed2-fresh2,
		elapsed.Round(time.Millisecond))
	if fresh1+fresh2 != n {
		t.Errorf("%d + %d events marked done by the two children, want each of the %d once "+
			"(the second child's first batch came %s after the kill; the killed child's claims were held for %s)",
			fresh1, fresh2, n, firstAt.Sub(killedAt).Round(time.Millisecond), stormKillLease)
	}
	if v, err := rc.Get(t.Context(), keys.Key(st.id)).Result(); err != nil || v != "done" {
		t.Errorf("dedupe key of stalled event %s at the end: %q, %v; want it done", st.id, v, err)
	}
	if replayed <= 0 {
		t.Errorf("%d records handled before the kill were redelivered after it, want some", replayed)
	}

	if got := double.Count(index); got != n {
		t.Errorf("Elasticsearch holds %d documents, want %d", got, n)
	}
	wrong := 0
	for _, env := range envs {
		if _, v, ok := double.Doc(index, env.Subject); !ok || v != env.Sequence {
			if wrong++; wrong <= 5 {
				t.Errorf("document %s: found %v version %d, want version %d", env.Subject, ok, v, env.Sequence)
			}
		}
	}
	if wrong > 5 {
		t.Errorf("%d documents missing or at the wrong version", wrong)
	}
	if rows, ids := hiveCounts(); rows != n || ids != n {
		t.Errorf("Hive table: %d rows, %d distinct ids; want %d of each", rows, ids, n)
	}
}
