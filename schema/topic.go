package schema

import (
	"errors"
	"fmt"
)

// DefaultTopicPrefix is the prefix of the topics slate names itself
// (<prefix><entity>.changes, <prefix><entity>.materialized and the CDC
// topics <prefix>cdc.<db>.<schema>.<table>) when no other is set.
const DefaultTopicPrefix = "studio."

// MaxTopicLength is the longest topic name Kafka accepts.
const MaxTopicLength = 249

// ErrTopicPrefix is wrapped by [ValidateTopicPrefix]'s errors; a setting
// that takes a prefix wraps them with its own name.
var ErrTopicPrefix = errors.New("schema: invalid topic prefix")

// ValidateTopicPrefix reports whether prefix can start a Kafka topic name:
// only ASCII letters, digits, '.', '_' and '-', and shorter than
// [MaxTopicLength] so that a name fits after it. The empty prefix is
// valid; the settings that take a prefix read it as [DefaultTopicPrefix].
func ValidateTopicPrefix(prefix string) error {
	for i := 0; i < len(prefix); i++ {
		if c := prefix[i]; !topicChar(c) {
			return fmt.Errorf("%w: %q has %q at byte %d; topic names use only a-z, A-Z, 0-9, '.', '_' and '-'",
				ErrTopicPrefix, prefix, rune(c), i)
		}
	}
	if len(prefix) >= MaxTopicLength {
		return fmt.Errorf("%w: %q is %d bytes, leaving no room in a topic name of at most %d",
			ErrTopicPrefix, prefix, len(prefix), MaxTopicLength)
	}
	return nil
}

func topicChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// ChangesTopicIn is the topic of ID-only change events for an entity type
// under prefix: <prefix><entityType>.changes. An empty prefix is
// [DefaultTopicPrefix].
func ChangesTopicIn(prefix, entityType string) string {
	return orDefaultPrefix(prefix) + entityType + ".changes"
}

// MaterializedTopicIn is the compacted topic of full records for an entity
// type under prefix: <prefix><entityType>.materialized. An empty prefix is
// [DefaultTopicPrefix].
func MaterializedTopicIn(prefix, entityType string) string {
	return orDefaultPrefix(prefix) + entityType + ".materialized"
}

func orDefaultPrefix(prefix string) string {
	if prefix == "" {
		return DefaultTopicPrefix
	}
	return prefix
}
