package mysql_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/slatehq/slate/internal/testenv"

	"github.com/go-mysql-org/go-mysql/client"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/cdc/mysql"
	"github.com/slatehq/slate/schema"
)

func dsn() string {
	if d := os.Getenv("SLATE_MYSQL_DSN"); d != "" {
		return d
	}
	return "root@tcp(127.0.0.1:3306)/test"
}

func connect(t *testing.T) *client.Conn {
	t.Helper()
	m := regexp.MustCompile(`^([^:@]+)(?::([^@]*))?@tcp\(([^)]+)\)/(\w+)`).FindStringSubmatch(dsn())
	if m == nil {
		t.Fatalf("SLATE_MYSQL_DSN=%q: want user[:password]@tcp(host:port)/test", dsn())
	}
	c, err := client.Connect(m[3], m[1], m[2], m[4])
	if err != nil {
		if os.Getenv("CI") != "true" {
			t.Skipf("MariaDB not reachable at SLATE_MYSQL_DSN=%s (%v); start one with a ROW binlog, e.g. "+
				"docker run -p 3306:3306 -e MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1 mariadb:10.11 --log-bin --binlog-format=ROW --server-id=1", dsn(), err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func exec(t *testing.T, c *client.Conn, q string, args ...any) {
	t.Helper()
	if _, err := c.Execute(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestBinlogStreamResumesFromStoredOffset(t *testing.T) {
	db := connect(t)
	name := fmt.Sprintf("slt%d", time.Now().UnixNano()%1e9)
	tbl := name + "_acct"
	exec(t, db, "CREATE TABLE "+tbl+" (id int PRIMARY KEY, v bigint NOT NULL, note varchar(64), at datetime(6))")
	t.Cleanup(func() {
		exec(t, db, "DROP TABLE IF EXISTS "+tbl)
		exec(t, db, "DELETE FROM slate_cdc_offsets WHERE name = ?", name)
	})

	e := testenv.Start(t, "//mysql/test")
	reg, p := e.Registry, e.Producer

	cfg := mysql.Config{DSN: dsn(), Name: name, FlushInterval: 50 * time.Millisecond,
		Filter: cdc.Filter{IncludeTables: []string{"test." + tbl}}}
	start := func() (context.CancelFunc, chan error) {
		src, err := mysql.New(cfg, mysql.WithRegistry(reg))
		if err != nil {
			t.Fatal(err)
		}
		r, _ := cdc.NewRunner(p)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx, src) }()
		return cancel, done
	}
	waitOffset := func() {
		for i := 0; i < 100; i++ {
			r, err := db.Execute("SELECT count(*) FROM slate_cdc_offsets WHERE name = ?", name)
			if err == nil {
				if n, _ := r.GetInt(0, 0); n == 1 {
					return
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("no offset row stored")
	}
	stop := func(cancel context.CancelFunc, done chan error) {
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run: %v", err)
		}
	}

	cancel, done := start()
	waitOffset()
	var want []string // "op:id:v" in commit order
	v := 0
	write := func(n int) {
		for i := 0; i < n; i++ {
			v++
			id := v % 7
			rollback := v%9 == 0
			exec(t, db, "BEGIN")
			exec(t, db, "INSERT INTO "+tbl+" (id, v, note, at) VALUES (?, ?, 'x', NOW(6)) ON DUPLICATE KEY UPDATE v = VALUES(v)", id, v)
			if rollback {
				exec(t, db, "ROLLBACK")
				continue
			}
			exec(t, db, "COMMIT")
			want = append(want, fmt.Sprintf("%d:%d", id, v))
		}
	}
	write(60)
	time.Sleep(300 * time.Millisecond)
	stop(cancel, done)
	write(60) // while the source is down
	cancel, done = start()
	write(60)
	defer stop(cancel, done)

	topic := cdc.Topic(name, "test", tbl)
	cl, _ := kgo.NewClient(kgo.SeedBrokers(e.Brokers), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	codec, _ := schema.NewCodec(reg)
	var mu sync.Mutex
	seen := map[string]bool{}
	byID := map[string]string{}
	lastV := map[string]int64{}
	ctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	for len(seen) < len(want) && ctx.Err() == nil {
		for _, kr := range cl.PollFetches(ctx).Records() {
			e, m, err := decodeRow(ctx, codec, reg, kr.Value)
			if err != nil {
				t.Fatal(err)
			}
			after := rowOf(m, "after")
			got := fmt.Sprintf("%s:%d", kr.Key, after["v"])
			mu.Lock()
			if prev, ok := byID[e.ID]; ok && prev != got {
				t.Fatalf("id %s replayed with different content", e.ID)
			}
			if _, ok := byID[e.ID]; !ok {
				if after["v"].(int64) <= lastV[string(kr.Key)] {
					t.Errorf("key %s: v %d after %d", kr.Key, after["v"], lastV[string(kr.Key)])
				}
				lastV[string(kr.Key)] = after["v"].(int64)
			}
			byID[e.ID] = got
			seen[got] = true
			if e.Source != "//mysql/"+name+"/test/"+tbl || e.Sequence == 0 {
				t.Errorf("envelope %+v", e)
			}
			mu.Unlock()
		}
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("committed change %s missing", w)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("%d distinct changes on the topic, want %d (rolled back ones must not appear)", len(seen), len(want))
	}
	t.Logf("%d committed changes (of 180 transactions, a ninth rolled back) across a restart; %d distinct ids", len(want), len(byID))
}
