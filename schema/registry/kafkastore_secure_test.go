package registry_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema/registry"
)

// The registry's Kafka store reaches a broker that requires SASL over TLS
// with KafkaSASL and KafkaTLS: what one server registers, a second server
// over the same topic serves. Without the credentials NewKafkaStore fails
// before its context ends (at once for a wrong password), naming the
// store.
func TestKafkaStoreSASLAndTLS(t *testing.T) {
	k := testenv.StartSecureKafka(t)
	creds := []registry.KafkaStoreOption{registry.KafkaSASL(k.Mechanism, k.User, k.Password), registry.KafkaTLS(k.CAFile, "", "")}

	first := newTestRegistry(t, registry.WithStore(kafkaStore(t, k.Brokers, creds...)))
	id, _, err := first.client.CreateSchema(context.Background(), "a", schemaA)
	if err != nil {
		t.Fatal(err)
	}
	second := newTestRegistry(t, registry.WithStore(kafkaStore(t, k.Brokers, creds...)))
	if got, err := second.client.GetSchema(context.Background(), id); err != nil || got == nil {
		t.Fatalf("second server: schema %d = %v, %v", id, got, err)
	}

	for _, tt := range []struct {
		name     string
		opts     []registry.KafkaStoreOption
		promptly bool // refused within a second, not at the deadline
	}{
		{"wrong password", []registry.KafkaStoreOption{registry.KafkaSASL(k.Mechanism, k.User, "guess"), registry.KafkaTLS(k.CAFile, "", "")}, true},
		{"TLS without SASL", []registry.KafkaStoreOption{registry.KafkaTLS(k.CAFile, "", "")}, false},
		{"no credentials", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			start := time.Now()
			s, err := registry.NewKafkaStore(ctx, []string{k.Brokers}, tt.opts...)
			if err == nil {
				s.Close()
				t.Fatal("NewKafkaStore succeeded")
			}
			took := time.Since(start)
			if !errors.Is(err, registry.ErrKafkaStore) || took > 3*time.Second || (tt.promptly && took > time.Second) {
				t.Fatalf("NewKafkaStore = %v after %s", err, took)
			}
			t.Logf("%s: %v (after %s)", tt.name, err, took.Round(time.Millisecond))
		})
	}
}

// Bad security options fail NewKafkaStore before it connects, naming the
// setting.
func TestKafkaStoreSecurityOptionsValidate(t *testing.T) {
	for _, tt := range []struct {
		opt  registry.KafkaStoreOption
		want string
	}{
		{registry.KafkaSASL("GSSAPI", "u", "p"), `sasl.mechanism "GSSAPI"`},
		{registry.KafkaSASL("PLAIN", "u", ""), "sasl.password: required when sasl.username is set"},
		{registry.KafkaTLS("/nonexistent/ca.pem", "", ""), "tls.ca_file"},
		{registry.KafkaTLS("", "c.pem", ""), "tls.cert_file and tls.key_file go together"},
	} {
		_, err := registry.NewKafkaStore(context.Background(), []string{"127.0.0.1:1"}, tt.opt)
		if !errors.Is(err, registry.ErrKafkaStore) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewKafkaStore = %v, want an error saying %q", err, tt.want)
		}
	}
}
