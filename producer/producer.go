package producer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"go.opentelemetry.io/otel/trace"

	"github.com/slatehq/slate/internal/kafkaconf"
	"github.com/slatehq/slate/publish"
	"github.com/slatehq/slate/schema"
)

// Producer publishes envelopes to Kafka. It is safe for concurrent use;
// Close it to flush and release the librdkafka handle.
type Producer struct {
	kp          *kafka.Producer
	codec       *schema.Codec
	source      string
	topicPrefix string // see WithTopicPrefix
	log         *slog.Logger

	mu     sync.RWMutex // held for reading while producing, for writing by Close
	closed bool
	loop   chan struct{} // closed when the delivery loop ends

	// pending counts records accepted by a publish call whose outcome has
	// not been reported yet (callback run, waiter told).
	pending atomic.Int64
	idleMu  sync.Mutex
	idle    chan struct{} // closed when pending drops to 0; nil if nobody waits

	// Records are encoded on the caller's goroutine and handed to
	// librdkafka by the sender goroutine, so that encoding overlaps the
	// cgo Produce calls. A transactional producer produces on the
	// caller's goroutine instead (inline), so that a commit covers every
	// record published before it.
	inline   bool
	qmu      sync.Mutex
	queue    []*scratch    // encoded records waiting for the sender, in call order
	room     chan struct{} // closed when a full queue was taken by the sender
	busy     bool          // the sender is producing a batch it took
	stopping bool          // Close asked the sender to drain and stop
	abandon  atomic.Bool   // Close's deadline passed: fail what is still queued
	wake     chan struct{} // the sender has work (capacity 1)
	sent     chan struct{} // closed when the sender has stopped
}

// maxQueued bounds the records waiting for the sender; a publish call
// waits (within its context) while the queue is full.
const maxQueued = 8192

// New connects a producer. It fails naming the setting that is wrong, or
// when no broker answers within the start timeout.
func New(opts ...Option) (*Producer, error) {
	cfg := config{
		clientID:     "slate-producer",
		kafka:        kafka.ConfigMap{},
		log:          slog.New(slog.DiscardHandler),
		startTimeout: 10 * time.Second,
	}
	for _, o := range opts {
		o(&cfg)
	}
	switch {
	case cfg.brokers == "":
		return nil, fmt.Errorf("%w: brokers is empty (WithBrokers)", ErrConfig)
	case cfg.registry == nil:
		return nil, fmt.Errorf("%w: no schema registry (WithRegistry)", ErrConfig)
	case cfg.source == "":
		return nil, fmt.Errorf("%w: source is empty (WithSource)", ErrConfig)
	}
	if err := schema.ValidateTopicPrefix(cfg.topicPrefix); err != nil {
		return nil, fmt.Errorf("%w: WithTopicPrefix: %w", ErrConfig, err)
	}
	if cfg.topicPrefix == "" {
		cfg.topicPrefix = schema.DefaultTopicPrefix
	}
	client, err := cfg.sec.Client(cfg.brokers, cfg.clientID)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	sec, err := client.ConfigMap()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	// librdkafka's own log lines go to the injected logger, not stderr.
	// Delivery reports carry the key only: the value was copied into
	// librdkafka and is not needed back.
	base := kafka.ConfigMap{"client.id": cfg.clientID, "go.logs.channel.enable": true, "go.delivery.report.fields": "key"}
	cm, err := kafkaconf.Producer(cfg.brokers, base, sec, cfg.kafka)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	kp, err := connect(cm, cfg)
	if err != nil {
		return nil, err
	}
	if _, set := cfg.kafka["message.max.bytes"]; cfg.limit != nil && !set {
		if kp, err = resize(kp, cm, cfg); err != nil {
			return nil, err
		}
	}
	codec, err := schema.NewCodec(cfg.registry)
	if err != nil {
		kp.Close()
		return nil, err
	}
	_, transactional := (*cm)["transactional.id"]
	p := &Producer{kp: kp, codec: codec, source: cfg.source, topicPrefix: cfg.topicPrefix, log: cfg.log, loop: make(chan struct{}),
		inline: transactional, room: make(chan struct{}), wake: make(chan struct{}, 1), sent: make(chan struct{})}
	go p.deliveries()
	if p.inline {
		close(p.sent)
	} else {
		go p.send()
	}
	return p, nil
}

