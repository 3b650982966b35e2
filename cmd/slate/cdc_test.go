package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/producer"
	financev1 "github.com/slatehq/slate/proto/finance/v1"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/services/finance"
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

// slate cdc with its default outbox settings publishes the events of the
// finance service, whose tables and outbox live in a schema of their own
// (its connections' search path), to studio.budget.changes: a budget
// write whose outbox row the database refuses publishes nothing, the next
// one publishes its UPDATE, and published rows are deleted from the
// service's outbox (--outbox-delete).
func TestCDCPublishesTheFinanceOutbox(t *testing.T) {
	// SLATE_MYSQL_DSN (set for the MariaDB tests) would be --mysql-dsn,
	// and slate cdc would capture MariaDB instead.
	t.Setenv("SLATE_MYSQL_DSN", "")
	dsn := os.Getenv("SLATE_PG_DSN")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		testenv.Unavailable(t, "PostgreSQL", "start one with wal_level=logical and set SLATE_PG_DSN", err)
	}
	defer admin.Close(context.Background())
	b := make([]byte, 6)
	rand.Read(b)
	name := "slate_cdc_finance_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, `CREATE SCHEMA `+name); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec(context.Background(), `DROP SCHEMA `+name+` CASCADE`)
	defer func() {
		bg := context.Background()
		for range 50 {
			if _, err := admin.Exec(bg, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, name); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		admin.Exec(bg, `DROP PUBLICATION IF EXISTS `+name)
		admin.Exec(bg, `DELETE FROM slate_cdc_state WHERE slot = $1`, name)
	}()

	env := testenv.Start(t, "//test")
	codec, err := schema.NewCodec(env.Registry)
	if err != nil {
		t.Fatal(err)
	}
	outbox, err := producer.NewOutbox(codec, "finance")
	if err != nil {
		t.Fatal(err)
	}
	// The service's sessions have its schema as their search path.
	sep := " "
	if strings.Contains(dsn, "://") {
		sep = "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
	}
	store, err := finance.OpenPostgresStore(ctx, dsn+sep+"search_path="+name, outbox)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	srv := finance.NewServer(nil, store)

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- execute(runCtx, []string{"cdc", "--pg-dsn", dsn, "--slot", name, "--publication", name,
			"--tables", name + "." + producer.OutboxTable, "--outbox-delete", "--status-interval", "100ms",
			"--brokers", env.Brokers, "--registry-url", env.RegistryURL, "--metrics-port", "0", "--log-level", "error"})
	}()
	defer func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("slate cdc: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("slate cdc did not stop")
		}
	}()
	testenv.WaitFor(t, 60*time.Second, "slate cdc streaming from its slot", func() bool {
		var active bool
		err := admin.QueryRow(ctx, `SELECT active FROM pg_replication_slots WHERE slot_name = $1`, name).Scan(&active)
		return err == nil && active
	})
	// caughtUp waits until the slot confirmed all written so far, that is
	// until Kafka acknowledged every event committed before now.
	caughtUp := func() {
		t.Helper()
		var now string
		if err := admin.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&now); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 20*time.Second, "the slot to confirm "+now, func() bool {
			var ok bool
			err := admin.QueryRow(ctx, `SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1`, name, now).Scan(&ok)
			return err == nil && ok
		})
	}
	topic := schema.ChangesTopic(finance.EntityType)
	// want reads the topic to its end offsets and compares its records
	// with events.
	want := func(events ...string) {
		t.Helper()
		recs := testenv.ReadTopic(t, env.Brokers, env.Registry, topic)
		var got []string
		for _, r := range recs {
			got = append(got, fmt.Sprintf("key %s: %s %s %s seq %d source %s, %d bytes of data",
				r.Key, r.Env.Type, r.Env.EntityType, r.Env.Subject, r.Env.Sequence, r.Env.Source, len(r.Env.Data)))
		}
		if strings.Join(got, "\n") != strings.Join(events, "\n") {
			t.Fatalf("%s holds\n%s\nwant\n%s", topic, strings.Join(got, "\n"), strings.Join(events, "\n"))
		}
	}
	budget := func(amount int64) *financev1.Budget {
		return &financev1.Budget{TitleId: "t1", LineItems: []*financev1.LineItem{
			{Category: "cast", Amount: amount, Currency: "USD", Profile: "production"}}}
	}

	if _, err := srv.PutBudget(ctx, &financev1.PutBudgetRequest{Budget: budget(100)}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "the CREATE on "+topic, func() bool {
		return len(testenv.ReadTopic(t, env.Brokers, env.Registry, topic)) > 0
	})
	caughtUp()
	want("key t1: CREATE budget t1 seq 1 source finance, 0 bytes of data")

	if _, err := admin.Exec(ctx, `ALTER TABLE `+name+`.`+producer.OutboxTable+` ADD CONSTRAINT refuse CHECK (type <> 'UPDATE')`); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.PutBudget(ctx, &financev1.PutBudgetRequest{Budget: budget(200), ExpectedVersion: proto.Int64(1)}); err == nil {
		t.Fatal("PutBudget whose outbox row is refused succeeded")
	}
	caughtUp()
	want("key t1: CREATE budget t1 seq 1 source finance, 0 bytes of data")
	got, err := srv.GetBudget(ctx, &financev1.GetBudgetRequest{TitleId: "t1"})
	if err != nil || got.GetBudget().GetVersion() != 1 || got.GetBudget().GetLineItems()[0].GetAmount() != 100 {
		t.Fatalf("GetBudget after the refused write = %v, %v; want version 1 unchanged", got, err)
	}

	if _, err := admin.Exec(ctx, `ALTER TABLE `+name+`.`+producer.OutboxTable+` DROP CONSTRAINT refuse`); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.PutBudget(ctx, &financev1.PutBudgetRequest{Budget: budget(200), ExpectedVersion: proto.Int64(1)}); err != nil {
		t.Fatal(err)
	}
	caughtUp()
	want("key t1: CREATE budget t1 seq 1 source finance, 0 bytes of data", "key t1: UPDATE budget t1 seq 2 source finance, 0 bytes of data")
	testenv.WaitFor(t, 10*time.Second, "the published rows deleted from the service's outbox", func() bool {
		var n int
		err := admin.QueryRow(ctx, `SELECT count(*) FROM `+name+`.`+producer.OutboxTable).Scan(&n)
		return err == nil && n == 0
	})
}

