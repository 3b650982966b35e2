package hive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strings"
	"time"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/schema"
)

// row is one Parquet row: the envelope, its data as JSON, and where it was
// read from. The column list of _hive.sql mirrors it (see columns).
type row struct {
	ID             string    `parquet:"id"`
	Source         string    `parquet:"source"`
	SpecVersion    string    `parquet:"specversion"`
	Type           string    `parquet:"type"`
	EntityType     string    `parquet:"entitytype"`
	Subject        string    `parquet:"subject"`
	Time           time.Time `parquet:"time,timestamp(microsecond)"`
	Sequence       int64     `parquet:"sequence"`
	TraceParent    string    `parquet:"traceparent"`
	DataSchema     string    `parquet:"dataschema"`
	Data           *string   `parquet:"data,optional"`
	KafkaTopic     string    `parquet:"kafka_topic"`
	KafkaPartition int32     `parquet:"kafka_partition"`
	KafkaOffset    int64     `parquet:"kafka_offset"`
	IngestedAt     time.Time `parquet:"ingested_at,timestamp(microsecond)"`
}

// columns are the table's columns in Hive types, in row's order.
var columns = [][2]string{
	{"id", "STRING"},
	{"source", "STRING"},
	{"specversion", "STRING"},
	{"type", "STRING"},
	{"entitytype", "STRING"},
	{"subject", "STRING"},
	{"time", "TIMESTAMP"},
	{"sequence", "BIGINT"},
	{"traceparent", "STRING"},
	{"dataschema", "STRING"},
	{"data", "STRING"},
	{"kafka_topic", "STRING"},
	{"kafka_partition", "INT"},
	{"kafka_offset", "BIGINT"},
	{"ingested_at", "TIMESTAMP"},
}

// toRow converts ev, decoding its data to JSON.
func (s *Sink) toRow(ctx context.Context, ev *sink.Event, ingested time.Time) (row, error) {
	data, err := s.dataJSON(ctx, &ev.Envelope)
	if err != nil {
		return row{}, err
	}
	return row{
		ID:             ev.ID,
		Source:         ev.Source,
		SpecVersion:    ev.SpecVersion,
		Type:           string(ev.Type),
		EntityType:     ev.EntityType,
		Subject:        ev.Subject,
		Time:           ev.Time.UTC().Truncate(time.Microsecond),
		Sequence:       ev.Sequence,
		TraceParent:    ev.TraceParent,
		DataSchema:     ev.DataSchema,
		Data:           data,
		KafkaTopic:     ev.Topic,
		KafkaPartition: ev.Partition,
		KafkaOffset:    ev.Offset,
		IngestedAt:     ingested,
	}, nil
}

// dataJSON returns e's data as a JSON document, or nil when there is none.
// JSON is kept byte for byte; Confluent-framed Avro is decoded with the
// writer's schema from the registry.
func (s *Sink) dataJSON(ctx context.Context, e *schema.Envelope) (*string, error) {
	if len(e.Data) == 0 {
		return nil, nil
	}
	ct, _, err := mime.ParseMediaType(e.DataContentType)
	if err != nil && e.DataContentType != "" {
		return nil, fmt.Errorf("%w: datacontenttype %q: %v", ErrData, e.DataContentType, err)
	}
	switch {
	case ct == schema.ContentTypeAvro:
		if s.reg == nil {
			return nil, fmt.Errorf("%w: avro data and no registry (use WithRegistry)", ErrData)
		}
		var v any
		if err := schema.DecodeData(ctx, s.reg, e.Data, &v); err != nil {
			if errors.Is(err, schema.ErrDecode) {
				return nil, fmt.Errorf("%w: %w", ErrData, err)
			}
			return nil, fmt.Errorf("hive: decode data: %w", err) // registry trouble: a retry may succeed
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%w: avro data as json: %v", ErrData, err)
		}
		str := string(b)
		return &str, nil
	case ct == schema.ContentTypeJSON || strings.HasSuffix(ct, "+json"):
		if !json.Valid(e.Data) {
			return nil, fmt.Errorf("%w: datacontenttype %s but data is not valid json", ErrData, ct)
		}
		str := string(e.Data)
		return &str, nil
	default:
		return nil, fmt.Errorf("%w: unsupported datacontenttype %q", ErrData, e.DataContentType)
	}
}
