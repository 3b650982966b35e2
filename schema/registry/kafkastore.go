package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slatehq/slate/internal/kafkaconf"
)

// DefaultKafkaTopic is the topic a [KafkaStore] keeps records in, the name
// Confluent's registry uses (kafkastore.topic).
const DefaultKafkaTopic = "_schemas"

// ErrKafkaStore is wrapped by every error of a [KafkaStore]: the topic
// could not be created, read or written.
var ErrKafkaStore = errors.New("registry: kafka store")

// KafkaStore is a [Store] over a compacted, single-partition Kafka topic
// (by default _schemas), with records in the key and value format of
// Confluent's registry. A registry restarted over the same topic, or a
// second registry started over it, replays the same records and so serves
// the same ids and versions; a topic written by Confluent's registry loads
// too.
//
// A KafkaStore is a [Follower]: after the replay it keeps reading the
// topic, so a server over it sees another server's changes moments after
// they were made (read replicas stay current). Like Confluent's registry,
// which elects one leader to write, a topic must have one writing server
// at a time: two servers registering new schemas at the same moment could
// hand out the same id.
//
// It is safe for concurrent use; Close it when the server is done.
type KafkaStore struct {
	cl      *kgo.Client
	brokers []string
	topic   string
	kopts   []kgo.Opt
	log     *slog.Logger
	writer  []byte // this store's id, in a header of every record it appends

	mu     sync.Mutex
	next   int64              // offset after the records Load returned
	stop   context.CancelFunc // ends Follow's goroutine
	done   chan struct{}      // closed when it ended
	closed bool
}

var _ Follower = (*KafkaStore)(nil)

// writerHeader names the header that tells a store its own records apart
// when it follows the topic. Confluent's registry ignores headers.
const writerHeader = "slate-registry-writer"

// KafkaStoreOption configures [NewKafkaStore].
type KafkaStoreOption func(*kafkaStoreConfig)

type kafkaStoreConfig struct {
	topic string
	kopts []kgo.Opt
	sec   kafkaconf.Security
	log   *slog.Logger
}

// KafkaTopic sets the topic (default [DefaultKafkaTopic]).
func KafkaTopic(name string) KafkaStoreOption {
	return func(c *kafkaStoreConfig) { c.topic = name }
}

// KafkaClientOptions adds franz-go client options (SASL, TLS, timeouts) to
// both the writing client and the clients that replay the topic.
func KafkaClientOptions(opts ...kgo.Opt) KafkaStoreOption {
	return func(c *kafkaStoreConfig) { c.kopts = append(c.kopts, opts...) }
}

// KafkaSASL authenticates the store's clients to the brokers with SASL,
// as producer.WithSASL does the producer's: mechanism is PLAIN,
// SCRAM-SHA-256 or SCRAM-SHA-512 (empty: SCRAM-SHA-256); user and pass are
// required.
func KafkaSASL(mechanism, user, pass string) KafkaStoreOption {
	return func(c *kafkaStoreConfig) {
		c.sec.SASL = &kafkaconf.SASL{Mechanism: mechanism, Username: user, Password: pass}
	}
}

// KafkaTLS encrypts the store's connections to the brokers, as
// producer.WithTLS does the producer's: caFile is the PEM bundle of the
// CAs that sign the brokers' certificates (empty: the system's), certFile
// and keyFile the client certificate and key for mutual TLS (both or
// neither). [NewKafkaStore] fails when a file cannot be read or the key
// does not match the certificate.
func KafkaTLS(caFile, certFile, keyFile string) KafkaStoreOption {
	return func(c *kafkaStoreConfig) {
		c.sec.TLS = &kafkaconf.TLS{CAFile: caFile, CertFile: certFile, KeyFile: keyFile}
	}
}

// KafkaLogger sets the logger; the default discards.
func KafkaLogger(l *slog.Logger) KafkaStoreOption {
	return func(c *kafkaStoreConfig) { c.log = l }
}

