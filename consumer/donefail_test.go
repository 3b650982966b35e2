package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/dedupe"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

// redisStore returns a Redis dedupe store under a key prefix of its own.
func redisStore(t *testing.T) *dedupe.Redis {
	t.Helper()
	addr := os.Getenv("SLATE_REDIS_ADDR")
	if addr == "" {
		testenv.Unavailable(t, "Redis (SLATE_REDIS_ADDR unset)",
			"start one with `redis-server` and set SLATE_REDIS_ADDR=127.0.0.1:6379", errors.New("the dedupe store is Redis"))
	}
	rc := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rc.Close() })
	pctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	err := rc.Ping(pctx).Err()
	cancel()
	if err != nil {
		testenv.Unavailable(t, "Redis at "+addr, "start one with `redis-server` or set SLATE_REDIS_ADDR", err)
	}
	s, err := dedupe.NewRedis(rc, dedupe.WithKeyPrefix(fmt.Sprintf("test-%s-%d:", t.Name(), time.Now().UnixNano())))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// doneFailing is a dedupe store whose Done fails, as an unreachable store
// does, the first fails times.
type doneFailing struct {
	*dedupe.Redis
	fails atomic.Int32
}

func (s *doneFailing) Done(ctx context.Context, ids []string, ttl time.Duration) error {
	if s.fails.Add(-1) >= 0 {
		return fmt.Errorf("%w: connection refused", dedupe.ErrUnavailable)
	}
	return s.Redis.Done(ctx, ids, ttl)
}

// A done record that fails after every sink wrote the batch is retried
// until the store takes it, however many attempts that needs: it does not
// count toward WithMaxAttempts, dead-letters nothing, and does not write
// the events again.
func TestFailedDoneIsRetriedWithoutDeadLettering(t *testing.T) {
	f := setup(t)
	store := &doneFailing{Redis: redisStore(t)}
	store.fails.Store(6)
	audit := &seenIDs{ids: map[string]int{}}
	topic := "studio.title.materialized.donefail"
	h := consumer.Deduplicate(store, consumer.DedupeConfig{Group: "donefail"}, consumer.ToSinks(audit))
	c, err := consumer.New(h, consumer.WithBrokers(f.brokers), consumer.WithGroup("donefail"), consumer.WithTopics(topic),
		consumer.WithRegistry(f.reg), consumer.WithDeadLetter(f.pub), consumer.WithMaxAttempts(2),
		consumer.WithBackoff(10*time.Millisecond, 40*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	envs := titleEvents(5, "donefail")
	if err := f.pub.Publish(t.Context(), topic, envs...); err != nil {
		t.Fatal(err)
	}
	runConsumer(t, c)
	ids := make([]string, len(envs))
	for i := range envs {
		ids[i] = envs[i].ID
	}
	testenv.WaitFor(t, 20*time.Second, "every event recorded done", func() bool {
		if store.fails.Load() >= 0 {
			return false
		}
		st, err := store.Redis.Claim(t.Context(), ids, time.Millisecond)
		if err != nil {
			return false
		}
		for _, s := range st {
			if s != dedupe.Duplicate {
				return false
			}
		}
		return true
	})
	audit.mu.Lock()
	for _, id := range ids {
		if n := audit.ids[id]; n != 1 {
			t.Errorf("event %s written %d times, want 1", id, n)
		}
	}
	audit.mu.Unlock()
	var n int
	err = consumer.ReadDeadLetters(t.Context(), f.brokers, schema.DLQTopic(topic), func(consumer.DeadLetter) error { n++; return nil })
	if err != nil || n != 0 {
		t.Errorf("%d dead letters (err %v), want none", n, err)
	}
}

// ctxStrict is a Redis dedupe store whose Done refuses a cancelled
// context up front, as a store does when it waits for a connection (a busy
// pool, a cluster redirect); go-redis sends a pipeline on an idle
// connection without looking at the context.
type ctxStrict struct{ *dedupe.Redis }

func (s ctxStrict) Done(ctx context.Context, ids []string, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dedupe: done: %w", err)
	}
	return s.Redis.Done(ctx, ids, ttl)
}

// A stop that cancels the context while the sinks write a batch still
// records the batch as done: the consumer restarted over the same store
// drops the batch as duplicates instead of finding it claimed and writing
// it again.
func TestStopDuringWriteStillRecordsDone(t *testing.T) {
	store := ctxStrict{redisStore(t)}
	audit := &seenIDs{ids: map[string]int{}}
	ctx, stop := context.WithCancel(t.Context())
	cfg := consumer.DedupeConfig{Group: "stopwrite"}
	h := consumer.Deduplicate(store, cfg, consumer.HandlerFunc(func(ctx context.Context, batch []sink.Event) error {
		err := audit.Write(ctx, batch)
		stop() // the consumer is told to stop while this batch is written
		return err
	}))
	var batch []sink.Event
	for _, env := range titleEvents(3, "stopwrite") {
		batch = append(batch, sink.Event{Envelope: env})
	}
	if err := h.Handle(ctx, batch); err != nil {
		t.Fatalf("the batch written as the stop came: %v", err)
	}
	restarted := consumer.Deduplicate(store, cfg, consumer.ToSinks(audit))
	if err := restarted.Handle(t.Context(), batch); err != nil {
		t.Fatalf("the same batch after a restart: %v", err)
	}
	for _, ev := range batch {
		if n := audit.ids[ev.ID]; n != 1 {
			t.Errorf("event %s written %d times, want once", ev.ID, n)
		}
	}
}
