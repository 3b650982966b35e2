package producer_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
)

// cluster starts a kfake cluster with opts and returns its address.
func cluster(t *testing.T, opts ...kfake.Opt) string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

func producerAt(t *testing.T, brokers string, reg schema.Registry, opts ...producer.Option) (*producer.Producer, error) {
	t.Helper()
	p, err := producer.New(append([]producer.Option{producer.WithBrokers(brokers), producer.WithRegistry(reg),
		producer.WithSource("//studio/titles"), producer.WithStartTimeout(3 * time.Second)}, opts...)...)
	if err == nil {
		t.Cleanup(func() { _ = p.Close(context.Background()) })
	}
	return p, err
}

func withData(t *testing.T, n int) schema.Envelope {
	t.Helper()
	e := schema.NewEnvelope("//studio/titles", schema.OpUpdate, "title", "t-big")
	e.Data = make([]byte, n)
	_, _ = rand.Read(e.Data) // incompressible
	e.DataContentType = schema.ContentTypeJSON
	return e
}

func TestPublishErrorsNameTheCause(t *testing.T) {
	reg := start(t).reg
	ctx := context.Background()

	t.Run("record larger than the broker accepts", func(t *testing.T) {
		addr := cluster(t, kfake.AllowAutoTopicCreation(), kfake.BrokerConfigs(map[string]string{"message.max.bytes": "4096"}))
		p, err := producerAt(t, addr, reg)
		if err != nil {
			t.Fatal(err)
		}
		// A small record passes, so the limit is what fails the big one.
		if err := p.Publish(ctx, "studio.title.changes", withData(t, 100)); err != nil {
			t.Fatalf("small record: %v", err)
		}
		err = p.Publish(ctx, "studio.title.changes", withData(t, 16<<10))
		wantErr(t, err, producer.ErrTooLarge, "message.max.bytes")
	})

	t.Run("record larger than the client accepts", func(t *testing.T) {
		addr := cluster(t, kfake.AllowAutoTopicCreation())
		p, err := producerAt(t, addr, reg, producer.WithKafkaConfig(map[string]any{"message.max.bytes": 10000}))
		if err != nil {
			t.Fatal(err)
		}
		err = p.Publish(ctx, "studio.title.changes", withData(t, 20000))
		wantErr(t, err, producer.ErrTooLarge, "message.max.bytes")
	})

	t.Run("unknown topic without auto-create", func(t *testing.T) {
		addr := cluster(t, kfake.SeedTopics(1, "studio.title.changes"))
		p, err := producerAt(t, addr, reg, producer.WithKafkaConfig(map[string]any{"topic.metadata.propagation.max.ms": 1000}))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.PublishChange(ctx, "title", "t-1", schema.OpCreate, 1); err != nil {
			t.Fatalf("existing topic: %v", err)
		}
		tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		err = p.PublishChange(tctx, "budget", "b-1", schema.OpCreate, 1)
		wantErr(t, err, producer.ErrUnknownTopic, "studio.budget.changes")
	})

	t.Run("librdkafka setting it does not accept", func(t *testing.T) {
		for _, cm := range []map[string]any{{"no.such.setting": 1}, {"linger.ms": struct{}{}}} {
			if _, err := producerAt(t, "127.0.0.1:1", reg, producer.WithKafkaConfig(cm)); !errors.Is(err, producer.ErrConfig) {
				t.Errorf("WithKafkaConfig(%v): err = %v, want ErrConfig", cm, err)
			}
		}
	})

	t.Run("unreachable broker at start", func(t *testing.T) {
		_, err := producerAt(t, "127.0.0.1:1", reg, producer.WithStartTimeout(500*time.Millisecond))
		// A broker may come back: trying New again later can succeed.
		wantErrRetry(t, err, producer.ErrUnreachable, "127.0.0.1:1", true)
	})

	t.Run("wrong SASL password at start", func(t *testing.T) {
		addr := cluster(t, kfake.AllowAutoTopicCreation(), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "svc", "right"))
		_, err := producerAt(t, addr, reg, producer.WithSASL("SCRAM-SHA-256", "svc", "wrong"))
		wantErr(t, err, producer.ErrAuth, "SASL")
	})
}

func wantErr(t *testing.T, err, sentinel error, says string) {
	t.Helper()
	wantErrRetry(t, err, sentinel, says, false)
}

func wantErrRetry(t *testing.T, err, sentinel error, says string, retryable bool) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("err = %v, want %v", err, sentinel)
	}
	if !strings.Contains(err.Error(), says) {
		t.Fatalf("err = %q, want it to say %q", err, says)
	}
	if producer.IsRetryable(err) != retryable {
		t.Fatalf("IsRetryable(%v) = %v, want %v", err, !retryable, retryable)
	}
	t.Logf("error: %v", err)
}

