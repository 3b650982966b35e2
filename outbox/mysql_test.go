package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/go-mysql-org/go-mysql/driver"

	"github.com/slatehq/slate/outbox"
	"github.com/slatehq/slate/schema"
)

// goMySQLDSN turns a DSN in the form SLATE_MYSQL_DSN uses
// (user[:password]@tcp(host:port)/db[?params], the go-sql-driver form)
// into the form of the go-mysql driver (user[:password]@host:port/db).
// Parameters are dropped: the two drivers do not share them. Any other
// form is returned unchanged.
func goMySQLDSN(dsn string) string {
	user, rest, ok := strings.Cut(dsn, "@tcp(")
	if !ok {
		return dsn
	}
	addr, db, ok := strings.Cut(rest, ")")
	if !ok {
		return dsn
	}
	db, _, _ = strings.Cut(db, "?")
	return user + "@" + addr + db
}

func TestGoMySQLDSN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"root@tcp(127.0.0.1:3306)/test", "root@127.0.0.1:3306/test"},
		{"app:secret@tcp(db:3307)/studio?parseTime=true", "app:secret@db:3307/studio"},
		{"root@127.0.0.1:3306/test", "root@127.0.0.1:3306/test"},
		{"root@127.0.0.1:3306?test", "root@127.0.0.1:3306?test"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := goMySQLDSN(tt.in); got != tt.want {
				t.Errorf("goMySQLDSN(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// mysqlDB opens SLATE_MYSQL_DSN (default the local MariaDB's test
// database) through the go-mysql database/sql driver.
func mysqlDB(t *testing.T) *sql.DB {
	t.Helper()
	dsn := os.Getenv("SLATE_MYSQL_DSN")
	if dsn == "" {
		dsn = "root@tcp(127.0.0.1:3306)/test"
	}
	db, err := sql.Open("mysql", goMySQLDSN(dsn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		unavailable(t, "MariaDB", "start MariaDB or MySQL and set SLATE_MYSQL_DSN", err)
	}
	return db
}

// mysqlBackend is the outbox contract's backend on db.
func mysqlBackend(t *testing.T, db *sql.DB, o *outbox.Writer) outboxBackend {
	ctx := context.Background()
	if err := outbox.EnsureMySQL(ctx, db); err != nil {
		t.Fatal(err)
	}
	var written []string
	t.Cleanup(func() {
		for _, id := range written {
			_, _ = db.ExecContext(context.Background(), `DELETE FROM `+outbox.Table+` WHERE id = ?`, id)
		}
	})
	begin := func(t *testing.T) *sql.Tx {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}
	return outboxBackend{
		begin: func(t *testing.T) (func(string, string, schema.Op, int64) (schema.Envelope, error), func() error, func() error) {
			tx := begin(t)
			return func(et, id string, op schema.Op, seq int64) (schema.Envelope, error) {
				e, err := o.WriteChangeMySQL(ctx, tx, et, id, op, seq)
				written = append(written, e.ID)
				return e, err
			}, tx.Commit, tx.Rollback
		},
		rowsFor: func(t *testing.T, aggID string) []outboxRow {
			rs, err := db.QueryContext(ctx, `SELECT id, aggregatetype, aggregateid, type, payload FROM `+outbox.Table+` WHERE aggregateid = ?`, aggID)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = rs.Close() }()
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
			tx := begin(t)
			defer func() { _ = tx.Rollback() }()
			return o.WriteMySQL(ctx, tx, e)
		},
	}
}

// TestOutboxMySQLCreatedAt checks what only the MySQL path converts: the
// row's created_at is the envelope time in UTC, to the microsecond. (The
// outbox contract runs on MySQL in TestOutbox.)
func TestOutboxMySQLCreatedAt(t *testing.T) {
	codec := newCodec(t)
	o, err := outbox.New(codec, "//studio/titles")
	if err != nil {
		t.Fatal(err)
	}
	db := mysqlDB(t)
	b := mysqlBackend(t, db, o)
	t.Run("created_at is the envelope time in UTC", func(t *testing.T) {
		write, commit, _ := b.begin(t)
		e, err := write("title", "t-"+schema.NewID(), schema.OpDelete, 7)
		if err != nil {
			t.Fatal(err)
		}
		if err := commit(); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := db.QueryRowContext(context.Background(), `SELECT DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f') FROM `+outbox.Table+` WHERE id = ?`, e.ID).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := e.Time.UTC().Format("2006-01-02 15:04:05.000000"); got != want {
			t.Errorf("created_at = %s, want %s", got, want)
		}
	})
}

// runOutboxContract checks what every outbox backend must do.
func runOutboxContract(t *testing.T, codec *schema.Codec, b outboxBackend) {
	t.Run("rollback leaves no row", func(t *testing.T) {
		id := "t-" + schema.NewID()
		write, _, rollback := b.begin(t)
		if _, err := write("title", id, schema.OpUpdate, 3); err != nil {
			t.Fatal(err)
		}
		if err := rollback(); err != nil {
			t.Fatal(err)
		}
		if rows := b.rowsFor(t, id); len(rows) != 0 {
			t.Fatalf("%d rows after rollback, want 0", len(rows))
		}
	})
	t.Run("commit leaves one decodable row", func(t *testing.T) {
		id := "t-" + schema.NewID()
		write, commit, _ := b.begin(t)
		want, err := write("title", id, schema.OpCreate, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := commit(); err != nil {
			t.Fatal(err)
		}
		rows := b.rowsFor(t, id)
		if len(rows) != 1 {
			t.Fatalf("%d rows after commit, want 1", len(rows))
		}
		r := rows[0]
		if r.id != want.ID || r.aggType != "title" || r.aggID != id || r.typ != "CREATE" {
			t.Errorf("row = %+v, want id %s, title, %s, CREATE", r, want.ID, id)
		}
		got, err := codec.Decode(context.Background(), r.payload)
		if err != nil {
			t.Fatalf("decode payload: %v", err)
		}
		if !got.Time.Equal(want.Time) {
			t.Errorf("time = %v, want %v", got.Time, want.Time)
		}
		got.Time = want.Time
		if got.ID != want.ID || got.Subject != id || got.Type != schema.OpCreate || got.Sequence != 1 ||
			got.Source != "//studio/titles" || got.EntityType != "title" {
			t.Errorf("payload = %+v, want %+v", got, want)
		}
		sid, _, err := schema.Unframe(r.payload)
		if err != nil {
			t.Fatal(err)
		}
		topicID, err := codec.SchemaID(context.Background(), schema.ChangesTopic("title"))
		if err != nil || sid != topicID {
			t.Errorf("payload schema id %d, want the id of %s (%d, %v)", sid, schema.ValueSubject(schema.ChangesTopic("title")), topicID, err)
		}
	})
	t.Run("invalid envelope writes nothing", func(t *testing.T) {
		bad := schema.NewEnvelope("//studio/titles", schema.Op("UPSERT"), "title", "t-bad-"+schema.NewID())
		if err := b.writeBad(t, bad); !errors.Is(err, schema.ErrInvalidEnvelope) {
			t.Fatalf("err = %v, want ErrInvalidEnvelope", err)
		}
	})
}
