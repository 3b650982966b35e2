package mysql_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/cdc/cdctest"
	"github.com/slatehq/slate/cdc/mysql"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

// TestSIGKILLChild is the sidecar process of TestSIGKILLResumesWithoutGap:
// a binlog source and runner publishing to the parent's broker until
// killed. Run alone it skips.
func TestSIGKILLChild(t *testing.T) {
	cdctest.RunSidecar(t, "//mysql/test", func(reg schema.Registry, name, table string) (cdc.Source, error) {
		src, err := mysql.New(mysql.Config{DSN: dsn(), Name: name, FlushInterval: 50 * time.Millisecond,
			Filter: cdc.Filter{IncludeTables: []string{"test." + table}}}, mysql.WithRegistry(reg))
		return src, err
	})
}

// crashRecord is one consumed event: key, row value v and the raw data.
type crashRecord struct {
	id, key string
	v       int64
	data    string
}

// The binlog sidecar is SIGKILLed twice while rows keep changing and is
// started again each time: every committed change arrives, and an id seen
// twice is an exact replay. The broker and registry live in this process.
func TestSIGKILLResumesWithoutGap(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	db := connect(t)
	name := fmt.Sprintf("slk%d", time.Now().UnixNano()%1e9)
	tbl := name + "_bal"
	exec(t, db, "CREATE TABLE "+tbl+" (id int PRIMARY KEY, v bigint NOT NULL)")
	t.Cleanup(func() {
		exec(t, db, "DROP TABLE IF EXISTS "+tbl)
		exec(t, db, "DELETE FROM slate_cdc_offsets WHERE name = ?", name)
	})
	brokers := testenv.Kafka(t)
	regURL, reg := testenv.Registry(t)

	sidecars := cdctest.NewSidecars(t, "TestSIGKILLChild", brokers, regURL, name, tbl)

	// Consume in the background.
	var mu sync.Mutex
	var recs []crashRecord
	var decodeErr error
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(cdc.Topic(name, "test", tbl)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	codec, _ := schema.NewCodec(reg)
	cctx, ccancel := context.WithCancel(context.Background())
	cdone := make(chan struct{})
	go func() {
		defer close(cdone)
		defer cl.Close()
		for cctx.Err() == nil {
			for _, kr := range cl.PollFetches(cctx).Records() {
				e, m, err := decodeRow(context.Background(), codec, reg, kr.Value)
				rec := crashRecord{id: e.ID, key: string(kr.Key), data: string(e.Data)}
				rec.v, _ = rowOf(m, "after")["v"].(int64)
				mu.Lock()
				if err != nil && decodeErr == nil {
					decodeErr = err
				}
				recs = append(recs, rec)
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { ccancel(); <-cdone })
	waitFor := func(d time.Duration, what string, cond func([]crashRecord) bool) []crashRecord {
		t.Helper()
		deadline := time.Now().Add(d)
		for {
			mu.Lock()
			got, err := append([]crashRecord(nil), recs...), decodeErr
			mu.Unlock()
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if cond(got) {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (%d records)", what, len(got))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	sidecars.Start()
	for i := 0; ; i++ { // the child stores its first offset once it streams
		r, err := db.Execute("SELECT count(*) FROM slate_cdc_offsets WHERE name = ?", name)
		if err == nil {
			if n, _ := r.GetInt(0, 0); n == 1 {
				break
			}
		}
		if i > 300 {
			t.Fatal("the child never stored an offset")
		}
		time.Sleep(50 * time.Millisecond)
	}

	const total = 1200
	var committed atomic.Int64
	var wg sync.WaitGroup
	wdb := connect(t)
	wg.Go(func() {
		for v := int64(1); v <= total; v++ {
			if _, err := wdb.Execute("INSERT INTO "+tbl+" (id, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v)", v%30, v); err != nil {
				t.Error(err)
				return
			}
			committed.Store(v)
			if v%50 == 0 {
				time.Sleep(10 * time.Millisecond) // keep the stream going across both kills
			}
		}
	})
	var killedAt []int64
	for _, at := range []int{250, 650} {
		waitFor(30*time.Second, fmt.Sprintf("%d records before a kill", at), func(rs []crashRecord) bool { return len(rs) >= at })
		sidecars.Kill()
		killedAt = append(killedAt, committed.Load())
		sidecars.Start()
	}
	wg.Wait()
	got := waitFor(40*time.Second, "every committed change", func(rs []crashRecord) bool {
		seen := map[int64]bool{}
		for _, r := range rs {
			seen[r.v] = true
		}
		return len(seen) >= total
	})
	byID := map[string]crashRecord{}
	lastV := map[string]int64{}
	dups := 0
	for _, r := range got {
		if r.v < 1 || r.v > total {
			t.Fatalf("unexpected v %d", r.v)
		}
		if prev, ok := byID[r.id]; ok {
			dups++
			if prev != r {
				t.Errorf("id %s delivered twice with different content", r.id)
			}
			continue
		}
		byID[r.id] = r
		if r.v <= lastV[r.key] {
			t.Errorf("key %s: v %d after %d", r.key, r.v, lastV[r.key])
		}
		lastV[r.key] = r.v
	}
	if len(byID) != total {
		t.Errorf("%d distinct events, want %d", len(byID), total)
	}
	if killedAt[len(killedAt)-1] >= total {
		t.Errorf("the last kill came after the writer finished (%v): not mid-stream", killedAt)
	}
	t.Logf("%d records for %d committed changes, SIGKILL at %v committed (%d exact replays)", len(got), total, killedAt, dups)
}
