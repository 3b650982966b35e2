package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/cdc/postgres"
	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
	slateregistry "github.com/slatehq/slate/schema/registry"
)

// cdcRows is how many row changes one pass of BenchmarkCDC drains: 10,000
// transactions of 2 updated rows.
const (
	cdcTxs     = 10000
	cdcPerTx   = 2
	cdcChanges = cdcTxs * cdcPerTx
)

func cdcDSN() string {
	if d := os.Getenv("SLATE_PG_DSN"); d != "" {
		return d
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// cdcFixture is a table, its publication, and the WAL of cdcChanges
// committed updates waiting in one slot per contender.
type cdcFixture struct {
	db      *pgx.Conn
	table   string
	pub     string
	brokers string
	reg     *schema.RegistryClient
	prod    *producer.Producer
}

func newCDCFixture(b *testing.B) *cdcFixture {
	b.Helper()
	ctx := context.Background()
	db, err := pgx.Connect(ctx, cdcDSN())
	if err != nil {
		if os.Getenv("CI") == "true" {
			b.Fatal(err)
		}
		b.Skipf("PostgreSQL (wal_level=logical) not reachable at SLATE_PG_DSN=%s: %v", cdcDSN(), err)
	}
	b.Cleanup(func() { _ = db.Close(context.Background()) })
	f := &cdcFixture{db: db, table: fmt.Sprintf("bench_cdc_%d", rand.IntN(1e9))}
	f.pub = f.table
	for _, q := range []string{
		fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, v bigint NOT NULL, note text NOT NULL, at timestamptz NOT NULL DEFAULT now())", f.table),
		fmt.Sprintf("INSERT INTO %s SELECT g, 0, md5(g::text), now() FROM generate_series(1, 1000) g", f.table),
		fmt.Sprintf("CREATE PUBLICATION %s FOR TABLE %s", f.pub, f.table),
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() {
		_, _ = db.Exec(context.Background(), "DROP PUBLICATION IF EXISTS "+f.pub)
		_, _ = db.Exec(context.Background(), "DROP TABLE IF EXISTS "+f.table)
	})
	bk, err := broker.Start()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bk.Close)
	srv, err := slateregistry.New(ctx)
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	b.Cleanup(hs.Close)
	if f.reg, err = schema.NewRegistryClient(hs.URL); err != nil {
		b.Fatal(err)
	}
	f.brokers = bk.Addr()
	if f.prod, err = producer.New(producer.WithBrokers(f.brokers), producer.WithRegistry(f.reg), producer.WithSource("//pg")); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.prod.Close(context.Background()) })
	return f
}

// prepare creates a slot and then commits the workload, so the slot holds
// exactly cdcChanges row changes to drain.
func (f *cdcFixture) prepare(b *testing.B, slot string) {
	b.Helper()
	ctx := context.Background()
	if _, err := f.db.Exec(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", slot); err != nil {
		b.Fatal(err)
	}
	work := fmt.Sprintf(`DO $$ BEGIN FOR i IN 1..%d LOOP
		UPDATE %s SET v = v + 1, at = now() WHERE id IN (1 + (i * 7) %% 500, 501 + (i * 13) %% 500);
		COMMIT; END LOOP; END $$`, cdcTxs, f.table)
	if _, err := f.db.Exec(ctx, work); err != nil {
		b.Fatal(err)
	}
}

var cdcSlots atomic.Int64

// dropSlot drops a drained slot (retrying while its walsender exits).
func (f *cdcFixture) dropSlot(b *testing.B, slot string) {
	var err error
	for i := 0; i < 50; i++ {
		if _, err = f.db.Exec(context.Background(), "SELECT pg_drop_replication_slot($1)", slot); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatalf("drop slot %s: %v", slot, err)
}

// rawDecode drains the slot with nothing but pglogrepl: receive, parse
// every pgoutput message, count the updates. No Avro, no Kafka.
func (f *cdcFixture) rawDecode(b *testing.B, slot string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pc, err := pgconn.ParseConfig(cdcDSN())
	if err != nil {
		b.Fatal(err)
	}
	pc.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, pc)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := pglogrepl.StartReplication(ctx, conn, slot, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names '" + f.pub + "'"},
	}); err != nil {
		b.Fatal(err)
	}
	n := 0
	for n < cdcChanges {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			b.Fatalf("after %d updates: %v", n, err)
		}
		cd, ok := msg.(*pgproto3.CopyData)
		if !ok || len(cd.Data) == 0 || cd.Data[0] != pglogrepl.XLogDataByteID {
			continue
		}
		xld, err := pglogrepl.ParseXLogData(cd.Data[1:])
		if err != nil {
			b.Fatal(err)
		}
		m, err := pglogrepl.Parse(xld.WALData)
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := m.(*pglogrepl.UpdateMessage); ok {
			n++
		}
	}
}

