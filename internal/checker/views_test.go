package checker

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/consumer/sink/bleve"
	"github.com/slatehq/slate/consumer/sink/es"
	"github.com/slatehq/slate/consumer/sink/es/estest"
	"github.com/slatehq/slate/schema"
)

func checkDoc(where, id string, w want, doc map[string]any, version int64, found bool) string {
	switch {
	case !w.alive && found:
		return fmt.Sprintf("%s: %s alive at version %d, deleted at the source", where, id, version)
	case !w.alive:
		return ""
	case !found:
		return fmt.Sprintf("%s: %s missing, want version %d", where, id, w.version)
	case version != w.version:
		return fmt.Sprintf("%s: %s at version %d, want %d", where, id, version, w.version)
	case fmt.Sprint(doc["name"]) != w.name:
		return fmt.Sprintf("%s: %s name %v, want %s", where, id, doc["name"], w.name)
	}
	if w.days != nil {
		var days []int
		s, _ := doc["schedules"].([]any)
		for _, x := range s {
			m, _ := x.(map[string]any)
			switch d := m["shoot_days"].(type) {
			case float64:
				days = append(days, int(d))
			case int:
				days = append(days, d)
			case int64:
				days = append(days, int(d))
			}
		}
		if !slices.Equal(days, w.days) {
			return fmt.Sprintf("%s: %s schedules %v, want %v", where, id, days, w.days)
		}
	}
	return ""
}

func compareSearch(ctx context.Context, exp map[string]want, entity string, esd *estest.Server, ess *es.Sink, bs *bleve.Sink) []string {
	var diffs []string
	for _, id := range sortedKeys(exp) {
		w := exp[id]
		src, v, ok := esd.Doc(ess.Index(entity), id)
		var doc map[string]any
		if ok {
			_ = json.Unmarshal(src, &doc)
		}
		if d := checkDoc("elasticsearch", id, w, doc, v, ok); d != "" {
			diffs = append(diffs, d)
		}
		bdoc, bv, bok, err := bs.Get(ctx, entity, id)
		if err != nil {
			diffs = append(diffs, "bleve: "+err.Error())
			continue
		}
		if d := checkDoc("bleve", id, w, bdoc, bv, bok); d != "" {
			diffs = append(diffs, d)
		}
	}
	return diffs
}

// compareTopic checks the last record per key of a topic.
func compareTopic(ctx context.Context, t *testing.T, where string, exp map[string]want, topic string) []string {
	cl, err := kgo.NewClient(kgo.SeedBrokers(shared.brokers), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	codec, err := schema.NewCodec(shared.reg)
	if err != nil {
		t.Fatal(err)
	}
	// Read up to the end each partition has now, however slow the fetches.
	end, err := endOffsets(topic)
	if err != nil {
		return []string{where + ": end offsets: " + err.Error()}
	}
	next := map[int32]int64{}
	reached := func() bool {
		for p, e := range end {
			if next[p] < e {
				return false
			}
		}
		return true
	}
	last := map[string]schema.Envelope{}
	deadline := time.Now().Add(30 * time.Second)
	for !reached() {
		if time.Now().After(deadline) {
			return []string{fmt.Sprintf("%s: read %v of %v after 30s", where, next, end)}
		}
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			next[r.Partition] = r.Offset + 1
			e, err := codec.Decode(ctx, r.Value)
			if err != nil {
				t.Errorf("%s: offset %d: %v", where, r.Offset, err)
				return
			}
			last[string(r.Key)] = e
		})
	}
	var diffs []string
	for _, id := range sortedKeys(exp) {
		w := exp[id]
		e, ok := last[id]
		found := ok && e.Type != schema.OpDelete
		var doc map[string]any
		if found {
			if err := schema.DecodeData(ctx, shared.reg, e.Data, &doc); err != nil {
				diffs = append(diffs, fmt.Sprintf("%s: %s: %v", where, id, err))
				continue
			}
		}
		if d := checkDoc(where, id, w, doc, e.Sequence, found); d != "" {
			diffs = append(diffs, d)
		}
	}
	return diffs
}

