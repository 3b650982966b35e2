// Package cdctest is the contract test suite every CDC source passes
// (cdc/postgres, cdc/mysql): run against a real database, through a real
// producer and the embedded broker, it checks what DESIGN.md promises of
// CDC — every committed change once and in commit order per key, rolled
// back transactions never, and a stop and restart mid-stream resumes with
// no gap, replaying only exact duplicates.
package cdctest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/slatehq/slate/internal/testenv"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
)

// Harness adapts one source implementation and its database to the suite.
type Harness interface {
	// Setup creates a fresh, empty table with columns id (integer primary
	// key) and v (bigint), removes it when t ends, and returns the topic
	// its changes go to.
	Setup(t *testing.T) (topic string)
	// NewSource returns a source capturing that table, resuming where the
	// previous source of this test stopped (same slot or offsets row).
	NewSource(t *testing.T, reg schema.Registry) cdc.Source
	// WaitReady blocks until a running source will see every change
	// committed from now on.
	WaitReady(t *testing.T)
	// Upsert sets row id to v in one transaction, committed or rolled back.
	// It may run on another goroutine than the test: report failures with
	// t.Error, not t.Fatal.
	Upsert(t *testing.T, id int, v int64, commit bool)
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	t.Run("CommittedOnceInOrder", func(t *testing.T) { committedOnceInOrder(t, h) })
	t.Run("RestartWithoutGap", func(t *testing.T) { restartWithoutGap(t, h) })
}

type env struct {
	brokers string
	reg     *schema.RegistryClient
	prod    *producer.Producer
}

func start(t *testing.T) env {
	t.Helper()
	e := testenv.Start(t, "//cdctest")
	return env{brokers: e.Brokers, reg: e.Registry, prod: e.Producer}
}

type running struct {
	cancel context.CancelFunc
	done   chan error
}

func (e env) run(t *testing.T, src cdc.Source) *running {
	t.Helper()
	r, err := cdc.NewRunner(e.prod)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rn := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { rn.done <- r.Run(ctx, src) }()
	return rn
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("runner: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("runner did not stop")
	}
}

// change is one consumed row event.
type change struct {
	id  string // envelope id
	key string
	v   int64
	seq int64
	raw string // the envelope data, to compare replays
}

// collect reads the topic until cond holds over what was read and a poll
// brings nothing more, or fails.
func (e env) collect(t *testing.T, topic string, cond func([]change) bool) []change {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	codec, err := schema.NewCodec(e.reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []change
	for {
		if ctx.Err() != nil {
			t.Fatalf("timed out after %d records on %s", len(out), topic)
		}
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fs := cl.PollFetches(pctx)
		pcancel()
		if len(fs.Records()) == 0 && cond(out) {
			return out
		}
		for _, kr := range fs.Records() {
			env, err := codec.Decode(ctx, kr.Value)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := schema.DecodeData(ctx, e.reg, env.Data, &m); err != nil {
				t.Fatal(err)
			}
			row := m["after"]
			if env.Type == schema.OpDelete {
				row = m["before"]
			}
			var v int64
			if u, ok := row.(map[string]any); ok {
				for _, r := range u {
					v, _ = r.(map[string]any)["v"].(int64)
				}
			}
			out = append(out, change{id: env.ID, key: string(kr.Key), v: v, seq: env.Sequence, raw: string(env.Data)})
		}
	}
}

func distinctV(cs []change) map[int64]bool {
	seen := map[int64]bool{}
	for _, c := range cs {
		seen[c.v] = true
	}
	return seen
}

func committedOnceInOrder(t *testing.T, h Harness) {
	e := start(t)
	topic := h.Setup(t)
	rn := e.run(t, h.NewSource(t, e.reg))
	defer rn.stop(t)
	h.WaitReady(t)
	want := map[int64]bool{}
	for v := int64(1); v <= 300; v++ {
		commit := v%7 != 0
		h.Upsert(t, int(v%13), v, commit)
		if commit {
			want[v] = true
		}
	}
	got := e.collect(t, topic, func(cs []change) bool { return len(cs) >= len(want) })
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d committed changes once each", len(got), len(want))
	}
	last := map[string]change{}
	for _, c := range got {
		if !want[c.v] {
			t.Fatalf("v %d on the topic: rolled back or unknown", c.v)
		}
		if p, ok := last[c.key]; ok && (c.v <= p.v || c.seq <= p.seq) {
			t.Errorf("key %s: v %d seq %d after v %d seq %d", c.key, c.v, c.seq, p.v, p.seq)
		}
		last[c.key] = c
	}
}

func restartWithoutGap(t *testing.T, h Harness) {
	e := start(t)
	topic := h.Setup(t)
	rn := e.run(t, h.NewSource(t, e.reg))
	h.WaitReady(t)
	const total = 600
	var mu sync.Mutex
	committed := int64(0)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for v := int64(1); v <= total; v++ {
			h.Upsert(t, int(v%17), v, true)
			mu.Lock()
			committed = v
			mu.Unlock()
		}
	}()
	for _, at := range []int64{150, 350} {
		for {
			mu.Lock()
			c := committed
			mu.Unlock()
			if c >= at {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		rn.stop(t)
		rn = e.run(t, h.NewSource(t, e.reg))
	}
	wg.Wait()
	defer rn.stop(t)
	got := e.collect(t, topic, func(cs []change) bool { return len(distinctV(cs)) >= total })
	byID := map[string]change{}
	last := map[string]int64{}
	for _, c := range got {
		if p, ok := byID[c.id]; ok {
			if p.raw != c.raw || p.seq != c.seq {
				t.Errorf("envelope %s replayed with different content", c.id)
			}
			continue
		}
		byID[c.id] = c
		if c.v <= last[c.key] {
			t.Errorf("key %s: v %d after %d", c.key, c.v, last[c.key])
		}
		last[c.key] = c.v
	}
	if len(byID) != total {
		t.Errorf("%d distinct events, want %d", len(byID), total)
	}
	t.Logf("%d records for %d committed changes across 2 restarts (%d exact replays)", len(got), total, len(got)-len(byID))
}

// Name returns a name unique to this test run, for tables and slots.
func Name(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%1e9)
}