// countingPublisher publishes through the producer and says when every
// change was acknowledged.
type countingPublisher struct {
	p    *producer.Producer
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (c *countingPublisher) Publish(ctx context.Context, topic string, envs ...schema.Envelope) error {
	if err := c.p.Publish(ctx, topic, envs...); err != nil {
		return err
	}
	if c.n.Add(int64(len(envs))) >= c.want {
		select {
		case <-c.done:
		default:
			close(c.done)
		}
	}
	return nil
}

// PublishAsync makes countingPublisher a cdc.AsyncPublisher, as the
// producer it wraps is: the runner streams through it.
func (c *countingPublisher) PublishAsync(ctx context.Context, topic string, e schema.Envelope, fn func(producer.Delivery)) error {
	return c.p.PublishAsync(ctx, topic, e, func(d producer.Delivery) {
		fn(d)
		if d.Err == nil && c.n.Add(1) == c.want {
			close(c.done)
		}
	})
}

// slate drains the slot through postgres.Source and cdc.Runner: decode,
// Avro row records, envelopes, publish, wait for the broker's ack.
func (f *cdcFixture) slate(b *testing.B, slot string) {
	src, err := postgres.New(postgres.Config{DSN: cdcDSN(), Slot: slot, Publication: f.pub, StateTable: "-",
		StatusInterval: time.Second}, postgres.WithRegistry(f.reg))
	if err != nil {
		b.Fatal(err)
	}
	pub := &countingPublisher{p: f.prod, want: cdcChanges, done: make(chan struct{})}
	r, err := cdc.NewRunner(pub)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx, src) }()
	select {
	case <-pub.done:
	case err := <-errc:
		b.Fatalf("runner stopped: %v", err)
	case <-time.After(2 * time.Minute):
		b.Fatalf("only %d of %d changes acknowledged", pub.n.Load(), cdcChanges)
	}
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCDC compares, in one run over the same WAL, how fast slate
// moves row changes from the WAL to acknowledged Kafka records against how
// fast bare pglogrepl only decodes them.
func BenchmarkCDC(b *testing.B) {
	f := newCDCFixture(b)
	for _, c := range []struct {
		name string
		run  func(*testing.B, string)
	}{
		{"raw-pglogrepl-decode", f.rawDecode},
		{"slate-wal-to-kafka-ack", f.slate},
	} {
		b.Run(c.name, func(b *testing.B) {
			var total, cpu time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				slot := fmt.Sprintf("%s_%d", f.table, cdcSlots.Add(1))
				f.prepare(b, slot)
				b.StartTimer()
				start, cpu0 := time.Now(), processCPU()
				c.run(b, slot)
				total += time.Since(start)
				cpu += processCPU() - cpu0
				b.StopTimer()
				f.dropSlot(b, slot)
				b.StartTimer()
			}
			b.ReportMetric(float64(cdcChanges*b.N)/total.Seconds(), "changes/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(cdcChanges*b.N), "cpu-µs/change")
		})
	}
}

// processCPU is the CPU time this process used so far, every thread
// (librdkafka's and the in-process broker's too).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCDCPaired runs the two contenders of BenchmarkCDC alternately,
// one pass each per iteration, and reports both rates and their ratio: on
// a shared machine whose load drifts, the pairs see the same load where
// two consecutive sub-benchmarks may not.
func BenchmarkCDCPaired(b *testing.B) {
	f := newCDCFixture(b)
	var raw, slate time.Duration
	for i := 0; i < b.N; i++ {
		for _, c := range []struct {
			run   func(*testing.B, string)
			total *time.Duration
		}{{f.rawDecode, &raw}, {f.slate, &slate}} {
			b.StopTimer()
			slot := fmt.Sprintf("%s_%d", f.table, cdcSlots.Add(1))
			f.prepare(b, slot)
			b.StartTimer()
			start := time.Now()
			c.run(b, slot)
			*c.total += time.Since(start)
			b.StopTimer()
			f.dropSlot(b, slot)
			b.StartTimer()
		}
	}
	n := float64(cdcChanges * b.N)
	b.ReportMetric(n/raw.Seconds(), "raw-changes/s")
	b.ReportMetric(n/slate.Seconds(), "slate-changes/s")
	b.ReportMetric(raw.Seconds()/slate.Seconds(), "ratio")
}
