package producer_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
)

// readSubjects returns the keys of every record of topic that a reader at
// the given isolation level sees within wait.
func readSubjects(t *testing.T, brokers, topic string, level kgo.IsolationLevel, wait time.Duration) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(level))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var keys []string
	for ctx.Err() == nil {
		for _, r := range cl.PollFetches(ctx).Records() {
			keys = append(keys, string(r.Key))
		}
	}
	return keys
}

// Records of a committed transaction reach read_committed readers; those
// of an aborted one reach only read_uncommitted readers.
func TestTransactionCommitAndAbort(t *testing.T) {
	e := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := testenv.Producer(t, e.brokers, e.reg, "//studio/titles", producer.WithTransactionalID("txn-test"))
	if err := p.InitTransactions(ctx); err != nil {
		t.Fatal(err)
	}
	topic := "txn.test"
	for _, tc := range []struct {
		key    string
		commit bool
	}{{"aborted", false}, {"committed", true}} {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := p.Publish(ctx, topic, schema.NewEnvelope("//test", schema.OpUpdate, "title", tc.key)); err != nil {
			t.Fatal(err)
		}
		var err error
		if tc.commit {
			err = p.CommitTransaction(ctx)
		} else {
			err = p.AbortTransaction(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		level kgo.IsolationLevel
		want  []string
	}{
		{"read_committed", kgo.ReadCommitted(), []string{"committed"}},
		{"read_uncommitted", kgo.ReadUncommitted(), []string{"aborted", "committed"}}, // sorted
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The two keys may sit on different partitions, which have no
			// order between them: compare as sorted sets.
			got := readSubjects(t, e.brokers, topic, tc.level, 3*time.Second)
			slices.Sort(got)
			if len(got) != len(tc.want) {
				t.Fatalf("read %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("read %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// A second producer with the same transactional.id fences the first: its
// open transaction is aborted and its commit fails with ErrTxnFatal.
func TestTransactionFencing(t *testing.T) {
	e := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	old := testenv.Producer(t, e.brokers, e.reg, "//studio/titles", producer.WithTransactionalID("txn-fence"))
	if err := old.InitTransactions(ctx); err != nil {
		t.Fatal(err)
	}
	if err := old.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := old.Publish(ctx, "txn.fence", schema.NewEnvelope("//test", schema.OpUpdate, "title", "zombie")); err != nil {
		t.Fatal(err)
	}
	fresh := testenv.Producer(t, e.brokers, e.reg, "//studio/titles", producer.WithTransactionalID("txn-fence"))
	if err := fresh.InitTransactions(ctx); err != nil {
		t.Fatal(err)
	}
	err := old.CommitTransaction(ctx)
	if !errors.Is(err, producer.ErrTxnFatal) {
		t.Fatalf("commit of the fenced producer: %v, want ErrTxnFatal", err)
	}
	if got := readSubjects(t, e.brokers, "txn.fence", kgo.ReadCommitted(), 2*time.Second); len(got) != 0 {
		t.Errorf("read_committed reader saw %v from the fenced transaction", got)
	}
}
