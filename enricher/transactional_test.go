package enricher_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
)

var _ consumer.TransactionalHandler = (*enricher.TxHandler)(nil)

// Environment of the child process of TestTransactionalSurvivesSIGKILL.
const (
	envTxChild    = "SLATE_ENRICHER_TX_CHILD"
	envTxBrokers  = "SLATE_ENRICHER_TX_BROKERS"
	envTxRegistry = "SLATE_ENRICHER_TX_REGISTRY"
	envTxHang     = "SLATE_ENRICHER_TX_HANG"
)

const txGroup = "enricher-tx"

// everyTitle resolves every id to a title at version 1; calls counts the
// calls and fail, if set, may fail call n (from 1).
func everyTitle(calls *atomic.Int64, fail func(n int64) error) enricher.Resolver {
	return enricher.ResolverFunc(func(_ context.Context, _ string, ids []string) (map[string]enricher.Record, error) {
		n := calls.Add(1)
		if fail != nil {
			if err := fail(n); err != nil {
				return nil, err
			}
		}
		out := make(map[string]enricher.Record, len(ids))
		for _, id := range ids {
			out[id] = enricher.Record{Version: 1, Schema: titleSchema, Value: title{ID: id, ReleaseDate: "2027-07-16", Version: 1}}
		}
		return out, nil
	})
}

// hangAfter is an enricher publisher that, after its nth successful
// publish, says so on stdout and blocks: the transaction holding that
// publish stays open until the process dies.
type hangAfter struct {
	p *producer.Producer
	n int64
	c atomic.Int64
}

