package graphql

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultSubscriberBuffer is how many changes a subscriber may fall behind
// before the [Hub] drops it.
const DefaultSubscriberBuffer = 64

// ErrSlowSubscriber is why a [Hub] ended a subscriber that did not take
// its changes as fast as they came: its buffer was full.
var ErrSlowSubscriber = errors.New("subscriber too slow")

// ErrHubClosed is why a subscriber of a closed [Hub] ended.
var ErrHubClosed = errors.New("graphql: the change feed stopped")

// Change is one new state of a view's document, as the feed read it.
type Change struct {
	// View is the view's entity type ("title", "cashflow"); ID the
	// document's id (the envelope's subject).
	View string
	ID   string
	// Version is the view's version this state is at (the envelope's
	// sequence).
	Version int64
	// Deleted says the document was deleted at Version; Doc is nil then.
	Deleted bool
	// Doc is the document as a [Store] returns it: the record's data with
	// the envelope's attributes under bleve.EnvelopeField.
	Doc map[string]any
	// Produced is when the record was written to Kafka; a subscriber's
	// delivery latency is measured from it.
	Produced time.Time
}

type hubKey struct{ view, id string }

// Hub fans the changes of one feed out to the subscribers of each view
// document, in process. Each subscriber has a bounded buffer; Publish
// never waits for one: a subscriber whose buffer is full is dropped (it
// ends with [ErrSlowSubscriber]) and the others are not held back.
type Hub struct {
	buffer int

	mu     sync.Mutex
	subs   map[hubKey]map[*Subscriber]struct{}
	n      int
	closed error

	liveOnce sync.Once
	live     chan struct{}

	subscribers prometheus.Gauge
	dropped     prometheus.Counter
	latency     prometheus.Histogram
}

// NewHub returns a hub whose subscribers buffer up to buffer changes (0
// is [DefaultSubscriberBuffer]). Its metrics are registered on reg (nil
// registers nowhere): slate_graphql_subscribers,
// slate_graphql_subscribers_dropped_total and
// slate_graphql_subscription_delivery_seconds.
func NewHub(buffer int, reg prometheus.Registerer) (*Hub, error) {
	if buffer < 0 {
		return nil, fmt.Errorf("%w: subscriber buffer %d is negative", ErrConfig, buffer)
	}
	if buffer == 0 {
		buffer = DefaultSubscriberBuffer
	}
	h := &Hub{buffer: buffer, subs: map[hubKey]map[*Subscriber]struct{}{}, live: make(chan struct{}),
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "slate_graphql_subscribers",
			Help: "Subscriptions to view changes open now."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "slate_graphql_subscribers_dropped_total",
			Help: "Subscriptions ended because they fell a full buffer behind the change feed."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "slate_graphql_subscription_delivery_seconds",
			Help:    "Time from a view change's Kafka record to its hand-off to a subscription's connection.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{h.subscribers, h.dropped, h.latency} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("graphql: metrics: %w", err)
			}
		}
	}
	return h, nil
}

// Live marks the feed as reading: every change written after Live is
// published. A feed calls it once it has its start position.
func (h *Hub) Live() { h.liveOnce.Do(func() { close(h.live) }) }

// Started is closed once the feed called [Hub.Live].
func (h *Hub) Started() <-chan struct{} { return h.live }

// Subscribe returns a subscriber of the changes of document id of view.
// It fails with the hub's end once the hub is closed.
func (h *Hub) Subscribe(view, id string) (*Subscriber, error) {
	s := &Subscriber{hub: h, key: hubKey{view, id}, ch: make(chan Change, h.buffer), done: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed != nil {
		return nil, h.closed
	}
	set := h.subs[s.key]
	if set == nil {
		set = map[*Subscriber]struct{}{}
		h.subs[s.key] = set
	}
	set[s] = struct{}{}
	h.n++
	h.subscribers.Inc()
	return s, nil
}

// Publish hands c to every subscriber of its document without waiting:
// a subscriber whose buffer is full is dropped. It returns how many
// subscribers took c.
func (h *Hub) Publish(c Change) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for s := range h.subs[hubKey{c.View, c.ID}] {
		select {
		case s.ch <- c:
			n++
		default:
			h.removeLocked(s, fmt.Errorf("%w: %d changes of %s %s were not taken; the subscription is dropped at version %d",
				ErrSlowSubscriber, cap(s.ch), c.View, c.ID, c.Version))
			h.dropped.Inc()
		}
	}
	return n
}

// Subscribers returns how many subscribers are open.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// Close ends every subscriber with err (nil is [ErrHubClosed]) and
// refuses new ones.
func (h *Hub) Close(err error) {
	if err == nil {
		err = ErrHubClosed
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed != nil {
		return
	}
	h.closed = err
	for _, set := range h.subs {
		for s := range set {
			h.removeLocked(s, err)
		}
	}
}

// removeLocked takes s out of the hub and ends it with err; h.mu is held.
func (h *Hub) removeLocked(s *Subscriber, err error) {
	set, ok := h.subs[s.key]
	if !ok {
		return
	}
	if _, ok := set[s]; !ok {
		return
	}
	delete(set, s)
	if len(set) == 0 {
		delete(h.subs, s.key)
	}
	h.n--
	h.subscribers.Dec()
	s.err = err
	close(s.done)
}

// Subscriber receives the changes of one view document from a [Hub].
type Subscriber struct {
	hub  *Hub
	key  hubKey
	ch   chan Change
	done chan struct{}
	err  error // set before done closes
}

// Changes are the subscriber's changes, in the feed's order.
func (s *Subscriber) Changes() <-chan Change { return s.ch }

// Done is closed when the hub ended the subscriber: it was too slow, or
// the hub closed ([Subscriber.Err] says which). Changes still buffered may
// be read after.
func (s *Subscriber) Done() <-chan struct{} { return s.done }

// Err is why the subscriber ended; nil while it is open or after Close.
func (s *Subscriber) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Close unsubscribes; the hub forgets s.
func (s *Subscriber) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.hub.removeLocked(s, nil)
}

// Delivered records the delivery latency of c, which the subscriber has
// just handed to its client.
func (s *Subscriber) Delivered(c Change) {
	if !c.Produced.IsZero() {
		s.hub.latency.Observe(time.Since(c.Produced).Seconds())
	}
}
