package enricher

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestKeyLocks(t *testing.T) {
	var l keyLocks
	ctx := context.Background()
	unlockA, err := l.lock(ctx, []string{"t2", "t1"})
	if err != nil {
		t.Fatal(err)
	}
	// Another key is free.
	unlockB, err := l.lock(ctx, []string{"t3"})
	if err != nil {
		t.Fatal(err)
	}
	unlockB()
	// A shared key waits; a waiter whose context ends gives up and keeps
	// nothing locked.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := l.lock(cctx, []string{"t0", "t1"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lock of a held key = %v, want it to wait until the deadline", err)
	}
	got := make(chan struct{})
	go func() {
		unlock, err := l.lock(ctx, []string{"t1", "t0"})
		if err == nil {
			unlock()
		}
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("t1 was locked twice")
	case <-time.After(20 * time.Millisecond):
	}
	unlockA()
	<-got
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.held) != 0 {
		t.Errorf("%d keys still tracked after every holder left", len(l.held))
	}
}
