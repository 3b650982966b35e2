package consumer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/slatehq/slate/internal/kafkaconf"
	"github.com/slatehq/slate/schema"
)

// HeaderDLQReplayed is added to a record that [Replay] re-published; its
// value names the dead letter it came from ("<dlq topic>/<partition>/<offset>").
const HeaderDLQReplayed = "slate_dlq_replayed_from"

// ErrNoOrigin is returned by [Replay] for a dead letter that does not say
// which topic it came from.
var ErrNoOrigin = errors.New("consumer: dead letter has no origin topic")

// ErrTruncated is returned by [Replay] for a truncated dead letter (see
// [WithDeadLetter]): its value is only the start of the record's. Read the
// whole record from its origin topic, partition and offset instead.
var ErrTruncated = errors.New("consumer: dead letter is truncated")

// DeadLetter is one record of a dead-letter topic, with the slate_dlq_*
// headers the consumer added parsed out.
type DeadLetter struct {
	Topic     string // the dead-letter topic
	Partition int32
	Offset    int64
	Timestamp time.Time
	Key       []byte
	Value     []byte          // the original record's bytes, or their start if Truncated
	Headers   []schema.Header // all headers, the original ones first

	Error           string // HeaderDLQError
	Stage           string // HeaderDLQStage
	OriginTopic     string // HeaderDLQTopic
	OriginPartition int32  // HeaderDLQPartition, -1 if absent
	OriginOffset    int64  // HeaderDLQOffset, -1 if absent
	Group           string // HeaderDLQGroup
	Truncated       int64  // HeaderDLQTruncated: the original value's size, 0 if Value is whole
}

// OriginalHeaders returns the headers without the slate_dlq_* ones: the
// headers the record had when it was first published.
func (d *DeadLetter) OriginalHeaders() []schema.Header {
	out := make([]schema.Header, 0, len(d.Headers))
	for _, h := range d.Headers {
		if !strings.HasPrefix(h.Key, "slate_dlq_") {
			out = append(out, h)
		}
	}
	return out
}

func newDeadLetter(m *kafka.Message) DeadLetter {
	d := DeadLetter{Topic: *m.TopicPartition.Topic, Partition: m.TopicPartition.Partition,
		Offset: int64(m.TopicPartition.Offset), Timestamp: m.Timestamp, Key: m.Key, Value: m.Value,
		OriginPartition: -1, OriginOffset: -1}
	for _, h := range m.Headers {
		d.Headers = append(d.Headers, schema.Header(h))
		v := string(h.Value)
		switch h.Key {
		case HeaderDLQError:
			d.Error = v
		case HeaderDLQStage:
			d.Stage = v
		case HeaderDLQTopic:
			d.OriginTopic = v
		case HeaderDLQGroup:
			d.Group = v
		case HeaderDLQPartition:
			if p, err := strconv.ParseInt(v, 10, 32); err == nil {
				d.OriginPartition = int32(p)
			}
		case HeaderDLQOffset:
			if o, err := strconv.ParseInt(v, 10, 64); err == nil {
				d.OriginOffset = o
			}
		case HeaderDLQTruncated:
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				d.Truncated = n
			}
		}
	}
	return d
}

