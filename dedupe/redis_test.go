package dedupe_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slatehq/slate/dedupe"
	"github.com/slatehq/slate/dedupe/dedupetest"
)

// redisClient returns a client of the Redis at SLATE_REDIS_ADDR (default
// 127.0.0.1:6379). It skips the test when that Redis is unreachable, unless
// CI=true, where it fails.
func redisClient(tb testing.TB) *redis.Client {
	tb.Helper()
	addr := os.Getenv("SLATE_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	c := redis.NewClient(&redis.Options{Addr: addr, DialerRetries: 1})
	tb.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		msg := "Redis at " + addr + " is unreachable (" + err.Error() + "); start one with `redis-server` or `docker run -p 6379:6379 redis:7`, or set SLATE_REDIS_ADDR"
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return c
}

// testPrefix returns a key prefix unique to this test and deletes its keys
// when the test ends.
func testPrefix(tb testing.TB, c *redis.Client) string {
	tb.Helper()
	prefix := "slatetest:" + dedupetest.NewIDs(1)[0][:12] + ":"
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			_ = c.Del(ctx, keys...).Err()
		}
	})
	return prefix
}

func newRedisStore(tb testing.TB, c *redis.Client, opts ...dedupe.Option) *dedupe.Redis {
	tb.Helper()
	opts = append([]dedupe.Option{dedupe.WithKeyPrefix(testPrefix(tb, c))}, opts...)
	s, err := dedupe.NewRedis(c, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestRedisContract(t *testing.T) {
	c := redisClient(t)
	dedupetest.Run(t, func(t *testing.T) dedupe.Store {
		return newRedisStore(t, c)
	})
}

func TestRedisContractOwners(t *testing.T) {
	c := redisClient(t)
	dedupetest.RunOwners(t, func(t *testing.T) (dedupe.Store, dedupe.Store) {
		prefix := testPrefix(t, c)
		a, err := dedupe.NewRedis(c, dedupe.WithKeyPrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		b, err := dedupe.NewRedis(c, dedupe.WithKeyPrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	})
}

func TestRedisKeysAndValues(t *testing.T) {
	c := redisClient(t)
	s := newRedisStore(t, c)
	ctx := t.Context()
	ids := dedupetest.NewIDs(2)
	mustClaim(t, s, ids, time.Minute)

	key := s.Key(ids[0])
	if want := "{" + ids[0] + "}"; key[len(key)-len(want):] != want {
		t.Fatalf("Key = %q, want it to end in the hash tag %q", key, want)
	}
	if v := c.Get(ctx, key).Val(); len(v) < len("lease:") || v[:len("lease:")] != "lease:" {
		t.Fatalf("leased value = %q, want lease:<owner>", v)
	}
	if ttl := c.PTTL(ctx, key).Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("lease PTTL = %v, want within (0, 1m]", ttl)
	}

	if err := s.Done(ctx, ids[:1], 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	if v := c.Get(ctx, key).Val(); v != "done" {
		t.Fatalf("done value = %q, want done", v)
	}
	if ttl := c.TTL(ctx, key).Val(); ttl <= time.Hour || ttl > 2*time.Hour {
		t.Fatalf("done TTL = %v, want about 2h", ttl)
	}
	if err := s.Release(ctx, ids); err != nil {
		t.Fatal(err)
	}
	if n := c.Exists(ctx, key, s.Key(ids[1])).Val(); n != 1 {
		t.Fatalf("%d keys left after Release, want only the done marker", n)
	}
}

func TestRedisReleaseKeepsOtherOwnersLease(t *testing.T) {
	c := redisClient(t)
	prefix := testPrefix(t, c)
	a, err := dedupe.NewRedis(c, dedupe.WithKeyPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	b, err := dedupe.NewRedis(c, dedupe.WithKeyPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	ids := dedupetest.NewIDs(1)
	mustClaim(t, a, ids, time.Minute)
	// b never held the lease (in the field: its own lease expired and a
	// claimed the id since); its Release must leave a's lease alone.
	if err := b.Release(t.Context(), ids); err != nil {
		t.Fatal(err)
	}
	fresh, err := b.Claim(t.Context(), ids, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if fresh[0] != dedupe.Held {
		t.Fatalf("after another store's Release the id is %s, want held: a live lease was freed", fresh[0])
	}
}

func TestRedisReleaseLoadsScript(t *testing.T) {
	c := redisClient(t)
	s := newRedisStore(t, c)
	ids := dedupetest.NewIDs(3)
	mustClaim(t, s, ids, time.Minute)
	// As after a restart or failover: the server has no cached scripts.
	if err := c.ScriptFlush(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(t.Context(), ids); err != nil {
		t.Fatalf("Release after SCRIPT FLUSH: %v", err)
	}
	mustClaim(t, s, ids, time.Minute)
}

func TestRedisUnavailable(t *testing.T) {
	// Nothing listens on port 1; this needs no Redis.
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, DialerRetries: 1, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	s, err := dedupe.NewRedis(c)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"a"}
	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"Claim", func(ctx context.Context) error { _, err := s.Claim(ctx, ids, time.Second); return err }},
		{"Done", func(ctx context.Context) error { return s.Done(ctx, ids, time.Second) }},
		{"Release", func(ctx context.Context) error { return s.Release(ctx, ids) }},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(t.Context())
			if !errors.Is(err, dedupe.ErrUnavailable) || !dedupe.IsRetryable(err) {
				t.Fatalf("err = %v, want a retryable ErrUnavailable", err)
			}
		})
	}
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Nanosecond)
		defer cancel()
		<-ctx.Done()
		_, err := s.Claim(ctx, ids, time.Second)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want it to wrap DeadlineExceeded", err)
		}
	})
	t.Run("client closed", func(t *testing.T) {
		closed := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
		_ = closed.Close()
		s, err := dedupe.NewRedis(closed)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Claim(t.Context(), ids, time.Second); !errors.Is(err, dedupe.ErrClosed) || dedupe.IsRetryable(err) {
			t.Fatalf("err = %v, want a non-retryable ErrClosed", err)
		}
	})
}

func TestNewRedisValidates(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = c.Close() })
	tests := []struct {
		name   string
		client redis.UniversalClient
		opts   []dedupe.Option
		ok     bool
	}{
		{"defaults", c, nil, true},
		{"empty prefix", c, []dedupe.Option{dedupe.WithKeyPrefix("")}, true},
		{"nil client", nil, nil, false},
		{"brace in prefix", c, []dedupe.Option{dedupe.WithKeyPrefix("x{y}:")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := dedupe.NewRedis(tt.client, tt.opts...)
			if (err == nil) != tt.ok {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func BenchmarkRedisClaimDone(b *testing.B) {
	c := redisClient(b)
	s := newRedisStore(b, c)
	benchClaimDone(b, s)
}
