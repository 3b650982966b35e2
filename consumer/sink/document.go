package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/slatehq/slate/schema"
)

// ErrData is wrapped when an event's data cannot become a document: it
// is not valid for its content type, or it is Avro and there is no
// registry. Retrying will not help; such an event belongs in a dead-letter
// topic.
var ErrData = errors.New("sink: event data cannot be stored")

// Document returns the event as a search document: its data as a JSON
// object (Avro decoded with the writer's schema from reg; JSON taken as is,
// a non-object value under "data", numbers as json.Number), with the envelope's attributes and
// Kafka coordinates under envField. Registry failures are returned
// unwrapped, since a retry may succeed.
func Document(ctx context.Context, reg schema.Registry, ev *Event, envField string) (map[string]any, error) {
	doc := map[string]any{}
	if len(ev.Data) > 0 {
		switch ev.DataContentType {
		case schema.ContentTypeAvro:
			if reg == nil {
				return nil, fmt.Errorf("%w: event %s has Avro data and the sink has no registry (WithRegistry)", ErrData, ev.ID)
			}
			if err := schema.DecodeData(ctx, reg, ev.Data, &doc); err != nil {
				if errors.Is(err, schema.ErrDecode) {
					return nil, fmt.Errorf("%w: event %s: %w", ErrData, ev.ID, err)
				}
				return nil, fmt.Errorf("sink: event %s: %w", ev.ID, err)
			}
		case schema.ContentTypeJSON:
			// Numbers stay json.Number, so an integer past 2^53 is
			// stored as it was sent, not rounded through a float64.
			var v any
			if err := DecodeJSON(ev.Data, &v); err != nil {
				return nil, fmt.Errorf("%w: event %s: %w", ErrData, ev.ID, err)
			}
			if m, ok := v.(map[string]any); ok {
				doc = m
			} else {
				doc["data"] = v
			}
		default:
			return nil, fmt.Errorf("%w: event %s: datacontenttype %q", ErrData, ev.ID, ev.DataContentType)
		}
	}
	env := map[string]any{
		"id": ev.ID, "type": string(ev.Type), "entitytype": ev.EntityType, "subject": ev.Subject,
		"sequence": ev.Sequence, "time": ev.Time.UTC().Format(time.RFC3339Nano), "source": ev.Source,
		"topic": ev.Topic, "partition": ev.Partition, "offset": ev.Offset,
	}
	if ev.TraceParent != "" {
		env["traceparent"] = ev.TraceParent
	}
	if ev.DataSchema != "" {
		env["dataschema"] = ev.DataSchema
	}
	doc[envField] = env
	return doc, nil
}

// DecodeJSON decodes data, one JSON value, into v as json.Unmarshal does,
// but with numbers as json.Number: an integer past 2^53 (a version, an
// amount in minor units) stays exact instead of becoming a float64.
func DecodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("invalid character after top-level value")
	}
	return nil
}
