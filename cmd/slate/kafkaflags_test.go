package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
)

// runSlate runs the slate command line args, environment bound as in the
// binary, and returns its output.
func runSlate(ctx context.Context, args ...string) (string, error) {
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append(args, "--log-level", "error"))
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// Bad Kafka client flags fail slate dlq, cdc and registry before they
// connect to anything, naming the flag.
func TestKafkaFlagsValidated(t *testing.T) {
	tests := []struct {
		flag string
		args []string
	}{
		{"--kafka-sasl-password", []string{"dlq", "list", "--topic", "t", "--kafka-sasl-user", "slate"}},
		{"--kafka-sasl-user", []string{"dlq", "replay", "--topic", "t", "--registry-url", "http://127.0.0.1:1", "--kafka-sasl-password", "pw"}},
		{"--kafka-sasl-mechanism", []string{"dlq", "list", "--topic", "t", "--kafka-sasl-mechanism", "GSSAPI", "--kafka-sasl-user", "u", "--kafka-sasl-password", "p"}},
		{"--kafka-tls-ca", []string{"dlq", "list", "--topic", "t", "--kafka-tls-ca", "/nonexistent/ca.pem"}},
		{"--kafka-tls-key", []string{"cdc", "--kafka-tls-cert", "/nonexistent/client.pem"}},
		{"--kafka-tls-cert", []string{"cdc", "--kafka-tls-cert", "/nonexistent/client.pem", "--kafka-tls-key", "/nonexistent/client.key"}},
		{"--kafka-sasl-password", []string{"registry", "--port", "0", "--brokers", "127.0.0.1:1", "--kafka-sasl-user", "u"}},
		{"--brokers", []string{"registry", "--port", "0", "--kafka-sasl-user", "u", "--kafka-sasl-password", "p"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			start := time.Now()
			_, err := runSlate(ctx, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.flag) {
				t.Fatalf("slate %v = %v, want an error naming %s", tt.args, err, tt.flag)
			}
			if took := time.Since(start); took > time.Second {
				t.Errorf("refused after %s: it tried to connect first", took)
			}
		})
	}
}

// slate dlq list reads a broker that requires SASL over TLS with
// --kafka-sasl-* (the password from SLATE_KAFKA_SASL_PASSWORD) and
// --kafka-tls-ca; with a wrong password or without credentials it fails
// with an error saying so, within the command's context.
func TestDLQListSASLAndTLS(t *testing.T) {
	k := testenv.StartSecureKafka(t)
	_, reg := testenv.Registry(t)
	pub := testenv.Producer(t, k.Brokers, reg, "//test", producer.WithSASL(k.Mechanism, k.User, k.Password), producer.WithTLS(k.CAFile, "", ""))
	topic := "studio.title.changes"
	if err := pub.PublishRaw(t.Context(), schema.DLQTopic(topic), []byte("k1"), []byte("garbage"), []schema.Header{
		{Key: consumer.HeaderDLQStage, Value: []byte("decode")}, {Key: consumer.HeaderDLQTopic, Value: []byte(topic)},
		{Key: consumer.HeaderDLQPartition, Value: []byte("0")}, {Key: consumer.HeaderDLQOffset, Value: []byte("7")},
	}); err != nil {
		t.Fatal(err)
	}
	list := []string{"dlq", "list", "--topic", topic, "--brokers", k.Brokers}
	creds := []string{"--kafka-sasl-mechanism", k.Mechanism, "--kafka-sasl-user", k.User, "--kafka-tls-ca", k.CAFile}

	t.Run("credentials", func(t *testing.T) {
		t.Setenv("SLATE_KAFKA_SASL_PASSWORD", k.Password)
		ctx, cancel := context.WithTimeout(t.Context(), 8*time.Second)
		defer cancel()
		out, err := runSlate(ctx, append(list, creds...)...)
		if err != nil {
			t.Fatalf("slate dlq list: %v\n%s", err, out)
		}
		for _, want := range []string{topic + "/0/7", "decode", `"k1"`, "1 dead letters"} {
			if !strings.Contains(out, want) {
				t.Errorf("list output lacks %q:\n%s", want, out)
			}
		}
	})
	for _, tt := range []struct {
		name string
		args []string
		want error
	}{
		{"wrong password", append(append([]string{}, creds...), "--kafka-sasl-password", "guess"), consumer.ErrAuth},
		{"no credentials", nil, consumer.ErrUnreachable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
			defer cancel()
			start := time.Now()
			out, err := runSlate(ctx, append(append([]string{}, list...), tt.args...)...)
			if !errors.Is(err, tt.want) || strings.Contains(out, "garbage") {
				t.Fatalf("slate dlq list = %v after %s, want %v\n%s", err, time.Since(start), tt.want, out)
			}
			t.Logf("%s: %v", tt.name, err)
		})
	}
}
