package producer

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// librdkafka's bounds and default of message.max.bytes.
const (
	minMessageMaxBytes     = 1000
	maxMessageMaxBytes     = 1_000_000_000
	defaultMessageMaxBytes = 1_000_000
)

// DeadLetterHeadroom is the headroom a dead-letter producer leaves above
// the brokers' limit (see [WithBrokerMessageLimit]) for the dead-letter
// headers added to a record that filled its topic's limit.
const DeadLetterHeadroom = 64 << 10

type limitConfig struct {
	headroom int
	topics   []string
}

// WithBrokerMessageLimit sizes the client's own record limit
// (librdkafka's message.max.bytes, default 1,000,000) to what the cluster
// accepts, so that the client does not refuse a record the brokers would
// take: [New] reads message.max.bytes of every broker and
// max.message.bytes of each of topics that exists (admin API,
// DescribeConfigs) and sets message.max.bytes to the largest plus
// headroom, if that is above librdkafka's default. A dead-letter producer
// uses it with [DeadLetterHeadroom], as a record the source topic accepted
// comes back with dead-letter headers added. A message.max.bytes given
// with [WithKafkaConfig] wins. New fails if the configuration cannot be
// read.
func WithBrokerMessageLimit(headroom int, topics ...string) Option {
	return func(c *config) { c.limit = &limitConfig{headroom: headroom, topics: topics} }
}

// brokerMessageLimit returns the largest of the brokers' message.max.bytes
// and the max.message.bytes of the topics of lc that exist.
func brokerMessageLimit(kp *kafka.Producer, topics []string, timeout time.Duration) (int, error) {
	md, err := kp.GetMetadata(nil, false, int(timeout.Milliseconds()))
	if err != nil {
		return 0, fmt.Errorf("metadata: %w", err)
	}
	ad, err := kafka.NewAdminClientFromProducer(kp)
	if err != nil {
		return 0, fmt.Errorf("admin client: %w", err)
	}
	defer ad.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	limit := 0
	// One broker resource per call: each is answered by its broker.
	for _, b := range md.Brokers {
		n, err := describeLimit(ctx, ad, kafka.ConfigResource{Type: kafka.ResourceBroker, Name: strconv.Itoa(int(b.ID))}, "message.max.bytes")
		if err != nil {
			return 0, err
		}
		limit = max(limit, n)
	}
	for _, t := range topics {
		if _, ok := md.Topics[t]; !ok {
			continue // not created yet: it gets the brokers' default
		}
		n, err := describeLimit(ctx, ad, kafka.ConfigResource{Type: kafka.ResourceTopic, Name: t}, "max.message.bytes")
		if err != nil {
			return 0, err
		}
		limit = max(limit, n)
	}
	return limit, nil
}

// describeLimit reads the integer setting name of one resource; a
// resource that does not exist (a topic deleted meanwhile) reads as 0.
func describeLimit(ctx context.Context, ad *kafka.AdminClient, res kafka.ConfigResource, name string) (int, error) {
	rs, err := ad.DescribeConfigs(ctx, []kafka.ConfigResource{res})
	if err != nil {
		return 0, fmt.Errorf("describe %s %s: %w", res.Type, res.Name, err)
	}
	for _, r := range rs {
		switch r.Error.Code() {
		case kafka.ErrNoError:
		case kafka.ErrUnknownTopicOrPart, kafka.ErrUnknownTopic:
			return 0, nil
		default:
			return 0, fmt.Errorf("describe %s %s: %w", res.Type, res.Name, r.Error)
		}
		e, ok := r.Config[name]
		if !ok {
			return 0, fmt.Errorf("describe %s %s: no %s in the answer", res.Type, res.Name, name)
		}
		n, err := strconv.Atoi(e.Value)
		if err != nil {
			return 0, fmt.Errorf("describe %s %s: %s = %q: %w", res.Type, res.Name, name, e.Value, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("describe %s %s: empty answer", res.Type, res.Name)
}

// messageMaxBytes returns the message.max.bytes a producer sized by lc
// should have for a cluster limit, or 0 when librdkafka's default is big
// enough.
func (lc *limitConfig) messageMaxBytes(limit int) int {
	want := min(limit+max(lc.headroom, 0), maxMessageMaxBytes)
	if want <= defaultMessageMaxBytes {
		return 0
	}
	return max(want, minMessageMaxBytes)
}
