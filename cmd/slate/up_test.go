package main

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// slate up --duration runs the whole system, then exits 0 only if every
// change reached the sink.
func TestUpWithDuration(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system for a few seconds")
	}
	code := run([]string{"up", "--duration", "3s", "--settle", "20s", "--rate", "100",
		"--data-dir", t.TempDir(), "--kafka-port", "0", "--registry-port", "0", "--titles-port", "0", "--http-port", "0",
		"--log-level", "warn"})
	if code != 0 {
		t.Fatalf("slate up exited %d", code)
	}
}

// slate up --redis keeps the dedupe store in the local Redis.
func TestUpWithRedis(t *testing.T) {
	addr := os.Getenv("SLATE_REDIS_ADDR")
	if testing.Short() || addr == "" {
		t.Skip("needs SLATE_REDIS_ADDR (a local Redis) and runs the whole system for a few seconds")
	}
	prefix := fmt.Sprintf("slatetest:up:%d:", time.Now().UnixNano())
	t.Cleanup(func() {
		rc := redis.NewClient(&redis.Options{Addr: addr})
		defer rc.Close()
		ctx := context.Background()
		iter := rc.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rc.Unlink(ctx, iter.Val())
		}
	})
	code := run([]string{"up", "--duration", "3s", "--settle", "20s", "--rate", "100", "--redis", addr, "--redis-key-prefix", prefix,
		"--data-dir", t.TempDir(), "--kafka-port", "0", "--registry-port", "0", "--titles-port", "0", "--http-port", "0",
		"--log-level", "warn"})
	if code != 0 {
		t.Fatalf("slate up --redis %s exited %d", addr, code)
	}
}

func TestUpRejectsBadConfig(t *testing.T) {
	for _, args := range [][]string{
		{"up", "--redis", "127.0.0.1:1", "--data-dir", t.TempDir(), "--kafka-port", "0", "--registry-port", "0",
			"--titles-port", "0", "--http-port", "0"},
		{"up", "--rate", "0", "--data-dir", t.TempDir()},
		{"up", "--data-dir", ""},
		{"up", "--log-level", "loud"},
	} {
		if code := run(args); code == 0 {
			t.Errorf("slate %v exited 0", args)
		}
	}
}