// connect creates the librdkafka producer and waits, within the start
// timeout, for a broker to answer; it gives up at once when the brokers
// refuse its credentials.
func connect(cm *kafka.ConfigMap, cfg config) (*kafka.Producer, error) {
	kp, err := kafka.NewProducer(cm)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if lc := kp.Logs(); lc != nil {
		go forwardLogs(cfg.log, lc)
	}
	// No event is consumed before the delivery loop starts: what queues
	// up meanwhile is client errors, read here for the cause.
	next := func() kafka.Event {
		select {
		case ev := <-kp.Events():
			return ev
		default:
			return nil
		}
	}
	md := func(ms int) error { _, err := kp.GetMetadata(nil, false, ms); return err }
	if se := kafkaconf.AwaitBrokers(context.Background(), cm, md, next, cfg.startTimeout); se != nil {
		kp.Close()
		if se.Refused {
			return nil, fmt.Errorf("%w: %w", ErrAuth, se)
		}
		return nil, fmt.Errorf("%w %w", ErrUnreachable, se)
	}
	return kp, nil
}

// resize reads the cluster's record limit (see [WithBrokerMessageLimit])
// and, when kp's default message.max.bytes is below it, replaces kp by a
// producer with a limit to match: librdkafka fixes the setting at creation.
func resize(kp *kafka.Producer, cm *kafka.ConfigMap, cfg config) (*kafka.Producer, error) {
	limit, err := brokerMessageLimit(kp, cfg.limit.topics, cfg.startTimeout)
	if err != nil {
		kp.Close()
		return nil, fmt.Errorf("producer: read the record limit of %s (WithBrokerMessageLimit): %w", cfg.brokers, err)
	}
	want := cfg.limit.messageMaxBytes(limit)
	if want == 0 {
		return kp, nil
	}
	kp.Close()
	if err := cm.SetKey("message.max.bytes", want); err != nil {
		return nil, fmt.Errorf("%w: message.max.bytes %d: %w", ErrConfig, want, err)
	}
	cfg.log.Info("producer sized to the brokers' record limit", "client", cfg.clientID,
		"broker_limit", limit, "message.max.bytes", want)
	return connect(cm, cfg)
}

// forwardLogs writes librdkafka's log lines (syslog levels) to log until
// the client closes the channel.
func forwardLogs(log *slog.Logger, lc chan kafka.LogEvent) {
	for ev := range lc {
		lvl := slog.LevelDebug
		switch {
		case ev.Level <= 3:
			lvl = slog.LevelError
		case ev.Level == 4:
			lvl = slog.LevelWarn
		case ev.Level <= 6:
			lvl = slog.LevelInfo
		}
		log.LogAttrs(context.Background(), lvl, "librdkafka", slog.String("client", ev.Name),
			slog.String("tag", ev.Tag), slog.String("msg", ev.Message))
	}
}

// Source returns the envelope source this producer stamps on change events.
func (p *Producer) Source() string { return p.source }

// TopicPrefix returns the prefix of the topics the producer names itself
// (see [WithTopicPrefix]).
func (p *Producer) TopicPrefix() string { return p.topicPrefix }

// Codec returns the codec the producer encodes with.
func (p *Producer) Codec() *schema.Codec { return p.codec }

// Kafka returns the underlying confluent-kafka-go producer, for settings
// and calls slate does not wrap. Do not Close it directly.
func (p *Producer) Kafka() *kafka.Producer { return p.kp }

// Delivery is the outcome of one asynchronous publish; it is the
// [publish.Delivery] of the contracts the producer implements.
type Delivery = publish.Delivery

// The producer implements every publishing contract of package publish.
var (
	_ publish.AsyncPublisher      = (*Producer)(nil)
	_ publish.DeadLetterPublisher = (*Producer)(nil)
)

// waiter collects the acknowledgements of one synchronous batch.
type waiter struct {
	remaining atomic.Int64
	done      chan struct{}
	mu        sync.Mutex
	err       error
}

