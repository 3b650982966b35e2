package main

import (
	"context"
	"strings"
	"testing"
)

// A bad --topic-prefix fails slate cdc, naming the flag, before it
// connects to the database, the registry or Kafka.
func TestCDCRefusesBadTopicPrefix(t *testing.T) {
	for _, prefix := range []string{"acme/", "acme prod.", strings.Repeat("a", 249)} {
		err := execute(context.Background(), []string{"cdc", "--topic-prefix", prefix,
			"--pg-dsn", "postgres://nobody@127.0.0.1:1/none", "--registry-url", "http://127.0.0.1:1", "--brokers", "127.0.0.1:1"})
		if err == nil || !strings.Contains(err.Error(), "--topic-prefix") || !strings.Contains(err.Error(), "invalid topic prefix") {
			t.Errorf("--topic-prefix %.20q: err = %v, want an error naming --topic-prefix", prefix, err)
		}
	}
}
