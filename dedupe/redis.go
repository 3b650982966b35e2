package dedupe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a [Store] backed by Redis through go-redis. Each id is one key,
// <prefix>{<id>}: the braces make the id the key's hash tag, so keys spread
// over a Redis Cluster and every command touches one slot.
//
// A lease is the value "lease:<owner>" with a millisecond or second expiry,
// where owner is random per Redis store; a done marker is the value "done".
// Claim sends one SET NX GET per id (Redis 7.0 or newer), Done one SET per
// id, and Release one
// compare-and-delete script call per id, each batch pipelined in one round
// trip (one per node on a cluster). Release deletes a key only while it
// still holds this store's lease, so it can neither remove a done marker nor
// a lease that expired and was taken by another consumer.
//
// It is safe for concurrent use. The client is the caller's: Close does not
// close it.
type Redis struct {
	c      redis.UniversalClient
	prefix string
	lease  string // this store's lease value
	log    *slog.Logger
	closed atomic.Bool
}

var _ Store = (*Redis)(nil)

const doneValue = "done"

// releaseScript deletes KEYS[1] only while it holds ARGV[1] (the lease).
var releaseScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// NewRedis returns a store that keeps its keys in client (a *redis.Client,
// *redis.ClusterClient or *redis.Ring all fit). Options that apply:
// [WithKeyPrefix], [WithLogger].
func NewRedis(client redis.UniversalClient, opts ...Option) (*Redis, error) {
	if client == nil {
		return nil, errors.New("dedupe: redis client is nil")
	}
	c := newConfig(opts)
	if strings.ContainsAny(c.prefix, "{}") {
		return nil, fmt.Errorf("dedupe: key prefix %q must not contain '{' or '}'", c.prefix)
	}
	var owner [8]byte
	if _, err := rand.Read(owner[:]); err != nil {
		return nil, fmt.Errorf("dedupe: lease owner: %w", err)
	}
	return &Redis{
		c:      client,
		prefix: c.prefix,
		lease:  "lease:" + hex.EncodeToString(owner[:]),
		log:    c.logger,
	}, nil
}

// Key returns the Redis key that holds id.
func (r *Redis) Key(id string) string {
	return r.prefix + "{" + id + "}"
}

// Claim implements [Store] with one pipelined SET key lease NX GET PX|EX
// per id (Redis 7.0 or newer): the reply tells a done id from one another
// claim holds. A repeat of an id earlier in the same call is a
// [Duplicate] and is not sent.
func (r *Redis) Claim(ctx context.Context, ids []string, lease time.Duration) ([]Status, error) {
	if err := checkDuration(lease); err != nil {
		return nil, err
	}
	if r.closed.Load() {
		return nil, ErrClosed
	}
	st := make([]Status, len(ids))
	if len(ids) == 0 {
		return st, nil
	}
	seen := make(map[string]struct{}, len(ids))
	pipe := r.c.Pipeline()
	cmds := make([]*redis.StatusCmd, len(ids))
	for i, id := range ids {
		if _, dup := seen[id]; dup {
			st[i] = Duplicate
			continue
		}
		seen[id] = struct{}{}
		cmds[i] = pipe.SetArgs(ctx, r.Key(id), r.lease, redis.SetArgs{Mode: "NX", TTL: lease, Get: true})
	}
	_, execErr := pipe.Exec(ctx)
	var firstErr error
	var taken []string
	for i, cmd := range cmds {
		if cmd == nil {
			continue
		}
		old, err := cmd.Result()
		switch {
		case errors.Is(err, redis.Nil): // no value before: the lease is ours
			st[i] = Fresh
			taken = append(taken, ids[i])
		case err != nil:
			if firstErr == nil {
				firstErr = err
			}
		case old == doneValue:
			st[i] = Duplicate
		default:
			st[i] = Held
		}
	}
	if firstErr == nil && execErr != nil && !errors.Is(execErr, redis.Nil) {
		firstErr = execErr
	}
	if firstErr != nil {
		// The caller will retry the whole batch: leases taken now would make
		// that retry see its own ids as held until they expire.
		r.releaseAfterFailure(ctx, taken)
		return nil, r.wrap(ctx, "claim", firstErr)
	}
	return st, nil
}

