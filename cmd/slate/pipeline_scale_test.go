package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/internal/dynserve"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

// setVersion stores shoot id at version v.
func (s *shootServer) setVersion(id string, v int64) error {
	m, err := s.srv.NewMessage("studio.schedules.v1.Shoot")
	if err != nil {
		return err
	}
	m.Set(dynserve.Field(m, "id"), protoreflect.ValueOfString(id))
	m.Set(dynserve.Field(m, "version"), protoreflect.ValueOfInt64(v))
	m.Set(dynserve.Field(m, "title"), protoreflect.ValueOfString(fmt.Sprintf("%s take %d", id, v)))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shoots[id] = m
	return nil
}

// committedLag returns how many records of topic the group has not
// committed yet.
func committedLag(t testing.TB, brokers, group, topic string) int64 {
	t.Helper()
	kc, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": brokers, "group.id": group, "enable.metrics.push": false})
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	md, err := kc.GetMetadata(&topic, false, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var tps []kafka.TopicPartition
	for _, p := range md.Topics[topic].Partitions {
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: p.ID})
	}
	committed, err := kc.Committed(tps, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var lag int64
	for _, tp := range committed {
		_, high, err := kc.QueryWatermarkOffsets(topic, tp.Partition, 10000)
		if err != nil {
			t.Fatal(err)
		}
		lag += high - max(0, int64(tp.Offset))
	}
	return lag
}

// TestEnrichScaleOut runs three `slate enrich` processes of one pipeline
// (one consumer group) over a 12-partition changes topic under a steady
// load: 200 shoots changed once a round, each until its own last round,
// the service answering the version the test stored before publishing.
// Mid-stream one process is SIGKILLed and another SIGTERMed (it must exit
// 0); both are restarted.
// Every change is materialized: each shoot's last output has its final
// version, the group committed every change, and per shoot the sequence of
// the outputs never goes down.
//
// It runs at least once, then with transactional: true (outputs and input
// offsets committed together; the outputs read back read_committed).
func TestEnrichScaleOut(t *testing.T) {
	for _, tt := range []struct {
		name          string
		transactional bool
	}{{"at_least_once", false}, {"transactional", true}} {
		t.Run(tt.name, func(t *testing.T) {
			if testing.Short() {
				t.Skip("runs a broker, a registry and three slate processes")
			}
			scaleOut(t, tt.transactional)
		})
	}
}