func (h *hangAfter) Publish(ctx context.Context, topic string, envs ...schema.Envelope) error {
	if err := h.p.Publish(ctx, topic, envs...); err != nil {
		return err
	}
	if h.n > 0 && h.c.Add(1) == h.n {
		fmt.Println("hanging with an open transaction")
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

// txConsumer builds a transactional enricher (transactional.id
// "enricher-tx-0") under a consumer.WithTransactional consumer of
// title changes. A hang > 0 blocks after that many publishes.
func txConsumer(t *testing.T, brokers string, reg schema.Registry, r enricher.Resolver, hang int64) *consumer.Consumer {
	t.Helper()
	p := testenv.Producer(t, brokers, reg, "//slate/enricher", producer.WithTransactionalID(txGroup+"-0"),
		producer.WithKafkaConfig(map[string]any{"linger.ms": 1}))
	enr, err := enricher.New("title", r, &hangAfter{p: p, n: hang}, reg, enricher.WithMaxLookup(5), enricher.WithConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	h, err := enricher.NewTransactional(enr, p)
	if err != nil {
		t.Fatal(err)
	}
	c, err := consumer.New(h, consumer.WithBrokers(brokers), consumer.WithGroup(txGroup), consumer.WithTopics(schema.ChangesTopic("title")),
		consumer.WithRegistry(reg), consumer.WithTransactional(), consumer.WithBatch(20, 5*time.Millisecond),
		consumer.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// publishTitles publishes one change event for each of n titles.
func publishTitles(t *testing.T, p *producer.Producer, n int) {
	t.Helper()
	envs := make([]schema.Envelope, n)
	for i := range envs {
		envs[i] = p.NewChange(context.Background(), "title", "t-"+strconv.Itoa(i), schema.OpUpdate, 1)
	}
	if err := p.Publish(context.Background(), schema.ChangesTopic("title"), envs...); err != nil {
		t.Fatal(err)
	}
}

// readKeys counts the records per key a reader at level sees on topic,
// until it saw want records and then nothing more for a second, or 20s.
func readKeys(t *testing.T, brokers, topic string, level kgo.IsolationLevel, want int) (map[string]int, int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(level), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	keys, total := map[string]int{}, 0
	deadline := time.Now().Add(20 * time.Second)
	quietSince := time.Now()
	for time.Now().Before(deadline) && (total < want || time.Since(quietSince) < time.Second) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		rs := cl.PollFetches(ctx).Records()
		cancel()
		if len(rs) > 0 {
			quietSince = time.Now()
		}
		for _, r := range rs {
			keys[string(r.Key)]++
			total++
		}
	}
	return keys, total
}

// checkOnce fails unless every one of n titles appears exactly once.
func checkOnce(t *testing.T, keys map[string]int, total, n int) {
	t.Helper()
	if total != n || len(keys) != n {
		var dups []string
		for k, c := range keys {
			if c > 1 {
				dups = append(dups, k+"x"+strconv.Itoa(c))
			}
		}
		t.Fatalf("read_committed reader saw %d records of %d titles, want %d once each; repeated: %v", total, len(keys), n, dups)
	}
}

// A batch that fails after part of its outputs were published is aborted
// and handled again: a read_committed reader sees every view once, while
// a read_uncommitted one also sees the aborted part.
func TestTransactionalAbortMidBatch(t *testing.T) {
	e := testenv.Start(t, "//studio/titles")
	const n = 60
	publishTitles(t, e.Producer, n)
	var calls atomic.Int64
	r := everyTitle(&calls, func(n int64) error {
		if n == 2 { // the second chunk of the first batch, after the first was published
			return errors.New("injected failure")
		}
		return nil
	})
	c := txConsumer(t, e.Brokers, e.Registry, r, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	out := schema.MaterializedTopic("title")
	keys, total := readKeys(t, e.Brokers, out, kgo.ReadCommitted(), n)
	checkOnce(t, keys, total, n)
	_, raw := readKeys(t, e.Brokers, out, kgo.ReadUncommitted(), n)
	if raw <= n {
		t.Errorf("read_uncommitted reader saw %d records, want the %d views plus the aborted ones", raw, n)
	}
	t.Logf("%d views committed once each; %d records in the log with the aborted ones; %d resolver calls", total, raw, calls.Load())
}

// TestTransactionalCrashChild is the enricher process of
// TestTransactionalSurvivesSIGKILL; run alone it skips.
func TestTransactionalCrashChild(t *testing.T) {
	if os.Getenv(envTxChild) != "1" {
		t.Skip("runs only as the child of TestTransactionalSurvivesSIGKILL")
	}
	reg, err := schema.NewRegistryClient(os.Getenv(envTxRegistry))
	if err != nil {
		t.Fatal(err)
	}
	hang, _ := strconv.ParseInt(os.Getenv(envTxHang), 10, 64)
	var calls atomic.Int64
	c := txConsumer(t, os.Getenv(envTxBrokers), reg, everyTitle(&calls, nil), hang)
	fmt.Println("enricher child running")
	if err := c.Run(context.Background()); err != nil { // runs until killed
		t.Fatal(err)
	}
}

// TestTransactionalSurvivesSIGKILL runs the transactional enricher in a
// child process that hangs with a transaction open after some batches
// committed, kills it with SIGKILL, and starts it again. The new process's
// producer (same transactional.id) aborts the open transaction, its
// consumer resumes at the offsets the last committed transaction wrote,
// and a read_committed reader sees every view exactly once.
func TestTransactionalSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	brokers := testenv.Kafka(t)
	regURL, reg := testenv.Registry(t)
	pub := testenv.Producer(t, brokers, reg, "//studio/titles")
	const n = 200
	publishTitles(t, pub, n)

	start := func(hang int) (*exec.Cmd, *bufio.Scanner) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestTransactionalCrashChild$", "-test.v")
		cmd.Env = append(os.Environ(), envTxChild+"=1", envTxBrokers+"="+brokers, envTxRegistry+"="+regURL,
			envTxHang+"="+strconv.Itoa(hang))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd, bufio.NewScanner(stdout)
	}
	// The 10th publish (chunks of 5 ids, batches of up to 20) lands after
	// at least one batch committed, inside a transaction left open.
	child, out := start(10)
	hung := make(chan bool, 1)
	go func() {
		for out.Scan() {
			if strings.Contains(out.Text(), "hanging with an open transaction") {
				hung <- true
				return
			}
		}
		hung <- false
	}()
	select {
	case ok := <-hung:
		if !ok {
			t.Fatal("the child exited before hanging")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the child never hung")
	}
	committedBefore, _ := readKeys(t, brokers, schema.MaterializedTopic("title"), kgo.ReadCommitted(), 0)
	if err := child.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = child.Wait()

	start(0)
	keys, total := readKeys(t, brokers, schema.MaterializedTopic("title"), kgo.ReadCommitted(), n)
	checkOnce(t, keys, total, n)
	_, raw := readKeys(t, brokers, schema.MaterializedTopic("title"), kgo.ReadUncommitted(), n)
	if raw <= n {
		t.Errorf("read_uncommitted reader saw %d records, want the %d views plus the killed transaction's", raw, n)
	}
	t.Logf("%d views committed before the SIGKILL; after the restart %d views, each once; %d records in the log with the aborted ones",
		len(committedBefore), total, raw)
}

func TestNewTransactionalValidates(t *testing.T) {
	if _, err := enricher.NewTransactional(nil, nil); !errors.Is(err, enricher.ErrConfig) {
		t.Fatalf("err = %v, want ErrConfig", err)
	}
}
