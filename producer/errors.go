package producer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// ErrClosed is returned by calls on a closed producer.
var ErrClosed = errors.New("producer: closed")

// ErrConfig is wrapped by every configuration error of [New].
var ErrConfig = errors.New("producer: invalid config")

// ErrUnreachable is wrapped by the error of [New] when no broker answered
// within the start timeout (wrong address, broker down, TLS mismatch).
var ErrUnreachable = errors.New("producer: no broker reachable")

// ErrAuth is wrapped when the brokers refused the client's credentials
// (SASL) or its authorization (topic ACLs).
var ErrAuth = errors.New("producer: not authorized by the broker")

// ErrTooLarge is matched by a [*PublishError] whose record is larger than
// the broker or the topic accepts (message.max.bytes / max.message.bytes)
// or than the client's own message.max.bytes. Not retryable: the record
// must shrink or the limit grow.
var ErrTooLarge = errors.New("producer: record larger than the broker accepts (message.max.bytes)")

// ErrUnknownTopic is matched by a [*PublishError] whose topic does not
// exist while the cluster does not create topics on first use
// (auto.create.topics.enable=false). Create the topic first. librdkafka
// reports it once topic.metadata.propagation.max.ms (default 30s) passed
// without the topic appearing, so a Publish to a missing topic fails after
// that long, or when its ctx ends first.
var ErrUnknownTopic = errors.New("producer: topic does not exist and the broker does not auto-create it")

// PublishError says which record could not be published and why. It
// matches [ErrTooLarge], [ErrUnknownTopic] and [ErrAuth] with errors.Is when
// the broker's answer means that.
type PublishError struct {
	Topic string
	Key   string
	Err   error
}

func (e *PublishError) Error() string {
	if c := classify(e.Err); c != nil {
		return fmt.Sprintf("producer: publish to %s key %q: %s: %v", e.Topic, e.Key, strings.TrimPrefix(c.Error(), "producer: "), e.Err)
	}
	return fmt.Sprintf("producer: publish to %s key %q: %v", e.Topic, e.Key, e.Err)
}

// Is reports whether the cause is the condition target names.
func (e *PublishError) Is(target error) bool {
	c := classify(e.Err)
	return c != nil && c == target
}

// classify maps a kafka.Error to the sentinel a caller branches on, or nil.
func classify(err error) error {
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return nil
	}
	switch ke.Code() {
	case kafka.ErrMsgSizeTooLarge, kafka.ErrRecordListTooLarge:
		return ErrTooLarge
	case kafka.ErrUnknownTopicOrPart, kafka.ErrUnknownTopic:
		return ErrUnknownTopic
	case kafka.ErrTopicAuthorizationFailed, kafka.ErrClusterAuthorizationFailed,
		kafka.ErrSaslAuthenticationFailed, kafka.ErrAuthentication:
		return ErrAuth
	}
	return nil
}

// Unwrap returns the cause, a kafka.Error or a context error.
func (e *PublishError) Unwrap() error { return e.Err }

// IsRetryable reports whether publishing again may succeed: a transient
// broker error or a timeout. A record too large, an unknown topic, an
// invalid envelope, or a closed producer are not retryable.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, ErrClosed) || errors.Is(err, ErrConfig) ||
		errors.Is(err, ErrTooLarge) || errors.Is(err, ErrUnknownTopic) || errors.Is(err, ErrAuth) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ke kafka.Error
	if errors.As(err, &ke) {
		if ke.IsFatal() {
			return false
		}
		switch ke.Code() {
		case kafka.ErrMsgSizeTooLarge, kafka.ErrUnknownTopicOrPart, kafka.ErrUnknownTopic,
			kafka.ErrTopicAuthorizationFailed, kafka.ErrInvalidArg, kafka.ErrRecordListTooLarge:
			return false
		}
		return ke.IsRetriable() || ke.IsTimeout() || ke.Code() == kafka.ErrMsgTimedOut ||
			ke.Code() == kafka.ErrTransport || ke.Code() == kafka.ErrAllBrokersDown || ke.Code() == kafka.ErrQueueFull
	}
	return false
}
