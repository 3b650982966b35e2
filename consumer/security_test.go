package consumer_test

import (
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

// secureFixture is a broker that requires SASL over TLS, a registry and a
// producer that has the credentials.
type secureFixture struct {
	k   testenv.SecureKafka
	reg *schema.RegistryClient
	pub *producer.Producer
}

func setupSecure(t *testing.T) secureFixture {
	t.Helper()
	k := testenv.StartSecureKafka(t)
	_, reg := testenv.Registry(t)
	pub := testenv.Producer(t, k.Brokers, reg, "//test",
		producer.WithSASL(k.Mechanism, k.User, k.Password), producer.WithTLS(k.CAFile, "", ""))
	return secureFixture{k: k, reg: reg, pub: pub}
}

// The credentials a client may bring to the secured broker, and what the
// broker does with them.
func (f secureFixture) clients() []struct {
	name string
	opts []consumer.Option
	want error // nil: served
} {
	k := f.k
	return []struct {
		name string
		opts []consumer.Option
		want error
	}{
		{"SASL over TLS", []consumer.Option{consumer.WithSASL(k.Mechanism, k.User, k.Password), consumer.WithTLS(k.CAFile, "", "")}, nil},
		{"wrong password", []consumer.Option{consumer.WithSASL(k.Mechanism, k.User, "guess"), consumer.WithTLS(k.CAFile, "", "")}, consumer.ErrAuth},
		{"TLS without SASL", []consumer.Option{consumer.WithTLS(k.CAFile, "", "")}, consumer.ErrUnreachable},
		{"no credentials", nil, consumer.ErrUnreachable},
	}
}

// A consumer with the credentials reads the secured broker; one without
// them fails Run with an error that says why, within its start timeout
// (at once for a refused password), instead of waiting forever.
func TestConsumerSASLAndTLS(t *testing.T) {
	f := setupSecure(t)
	topic := "studio.title.changes"
	if err := f.pub.PublishChange(t.Context(), "title", "t-1", schema.OpCreate, 1); err != nil {
		t.Fatal(err)
	}
	for i, tt := range f.clients() {
		t.Run(tt.name, func(t *testing.T) {
			var c collector
			opts := append([]consumer.Option{consumer.WithBrokers(f.k.Brokers), consumer.WithGroup("g-secure-" + string(rune('a'+i))),
				consumer.WithTopics(topic), consumer.WithRegistry(f.reg), consumer.WithStartTimeout(2 * time.Second)}, tt.opts...)
			cons, err := consumer.New(&c, opts...)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 8*time.Second)
			defer cancel()
			done := make(chan error, 1)
			start := time.Now()
			go func() { done <- cons.Run(ctx) }()
			if tt.want == nil {
				testenv.WaitFor(t, 6*time.Second, "the event", func() bool { return c.count() == 1 })
				cancel()
				if err := <-done; err != nil {
					t.Fatalf("Run = %v", err)
				}
				return
			}
			err = <-done
			if !errors.Is(err, tt.want) || ctx.Err() != nil {
				t.Fatalf("Run = %v after %s, want %v before the test's deadline", err, time.Since(start), tt.want)
			}
			if c.count() != 0 {
				t.Errorf("a refused consumer handled %d events", c.count())
			}
			if errors.Is(err, consumer.ErrAuth) && !strings.Contains(err.Error(), "SASL") {
				t.Errorf("Run = %v, want it to say SASL", err)
			}
			t.Logf("%s: %v (after %s)", tt.name, err, time.Since(start).Round(time.Millisecond))
		})
	}
}

// The dead-letter reader reaches a secured broker with the same options.
func TestReadDeadLettersSASLAndTLS(t *testing.T) {
	f := setupSecure(t)
	dlq := schema.DLQTopic("studio.title.changes")
	if err := f.pub.PublishRaw(t.Context(), dlq, []byte("k"), []byte("garbage"), []schema.Header{
		{Key: consumer.HeaderDLQStage, Value: []byte("decode")}}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range f.clients() {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 8*time.Second)
			defer cancel()
			var got []consumer.DeadLetter
			start := time.Now()
			err := consumer.ReadDeadLetters(ctx, f.k.Brokers, dlq, func(d consumer.DeadLetter) error {
				got = append(got, d)
				return nil
			}, append(tt.opts, consumer.WithStartTimeout(2*time.Second))...)
			if tt.want == nil {
				if err != nil || len(got) != 1 || string(got[0].Value) != "garbage" || got[0].Stage != "decode" {
					t.Fatalf("ReadDeadLetters = %v, %+v", err, got)
				}
				return
			}
			if !errors.Is(err, tt.want) || ctx.Err() != nil || len(got) != 0 {
				t.Fatalf("ReadDeadLetters = %v after %s, read %d; want %v before the test's deadline", err, time.Since(start), len(got), tt.want)
			}
			t.Logf("%s: %v", tt.name, err)
		})
	}
}

// Bad SASL and TLS options fail New and ReadDeadLetters before anything
// connects, naming the setting.
func TestSecurityOptionsValidate(t *testing.T) {
	h := &collector{}
	reg, err := schema.NewRegistryClient("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	base := []consumer.Option{consumer.WithBrokers("127.0.0.1:1"), consumer.WithGroup("g"), consumer.WithTopics("t"),
		consumer.WithRegistry(reg)}
	tests := []struct {
		name string
		opt  consumer.Option
		want string
	}{
		{"unknown mechanism", consumer.WithSASL("GSSAPI", "u", "p"), `sasl.mechanism "GSSAPI"`},
		{"no password", consumer.WithSASL("PLAIN", "u", ""), "sasl.password: required when sasl.username is set"},
		{"empty account", consumer.WithSASL("", "", ""), "sasl.username: required"},
		{"missing CA file", consumer.WithTLS("/nonexistent/ca.pem", "", ""), "tls.ca_file"},
		{"cert without key", consumer.WithTLS("", "/nonexistent/c.pem", ""), "tls.cert_file and tls.key_file go together"},
		{"start timeout", consumer.WithStartTimeout(0), "start timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := consumer.New(h, append(base, tt.opt)...)
			if !errors.Is(err, consumer.ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want ErrConfig saying %q", err, tt.want)
			}
			err = consumer.ReadDeadLetters(t.Context(), "127.0.0.1:1", "t.dlq", func(consumer.DeadLetter) error { return nil }, tt.opt)
			if !errors.Is(err, consumer.ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ReadDeadLetters = %v, want ErrConfig saying %q", err, tt.want)
			}
		})
	}
}
