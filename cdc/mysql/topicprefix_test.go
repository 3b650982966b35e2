package mysql_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/cdc/mysql"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

// With a topic prefix, binlog row changes go to
// <prefix>cdc.<name>.<database>.<table>.
func TestTopicPrefixNamesRowTopics(t *testing.T) {
	db := connect(t)
	name := fmt.Sprintf("slt%d", time.Now().UnixNano()%1e9)
	tbl := name + "_acct"
	exec(t, db, "CREATE TABLE "+tbl+" (id int PRIMARY KEY, v bigint NOT NULL)")
	t.Cleanup(func() {
		exec(t, db, "DROP TABLE IF EXISTS "+tbl)
		exec(t, db, "DELETE FROM slate_cdc_offsets WHERE name = ?", name)
	})
	e := testenv.Start(t, "//mysql/test")
	cfg := mysql.Config{DSN: dsn(), Name: name, FlushInterval: 50 * time.Millisecond, TopicPrefix: "acme.",
		Filter: cdc.Filter{IncludeTables: []string{"test." + tbl}}}
	src, err := mysql.New(cfg, mysql.WithRegistry(e.Registry))
	if err != nil {
		t.Fatal(err)
	}
	r, err := cdc.NewRunner(e.Producer)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, src) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	// The source streams from the position it read at start; write until
	// the row shows up, in case the first write came before it.
	topic := "acme.cdc." + name + ".test." + tbl
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Brokers), kgo.ConsumeTopics(topic, cdc.Topic(name, "test", tbl)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, pcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer pcancel()
	for v := 1; ; v++ {
		exec(t, db, "INSERT INTO "+tbl+" (id, v) VALUES (1, ?) ON DUPLICATE KEY UPDATE v = VALUES(v)", v)
		wctx, wcancel := context.WithTimeout(pctx, 2*time.Second)
		recs := cl.PollFetches(wctx).Records()
		wcancel()
		if len(recs) > 0 {
			if recs[0].Topic != topic || string(recs[0].Key) != "1" {
				t.Fatalf("row change on %s keyed %q, want %s keyed 1", recs[0].Topic, recs[0].Key, topic)
			}
			return
		}
		if pctx.Err() != nil {
			t.Fatalf("no row change on %s", topic)
		}
	}
}

func TestConfigRefusesBadTopicPrefix(t *testing.T) {
	cfg := mysql.Config{DSN: dsn(), TopicPrefix: "acme/"}
	err := cfg.Validate()
	if !errors.Is(err, cdc.ErrConfig) || !errors.Is(err, schema.ErrTopicPrefix) || !strings.Contains(err.Error(), "topic_prefix") {
		t.Fatalf("Validate = %v, want ErrConfig naming topic_prefix", err)
	}
}
