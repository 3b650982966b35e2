package schema

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

//go:embed envelope.avsc
var envelopeSchema string

// EnvelopeSchema returns the Avro schema of the canonical envelope as JSON.
func EnvelopeSchema() string { return envelopeSchema }

// SpecVersion is the CloudEvents version every envelope declares.
const SpecVersion = "1.0"

// Op is the kind of change an envelope reports (the envelope's TYPE).
type Op string

// The operations of DESIGN.md. SNAPSHOT is a row read during a CDC initial
// snapshot; TRUNCATE empties a table.
const (
	OpCreate   Op = "CREATE"
	OpUpdate   Op = "UPDATE"
	OpDelete   Op = "DELETE"
	OpSnapshot Op = "SNAPSHOT"
	OpTruncate Op = "TRUNCATE"
)

// Valid reports whether o is one of the known operations.
func (o Op) Valid() bool {
	switch o {
	case OpCreate, OpUpdate, OpDelete, OpSnapshot, OpTruncate:
		return true
	}
	return false
}

// Content types of the data field.
const (
	ContentTypeAvro = "application/avro" // data is Confluent-framed Avro
	ContentTypeJSON = "application/json"
)

// Envelope is one slate event. The zero value is not valid: use
// [NewEnvelope] or fill every required field and call [Envelope.Validate].
type Envelope struct {
	ID              string    `avro:"id"`
	Source          string    `avro:"source"`
	SpecVersion     string    `avro:"specversion"`
	Type            Op        `avro:"type"`
	EntityType      string    `avro:"entitytype"`
	Subject         string    `avro:"subject"`
	Time            time.Time `avro:"time"`
	Sequence        int64     `avro:"sequence"`
	TraceParent     string    `avro:"traceparent"`
	DataSchema      string    `avro:"dataschema"`
	DataContentType string    `avro:"datacontenttype"`
	// Data is empty for ID-only change events. Otherwise its encoding is
	// named by DataContentType; Avro data is Confluent-framed, so it names
	// its own writer schema.
	Data []byte `avro:"data"`
	// Unchanged names the fields of Data that the source did not send and
	// that hold a placeholder (PostgreSQL's unchanged TOAST values): a sink
	// keeps the values it already has for them. It travels as the
	// CloudEvents extension header ce_unchanged (comma-separated), not in
	// the Avro value.
	Unchanged []string `avro:"-"`
}

// NewEnvelope returns an envelope with a fresh UUIDv7 id, the spec version
// and the current time set.
func NewEnvelope(source string, op Op, entityType, subject string) Envelope {
	return Envelope{
		ID:          NewID(),
		Source:      source,
		SpecVersion: SpecVersion,
		Type:        op,
		EntityType:  entityType,
		Subject:     subject,
		Time:        time.Now().UTC().Truncate(time.Microsecond),
	}
}

// NewID returns a new UUIDv7 as a string: time-ordered, so ids of events
// produced close together sort together in the dedupe store and in logs.
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// NewV7 fails only when the system's random source does.
		panic(fmt.Sprintf("schema: uuid: %v", err))
	}
	return id.String()
}

// ErrInvalidEnvelope is wrapped by every validation error.
var ErrInvalidEnvelope = errors.New("schema: invalid envelope")

// Validate reports the first required field that is missing or malformed.
func (e *Envelope) Validate() error {
	switch {
	case e.ID == "":
		return fmt.Errorf("%w: id is empty", ErrInvalidEnvelope)
	case e.Source == "":
		return fmt.Errorf("%w: source is empty", ErrInvalidEnvelope)
	case e.SpecVersion != SpecVersion:
		return fmt.Errorf("%w: specversion %q, want %q", ErrInvalidEnvelope, e.SpecVersion, SpecVersion)
	case !e.Type.Valid():
		return fmt.Errorf("%w: type %q is not one of CREATE, UPDATE, DELETE, SNAPSHOT, TRUNCATE", ErrInvalidEnvelope, e.Type)
	case e.EntityType == "":
		return fmt.Errorf("%w: entitytype is empty", ErrInvalidEnvelope)
	case e.Subject == "" && e.Type != OpTruncate:
		return fmt.Errorf("%w: subject is empty", ErrInvalidEnvelope)
	case e.Time.IsZero():
		return fmt.Errorf("%w: time is zero", ErrInvalidEnvelope)
	case len(e.Data) > 0 && e.DataContentType == "":
		return fmt.Errorf("%w: data without datacontenttype", ErrInvalidEnvelope)
	}
	return nil
}

// ChangesTopic is the topic of ID-only change events for an entity type,
// under [DefaultTopicPrefix] (see [ChangesTopicIn]).
func ChangesTopic(entityType string) string { return ChangesTopicIn(DefaultTopicPrefix, entityType) }

// MaterializedTopic is the compacted topic of full records for an entity
// type, under [DefaultTopicPrefix] (see [MaterializedTopicIn]).
func MaterializedTopic(entityType string) string {
	return MaterializedTopicIn(DefaultTopicPrefix, entityType)
}

// DLQTopic is the dead-letter topic of a topic. A record read from a
// replay topic is dead-lettered to its origin's: DLQTopic of
// ReplayTopic(t) is DLQTopic(t).
func DLQTopic(topic string) string { return ReplayOrigin(topic) + ".dlq" }

// ReplayTopic is the topic dead letters of topic are replayed to
// (<topic>.dlq.replay). The consumers of topic that dead-letter read it
// beside topic, each taking only the records its own group dead-lettered,
// so a replay reaches the group that failed it and no other, and never
// appends an old record to topic itself, where a compacted topic's reader
// would take it for the key's latest.
func ReplayTopic(topic string) string { return ReplayOrigin(topic) + ".dlq.replay" }

// ReplayOrigin returns the topic a replay topic replays to its consumers,
// and any other topic unchanged.
func ReplayOrigin(topic string) string {
	if o, ok := strings.CutSuffix(topic, ".dlq.replay"); ok && o != "" {
		return o
	}
	return topic
}

// ValueSubject is the registry subject of a topic's values under
// Confluent's TopicNameStrategy.
func ValueSubject(topic string) string { return topic + "-value" }
