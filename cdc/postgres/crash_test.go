package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/cdc/cdctest"
	"github.com/slatehq/slate/cdc/postgres"
	"github.com/slatehq/slate/schema"
)

// TestSIGKILLChild is the sidecar process of TestSIGKILLResumesWithoutGap:
// a source and runner publishing to the parent's broker until killed. Run
// alone it skips.
func TestSIGKILLChild(t *testing.T) {
	cdctest.RunSidecar(t, "//pg/test", func(reg schema.Registry, name, table string) (cdc.Source, error) {
		src, err := postgres.New(postgres.Config{
			DSN: dsn(), Slot: name, Publication: name, CreateSlot: true, CreatePublication: true,
			Tables: []string{"public." + table}, Snapshot: true, StatusInterval: 100 * time.Millisecond,
		}, postgres.WithRegistry(reg))
		return src, err
	})
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

	sidecars := cdctest.NewSidecars(t, "TestSIGKILLChild", h.brokers, h.regURL, h.name, tbl)
	sidecars.Start()
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
		sidecars.Kill()
		killedAt = append(killedAt, int(committed.Load()))
		sidecars.Start()
	}
	wg.Wait()
	recs := col.waitFor(t, 40*time.Second, "every committed change", func(rs []record) bool {
		seen := map[int64]bool{}
		for _, r := range rs {
			seen[rowV(r)] = true
		}
		return len(seen) >= total
	})
	dups := checkOnceInOrder(t, recs, total)
	if killedAt[len(killedAt)-1] >= total {
		t.Errorf("the last kill came after the writer finished (%v): not mid-stream", killedAt)
	}
	// Stop the last child before the slot is dropped.
	sidecars.Kill()
	t.Logf("%d records for %d committed changes, SIGKILL at %v committed (%d exact replays)", len(recs), total, killedAt, dups)
}