// ReadDeadLetters calls fn for every record of the dead-letter topic, from
// the start of each partition to its end as it was when the call began,
// partition by partition in offset order. A partition ends when the
// reader's position reaches its high watermark, so a topic written by a
// transactional producer, whose partitions end in a commit marker, ends
// too; records of aborted transactions are skipped (read_committed). It joins no group and commits
// nothing, so it can run beside the consumers. It stops at the first error
// of fn and returns it.
//
// Of opts, [WithSASL], [WithTLS], [WithKafkaConfig] and
// [WithStartTimeout] apply; the others are ignored. It fails with
// [ErrAuth] when the brokers refuse the credentials and with
// [ErrUnreachable] when no broker answers within the start timeout or
// ctx's deadline, whichever is sooner.
func ReadDeadLetters(ctx context.Context, brokers, topic string, fn func(DeadLetter) error, opts ...Option) error {
	cfg := config{kafka: kafka.ConfigMap{}, startTimeout: defaultStartTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.startTimeout <= 0 {
		return fmt.Errorf("%w: start timeout %s, need more than 0 (WithStartTimeout)", ErrConfig, cfg.startTimeout)
	}
	sec, err := cfg.securityConfig(brokers)
	if err != nil {
		return err
	}
	cm, err := kafkaconf.Consumer(brokers, "slate-dlq-reader",
		kafka.ConfigMap{"enable.auto.commit": false, "isolation.level": "read_committed"}, sec, cfg.kafka)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	kc, err := kafka.NewConsumer(cm)
	if err != nil {
		return fmt.Errorf("consumer: create: %w", err)
	}
	defer kc.Close()
	if err := awaitBrokers(ctx, kc, cm, cfg.startTimeout); err != nil {
		return fmt.Errorf("%w (dead letters of %s)", err, topic)
	}
	timeout := cfg.startTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, max(time.Until(dl), time.Millisecond))
	}
	md, err := kc.GetMetadata(&topic, false, int(timeout.Milliseconds()))
	if err != nil {
		return fmt.Errorf("consumer: metadata of %s: %w", topic, err)
	}
	tm, ok := md.Topics[topic]
	if !ok || tm.Error.Code() == kafka.ErrUnknownTopicOrPart || tm.Error.Code() == kafka.ErrUnknownTopic {
		return nil // no dead letters yet
	}
	if tm.Error.Code() != kafka.ErrNoError {
		return fmt.Errorf("consumer: metadata of %s: %w", topic, tm.Error)
	}
	end := map[int32]int64{}
	var assign []kafka.TopicPartition
	for _, p := range tm.Partitions {
		low, high, err := kc.QueryWatermarkOffsets(topic, p.ID, int(timeout.Milliseconds()))
		if err != nil {
			return fmt.Errorf("consumer: watermarks of %s/%d: %w", topic, p.ID, err)
		}
		if high > low {
			end[p.ID] = high
			assign = append(assign, kafka.TopicPartition{Topic: &topic, Partition: p.ID, Offset: kafka.Offset(low)})
		}
	}
	if len(assign) == 0 {
		return nil
	}
	if err := kc.Assign(assign); err != nil {
		return fmt.Errorf("consumer: assign %s: %w", topic, err)
	}
	for len(end) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch e := kc.Poll(100).(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				return fmt.Errorf("consumer: read %s: %w", topic, e.TopicPartition.Error)
			}
			p, o := e.TopicPartition.Partition, int64(e.TopicPartition.Offset)
			high, ok := end[p]
			if !ok || o >= high {
				continue
			}
			if err := fn(newDeadLetter(e)); err != nil {
				return err
			}
			if o+1 >= high {
				delete(end, p)
			}
		case kafka.Error:
			if e.IsFatal() {
				return fmt.Errorf("consumer: read %s: %w", topic, e)
			}
		}
		if err := reachedEnd(kc, topic, end); err != nil {
			return err
		}
	}
	return nil
}

// reachedEnd drops from end the partitions whose position reached their
// end offset. A partition written by a transactional producer ends with a
// control record (the commit marker) that is never delivered, so its last
// dead letter sits below end-1 and only the position says it was read.
func reachedEnd(kc *kafka.Consumer, topic string, end map[int32]int64) error {
	if len(end) == 0 {
		return nil
	}
	ps := make([]kafka.TopicPartition, 0, len(end))
	for p := range end {
		ps = append(ps, kafka.TopicPartition{Topic: &topic, Partition: p})
	}
	ps, err := kc.Position(ps)
	if err != nil {
		return fmt.Errorf("consumer: position in %s: %w", topic, err)
	}
	for _, p := range ps {
		if p.Offset >= 0 && int64(p.Offset) >= end[p.Partition] {
			delete(end, p.Partition)
		}
	}
	return nil
}

// Replay re-publishes a dead letter's original key, value and headers to
// the replay topic of its origin (schema.ReplayTopic: <origin>.dlq.replay),
// adding [HeaderDLQReplayed], and returns after the broker acknowledged it.
// The consumers of the origin topic that dead-letter also read its replay
// topic, and each takes only the records its own group dead-lettered
// (HeaderDLQGroup): the group that failed the record meets it again, other
// groups of the origin topic do not, and the origin topic itself never
// gets an old record appended after newer ones of its key (a compacted
// topic's readers would take it for the latest). If its envelope was
// applied meanwhile, dedupe drops it. A truncated dead letter is not
// replayed: the error matches [ErrTruncated] and names where the whole
// record is.
func Replay(ctx context.Context, pub DeadLetterPublisher, d DeadLetter) error {
	if d.Truncated > 0 {
		return fmt.Errorf("%w: %s/%d/%d holds %d of %d bytes; the whole record is %s[%d]@%d", ErrTruncated,
			d.Topic, d.Partition, d.Offset, len(d.Value), d.Truncated, d.OriginTopic, d.OriginPartition, d.OriginOffset)
	}
	origin := d.OriginTopic
	if origin == "" {
		origin = strings.TrimSuffix(d.Topic, ".dlq")
		if origin == d.Topic {
			return fmt.Errorf("%w: %s/%d/%d", ErrNoOrigin, d.Topic, d.Partition, d.Offset)
		}
	}
	hs := append(d.OriginalHeaders(), schema.Header{Key: HeaderDLQReplayed,
		Value: fmt.Appendf(nil, "%s/%d/%d", d.Topic, d.Partition, d.Offset)})
	if d.Group != "" {
		hs = append(hs, schema.Header{Key: HeaderDLQGroup, Value: []byte(d.Group)})
	}
	to := schema.ReplayTopic(origin)
	if err := pub.PublishRaw(ctx, to, d.Key, d.Value, hs); err != nil {
		return fmt.Errorf("consumer: replay %s/%d/%d to %s: %w", d.Topic, d.Partition, d.Offset, to, err)
	}
	return nil
}