func TestSASL(t *testing.T) {
	reg := start(t).reg
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			addr := cluster(t, kfake.AllowAutoTopicCreation(), kfake.EnableSASL(), kfake.Superuser(mech, "svc", "s3cret"))
			p, err := producerAt(t, addr, reg, producer.WithSASL(mech, "svc", "s3cret"))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.PublishChange(context.Background(), "title", "t-1", schema.OpCreate, 1); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSecurityOptionsValidate(t *testing.T) {
	reg := start(t).reg
	tests := []struct {
		name string
		opt  producer.Option
		want string
	}{
		{"unknown mechanism", producer.WithSASL("GSSAPI", "u", "p"), `mechanism "GSSAPI"`},
		{"no user", producer.WithSASL("PLAIN", "", "p"), "sasl.username: required"},
		{"missing CA file", producer.WithTLS("/nonexistent/ca.pem", "", ""), "tls.ca_file"},
		{"cert without key", producer.WithTLS("", "/nonexistent/c.pem", ""), "tls.cert_file and tls.key_file go together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := producerAt(t, "127.0.0.1:1", reg, tt.opt)
			if !errors.Is(err, producer.ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrConfig saying %q", err, tt.want)
			}
		})
	}
}

// countRecords reads topic from the start until n records arrived or 10s
// passed, and returns how many it saw.
func countRecords(t *testing.T, brokers, topic string, n int) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	seen := 0
	for seen < n && ctx.Err() == nil {
		seen += len(cl.PollFetches(ctx).Records())
	}
	return seen
}

func TestAsyncDrain(t *testing.T) {
	const n = 2000
	ctx := context.Background()
	tests := []struct {
		name  string
		drain func(*producer.Producer) error
	}{
		{"Flush", func(p *producer.Producer) error { return p.Flush(ctx) }},
		{"Close", func(p *producer.Producer) error { return p.Close(ctx) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t)
			p := newProducer(t, e)
			var delivered, failed atomic.Int64
			var mu sync.Mutex
			seen := make(map[string]int, n)
			for i := range n {
				env := p.NewChange(ctx, "title", "t-"+string(rune('a'+i%26)), schema.OpUpdate, int64(i))
				err := p.PublishAsync(ctx, schema.ChangesTopic("title"), env, func(d producer.Delivery) {
					mu.Lock()
					seen[d.ID]++
					mu.Unlock()
					if d.Err != nil {
						failed.Add(1)
						return
					}
					delivered.Add(1)
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := tt.drain(p); err != nil {
				t.Fatal(err)
			}
			// Flush and Close return only after every callback ran.
			if delivered.Load() != n || failed.Load() != 0 {
				t.Fatalf("delivered %d, failed %d, want %d delivered", delivered.Load(), failed.Load(), n)
			}
			mu.Lock()
			for id, c := range seen {
				if c != 1 {
					t.Fatalf("callback for %s ran %d times", id, c)
				}
			}
			mu.Unlock()
			if got := countRecords(t, e.brokers, schema.ChangesTopic("title"), n); got != n {
				t.Fatalf("%d records on the topic, want %d", got, n)
			}
		})
	}

	t.Run("Close past its deadline fails the rest", func(t *testing.T) {
		reg := start(t).reg
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		p, err := producer.New(producer.WithBrokers(c.ListenAddrs()[0]), producer.WithRegistry(reg), producer.WithSource("//s"))
		if err != nil {
			t.Fatal(err)
		}
		c.Close() // nothing will be acknowledged now
		var failed atomic.Int64
		for i := range 10 {
			env := p.NewChange(ctx, "title", "t-1", schema.OpUpdate, int64(i))
			if err := p.PublishAsync(ctx, "studio.title.changes", env, func(d producer.Delivery) {
				if d.Err != nil {
					failed.Add(1)
				}
			}); err != nil {
				t.Fatal(err)
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		err = p.Close(cctx)
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "outstanding") {
			t.Fatalf("Close = %v, want a deadline error counting outstanding records", err)
		}
		if failed.Load() != 10 {
			t.Fatalf("%d deliveries failed, want all 10 reported failed", failed.Load())
		}
		if err := p.PublishAsync(ctx, "studio.title.changes", p.NewChange(ctx, "title", "t-1", schema.OpUpdate, 1), func(producer.Delivery) {}); !errors.Is(err, producer.ErrClosed) {
			t.Fatalf("publish after Close = %v, want ErrClosed", err)
		}
	})
}
