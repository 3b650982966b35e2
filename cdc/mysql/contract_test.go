package mysql_test

import (
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/client"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/cdc/cdctest"
	"github.com/slatehq/slate/cdc/mysql"
	"github.com/slatehq/slate/schema"
)

type myHarness struct {
	db, writer *client.Conn
	name, tbl  string
}

func (m *myHarness) Setup(t *testing.T) string {
	m.db, m.writer = connect(t), connect(t)
	m.name = cdctest.Name("slt")
	m.tbl = m.name + "_kv"
	exec(t, m.db, "CREATE TABLE "+m.tbl+" (id int PRIMARY KEY, v bigint NOT NULL)")
	t.Cleanup(func() {
		exec(t, m.db, "DROP TABLE IF EXISTS "+m.tbl)
		exec(t, m.db, "DELETE FROM slate_cdc_offsets WHERE name = ?", m.name)
	})
	return cdc.Topic(m.name, "test", m.tbl)
}

func (m *myHarness) NewSource(t *testing.T, reg schema.Registry) cdc.Source {
	src, err := mysql.New(mysql.Config{DSN: dsn(), Name: m.name, FlushInterval: 50 * time.Millisecond,
		Filter: cdc.Filter{IncludeTables: []string{"test." + m.tbl}}}, mysql.WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// WaitReady waits for the first run's stored start position: changes
// after it are streamed.
func (m *myHarness) WaitReady(t *testing.T) {
	for i := 0; i < 200; i++ {
		r, err := m.db.Execute("SELECT count(*) FROM slate_cdc_offsets WHERE name = ?", m.name)
		if err == nil {
			if n, _ := r.GetInt(0, 0); n == 1 {
				return
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatal("source never stored its start position")
}

func (m *myHarness) Upsert(t *testing.T, id int, v int64, commit bool) {
	end := "COMMIT"
	if !commit {
		end = "ROLLBACK"
	}
	for _, q := range []string{"BEGIN", "INSERT INTO " + m.tbl + " VALUES (?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v)", end} {
		var err error
		if q[0] == 'I' {
			_, err = m.writer.Execute(q, id, v)
		} else {
			_, err = m.writer.Execute(q)
		}
		if err != nil {
			t.Error(err)
			return
		}
	}
}

// TestContract runs the suite every CDC source passes.
func TestContract(t *testing.T) { cdctest.Run(t, &myHarness{}) }