// wait blocks until every record of the batch was acknowledged or failed,
// and returns the first failure.
func (w *waiter) wait(ctx context.Context, topic, key string) error {
	select {
	case <-w.done:
	case <-ctx.Done():
		return &PublishError{Topic: topic, Key: key, Err: ctx.Err()}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

type asyncCallback struct {
	id string
	fn func(Delivery)
}

func (p *Producer) deliveries() {
	defer close(p.loop)
	for ev := range p.kp.Events() {
		switch e := ev.(type) {
		case *kafka.Message:
			var err error
			if e.TopicPartition.Error != nil {
				err = &PublishError{Topic: topicOf(e), Key: string(e.Key), Err: e.TopicPartition.Error}
			}
			p.report(e.Opaque, Delivery{Topic: topicOf(e), Partition: e.TopicPartition.Partition, Offset: int64(e.TopicPartition.Offset), Err: err})
		case kafka.Error:
			p.log.Warn("kafka client error", "err", e, "code", e.Code(), "fatal", e.IsFatal())
		}
	}
}

// report tells the waiter or the callback of one record its outcome, and
// wakes Flush when it was the last outstanding record.
func (p *Producer) report(opaque any, d Delivery) {
	switch o := opaque.(type) {
	case *waiter:
		if d.Err != nil {
			o.mu.Lock()
			if o.err == nil {
				o.err = d.Err
			}
			o.mu.Unlock()
		}
		if o.remaining.Add(-1) == 0 {
			close(o.done)
		}
	case asyncCallback:
		d.ID = o.id
		o.fn(d)
	}
	if p.pending.Add(-1) == 0 {
		p.idleMu.Lock()
		if p.idle != nil {
			close(p.idle)
			p.idle = nil
		}
		p.idleMu.Unlock()
	}
}

func topicOf(m *kafka.Message) string {
	if m.TopicPartition.Topic == nil {
		return ""
	}
	return *m.TopicPartition.Topic
}

// PublishChange publishes an ID-only change event for one entity to
// <prefix><entityType>.changes ([WithTopicPrefix], default
// studio.<entityType>.changes), keyed by id. seq is the entity's version
// after the change (its row version), or 0 when the caller has none. The
// trace context of ctx, if any, travels in traceparent. It returns after
// the broker acknowledged the event.
func (p *Producer) PublishChange(ctx context.Context, entityType, id string, op schema.Op, seq int64) error {
	e := p.NewChange(ctx, entityType, id, op, seq)
	return p.Publish(ctx, schema.ChangesTopicIn(p.topicPrefix, entityType), e)
}

// NewChange builds the ID-only change envelope PublishChange would send.
func (p *Producer) NewChange(ctx context.Context, entityType, id string, op schema.Op, seq int64) schema.Envelope {
	e := schema.NewEnvelope(p.source, op, entityType, id)
	e.Sequence = seq
	e.TraceParent = TraceParent(ctx)
	return e
}

// Publish sends envelopes to topic, each keyed by its subject, and returns
// after the broker acknowledged all of them. On failure the error is the
// first *PublishError; records of the batch other than the failed ones may
// have been written, so a retry may duplicate them (dedupe removes those).
func (p *Producer) Publish(ctx context.Context, topic string, envs ...schema.Envelope) error {
	if len(envs) == 0 {
		return nil
	}
	w := &waiter{done: make(chan struct{})}
	w.remaining.Store(int64(len(envs)))
	sent := 0
	var err error
	// A few records go straight to librdkafka when nothing is queued
	// (latency); a larger batch is encoded here while the sender produces.
	direct := len(envs) <= 8
	for i := range envs {
		if err = p.produce(ctx, topic, &envs[i], w, direct); err != nil {
			break
		}
		sent++
	}
	if sent < len(envs) && w.remaining.Add(int64(sent-len(envs))) == 0 {
		close(w.done)
	}
	if sent == 0 {
		return err
	}
	if werr := w.wait(ctx, topic, envs[0].Subject); werr != nil || err != nil {
		return errors.Join(err, werr)
	}
	return nil
}

// PublishAsync encodes one envelope, queues it and returns; fn is called
// exactly once, from the producer's delivery goroutine, when the broker
// acknowledged the record or it failed. fn must not block. The returned
// error covers what is known at once (an envelope that cannot be encoded,
// a closed producer, ctx ending while the queue is full); every later
// failure, a record too large for instance, reaches fn. Records of one
// goroutine are sent in call order. Flush or Close waits for outstanding
// deliveries.
func (p *Producer) PublishAsync(ctx context.Context, topic string, e schema.Envelope, fn func(Delivery)) error {
	return p.produce(ctx, topic, &e, asyncCallback{id: e.ID, fn: fn}, false)
}

// scratch holds one record on its way to librdkafka. librdkafka copies
// key, value and headers while Produce runs (RD_KAFKA_MSG_F_COPY), so the
// buffers are reused for a later record instead of becoming garbage.
type scratch struct {
	value []byte
	key   []byte // PublishRaw's copy of the key
	hbuf  []byte // header values
	hs    []schema.Header
	topic string
	msg   kafka.Message
}

var scratchPool = sync.Pool{New: func() any {
	return &scratch{value: make([]byte, 0, 512), hbuf: make([]byte, 0, 512), hs: make([]schema.Header, 0, 11)}
}}

func putScratch(s *scratch) {
	s.msg = kafka.Message{}
	s.key = s.key[:0]
	clear(s.hs)
	scratchPool.Put(s)
}

// produce encodes e and enqueues it (see enqueue for direct).
func (p *Producer) produce(ctx context.Context, topic string, e *schema.Envelope, opaque any, direct bool) error {
	s := scratchPool.Get().(*scratch)
	value, err := p.codec.Encode(ctx, s.value[:0], topic, e)
	if err != nil {
		putScratch(s)
		return &PublishError{Topic: topic, Key: e.Subject, Err: err}
	}
	s.value = value
	s.topic = topic
	s.hs, s.hbuf = schema.AppendHeadersTo(s.hs[:0], s.hbuf[:0], e)
	s.msg = kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &s.topic, Partition: kafka.PartitionAny},
		// librdkafka only reads the key, to copy it; the string stays
		// alive as long as the message points at it.
		Key:       unsafe.Slice(unsafe.StringData(e.Subject), len(e.Subject)),
		Value:     value,
		Headers:   kafkaHeaders(s.hs),
		Opaque:    opaque,
		Timestamp: e.Time,
	}
	return p.enqueue(ctx, s, direct)
}