// slate cdc refuses a PostgreSQL and a MariaDB source at once, whether
// they come from flags or from the environment, before it connects to
// anything.
func TestCDCRefusesTwoSources(t *testing.T) {
	t.Setenv("SLATE_PG_DSN", "")
	t.Setenv("SLATE_MYSQL_DSN", "")
	unreachable := []string{"--registry-url", "http://127.0.0.1:1", "--brokers", "127.0.0.1:1"}
	err := execute(context.Background(), append([]string{"cdc", "--pg-dsn", "postgres://nobody@127.0.0.1:1/none",
		"--mysql-dsn", "root@tcp(127.0.0.1:1)/test"}, unreachable...))
	if err == nil || !strings.Contains(err.Error(), "--pg-dsn and --mysql-dsn are both set") {
		t.Errorf("slate cdc --pg-dsn --mysql-dsn = %v, want an error naming both", err)
	}
	t.Setenv("SLATE_PG_DSN", "postgres://nobody@127.0.0.1:1/none")
	t.Setenv("SLATE_MYSQL_DSN", "root@tcp(127.0.0.1:1)/test")
	err = execute(context.Background(), append([]string{"cdc"}, unreachable...))
	if err == nil || !strings.Contains(err.Error(), "SLATE_MYSQL_DSN") {
		t.Errorf("SLATE_PG_DSN=… SLATE_MYSQL_DSN=… slate cdc = %v, want an error naming both", err)
	}
}
