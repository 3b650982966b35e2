package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/cdc/postgres"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
)

// Environment of the sidecar child process of TestSIGKILLResumesWithoutGap.
const (
	envCrashChild    = "SLATE_CDC_CRASH_CHILD"
	envCrashBrokers  = "SLATE_CDC_CRASH_BROKERS"
	envCrashRegistry = "SLATE_CDC_CRASH_REGISTRY"
	envCrashName     = "SLATE_CDC_CRASH_NAME"
	envCrashTable    = "SLATE_CDC_CRASH_TABLE"
)

// TestSIGKILLChild is the sidecar process of TestSIGKILLResumesWithoutGap:
// a source and runner publishing to the parent's broker until killed. Run
// alone it skips.
func TestSIGKILLChild(t *testing.T) {
	if os.Getenv(envCrashChild) != "1" {
		t.Skip("runs only as the child of TestSIGKILLResumesWithoutGap")
	}
	reg, err := schema.NewRegistryClient(os.Getenv(envCrashRegistry))
	if err != nil {
		t.Fatal(err)
	}
	p, err := producer.New(producer.WithBrokers(os.Getenv(envCrashBrokers)), producer.WithRegistry(reg), producer.WithSource("//pg/test"))
	if err != nil {
		t.Fatal(err)
	}
	name := os.Getenv(envCrashName)
	cfg := postgres.Config{
		DSN: dsn(), Slot: name, Publication: name, CreateSlot: true, CreatePublication: true,
		Tables: []string{"public." + os.Getenv(envCrashTable)}, Snapshot: true, StatusInterval: 100 * time.Millisecond,
	}
	src, err := postgres.New(cfg, postgres.WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	r, err := cdc.NewRunner(p)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("cdc child running")
	if err := r.Run(context.Background(), src); err != nil { // runs until killed
		t.Fatal(err)
	}
}

// The sidecar process is SIGKILLed twice while rows keep changing and is
// started again each time: every committed change arrives, and an id seen
// twice is an exact replay (same data, same sequence). The broker and the
// registry live in this process, so they outlive the child.
func TestSIGKILLResumesWithoutGap(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	h := newHarness(t)
	ctx := context.Background()
	tbl := h.table("kill")
	exec(t, h.db, fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, v bigint NOT NULL)", tbl))
	t.Cleanup(func() { exec(t, h.db, "DROP TABLE IF EXISTS "+tbl) })
	topic := cdc.Topic("postgres", "public", tbl)
	col := h.collect(topic)

	var children []*osexec.Cmd
	var logs []*bytes.Buffer
	start := func() {
		cmd := osexec.Command(os.Args[0], "-test.run=^TestSIGKILLChild$", "-test.v")
		cmd.Env = append(os.Environ(), envCrashChild+"=1", envCrashBrokers+"="+h.brokers,
			envCrashRegistry+"="+h.regURL, envCrashName+"="+h.name, envCrashTable+"="+tbl)
		out := new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		children = append(children, cmd)
		logs = append(logs, out)
	}
	t.Cleanup(func() {
		for _, c := range children {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		if t.Failed() {
			for i, l := range logs {
				t.Logf("child %d output:\n%s", i, l.String())
			}
		}
	})
	start()
	h.waitActive()

	const total = 1500
	var committed atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for v := int64(1); v <= total; v++ {
			if _, err := h.db.Exec(ctx, "INSERT INTO "+tbl+" VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v", v%30, v); err != nil {
				t.Error(err)
				return
			}
			committed.Store(v)
			if v%50 == 0 {
				time.Sleep(10 * time.Millisecond) // keep the stream going across both kills
			}
		}
	})
	var killedAt []int
	for _, at := range []int{300, 800} {
		col.waitFor(t, 30*time.Second, fmt.Sprintf("%d records before a kill", at), func(rs []record) bool { return len(rs) >= at })
		child := children[len(children)-1]
		if err := child.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		_ = child.Wait()
		killedAt = append(killedAt, int(committed.Load()))
		start()
	}
	wg.Wait()
	recs := col.waitFor(t, 40*time.Second, "every committed change", func(rs []record) bool {
		seen := map[int64]bool{}
		for _, r := range rs {
			seen[rowV(r)] = true
		}
		return len(seen) >= total
	})
	byID := map[string]record{}
	lastV := map[string]int64{}
	dups := 0
	for _, r := range recs {
		v := rowV(r)
		if v < 1 || v > total {
			t.Fatalf("unexpected v %d", v)
		}
		if prev, ok := byID[r.env.ID]; ok {
			dups++
			if rowV(prev) != v || string(prev.env.Data) != string(r.env.Data) || prev.env.Sequence != r.env.Sequence {
				t.Errorf("id %s delivered twice with different content", r.env.ID)
			}
			continue
		}
		byID[r.env.ID] = r
		if v <= lastV[r.key] {
			t.Errorf("key %s: v %d after %d", r.key, v, lastV[r.key])
		}
		lastV[r.key] = v
	}
	if len(byID) != total {
		t.Errorf("%d distinct events, want %d", len(byID), total)
	}
	if killedAt[len(killedAt)-1] >= total {
		t.Errorf("the last kill came after the writer finished (%v): not mid-stream", killedAt)
	}
	// Stop the last child before the slot is dropped.
	last := children[len(children)-1]
	_ = last.Process.Kill()
	_ = last.Wait()
	t.Logf("%d records for %d committed changes, SIGKILL at %v committed (%d exact replays)", len(recs), total, killedAt, dups)
}