// compareHive checks that no event is in the audit table twice.
func compareHive(t *testing.T, root, table string) []string {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	glob := filepath.Join(root, table, "**", "*.parquet")
	if m, _ := filepath.Glob(filepath.Join(root, table, "*", "*.parquet")); len(m) == 0 {
		if m2, _ := filepath.Glob(filepath.Join(root, table, "*", "*", "*.parquet")); len(m2) == 0 {
			return []string{"hive: no parquet files written"}
		}
	}
	rows, err := db.Query(fmt.Sprintf(`SELECT id, count(*) FROM read_parquet('%s', hive_partitioning=true) GROUP BY id HAVING count(*) > 1`, glob))
	if err != nil {
		return []string{"hive: " + err.Error()}
	}
	defer rows.Close()
	var diffs []string
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		diffs = append(diffs, fmt.Sprintf("hive: event %s appended %d times", id, n))
	}
	return diffs
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// lag returns how many records of topics the group has not committed
// yet, and a description per partition that is behind.
func lag(brokers, group string, topics ...string) (int64, string, error) {
	cc, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": brokers, "group.id": group})
	if err != nil {
		return 0, "", err
	}
	defer cc.Close()
	md, err := cc.GetMetadata(nil, true, 5000)
	if err != nil {
		return 0, "", err
	}
	var ps []kafka.TopicPartition
	for _, topic := range topics {
		tm, ok := md.Topics[topic]
		if !ok {
			continue // not created yet: nothing was published to it
		}
		for _, p := range tm.Partitions {
			ps = append(ps, kafka.TopicPartition{Topic: &topic, Partition: p.ID})
		}
	}
	committed, err := cc.Committed(ps, 5000)
	if err != nil {
		return 0, "", err
	}
	var total int64
	var behind string
	for _, p := range committed {
		_, high, err := cc.QueryWatermarkOffsets(*p.Topic, p.Partition, 5000)
		if err != nil {
			return 0, "", err
		}
		at := int64(p.Offset)
		if at < 0 {
			at = 0
		}
		if high > at {
			total += high - at
			behind += fmt.Sprintf(" %s[%d] at %d of %d;", *p.Topic, p.Partition, at, high)
		}
	}
	return total, behind, nil
}

// quiesce waits until every group committed everything of its topics.
func quiesce(ctx context.Context, brokers string, timeout time.Duration, groups map[string][]string) error {
	deadline := time.Now().Add(timeout)
	for {
		var behind string
		var total int64
		for g, topics := range groups {
			n, b, err := lag(brokers, g, topics...)
			if err != nil {
				b, n = " "+err.Error(), 1
			}
			total += n
			if n > 0 {
				behind += " " + g + ":" + b
			}
		}
		if total == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("lag %d after %v:%s", total, timeout, behind)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// prepare creates topics with the broker's default partition count, and
// waits until each group has every partition of its topics assigned, so
// that the run's operations meet running consumers.
func prepare(ctx context.Context, brokers string, topics []string, groups map[string][]string) error {
	ad, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": brokers})
	if err != nil {
		return err
	}
	defer ad.Close()
	specs := make([]kafka.TopicSpecification, len(topics))
	for i, t := range topics {
		specs[i] = kafka.TopicSpecification{Topic: t, NumPartitions: -1, ReplicationFactor: -1}
	}
	var res []kafka.TopicResult
	if len(specs) > 0 {
		if res, err = ad.CreateTopics(ctx, specs); err != nil {
			return err
		}
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError && r.Error.Code() != kafka.ErrTopicAlreadyExists {
			return fmt.Errorf("create %s: %v", r.Topic, r.Error)
		}
	}
	md, err := ad.GetMetadata(nil, true, 5000)
	if err != nil {
		return err
	}
	for g, ts := range groups {
		want := 0
		for _, t := range ts {
			want += len(md.Topics[t].Partitions)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			got := 0
			d, err := ad.DescribeConsumerGroups(ctx, []string{g})
			if err == nil && len(d.ConsumerGroupDescriptions) == 1 && d.ConsumerGroupDescriptions[0].State == kafka.ConsumerGroupStateStable {
				for _, m := range d.ConsumerGroupDescriptions[0].Members {
					got += len(m.Assignment.TopicPartitions)
				}
			}
			if got >= want {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("group %s: %d of %d partitions assigned after 30s (%v)", g, got, want, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// endOffsets returns the high watermark of each partition of topic that
// holds records.
func endOffsets(topic string) (map[int32]int64, error) {
	cc, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": shared.brokers, "group.id": "checker-probe"})
	if err != nil {
		return nil, err
	}
	defer cc.Close()
	md, err := cc.GetMetadata(&topic, false, 5000)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for _, p := range md.Topics[topic].Partitions {
		low, high, err := cc.QueryWatermarkOffsets(topic, p.ID, 5000)
		if err != nil {
			return nil, err
		}
		if high > low {
			out[p.ID] = high
		}
	}
	return out, nil
}