// NewKafkaStore connects to brokers and makes sure the topic exists,
// creating it compacted with one partition when it does not. It fails when
// no broker answers before ctx ends, when the brokers refuse the
// credentials of [KafkaSASL], or when the topic exists with more than one
// partition (the order of records would be lost).
func NewKafkaStore(ctx context.Context, brokers []string, opts ...KafkaStoreOption) (*KafkaStore, error) {
	cfg := kafkaStoreConfig{topic: DefaultKafkaTopic, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&cfg)
	}
	if len(brokers) == 0 {
		return nil, fmt.Errorf("%w: no brokers", ErrKafkaStore)
	}
	if cfg.topic == "" {
		return nil, fmt.Errorf("%w: topic is empty", ErrKafkaStore)
	}
	if cfg.sec.SASL != nil || cfg.sec.TLS != nil {
		client, err := cfg.sec.Client(strings.Join(brokers, ","), "")
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrKafkaStore, err)
		}
		sec, err := client.FranzOptions()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrKafkaStore, err)
		}
		// KafkaClientOptions given too come after, and win.
		cfg.kopts = append(sec, cfg.kopts...)
	}
	var login *saslWatch
	if cfg.sec.SASL != nil {
		login = &saslWatch{}
		cfg.kopts = append(cfg.kopts, kgo.WithHooks(login))
	}
	kopts := append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.DefaultProduceTopic(cfg.topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
	}, cfg.kopts...)
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("%w: client: %w", ErrKafkaStore, err)
	}
	s := &KafkaStore{cl: cl, brokers: brokers, topic: cfg.topic, kopts: cfg.kopts, log: cfg.log, writer: []byte(uuid.NewString())}
	ectx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	login.arm(cancel)
	err = s.ensureTopic(ectx)
	login.arm(nil)
	if err != nil {
		cl.Close()
		if cause := context.Cause(ectx); errors.Is(cause, errSASLRefused) {
			return nil, fmt.Errorf("%w: brokers %s: %w", ErrKafkaStore, strings.Join(brokers, ","), cause)
		}
		return nil, err
	}
	return s, nil
}

// errSASLRefused is the cause NewKafkaStore stops on when the brokers
// end the SASL exchange.
var errSASLRefused = errors.New("the brokers refused the SASL login")

// saslWatch ends NewKafkaStore's wait for the brokers when a connection
// fails during its SASL exchange: brokers that refuse a login answer with
// an error or close the connection, and the client would retry the
// refused login until the context ends.
type saslWatch struct {
	mu   sync.Mutex
	stop context.CancelCauseFunc // nil outside NewKafkaStore's wait
}

func (w *saslWatch) arm(stop context.CancelCauseFunc) {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.stop = stop
	w.mu.Unlock()
}

// OnBrokerE2E implements kgo.HookBrokerE2E.
func (w *saslWatch) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	err := e2e.Err()
	if err == nil || (key != kmsg.SASLHandshake.Int16() && key != kmsg.SASLAuthenticate.Int16()) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stop != nil {
		w.stop(fmt.Errorf("%w (%s): %w", errSASLRefused, kmsg.NameForKey(key), err))
	}
}

// Topic returns the topic the store keeps records in.
func (s *KafkaStore) Topic() string { return s.topic }

func (s *KafkaStore) ensureTopic(ctx context.Context) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic = s.topic
	t.NumPartitions = 1
	t.ReplicationFactor = -1 // the broker's default
	for k, v := range map[string]string{"cleanup.policy": "compact"} {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		t.Configs = append(t.Configs, c)
	}
	req.Topics = append(req.Topics, t)
	req.TimeoutMillis = 10000
	resp, err := req.RequestWith(ctx, s.cl)
	if err != nil {
		return fmt.Errorf("%w: create topic %s at %s: %w", ErrKafkaStore, s.topic, strings.Join(s.brokers, ","), err)
	}
	for _, rt := range resp.Topics {
		switch err := kerr.ErrorForCode(rt.ErrorCode); {
		case err == nil:
			s.log.Info("registry topic created", "topic", s.topic)
			return nil
		case errors.Is(err, kerr.TopicAlreadyExists):
			return s.checkPartitions(ctx)
		default:
			return fmt.Errorf("%w: create topic %s: %w", ErrKafkaStore, s.topic, err)
		}
	}
	return fmt.Errorf("%w: create topic %s: empty response", ErrKafkaStore, s.topic)
}

func (s *KafkaStore) checkPartitions(ctx context.Context) error {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(s.topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, s.cl)
	if err != nil {
		return fmt.Errorf("%w: metadata of %s: %w", ErrKafkaStore, s.topic, err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return fmt.Errorf("%w: metadata of %s: %w", ErrKafkaStore, s.topic, err)
		}
		if n := len(t.Partitions); n != 1 {
			return fmt.Errorf("%w: topic %s has %d partitions, need exactly 1 to keep records in order", ErrKafkaStore, s.topic, n)
		}
	}
	return nil
}