// The conversion fails to compile unless schema.Header and kafka.Header
// have identical fields, which is what kafkaHeaders relies on.
var _ = kafka.Header(schema.Header{})

// kafkaHeaders reinterprets hs as kafka headers, without a copy per record.
func kafkaHeaders(hs []schema.Header) []kafka.Header {
	return unsafe.Slice((*kafka.Header)(unsafe.Pointer(unsafe.SliceData(hs))), len(hs))
}

// rawScratch copies a record given as bytes into a scratch, so that the
// caller may reuse its buffers as soon as the publish call returns.
func rawScratch(topic string, key, value []byte, headers []schema.Header, opaque any) *scratch {
	s := scratchPool.Get().(*scratch)
	s.topic = topic
	s.key = append(s.key[:0], key...)
	s.value = append(s.value[:0], value...)
	s.hs = s.hs[:0]
	s.hbuf = s.hbuf[:0]
	for _, h := range headers {
		start := len(s.hbuf)
		s.hbuf = append(s.hbuf, h.Value...)
		s.hs = append(s.hs, schema.Header{Key: h.Key, Value: s.hbuf[start:len(s.hbuf):len(s.hbuf)]})
	}
	s.msg = kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &s.topic, Partition: kafka.PartitionAny},
		Key:            s.key,
		Value:          s.value,
		Headers:        kafkaHeaders(s.hs),
		Opaque:         opaque,
	}
	if key == nil {
		s.msg.Key = nil
	}
	return s
}

// enqueue counts s as outstanding and queues it for the sender, waiting
// while the queue is full; an inline (transactional) producer hands it to
// librdkafka at once. With direct (a small synchronous publish, which
// waits for its acknowledgement anyway), s skips the hop to the sender
// when the sender has nothing queued or in hand, so nothing published
// earlier can be overtaken. On error s is released and not counted.
func (p *Producer) enqueue(ctx context.Context, s *scratch, direct bool) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		putScratch(s)
		return ErrClosed
	}
	// Counted first: the delivery report may be handled before Produce
	// returns.
	p.pending.Add(1)
	if p.inline {
		defer putScratch(s)
		if err := p.produceNow(ctx, &s.msg); err != nil {
			p.pending.Add(-1)
			return err
		}
		return nil
	}
	if direct {
		p.qmu.Lock()
		if len(p.queue) == 0 && !p.busy {
			err := p.produceNow(ctx, &s.msg)
			p.qmu.Unlock()
			putScratch(s)
			if err != nil {
				p.pending.Add(-1)
			}
			return err
		}
		p.qmu.Unlock()
	}
	for {
		p.qmu.Lock()
		if len(p.queue) < maxQueued {
			p.queue = append(p.queue, s)
			first := len(p.queue) == 1
			p.qmu.Unlock()
			if first {
				select {
				case p.wake <- struct{}{}:
				default:
				}
			}
			return nil
		}
		room := p.room
		p.qmu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			p.pending.Add(-1)
			err := &PublishError{Topic: s.topic, Key: string(s.msg.Key), Err: ctx.Err()}
			putScratch(s)
			return err
		}
	}
}

