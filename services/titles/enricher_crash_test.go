package titles_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/producer"
	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/services/titles"
)

// Environment of the enricher child process of TestEnricherSurvivesSIGKILL.
const (
	envCrashChild    = "SLATE_ENRICHER_CRASH_CHILD"
	envCrashBrokers  = "SLATE_ENRICHER_CRASH_BROKERS"
	envCrashRegistry = "SLATE_ENRICHER_CRASH_REGISTRY"
	envCrashTitles   = "SLATE_ENRICHER_CRASH_TITLES"
)

// TestEnricherCrashChild is the enricher process of
// TestEnricherSurvivesSIGKILL; run alone it skips.
func TestEnricherCrashChild(t *testing.T) {
	if os.Getenv(envCrashChild) != "1" {
		t.Skip("runs only as the child of TestEnricherSurvivesSIGKILL")
	}
	ctx := context.Background()
	reg, err := schema.NewRegistryClient(os.Getenv(envCrashRegistry))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := producer.New(producer.WithBrokers(os.Getenv(envCrashBrokers)), producer.WithRegistry(reg), producer.WithSource("//slate/enricher"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(os.Getenv(envCrashTitles), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	enr, err := enricher.New(titles.EntityType, titles.NewResolver(titlesv1.NewTitlesClient(conn)), pub, reg,
		enricher.WithDeadLetter(pub))
	if err != nil {
		t.Fatal(err)
	}
	// Slow batches, so that the parent's SIGKILL lands mid-stream.
	slow := consumer.HandlerFunc(func(ctx context.Context, batch []sink.Event) error {
		time.Sleep(30 * time.Millisecond)
		return enr.Handle(ctx, batch)
	})
	c, err := consumer.New(slow, consumer.WithBrokers(os.Getenv(envCrashBrokers)), consumer.WithGroup("enricher-crash"),
		consumer.WithTopics(schema.ChangesTopic(titles.EntityType)), consumer.WithRegistry(reg), consumer.WithDeadLetter(pub),
		consumer.WithBatch(20, 5*time.Millisecond), consumer.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("enricher child running")
	if err := c.Run(ctx); err != nil { // runs until killed
		t.Fatal(err)
	}
}

// TestEnricherSurvivesSIGKILL runs the enricher (under a consumer) in a
// child process, kills it with SIGKILL while titles keep changing, starts
// it again, and checks that the materialized topic ends with every title's
// current version: offsets are committed only after outputs are
// acknowledged, so a crash replays and never skips.
func TestEnricherSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	s := newEnrStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	client, addr := serveAddr(t, s.pub) // the service publishes its own change events

	const ids = 40
	write := func(round int) {
		var wg sync.WaitGroup
		for i := range ids {
			wg.Go(func() {
				id := "crash-" + strconv.Itoa(i)
				tt := &titlesv1.Title{Id: id, Name: "Crash " + strconv.Itoa(i), Kind: titles.KindFeature,
					Status: titles.StatusProduction, ReleaseDate: fmt.Sprintf("2027-%02d-01", round%12+1)}
				var err error
				if round == 0 {
					_, err = client.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: tt})
				} else {
					_, err = client.UpdateTitle(ctx, &titlesv1.UpdateTitleRequest{Title: tt})
				}
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestEnricherCrashChild$", "-test.v")
		cmd.Env = append(os.Environ(), envCrashChild+"=1", envCrashBrokers+"="+s.brokers,
			envCrashRegistry+"="+s.regURL, envCrashTitles+"="+addr)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	out := newTopicWatcher(t, s, schema.MaterializedTopic(titles.EntityType))

	for round := range 5 {
		write(round)
	}
	child := start()
	out.waitFor(t, "some output before the crash", func(n int, _ map[string]schema.Envelope) bool { return n > 0 })
	if err := child.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = child.Wait()
	before := out.count()
	for round := 5; round < 10; round++ {
		write(round)
	}
	child = start()
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()

	want := map[string]int64{}
	for i := range ids {
		resp, err := client.GetTitle(ctx, &titlesv1.GetTitleRequest{Id: "crash-" + strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		want[resp.GetTitle().GetId()] = resp.GetTitle().GetVersion()
	}
	out.waitFor(t, "every title at its current version", func(_ int, last map[string]schema.Envelope) bool {
		for id, v := range want {
			if last[id].Sequence != v {
				return false
			}
		}
		return true
	})
	t.Logf("%d materialized records before the SIGKILL, %d in all; every title ends at version 10", before, out.count())
}

// serveAddr runs the titles service on 127.0.0.1:0 for the test's lifetime
// and returns a client and its address.
func serveAddr(t *testing.T, pub titles.Publisher) (titlesv1.TitlesClient, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- titles.Serve(ctx, lis, titles.NewServer(pub), titles.WithGracePeriod(time.Second)) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		<-done
	})
	return titlesv1.NewTitlesClient(conn), lis.Addr().String()
}

// topicWatcher consumes a topic in the background and keeps the last
// envelope per key.
type topicWatcher struct {
	mu   sync.Mutex
	n    int
	last map[string]schema.Envelope
}

func newTopicWatcher(t *testing.T, s enrStack, topic string) *topicWatcher {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.brokers), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	codec, err := schema.NewCodec(s.reg)
	if err != nil {
		t.Fatal(err)
	}
	w := &topicWatcher{last: map[string]schema.Envelope{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			for _, r := range cl.PollFetches(ctx).Records() {
				env, err := codec.Decode(ctx, r.Value)
				if err != nil {
					continue
				}
				w.mu.Lock()
				w.n++
				w.last[env.Subject] = env
				w.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
	return w
}

func (w *topicWatcher) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

func (w *topicWatcher) waitFor(t *testing.T, what string, cond func(n int, last map[string]schema.Envelope) bool) {
	t.Helper()
	enrWait(t, what, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return cond(w.n, w.last)
	})
}
