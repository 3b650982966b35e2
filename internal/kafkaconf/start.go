package kafkaconf

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// StartError says why no broker answered a starting client (see
// [AwaitBrokers]). Its Unwrap gives the metadata request's error and the
// client error behind it, so errors.As finds the kafka.Error.
type StartError struct {
	Brokers string
	Timeout time.Duration
	// Refused: the brokers refused the client's credentials or
	// authorization (see [IsAuthFailure]); Cause says how.
	Refused bool
	// Err is the last metadata request's error, or the context's.
	Err error
	// Cause is what the client reported meanwhile: the refusal, else
	// the last error other than "all brokers are down"; nil if none.
	Cause error
	// Protocol is the client's security.protocol (empty: plaintext).
	Protocol string
}

func (e *StartError) Error() string {
	if e.Refused {
		return fmt.Sprintf("brokers %s refused the client: %v", e.Brokers, e.Cause)
	}
	msg := fmt.Sprintf("at %s within %s: %v", e.Brokers, e.Timeout.Round(time.Millisecond), e.Err)
	if e.Cause != nil {
		msg += fmt.Sprintf(" (last client error: %v)", e.Cause)
	}
	if e.Cause != nil && strings.Contains(e.Cause.Error(), "Connection refused") {
		return msg // nothing listens: security is not the question
	}
	switch p := strings.ToUpper(e.Protocol); {
	case p == "" || p == "PLAINTEXT":
		msg += "; the client uses neither SASL nor TLS, and a secured listener drops such clients"
	case p == "SSL":
		msg += "; the client does not use SASL, and a listener that requires it drops such clients"
	}
	return msg
}

// Unwrap returns Err and Cause.
func (e *StartError) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.Err, e.Cause} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// IsAuthFailure reports whether a client error means the brokers refused
// the client: its SASL login (a broker that drops the connection instead
// of answering the SASL exchange shows up as a transport error whose text
// says so), or its authorization.
func IsAuthFailure(ke kafka.Error) bool {
	switch ke.Code() {
	case kafka.ErrSaslAuthenticationFailed, kafka.ErrAuthentication,
		kafka.ErrTopicAuthorizationFailed, kafka.ErrClusterAuthorizationFailed:
		return true
	}
	return strings.Contains(ke.String(), "SASL authentication error")
}

// awaitStep is how long one metadata request of [AwaitBrokers] may take
// before the client's events are read again.
const awaitStep = 250 * time.Millisecond

// AwaitBrokers asks for the cluster's metadata with md (its argument a
// timeout in milliseconds, as GetMetadata takes) until a broker answers,
// timeout passes or ctx ends. Meanwhile it reads the client's queued
// events with next (nil when none is queued): when one says the brokers
// refused the client, it returns at once, with Refused set. cm is the
// client's configuration, for the error's brokers and security protocol.
// It returns nil when a broker answered.
func AwaitBrokers(ctx context.Context, cm *kafka.ConfigMap, md func(timeoutMs int) error, next func() kafka.Event, timeout time.Duration) *StartError {
	brokers, _ := cm.Get("bootstrap.servers", "")
	protocol, _ := cm.Get("security.protocol", "")
	se := &StartError{Brokers: fmt.Sprint(brokers), Timeout: timeout, Protocol: fmt.Sprint(protocol)}
	deadline := time.Now().Add(timeout)
	var last, summary error
	drain := func() bool {
		for ev := next(); ev != nil; ev = next() {
			ke, ok := ev.(kafka.Error)
			switch {
			case !ok:
			case IsAuthFailure(ke):
				se.Refused, se.Cause = true, ke
				return true
			case ke.Code() == kafka.ErrAllBrokersDown:
				summary = ke
			default:
				last = ke
			}
		}
		return false
	}
	for {
		start := time.Now()
		wait := min(awaitStep, max(time.Until(deadline), time.Millisecond))
		err := md(int(wait.Milliseconds()))
		if err == nil {
			return nil
		}
		se.Err = err
		if drain() {
			return se
		}
		if err := ctx.Err(); err != nil {
			se.Err = err
			break
		}
		if !time.Now().Before(deadline) {
			break
		}
		// A request that failed at once (connection refused) waits out
		// its step, so that the loop does not spin.
		select {
		case <-ctx.Done():
		case <-time.After(awaitStep - time.Since(start)):
		}
	}
	se.Cause = last
	if last == nil {
		se.Cause = summary
	}
	return se
}
