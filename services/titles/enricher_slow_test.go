package titles_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/slatehq/slate/enricher"
	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/services/titles"
)

// Shape of TestEnricherSlowOwner.
const (
	slowLatency  = 200 * time.Millisecond // added to every BatchGetTitles
	slowHealthy  = 2 * time.Second        // slow but answering, before the outage
	slowOutage   = 10 * time.Second       // BatchGetTitles answers UNAVAILABLE
	slowAfter    = 2 * time.Second        // changes keep coming after the outage
	slowIDs      = 50
	slowInterval = 10 * time.Millisecond // one UpdateTitle per tick: 100 changes/s
	// slowHeapBound bounds the test process's peak HeapInuse (the
	// in-process broker with every record it holds, the registry, the
	// service, the producer, the consumer and the enricher together) while
	// the owner is slow and then down and change events pile up;
	// slowGrowthBound bounds its growth over the heap measured before the
	// consumer started.
	slowHeapBound   = 96 << 20
	slowGrowthBound = 48 << 20
)

// TestEnricherSlowOwner runs the enricher under consumer.Consumer while
// the titles service answers BatchGetTitles 200ms late, then UNAVAILABLE
// for 10s, then 200ms late again; writes to the service (and so change
// events) never stop. The enricher's retries and breaker turn the outage
// into failed batches, the consumer pauses and retries them, and once the
// service answers again every title is materialized at its final version.
// The process's HeapInuse, sampled every 50ms, stays under slowHeapBound.
func TestEnricherSlowOwner(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for ~15s")
	}
	s := newEnrStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var down atomic.Bool
	var rejected atomic.Int64
	client := serveSlow(t, s.pub, func() error {
		time.Sleep(slowLatency)
		if down.Load() {
			rejected.Add(1)
			return status.Error(codes.Unavailable, "owner down")
		}
		return nil
	})
	for i := range slowIDs {
		if _, err := client.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: slowTitle(i, 0)}); err != nil {
			t.Fatal(err)
		}
	}

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	stopSampling := sampleHeap(&peak, 50*time.Millisecond)
	defer stopSampling()

	enr, err := enricher.New(titles.EntityType, titles.NewResolver(client), s.pub, s.reg,
		enricher.WithRetry(enricher.RetryPolicy{Attempts: 3, Base: 20 * time.Millisecond, Max: 100 * time.Millisecond}),
		enricher.WithBreaker(3, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var failed atomic.Int64
	var sawOpen atomic.Bool
	h := observed{h: enr, observe: func(err error) {
		if err != nil {
			failed.Add(1)
		}
		if enr.BreakerState(titles.EntityType) == enricher.BreakerOpen {
			sawOpen.Store(true)
		}
	}}
	out := newTopicWatcher(t, s, schema.MaterializedTopic(titles.EntityType))
	s.runConsumer(t, "enricher-slow", schema.ChangesTopic(titles.EntityType), h)

	// Writer: one update per tick, round-robin over the titles, through
	// the healthy phase, the outage and after it.
	var (
		wg      sync.WaitGroup
		updates atomic.Int64
	)
	wg.Go(func() {
		tick := time.NewTicker(slowInterval)
		defer tick.Stop()
		end := time.Now().Add(slowHealthy + slowOutage + slowAfter)
		for n := 0; time.Now().Before(end); n++ {
			<-tick.C
			if _, err := client.UpdateTitle(ctx, &titlesv1.UpdateTitleRequest{Title: slowTitle(n%slowIDs, n/slowIDs+1)}); err != nil {
				t.Error(err)
				return
			}
			updates.Add(1)
		}
	})
	time.Sleep(slowHealthy)
	down.Store(true)
	beforeOutage := out.count()
	time.Sleep(slowOutage)
	down.Store(false)
	wg.Wait()

	want := map[string]int64{}
	for i := range slowIDs {
		resp, err := client.GetTitle(ctx, &titlesv1.GetTitleRequest{Id: slowID(i)})
		if err != nil {
			t.Fatal(err)
		}
		want[resp.GetTitle().GetId()] = resp.GetTitle().GetVersion()
	}
	out.waitFor(t, "every title at its final version", func(_ int, last map[string]schema.Envelope) bool {
		for id, v := range want {
			if last[id].Sequence != v {
				return false
			}
		}
		return true
	})
	stopSampling()

	if rejected.Load() == 0 || failed.Load() == 0 {
		t.Errorf("%d calls rejected, %d batches failed; the outage should have failed batches", rejected.Load(), failed.Load())
	}
	if !sawOpen.Load() {
		t.Error("the breaker never opened during a 10s outage")
	}
	p := peak.Load()
	if p >= slowHeapBound || p-min(p, base) >= slowGrowthBound {
		t.Errorf("peak HeapInuse %.1f MiB (bound %d MiB), %.1f MiB over the %.1f MiB before the consumer started (bound %d MiB)",
			mib(p), slowHeapBound>>20, mib(p-min(p, base)), mib(base), slowGrowthBound>>20)
	}
	t.Logf("%d updates, %d materialized records (%d before the outage), %d rejected calls, %d failed batches, "+
		"HeapInuse %.1f MiB before, peak %.1f MiB (bounds %d MiB, +%d MiB)",
		updates.Load(), out.count(), beforeOutage, rejected.Load(), failed.Load(), mib(base), mib(p),
		slowHeapBound>>20, slowGrowthBound>>20)
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

func slowID(i int) string { return "slow-" + strconv.Itoa(i) }

func slowTitle(i, round int) *titlesv1.Title {
	return &titlesv1.Title{Id: slowID(i), Name: "Slow " + strconv.Itoa(i), Kind: titles.KindFeature,
		Status: titles.StatusProduction, ReleaseDate: fmt.Sprintf("2027-%02d-01", round%12+1)}
}

// serveSlow runs the titles service, publishing its change events through
// pub, with an interceptor that calls fault before every BatchGetTitles
// and answers with its error if it returns one.
func serveSlow(t *testing.T, pub titles.Publisher, fault func() error) titlesv1.TitlesClient {
	t.Helper()
	icpt := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if info.FullMethod == titlesv1.Titles_BatchGetTitles_FullMethodName {
			if err := fault(); err != nil {
				return nil, err
			}
		}
		return h(ctx, req)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- titles.Serve(ctx, lis, titles.NewServer(pub), titles.WithGracePeriod(time.Second),
			titles.WithServerOptions(grpc.UnaryInterceptor(icpt)))
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		<-done
	})
	return titlesv1.NewTitlesClient(conn)
}

// sampleHeap records the largest HeapInuse seen every interval in peak
// until the returned function is called (which may be called twice).
func sampleHeap(peak *atomic.Uint64, interval time.Duration) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(stop); <-done }) }
}