// Done implements [Store] with one pipelined SET key done PX|EX per id;
// whole-second ttls are sent as EX.
func (r *Redis) Done(ctx context.Context, ids []string, ttl time.Duration) error {
	if err := checkDuration(ttl); err != nil {
		return err
	}
	if r.closed.Load() {
		return ErrClosed
	}
	if len(ids) == 0 {
		return nil
	}
	pipe := r.c.Pipeline()
	for _, id := range ids {
		pipe.Set(ctx, r.Key(id), doneValue, ttl)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return r.wrap(ctx, "done", err)
	}
	return nil
}

// Release implements [Store] with one pipelined compare-and-delete script
// call per id.
func (r *Redis) Release(ctx context.Context, ids []string) error {
	if r.closed.Load() {
		return ErrClosed
	}
	if err := r.release(ctx, ids); err != nil {
		return r.wrap(ctx, "release", err)
	}
	return nil
}

func (r *Redis) release(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	pipe := r.c.Pipeline()
	cmds := make([]*redis.Cmd, len(ids))
	for i, id := range ids {
		cmds[i] = releaseScript.EvalSha(ctx, pipe, []string{r.Key(id)}, r.lease)
	}
	_, err := pipe.Exec(ctx)
	if err == nil {
		return nil
	}
	// A node that has not seen the script yet (first use, a restart, a
	// failover) answers NOSCRIPT: send those calls again with the body.
	pipe = r.c.Pipeline()
	retry := 0
	for i, cmd := range cmds {
		cerr := cmd.Err()
		switch {
		case cerr == nil:
		case redis.HasErrorPrefix(cerr, "NOSCRIPT"):
			releaseScript.Eval(ctx, pipe, []string{r.Key(ids[i])}, r.lease)
			retry++
		default:
			return cerr
		}
	}
	if retry == 0 {
		return err
	}
	_, err = pipe.Exec(ctx)
	return err
}

// releaseAfterFailure gives back leases a failed Claim took, best effort:
// the connection that just failed may fail again, and then the leases
// expire on their own.
func (r *Redis) releaseAfterFailure(ctx context.Context, ids []string) {
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := r.release(ctx, ids); err != nil {
		r.log.Warn("dedupe: release after failed claim", "ids", len(ids), "err", err)
	}
}

// Close marks the store closed; later calls return [ErrClosed]. It does not
// close the client, which belongs to the caller. Closing twice is a no-op.
func (r *Redis) Close() error {
	r.closed.Store(true)
	return nil
}

// wrap classifies a go-redis error: the caller cancelling is returned as is,
// a closed client as [ErrClosed], an unreachable or temporarily refusing
// server (and a deadline that ran out waiting for it) wraps
// [ErrUnavailable]; any other reply error is permanent.
func (r *Redis) wrap(ctx context.Context, op string, err error) error {
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return fmt.Errorf("dedupe: %s: %w", op, err)
	case errors.Is(err, redis.ErrClosed):
		return fmt.Errorf("%w: %s: redis client closed", ErrClosed, op)
	}
	var replyErr redis.Error
	if errors.As(err, &replyErr) && !isTemporaryReply(err) {
		return fmt.Errorf("dedupe: %s: %w", op, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}

// isTemporaryReply reports Redis replies that mean "not now": the server is
// loading, read-only, failing over, out of memory or out of clients.
func isTemporaryReply(err error) bool {
	return redis.IsLoadingError(err) || redis.IsReadOnlyError(err) ||
		redis.IsClusterDownError(err) || redis.IsTryAgainError(err) ||
		redis.IsMasterDownError(err) || redis.IsMaxClientsError(err) ||
		redis.IsOOMError(err) || redis.IsNoReplicasError(err)
}
