package dedupe_test

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slatehq/slate/dedupe"
)

func ExampleNewMemory() {
	ctx := context.Background()
	s := dedupe.NewMemory(dedupe.WithMaxEntries(1_000_000))
	defer s.Close()

	ids := []string{"0190a0f2-0001", "0190a0f2-0002", "0190a0f2-0001"}
	st, _ := s.Claim(ctx, ids, 30*time.Second)
	fmt.Println("first delivery:", st)

	// The sink wrote the fresh events: mark them done for a day.
	_ = s.Done(ctx, ids[:2], 24*time.Hour)

	st, _ = s.Claim(ctx, ids[:2], 30*time.Second)
	fmt.Println("redelivery:", st)
	// Output:
	// first delivery: [fresh fresh duplicate]
	// redelivery: [duplicate duplicate]
}

func ExampleNewRedis() {
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	s, err := dedupe.NewRedis(client, dedupe.WithKeyPrefix("orders:dedupe:"))
	if err != nil {
		fmt.Println(err)
		return
	}
	ids := []string{"0190a0f2-0001", "0190a0f2-0002"}
	st, err := s.Claim(ctx, ids, 30*time.Second)
	if dedupe.IsRetryable(err) {
		// Redis is down: pause consumption and try again later.
		return
	}
	var applied []string
	for i := range st {
		switch st[i] {
		case dedupe.Fresh:
			applied = append(applied, ids[i]) // write ids[i] to the sinks
		case dedupe.Held:
			// Another consumer has it in hand: claim it again later.
		}
	}
	_ = s.Done(ctx, applied, 24*time.Hour)
}
