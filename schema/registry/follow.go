package registry

import (
	"context"
	"log/slog"
)

// Follower is a [Store] that other registries append to as well. After the
// replay, [New] calls Follow once; the store then calls apply, from one
// goroutine and in log order, with every record appended after the replay
// by someone else (never with the records this server appended), until the
// store is closed. The server applies each under its write lock, so reads
// see another registry's changes moments after it made them.
//
// Following makes read replicas current; it does not make concurrent
// writers safe (two servers may hand out the same new id): keep one
// writing server per log, as Confluent's registry does with its leader.
type Follower interface {
	Store
	Follow(apply func(Record))
}

// follow subscribes the server to changes other registries append to a
// [Follower] store.
func (s *Server) follow(f Follower) {
	f.Follow(func(r Record) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := s.st.apply(r); err != nil {
			s.log.Error("registry record from another server not applied", "keytype", string(r.Key.KeyType),
				"subject", r.Key.Subject, "err", err)
			return
		}
		s.log.LogAttrs(context.Background(), slog.LevelDebug, "registry record from another server applied",
			slog.String("keytype", string(r.Key.KeyType)), slog.String("subject", r.Key.Subject))
	})
}
