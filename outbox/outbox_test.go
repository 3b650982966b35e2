package outbox_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/outbox"
	"github.com/slatehq/slate/schema"
)

// unavailable skips the test when a local server is missing, except under
// CI=true, where it fails.
func unavailable(t *testing.T, what, how string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s unreachable: %v", what, err)
	}
	t.Skipf("%s unreachable (%v); %s", what, err, how)
}

func newCodec(t *testing.T) *schema.Codec {
	t.Helper()
	_, reg := testenv.Registry(t)
	c, err := schema.NewCodec(reg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pgConn(t *testing.T) *pgx.Conn {
	t.Helper()
	dsn := os.Getenv("SLATE_PG_DSN")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		unavailable(t, "PostgreSQL", "start one and set SLATE_PG_DSN", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

type outboxRow struct {
	id, aggType, aggID, typ string
	payload                 []byte
}

// outboxBackend is one database the outbox contract runs on.
type outboxBackend struct {
	// begin starts a tx; write writes a change in it; commit or rollback
	// ends it.
	begin    func(t *testing.T) (write func(entityType, id string, op schema.Op, seq int64) (schema.Envelope, error), commit, rollback func() error)
	rowsFor  func(t *testing.T, aggID string) []outboxRow
	writeBad func(t *testing.T, e schema.Envelope) error
}

func pgBackend(t *testing.T, o *outbox.Writer) outboxBackend {
	conn := pgConn(t)
	ctx := context.Background()
	if err := outbox.Ensure(ctx, conn); err != nil {
		t.Fatal(err)
	}
	var written []string
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), `DELETE FROM `+outbox.Table+` WHERE id::text = ANY($1)`, written)
	})
	return outboxBackend{
		begin: func(t *testing.T) (func(string, string, schema.Op, int64) (schema.Envelope, error), func() error, func() error) {
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return func(et, id string, op schema.Op, seq int64) (schema.Envelope, error) {
					e, err := o.WriteChange(ctx, tx, et, id, op, seq)
					written = append(written, e.ID)
					return e, err
				}, func() error { return tx.Commit(ctx) },
				func() error { return tx.Rollback(ctx) }
		},
		rowsFor: func(t *testing.T, aggID string) []outboxRow {
			rs, err := conn.Query(ctx, `SELECT id::text, aggregatetype, aggregateid, type, payload FROM `+outbox.Table+` WHERE aggregateid = $1`, aggID)
			if err != nil {
				t.Fatal(err)
			}
			defer rs.Close()
			var out []outboxRow
			for rs.Next() {
				var r outboxRow
				if err := rs.Scan(&r.id, &r.aggType, &r.aggID, &r.typ, &r.payload); err != nil {
					t.Fatal(err)
				}
				out = append(out, r)
			}
			if err := rs.Err(); err != nil {
				t.Fatal(err)
			}
			return out
		},
		writeBad: func(t *testing.T, e schema.Envelope) error {
			tx, err := conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback(ctx) }()
			return o.Write(ctx, tx, e)
		},
	}
}

func TestOutbox(t *testing.T) {
	codec := newCodec(t)
	o, err := outbox.New(codec, "//studio/titles")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		backend func(*testing.T, *outbox.Writer) outboxBackend
	}{
		{"postgres", pgBackend},
		{"mysql", func(t *testing.T, o *outbox.Writer) outboxBackend { return mysqlBackend(t, mysqlDB(t), o) }},
	} {
		t.Run(tt.name, func(t *testing.T) { runOutboxContract(t, codec, tt.backend(t, o)) })
	}
}

func TestNewValidates(t *testing.T) {
	codec := newCodec(t)
	tests := []struct {
		name   string
		codec  *schema.Codec
		source string
		opts   []outbox.Option
		want   string
	}{
		{"no codec", nil, "//s", nil, "codec is nil"},
		{"no source", codec, "", nil, "source is empty"},
		{"bad topic prefix", codec, "//s", []outbox.Option{outbox.WithTopicPrefix("acme prod.")}, `WithTopicPrefix: schema: invalid topic prefix: "acme prod."`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := outbox.New(tt.codec, tt.source, tt.opts...)
			if !errors.Is(err, outbox.ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrConfig saying %q", err, tt.want)
			}
		})
	}
}

// TestWriterTopicPrefix checks that payloads are encoded for the changes
// topic under the writer's prefix: its value subject is registered.
func TestWriterTopicPrefix(t *testing.T) {
	_, reg := testenv.Registry(t)
	codec, err := schema.NewCodec(reg)
	if err != nil {
		t.Fatal(err)
	}
	o, err := outbox.New(codec, "//studio/titles", outbox.WithTopicPrefix("acme."))
	if err != nil {
		t.Fatal(err)
	}
	b := pgBackend(t, o)
	write, commit, _ := b.begin(t)
	if _, err := write("title", "t-prefix-"+schema.NewID(), schema.OpCreate, 1); err != nil {
		t.Fatal(err)
	}
	if err := commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Client().GetLatestSchema(context.Background(), schema.ValueSubject("acme.title.changes")); err != nil {
		t.Fatalf("subject of acme.title.changes: %v", err)
	}
}

// TestOutboxDDLMySQL checks that MariaDB/MySQL accepts the outbox DDL and
// the insert's column list, through the mysql command-line client.
func TestOutboxDDLMySQL(t *testing.T) {
	bin, err := exec.LookPath("mysql")
	if err != nil {
		unavailable(t, "mysql client", "install the MariaDB client", err)
	}
	table := "slate_outbox_ddl_" + strings.ReplaceAll(schema.NewID()[:8], "-", "")
	ddl := strings.Replace(outbox.DDLMySQL, outbox.Table, table, 1)
	script := ddl + ";\n" +
		"INSERT INTO " + table + " (id, aggregatetype, aggregateid, type, payload, created_at) VALUES ('" + schema.NewID() +
		"', 'title', 't-1', 'CREATE', x'0000000001', UTC_TIMESTAMP(6));\n" +
		"SELECT COUNT(*) FROM " + table + ";\nDROP TABLE " + table + ";\n"
	cmd := exec.Command(bin, "-h127.0.0.1", "-P3306", "-uroot", "-N", "test")
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "Can't connect") {
			unavailable(t, "MariaDB", "start it on 127.0.0.1:3306", err)
		}
		t.Fatalf("mysql: %v: %s", err, out)
	}
	if strings.TrimSpace(string(out)) != "1" {
		t.Fatalf("mysql output %q, want 1 row", out)
	}
}