// send is the sender goroutine: it takes the queue whole and produces its
// records in order, until Close has stopped it and the queue is empty.
func (p *Producer) send() {
	defer close(p.sent)
	var batch []*scratch
	for range p.wake {
		for {
			p.qmu.Lock()
			batch, p.queue = p.queue, batch[:0]
			p.busy = len(batch) > 0
			if len(batch) >= maxQueued {
				close(p.room)
				p.room = make(chan struct{})
			}
			stopping := p.stopping
			p.qmu.Unlock()
			if len(batch) == 0 {
				if stopping {
					return
				}
				break
			}
			for i, s := range batch {
				var err error
				if p.abandon.Load() {
					err = &PublishError{Topic: s.topic, Key: string(s.msg.Key), Err: ErrClosed}
				} else {
					err = p.produceNow(context.Background(), &s.msg)
				}
				if err != nil {
					p.report(s.msg.Opaque, Delivery{Topic: s.topic, Partition: kafka.PartitionAny, Offset: -1, Err: err})
				}
				putScratch(s)
				batch[i] = nil
			}
		}
	}
}

// produceNow hands msg to librdkafka, waiting while its local queue is
// full, until ctx ends or Close gives up.
func (p *Producer) produceNow(ctx context.Context, msg *kafka.Message) error {
	for {
		err := p.kp.Produce(msg, nil)
		if err == nil {
			return nil
		}
		var ke kafka.Error
		if !errors.As(err, &ke) || ke.Code() != kafka.ErrQueueFull {
			return &PublishError{Topic: topicOf(msg), Key: string(msg.Key), Err: err}
		}
		// Backpressure: the local queue is full; wait for deliveries.
		select {
		case <-ctx.Done():
			return &PublishError{Topic: topicOf(msg), Key: string(msg.Key), Err: ctx.Err()}
		case <-time.After(time.Millisecond):
		}
		if p.abandon.Load() {
			return &PublishError{Topic: topicOf(msg), Key: string(msg.Key), Err: ErrClosed}
		}
	}
}

// Flush waits until every record accepted so far was acknowledged or
// failed and its outcome was reported (the PublishAsync callback has
// returned), or ctx ends. Records published while it waits are waited for
// too.
func (p *Producer) Flush(ctx context.Context) error {
	for p.pending.Load() > 0 {
		p.idleMu.Lock()
		if p.idle == nil {
			p.idle = make(chan struct{})
		}
		idle := p.idle
		p.idleMu.Unlock()
		// Checked again after registering: the last report may have come
		// in between.
		if p.pending.Load() <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("producer: flush: %d records outstanding: %w", p.pending.Load(), ctx.Err())
		case <-idle:
		}
	}
	return nil
}

// Close flushes within ctx's deadline and closes the producer. Records not
// delivered by then fail with a delivery error. Calls after Close return
// [ErrClosed].
func (p *Producer) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.closed = true
	p.mu.Unlock()
	if !p.inline {
		p.qmu.Lock()
		p.stopping = true
		p.qmu.Unlock()
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	err := p.Flush(ctx)
	if err != nil {
		p.abandon.Store(true)
		_ = p.kp.Purge(kafka.PurgeQueue | kafka.PurgeInFlight)
		<-p.sent
		p.kp.Flush(100)
	}
	<-p.sent
	p.kp.Close()
	<-p.loop
	return err
}

// TraceParent returns the W3C traceparent of the span in ctx, or "" when
// there is none.
func TraceParent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags())
}

// PublishRaw sends one record as given (no envelope encoding) and returns
// after the broker acknowledged it. Dead-letter writers use it to keep the
// original bytes of records that could not be decoded.
func (p *Producer) PublishRaw(ctx context.Context, topic string, key, value []byte, headers []schema.Header) error {
	w := &waiter{done: make(chan struct{})}
	w.remaining.Store(1)
	if err := p.enqueue(ctx, rawScratch(topic, key, value, headers, w), true); err != nil {
		return err
	}
	return w.wait(ctx, topic, string(key))
}
