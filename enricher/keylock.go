package enricher

import (
	"context"
	"slices"
	"sync"
)

// keyLocks serializes the work on each output key: a chunk holds the keys
// of its ids from before its lookup until its outputs are acknowledged.
// Two batches handled at once (the consumer's lanes split them by the
// input's subject, and a fan-out reaches a title from a schedule's lane)
// therefore never look one id up at the same time, and the later lookup's
// result is published after the earlier one's.
type keyLocks struct {
	mu   sync.Mutex
	held map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{} // holds a token while the key is locked
	refs int           // holders and waiters
}

// lock locks every key (in sorted order, so that two chunks never wait
// on each other) and returns the function that unlocks them. It fails,
// with nothing locked, when ctx ends first.
func (l *keyLocks) lock(ctx context.Context, keys []string) (func(), error) {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	l.mu.Lock()
	if l.held == nil {
		l.held = map[string]*keyLock{}
	}
	locks := make([]*keyLock, len(keys))
	for i, k := range keys {
		kl := l.held[k]
		if kl == nil {
			kl = &keyLock{ch: make(chan struct{}, 1)}
			l.held[k] = kl
		}
		kl.refs++
		locks[i] = kl
	}
	l.mu.Unlock()
	release := func(n int) { // unlock the first n keys, drop the rest
		for i := range n {
			<-locks[i].ch
		}
		l.mu.Lock()
		for i, k := range keys {
			locks[i].refs--
			if locks[i].refs == 0 {
				delete(l.held, k)
			}
		}
		l.mu.Unlock()
	}
	for i, kl := range locks {
		select {
		case kl.ch <- struct{}{}:
		case <-ctx.Done():
			release(i)
			return nil, ctx.Err()
		}
	}
	return func() { release(len(locks)) }, nil
}
