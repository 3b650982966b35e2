package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	blv "github.com/blevesearch/bleve/v2"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/parquet-go/parquet-go"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/bleve"
	"github.com/slatehq/slate/consumer/sink/es"
	"github.com/slatehq/slate/consumer/sink/es/estest"
	"github.com/slatehq/slate/consumer/sink/hive"
	"github.com/slatehq/slate/schema"
)

// sinkBatch is the number of events per Write in the sink benchmarks.
const sinkBatch = 1000

// sinkEvents returns batch op's events: new subjects, consecutive offsets,
// JSON data of the size a title record has.
func sinkEvents(op int) []sink.Event {
	now := time.Now().UTC()
	evs := make([]sink.Event, sinkBatch)
	for i := range evs {
		off := int64(op*sinkBatch + i)
		e := schema.NewEnvelope("//bench/titles", schema.OpUpdate, "title", fmt.Sprintf("title-%d", off))
		e.Time = now
		e.Sequence = 1
		e.DataContentType = schema.ContentTypeJSON
		e.Data, _ = json.Marshal(map[string]any{"name": fmt.Sprintf("Title %d", off), "budget": off * 1000,
			"genre": "crime drama", "status": "in production", "studio": "Forward Pass"})
		evs[i] = sink.Event{Envelope: e, Topic: "studio.title.materialized", Partition: 0, Offset: off}
	}
	return evs
}

// runSink times Write of one batch per op and reports docs/s.
func runSink(b *testing.B, s sink.Sink) {
	b.Helper()
	ctx := context.Background()
	defer s.Close(ctx)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		evs := sinkEvents(i)
		b.StartTimer()
		if err := s.Write(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*sinkBatch)/b.Elapsed().Seconds(), "docs/s")
}

// BenchmarkSinkHive: the Hive sink (one Parquet file per batch, written,
// fsynced, renamed) against a baseline that writes the same rows with
// parquet-go straight to a file and fsyncs it.
func BenchmarkSinkHive(b *testing.B) {
	b.Run("slate", func(b *testing.B) {
		s, err := hive.New(b.TempDir(), "audit")
		if err != nil {
			b.Fatal(err)
		}
		runSink(b, s)
	})
	b.Run("raw-parquet", func(b *testing.B) {
		type row struct {
			ID, Source, Type, EntityType, Subject string
			Time                                  time.Time `parquet:",timestamp(microsecond)"`
			Sequence                              int64
			Data                                  string
			Topic                                 string
			Partition                             int32
			Offset                                int64
		}
		dir := b.TempDir()
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			evs := sinkEvents(i)
			b.StartTimer()
			rows := make([]row, len(evs))
			for j, ev := range evs {
				rows[j] = row{ev.ID, ev.Source, string(ev.Type), ev.EntityType, ev.Subject, ev.Time, ev.Sequence,
					string(ev.Data), ev.Topic, ev.Partition, ev.Offset}
			}
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("part-%d.parquet", i)))
			if err != nil {
				b.Fatal(err)
			}
			w := parquet.NewGenericWriter[row](f, parquet.Compression(&parquet.Snappy))
			if _, err := w.Write(rows); err != nil {
				b.Fatal(err)
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			if err := f.Close(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*sinkBatch)/b.Elapsed().Seconds(), "docs/s")
	})
}

// BenchmarkSinkES: the es sink (BulkIndexer, external versions, item by
// item checks) against the in-process double, and a baseline that POSTs
// the same documents as one hand-built _bulk body without versions.
func BenchmarkSinkES(b *testing.B) {
	newDouble := func(b *testing.B) string {
		hs := httptest.NewServer(estest.New())
		b.Cleanup(hs.Close)
		return hs.URL
	}
	b.Run("slate", func(b *testing.B) {
		client, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{newDouble(b)}, DisableRetry: true})
		if err != nil {
			b.Fatal(err)
		}
		s, err := es.New(context.Background(), client, es.WithEntityTypes("title"))
		if err != nil {
			b.Fatal(err)
		}
		runSink(b, s)
	})
	b.Run("raw-bulk", func(b *testing.B) {
		url := newDouble(b) + "/_bulk"
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			evs := sinkEvents(i)
			b.StartTimer()
			var body bytes.Buffer
			for _, ev := range evs {
				fmt.Fprintf(&body, `{"index":{"_index":"studio-title","_id":%q}}`+"\n", ev.Subject)
				body.Write(ev.Data)
				body.WriteByte('\n')
			}
			res, err := http.Post(url, "application/x-ndjson", &body)
			if err != nil {
				b.Fatal(err)
			}
			var out struct {
				Errors bool `json:"errors"`
			}
			err = json.NewDecoder(res.Body).Decode(&out)
			res.Body.Close()
			if err != nil || res.StatusCode != 200 || out.Errors {
				b.Fatalf("bulk: %d %v errors=%v", res.StatusCode, err, out.Errors)
			}
		}
		b.ReportMetric(float64(b.N*sinkBatch)/b.Elapsed().Seconds(), "docs/s")
	})
}

// BenchmarkSinkBleve: the bleve sink (a version lookup per event, the
// document and its version record in one durable Bleve batch) against a
// baseline that indexes the same documents (data and envelope fields)
// with one plain Bleve batch and Bleve's default mapping, keeping no
// versions.
// "replay" writes batches the index already holds: all no-ops.
func BenchmarkSinkBleve(b *testing.B) {
	b.Run("slate", func(b *testing.B) {
		s, err := bleve.New(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		runSink(b, s)
	})
	b.Run("slate-replay", func(b *testing.B) {
		s, err := bleve.New(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		defer s.Close(ctx)
		evs := sinkEvents(0)
		if err := s.Write(ctx, evs); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := s.Write(ctx, evs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*sinkBatch)/b.Elapsed().Seconds(), "docs/s")
	})
	b.Run("raw-bleve", func(b *testing.B) {
		ix, err := blv.New(filepath.Join(b.TempDir(), "raw"), blv.NewIndexMapping())
		if err != nil {
			b.Fatal(err)
		}
		defer ix.Close()
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			evs := sinkEvents(i)
			b.StartTimer()
			batch := ix.NewBatch()
			for _, ev := range evs {
				var doc map[string]any
				if err := json.Unmarshal(ev.Data, &doc); err != nil {
					b.Fatal(err)
				}
				doc["slate"] = map[string]any{"id": ev.ID, "type": string(ev.Type), "entitytype": ev.EntityType,
					"subject": ev.Subject, "sequence": ev.Sequence, "time": ev.Time.Format(time.RFC3339Nano),
					"source": ev.Source, "topic": ev.Topic, "partition": ev.Partition, "offset": ev.Offset}
				if err := batch.Index(ev.Subject, doc); err != nil {
					b.Fatal(err)
				}
			}
			if err := ix.Batch(batch); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*sinkBatch)/b.Elapsed().Seconds(), "docs/s")
	})
}