// endOffset returns the offset the next record of partition 0 will get.
func (s *KafkaStore) endOffset(ctx context.Context) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.IsolationLevel = 1 // read committed
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = s.topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = 0
	rp.Timestamp = -1 // latest
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, s.cl)
	if err != nil {
		return 0, fmt.Errorf("%w: end offset of %s: %w", ErrKafkaStore, s.topic, err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return 0, fmt.Errorf("%w: end offset of %s: %w", ErrKafkaStore, s.topic, err)
			}
			return p.Offset, nil
		}
	}
	return 0, fmt.Errorf("%w: end offset of %s: empty response", ErrKafkaStore, s.topic)
}

// Load implements [Store]: it reads the topic from its start up to the end
// it has when Load begins. Compaction may have dropped superseded records;
// what remains replays to the same state. Records whose key or value is not
// a registry record are skipped with a warning, as Confluent's registry
// does.
func (s *KafkaStore) Load(ctx context.Context) ([]Record, error) {
	end, err := s.endOffset(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.next = end
	s.mu.Unlock()
	if end == 0 {
		return nil, nil
	}
	rd, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(s.brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	}, s.kopts...)...)
	if err != nil {
		return nil, fmt.Errorf("%w: reader: %w", ErrKafkaStore, err)
	}
	defer rd.Close()
	var recs []Record
	for {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%w: replay %s: %w", ErrKafkaStore, s.topic, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = errors.Join(ferr, err) })
		if ferr != nil {
			return nil, fmt.Errorf("%w: replay %s: %w", ErrKafkaStore, s.topic, ferr)
		}
		done := false
		fs.EachRecord(func(kr *kgo.Record) {
			if done {
				return
			}
			if kr.Offset >= end-1 {
				done = true
			}
			r, err := UnmarshalRecord(kr.Key, kr.Value)
			if err != nil {
				s.log.Warn("registry record skipped", "topic", s.topic, "offset", kr.Offset, "err", err)
				return
			}
			recs = append(recs, r)
		})
		if done {
			return recs, nil
		}
	}
}

// Append implements [Store]: it writes r to the topic and returns once the
// brokers acknowledged it (acks=all).
func (s *KafkaStore) Append(ctx context.Context, r Record) error {
	key, value, err := r.MarshalKeyValue()
	if err != nil {
		return err
	}
	kr := &kgo.Record{Topic: s.topic, Partition: 0, Key: key, Value: value, Timestamp: time.Now(),
		Headers: []kgo.RecordHeader{{Key: writerHeader, Value: s.writer}}}
	if err := s.cl.ProduceSync(ctx, kr).FirstErr(); err != nil {
		return fmt.Errorf("%w: append to %s: %w", ErrKafkaStore, s.topic, err)
	}
	return nil
}

// Follow implements [Follower]: it reads the topic from where Load
// stopped and calls apply with every record another store appended, until
// Close. Only the first call starts following.
func (s *KafkaStore) Follow(apply func(Record)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil || s.closed {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan struct{})
	go s.tail(ctx, s.next, apply)
}

func (s *KafkaStore) tail(ctx context.Context, from int64, apply func(Record)) {
	defer close(s.done)
	rd, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(s.brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: {0: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(time.Second),
	}, s.kopts...)...)
	if err != nil {
		s.log.Error("registry topic not followed", "topic", s.topic, "err", err)
		return
	}
	defer rd.Close()
	for {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		failed := false
		fs.EachError(func(_ string, _ int32, err error) {
			failed = true
			s.log.Warn("registry topic fetch failed", "topic", s.topic, "err", err)
		})
		fs.EachRecord(func(kr *kgo.Record) {
			if s.own(kr) {
				return
			}
			r, err := UnmarshalRecord(kr.Key, kr.Value)
			if err != nil {
				s.log.Warn("registry record skipped", "topic", s.topic, "offset", kr.Offset, "err", err)
				return
			}
			apply(r)
		})
		if failed {
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

func (s *KafkaStore) own(kr *kgo.Record) bool {
	for _, h := range kr.Headers {
		if h.Key == writerHeader && bytes.Equal(h.Value, s.writer) {
			return true
		}
	}
	return false
}

// Close stops following and releases the store's Kafka client. Appends
// after Close fail.
func (s *KafkaStore) Close() {
	s.mu.Lock()
	s.closed = true
	stop, done := s.stop, s.done
	s.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	s.cl.Close()
}