func scaleOut(t *testing.T, transactional bool) {
	const (
		shoots     = 200
		rounds     = 20
		roundEvery = 300 * time.Millisecond // the pace of the load
		killAt     = 5                      // SIGKILL one process after this round
		termAt     = 9                      // SIGTERM another after this round, then restart both
	)
	start := time.Now()
	env := testenv.Start(t, "//test/schedules", broker.WithPartitions(12))
	srv := startShoots(t, true)
	et := fmt.Sprintf("shoot%d", time.Now().UnixNano()%1_000_000_000)
	group := et + "-enricher"
	cfg := writeFile(t, "slate.yaml", fmt.Sprintf(`
kafka: {brokers: %[1]s}
registry: {url: %[2]s}
enrich:
  - name: %[3]s
    entity_type: %[4]s
    resolvers:
      %[4]s:
        target: %[5]s
        rpc: studio.schedules.v1.Schedules/BatchGetShoots
        records_field: shoots
        version_field: version
    transactional: %[6]t
`, env.Brokers, env.RegistryURL, group, et, srv.srv.Addr(), transactional))
	testenv.CreateTopics(t, env.Brokers, 12, schema.ChangesTopic(et))
	enrich := func(n int) *slateProc {
		return startSlate(t, fmt.Sprintf("slate enrich #%d", n), "enrich", "--config", cfg)
	}
	procs := []*slateProc{enrich(0), enrich(1), enrich(2)}
	for _, p := range procs {
		p.waitReady(t, "enrich")
	}
	for _, p := range procs {
		p.waitOutput(t, `msg="partitions assigned"`, 30*time.Second)
	}
	t.Logf("three processes in the group after %s", time.Since(start).Round(time.Millisecond))

	// Shoot i changes in rounds 1 to final[i], 1 + i%rounds: some stop
	// changing before the SIGKILL, some between it and the SIGTERM, some
	// after, so a change lost at any point is a shoot left behind.
	ids := make([]string, shoots)
	final := map[string]int64{}
	for i := range ids {
		ids[i] = fmt.Sprintf("s%03d", i)
		final[ids[i]] = 1 + int64(i%rounds)
	}
	var changes int
	for _, f := range final {
		changes += int(f)
	}
	var done atomic.Int64 // rounds fully published
	loadErr := make(chan error, 1)
	go func() {
		defer close(loadErr)
		for r := int64(1); r <= rounds; r++ {
			next := time.Now().Add(roundEvery)
			var wg sync.WaitGroup
			errs := make(chan error, len(ids))
			work := make(chan string)
			for range 8 {
				wg.Go(func() {
					for id := range work {
						err := srv.setVersion(id, r)
						if err == nil {
							err = env.Producer.PublishChange(context.Background(), et, id, schema.OpUpdate, r)
						}
						if err != nil {
							errs <- fmt.Errorf("round %d, %s: %w", r, id, err)
						}
					}
				})
			}
			for _, id := range ids {
				if final[id] >= r {
					work <- id
				}
			}
			close(work)
			wg.Wait()
			close(errs)
			if err := <-errs; err != nil {
				loadErr <- err
				return
			}
			done.Store(r)
			time.Sleep(time.Until(next))
		}
	}()
	waitRound := func(r int64) {
		t.Helper()
		testenv.WaitFor(t, 60*time.Second, fmt.Sprintf("round %d published", r), func() bool { return done.Load() >= r })
	}

	waitRound(killAt)
	procs[0].kill(t)
	t.Logf("SIGKILLed #0 after round %d", done.Load())
	waitRound(termAt)
	procs[1].stop(t)
	t.Logf("SIGTERMed #1 after round %d: exited 0", done.Load())
	procs[0], procs[1] = enrich(3), enrich(4)
	procs[0].waitReady(t, "enrich")
	procs[1].waitReady(t, "enrich")
	if err := <-loadErr; err != nil {
		t.Fatal(err)
	}
	t.Logf("load of %d changes published after %s", changes, time.Since(start).Round(time.Millisecond))

	topic := "studio." + et + ".materialized"
	var recs []testenv.Record
	testenv.WaitFor(t, 60*time.Second, "every shoot materialized at its final version", func() bool {
		for _, p := range procs {
			p.running(t)
		}
		recs = testenv.ReadTopic(t, env.Brokers, env.Registry, topic)
		last := map[string]int64{}
		for _, r := range recs {
			last[r.Key] = r.Env.Sequence
		}
		for _, id := range ids {
			if last[id] != final[id] {
				return false
			}
		}
		return true
	})
	t.Logf("every shoot at its final version after %s (%d outputs)", time.Since(start).Round(time.Millisecond), len(recs))
	prev := map[string]testenv.Record{}
	for _, r := range recs {
		if r.Env.Subject != r.Key {
			t.Errorf("%s[%d]@%d: subject %q under key %q", topic, r.Partition, r.Offset, r.Env.Subject, r.Key)
		}
		if p, ok := prev[r.Key]; ok && r.Env.Sequence < p.Env.Sequence {
			t.Errorf("%s: sequence of %s goes down from %d ([%d]@%d) to %d ([%d]@%d)", topic, r.Key,
				p.Env.Sequence, p.Partition, p.Offset, r.Env.Sequence, r.Partition, r.Offset)
		}
		prev[r.Key] = r
	}
	testenv.WaitFor(t, 30*time.Second, "the group to commit every change", func() bool {
		return committedLag(t, env.Brokers, group, schema.ChangesTopic(et)) == 0
	})
	for _, p := range procs {
		p.stop(t)
	}
	t.Logf("done after %s", time.Since(start).Round(time.Millisecond))
}
