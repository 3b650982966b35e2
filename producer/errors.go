package producer

import (
	"context"
	"errors"
	"fmt"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// ErrClosed is returned by calls on a closed producer.
var ErrClosed = errors.New("producer: closed")

// ErrConfig is wrapped by every configuration error of [New].
var ErrConfig = errors.New("producer: invalid config")

// PublishError says which record could not be published and why.
type PublishError struct {
	Topic string
	Key   string
	Err   error
}

func (e *PublishError) Error() string {
	return fmt.Sprintf("producer: publish to %s key %q: %v", e.Topic, e.Key, e.Err)
}

// Unwrap returns the cause, a kafka.Error or a context error.
func (e *PublishError) Unwrap() error { return e.Err }

// IsRetryable reports whether publishing again may succeed: a transient
// broker error or a timeout. A record too large, an unknown topic, an
// invalid envelope, or a closed producer are not retryable.
func IsRetryable(err error) bool {
	if err == nil || errors.Is(err, ErrClosed) || errors.Is(err, ErrConfig) {
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
