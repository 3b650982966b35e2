package enricher

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultSideInputInterval is how often a [SideInput] reloads unless
// [WithRefreshInterval] says otherwise.
const DefaultSideInputInterval = 15 * time.Minute

// SideInputOption configures [NewSideInput].
type SideInputOption func(*sideConfig)

type sideConfig struct {
	interval time.Duration
	timeout  time.Duration
	log      *slog.Logger
	metrics  prometheus.Registerer
}

// WithRefreshInterval sets how often the side input reloads (default
// 15m).
func WithRefreshInterval(d time.Duration) SideInputOption {
	return func(c *sideConfig) { c.interval = d }
}

// WithLoadTimeout bounds each load (default: the interval).
func WithLoadTimeout(d time.Duration) SideInputOption { return func(c *sideConfig) { c.timeout = d } }

// WithSideInputLogger sets the logger; the default discards.
func WithSideInputLogger(l *slog.Logger) SideInputOption { return func(c *sideConfig) { c.log = l } }

// SideInput is a slowly changing dataset an enricher consults while it
// materializes (currency rates, a studio's territories), loaded by a
// function and reloaded in the background. [SideInput.Value] never waits
// for a load: it returns the last value that loaded. When a refresh fails
// the old value keeps being served, slate_enricher_side_input_stale is 1
// and the failure is counted, until a refresh succeeds. It is safe for
// concurrent use.
type SideInput[T any] struct {
	name string
	load func(context.Context) (T, error)
	cfg  sideConfig
	m    *sideMetrics

	mu       sync.RWMutex
	val      T
	loadedAt time.Time
	started  bool

	stop chan struct{}
	done chan struct{}
}

// NewSideInput returns a side input named name (the metrics' label)
// loaded by load. Call Start before use.
func NewSideInput[T any](name string, load func(context.Context) (T, error), opts ...SideInputOption) (*SideInput[T], error) {
	cfg := sideConfig{interval: DefaultSideInputInterval, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&cfg)
	}
	switch {
	case name == "" || load == nil:
		return nil, fmt.Errorf("%w: side input needs a name and a load function", ErrConfig)
	case cfg.interval <= 0:
		return nil, fmt.Errorf("%w: side input %s: refresh interval %v, need > 0", ErrConfig, name, cfg.interval)
	}
	if cfg.timeout <= 0 {
		cfg.timeout = cfg.interval
	}
	if cfg.metrics == nil {
		cfg.metrics = prometheus.DefaultRegisterer
	}
	m, err := newSideMetrics(cfg.metrics)
	if err != nil {
		return nil, fmt.Errorf("%w: side input %s: metrics (WithSideInputMetrics): %w", ErrConfig, name, err)
	}
	return &SideInput[T]{name: name, load: load, cfg: cfg, m: m, stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// Start loads the value once, within ctx, and then refreshes it every
// interval in the background until Close. It fails, wrapping
// [ErrSideInputUnavailable], if the first load fails: there is nothing to
// serve yet.
func (s *SideInput[T]) Start(ctx context.Context) error {
	if err := s.Refresh(ctx); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrSideInputUnavailable, s.name, err)
	}
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return nil
	}
	s.started = true
	s.mu.Unlock()
	go s.loop()
	return nil
}

func (s *SideInput[T]) loop() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout)
		go func() {
			select {
			case <-s.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		if err := s.Refresh(ctx); err != nil {
			s.cfg.log.Warn("side input refresh failed; serving the previous value", "name", s.name, "loaded_at", s.LoadedAt(), "err", err)
		}
		cancel()
	}
}

// Refresh loads the value now. On failure the previous value stays.
func (s *SideInput[T]) Refresh(ctx context.Context) error {
	v, err := s.load(ctx)
	if err != nil {
		s.m.refreshes.WithLabelValues(s.name, "error").Inc()
		s.mu.RLock()
		stale := !s.loadedAt.IsZero()
		s.mu.RUnlock()
		if stale {
			s.m.stale.WithLabelValues(s.name).Set(1)
		}
		return err
	}
	now := time.Now()
	s.mu.Lock()
	s.val, s.loadedAt = v, now
	s.mu.Unlock()
	s.m.refreshes.WithLabelValues(s.name, "ok").Inc()
	s.m.stale.WithLabelValues(s.name).Set(0)
	s.m.loaded.WithLabelValues(s.name).Set(float64(now.UnixNano()) / 1e9)
	return nil
}

// Value returns the last loaded value and when it loaded (zero before the
// first load). It does not block on a load in progress.
func (s *SideInput[T]) Value() (T, time.Time) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.val, s.loadedAt
}

// LoadedAt returns when the value last loaded.
func (s *SideInput[T]) LoadedAt() time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.loadedAt
}

// Close stops the background refresh (cancelling a load in progress) and
// waits for it within ctx. Value keeps serving the last value.
func (s *SideInput[T]) Close(ctx context.Context) error {
	s.mu.Lock()
	started := s.started
	select {
	case <-s.stop:
		s.mu.Unlock()
		return nil
	default:
		close(s.stop)
	}
	s.mu.Unlock()
	if !started {
		return nil
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("enricher: close side input %s: %w", s.name, ctx.Err())
	}
}

// SideResolver serves lookups from a side input holding records by id, so
// a side input can be a [Join]: ids it does not hold are absent. It never
// blocks on a refresh.
func SideResolver(s *SideInput[map[string]Record]) Resolver {
	return ResolverFunc(func(_ context.Context, _ string, ids []string) (map[string]Record, error) {
		m, _ := s.Value()
		out := make(map[string]Record, len(ids))
		for _, id := range ids {
			if r, ok := m[id]; ok {
				out[id] = r
			}
		}
		return out, nil
	})
}
