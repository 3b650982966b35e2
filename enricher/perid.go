package enricher

import (
	"context"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// GetFunc looks up one entity, as a unary gRPC Get does. found false, or
// an error with the gRPC code NOT_FOUND, means the owner has no such
// entity; found true with a tombstone ([Record.Deleted]) says also at
// which version it was deleted.
type GetFunc func(ctx context.Context, entityType, id string) (rec Record, found bool, err error)

// PerID returns a [Resolver] over a unary lookup (the "get" method kind of
// a [Pipeline]): one call per id, at most parallel at a time. An id whose
// lookup answers NOT_FOUND is left out of the result, which the enricher
// publishes as a DELETE whatever the change event's type was. The first
// other error fails the whole call. Prefer a batch lookup where the
// service has one: this costs a round trip per id.
func PerID(get GetFunc, parallel int) Resolver {
	parallel = max(parallel, 1)
	return ResolverFunc(func(ctx context.Context, entityType string, ids []string) (map[string]Record, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var (
			mu       sync.Mutex
			out      = make(map[string]Record, len(ids))
			firstErr error
			wg       sync.WaitGroup
			sem      = make(chan struct{}, parallel)
		)
		for _, id := range ids {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
			wg.Go(func() {
				defer func() { <-sem }()
				rec, found, err := get(ctx, entityType, id)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case status.Code(err) == codes.NotFound:
				case err != nil:
					if firstErr == nil {
						firstErr = err
						cancel()
					}
				case found:
					out[id] = rec
				}
			})
		}
		wg.Wait()
		if firstErr != nil {
			return nil, firstErr
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return out, nil
	})
}
