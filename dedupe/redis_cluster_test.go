package dedupe_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slatehq/slate/dedupe"
	"github.com/slatehq/slate/dedupe/dedupetest"
)

// clusterClient returns a client of the Redis Cluster whose nodes are
// listed, comma-separated, in SLATE_REDIS_CLUSTER_ADDRS. It skips the test
// when the variable is unset, unless CI=true, where it fails; a cluster
// that is set but unreachable or not ok always fails the test.
func clusterClient(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	const start = "start one with `bash scripts/redis-cluster.sh` and set SLATE_REDIS_CLUSTER_ADDRS=127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002"
	env := os.Getenv("SLATE_REDIS_CLUSTER_ADDRS")
	if env == "" {
		msg := "SLATE_REDIS_CLUSTER_ADDRS is not set, so there is no Redis Cluster to test against; " + start
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	var addrs []string
	for a := range strings.SplitSeq(env, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, DialerRetries: 1})
	tb.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error {
		return node.Ping(ctx).Err()
	})
	if err == nil {
		var info string
		if info, err = c.ClusterInfo(ctx).Result(); err == nil && !strings.Contains(info, "cluster_state:ok") {
			tb.Fatalf("Redis Cluster at %s is not ok:\n%s", env, info)
		}
	}
	if err != nil {
		tb.Fatalf("Redis Cluster at %s is unreachable (%v); %s", env, err, start)
	}
	return c
}

// clusterPrefix returns a key prefix unique to this test and deletes its
// keys from every master when the test ends.
func clusterPrefix(tb testing.TB, c *redis.ClusterClient) string {
	tb.Helper()
	prefix := "slatetest:" + dedupetest.NewIDs(1)[0][:12] + ":"
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			keys := scanKeys(ctx, m, prefix)
			if len(keys) == 0 {
				return nil
			}
			// One key per command: a multi-key DEL across slots is refused
			// even when the slots live on the same node.
			pipe := m.Pipeline()
			for _, k := range keys {
				pipe.Unlink(ctx, k)
			}
			_, err := pipe.Exec(ctx)
			return err
		})
	})
	return prefix
}

// scanKeys returns the keys starting with prefix on one node.
func scanKeys(ctx context.Context, node *redis.Client, prefix string) []string {
	var keys []string
	iter := node.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	return keys
}

func newClusterStore(tb testing.TB, c *redis.ClusterClient) *dedupe.Redis {
	tb.Helper()
	s, err := dedupe.NewRedis(c, dedupe.WithKeyPrefix(clusterPrefix(tb, c)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestRedisClusterContract(t *testing.T) {
	c := clusterClient(t)
	dedupetest.Run(t, func(t *testing.T) dedupe.Store {
		return newClusterStore(t, c)
	})
}

// TestRedisClusterBatchAcrossSlots checks that one batch lands on every
// master, not in one slot, and that Done and Release of a batch spanning
// all slots behave as on a single node.
func TestRedisClusterBatchAcrossSlots(t *testing.T) {
	const n = 2000
	c := clusterClient(t)
	prefix := clusterPrefix(t, c)
	s, err := dedupe.NewRedis(c, dedupe.WithKeyPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	ids := dedupetest.NewIDs(n)
	mustClaim(t, s, ids, time.Minute)

	// Where did the keys go: per master, and over how many slots.
	var (
		mu       sync.Mutex
		perNode  = map[string]int{}
		slots    = map[int64]bool{}
		slotErrs []error
	)
	err = c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		keys := scanKeys(ctx, m, prefix)
		pipe := m.Pipeline()
		cmds := make([]*redis.IntCmd, len(keys))
		for i, k := range keys {
			cmds[i] = pipe.ClusterKeySlot(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil && len(keys) > 0 {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		perNode[m.Options().Addr] = len(keys)
		for _, cmd := range cmds {
			slot, err := cmd.Result()
			if err != nil {
				slotErrs = append(slotErrs, err)
				continue
			}
			slots[slot] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(slotErrs) > 0 {
		t.Fatalf("CLUSTER KEYSLOT: %v", slotErrs[0])
	}
	if len(perNode) < 3 {
		t.Fatalf("cluster has %d masters, want at least 3: %v", len(perNode), perNode)
	}
	total := 0
	for addr, k := range perNode {
		total += k
		// About n/len(perNode) each; a store that hashed every id to one
		// slot would leave all but one master empty.
		if k < n/len(perNode)/2 {
			t.Errorf("master %s holds %d of %d keys: %v", addr, k, n, perNode)
		}
	}
	if total != n {
		t.Fatalf("masters hold %d keys with the test prefix, want %d: %v", total, n, perNode)
	}
	// 2000 random ids over 16384 slots occupy about 1880 distinct slots.
	if len(slots) < n/2 {
		t.Fatalf("%d ids occupy only %d slots", n, len(slots))
	}
	t.Logf("%d keys over %d slots, per master: %v", n, len(slots), perNode)

	doneIDs, released := ids[:n/2], ids[n/2:]
	if err := s.Done(ctx, doneIDs, time.Hour); err != nil {
		t.Fatal(err)
	}
	// As after a restart or failover: no master has the release script, so
	// every node answers NOSCRIPT and the store sends the script body.
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	// Release the whole batch: it frees the leases and keeps the done
	// markers, on every slot.
	if err := s.Release(ctx, ids); err != nil {
		t.Fatal(err)
	}
	fresh, err := s.Claim(ctx, ids, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range fresh {
		if want := i >= n/2; (f == dedupe.Fresh) != want {
			t.Fatalf("after Done(first half) and Release(all): Claim(ids[%d]) fresh = %v, want %v", i, f, want)
		}
	}
	// The leases just taken release again, now through the cached script.
	if err := s.Release(ctx, released); err != nil {
		t.Fatal(err)
	}
	mustClaim(t, s, released, time.Minute)
}
