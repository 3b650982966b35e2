package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
)

// Store keeps the registry's records in order. The server calls Load once,
// in [New], and replays what it returns; afterwards it calls Append for each
// change, under its write lock (so never concurrently), and applies the
// change only when Append returned nil. An implementation only has to keep
// records durably and in order; a compacted log (Kafka's _schemas topic)
// qualifies, since every record with a given key supersedes the earlier
// ones and a nil [Record.Value] deletes the key.
type Store interface {
	// Load returns every record appended so far, oldest first.
	Load(ctx context.Context) ([]Record, error)
	// Append durably adds r after the records already stored.
	Append(ctx context.Context, r Record) error
}

// KeyType says what a [Record] describes, as the keytype of Confluent's
// _schemas topic.
type KeyType string

// The record kinds the registry writes and replays. Replay ignores other key
// types (Confluent also writes NOOP, MODE and others).
const (
	// KeySchema is one version of a subject; a nil value deletes it
	// permanently, a value with Deleted set soft-deletes it. A deleted
	// value with no schema text (what [MemoryStore] keeps of a permanently
	// deleted version) only keeps its id taken.
	KeySchema KeyType = "SCHEMA"
	// KeyConfig is the compatibility level of a subject, or the global one
	// when the subject is empty; a nil value removes it.
	KeyConfig KeyType = "CONFIG"
	// KeyDeleteSubject soft-deletes every version of a subject up to and
	// including the value's version.
	KeyDeleteSubject KeyType = "DELETE_SUBJECT"
)

// Key is the key of a [Record]. Its JSON form is that of the _schemas topic:
// {"keytype":"SCHEMA","subject":"s","version":1,"magic":1}, with a null
// subject for the global CONFIG record.
type Key struct {
	KeyType KeyType
	Subject string // empty for the global CONFIG record
	Version int    // SCHEMA only
	Magic   int    // 1 for SCHEMA, 0 otherwise, as Confluent writes them
}

// Value is the value of a [Record]. Which fields are used depends on the
// key type: SCHEMA uses Subject, Version, ID, SchemaType, Schema and
// Deleted; CONFIG uses CompatibilityLevel; DELETE_SUBJECT uses Subject and
// Version.
type Value struct {
	Subject            string
	Version            int
	ID                 int
	SchemaType         string // empty means AVRO
	Schema             string
	Deleted            bool
	CompatibilityLevel Level
}

// Record is one entry of the registry's log: a key and a value, or a nil
// value for a tombstone.
type Record struct {
	Key   Key
	Value *Value
}

// clone returns r with its own copy of the value.
func (r Record) clone() Record {
	if r.Value != nil {
		v := *r.Value
		r.Value = &v
	}
	return r
}

func schemaRecord(v Value) Record {
	return Record{Key: Key{KeyType: KeySchema, Subject: v.Subject, Version: v.Version, Magic: 1}, Value: &v}
}

func configRecord(subject string, level Level) Record {
	return Record{Key: Key{KeyType: KeyConfig, Subject: subject}, Value: &Value{CompatibilityLevel: level}}
}

func tombstone(k Key) Record { return Record{Key: k} }

type keyJSON struct {
	KeyType KeyType `json:"keytype"`
	Subject *string `json:"subject"`
	Version *int    `json:"version,omitempty"`
	Magic   int     `json:"magic"`
}

// MarshalJSON encodes k as the _schemas topic does.
func (k Key) MarshalJSON() ([]byte, error) {
	j := keyJSON{KeyType: k.KeyType, Magic: k.Magic}
	if k.Subject != "" || k.KeyType != KeyConfig {
		s := k.Subject
		j.Subject = &s
	}
	if k.KeyType == KeySchema {
		v := k.Version
		j.Version = &v
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes a _schemas topic key.
func (k *Key) UnmarshalJSON(b []byte) error {
	var j keyJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*k = Key{KeyType: j.KeyType, Magic: j.Magic}
	if j.Subject != nil {
		k.Subject = *j.Subject
	}
	if j.Version != nil {
		k.Version = *j.Version
	}
	return nil
}

type schemaValueJSON struct {
	Subject    string `json:"subject"`
	Version    int    `json:"version"`
	ID         int    `json:"id"`
	SchemaType string `json:"schemaType,omitempty"`
	Schema     string `json:"schema"`
	Deleted    bool   `json:"deleted"`
}

type configValueJSON struct {
	CompatibilityLevel Level `json:"compatibilityLevel"`
}

type deleteSubjectValueJSON struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

type anyValueJSON struct {
	Subject            string `json:"subject"`
	Version            int    `json:"version"`
	ID                 int    `json:"id"`
	SchemaType         string `json:"schemaType"`
	Schema             string `json:"schema"`
	Deleted            bool   `json:"deleted"`
	CompatibilityLevel Level  `json:"compatibilityLevel"`
}

// MarshalKeyValue returns the key and value of r as JSON, in the shape of
// Confluent's _schemas topic; the value is nil for a tombstone. A store that
// writes to Kafka produces exactly these bytes.
func (r Record) MarshalKeyValue() (key, value []byte, err error) {
	key, err = json.Marshal(r.Key)
	if err != nil || r.Value == nil {
		return key, nil, err
	}
	v := r.Value
	switch r.Key.KeyType {
	case KeySchema:
		value, err = json.Marshal(schemaValueJSON{v.Subject, v.Version, v.ID, v.SchemaType, v.Schema, v.Deleted})
	case KeyConfig:
		value, err = json.Marshal(configValueJSON{v.CompatibilityLevel})
	case KeyDeleteSubject:
		value, err = json.Marshal(deleteSubjectValueJSON{v.Subject, v.Version})
	default:
		return nil, nil, fmt.Errorf("%w: key type %q", ErrInvalidRecord, r.Key.KeyType)
	}
	return key, value, err
}

// UnmarshalRecord decodes a key and value written by [Record.MarshalKeyValue]
// or by Confluent's server; a nil or empty value is a tombstone. Fields the
// registry does not use (references, metadata, rule sets) are ignored.
func UnmarshalRecord(key, value []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(key, &r.Key); err != nil {
		return r, fmt.Errorf("%w: key: %v", ErrInvalidRecord, err)
	}
	if len(value) == 0 || string(value) == "null" {
		return r, nil
	}
	var v anyValueJSON
	if err := json.Unmarshal(value, &v); err != nil {
		return r, fmt.Errorf("%w: value: %v", ErrInvalidRecord, err)
	}
	r.Value = &Value{
		Subject: v.Subject, Version: v.Version, ID: v.ID, SchemaType: v.SchemaType,
		Schema: v.Schema, Deleted: v.Deleted, CompatibilityLevel: v.CompatibilityLevel,
	}
	return r, nil
}

// MemoryStore is a [Store] that keeps records in memory: a registry that
// forgets everything when the process ends, as tests and `slate up` want.
// Two servers given the same MemoryStore one after the other see the same
// state. It is safe for concurrent use.
//
// It compacts as it goes, so that a permanently deleted schema costs no
// memory: when a SCHEMA tombstone is appended, the earlier records of that
// version lose their schema text and keep only what a replay needs, the
// schema id (which stays taken, so it never goes to another schema). As with
// a compacted _schemas topic, a server that replays such a store gives a
// schema registered again after its permanent deletion a new id, where the
// server that deleted it gives the old one back.
type MemoryStore struct {
	mu   sync.Mutex
	recs []Record
}

// NewMemoryStore returns a store holding recs (copied), for example records
// saved from another store.
func NewMemoryStore(recs ...Record) *MemoryStore {
	m := &MemoryStore{}
	for _, r := range recs {
		m.recs = append(m.recs, r.clone())
	}
	return m
}

// Load implements [Store]; it returns a copy of the records.
func (m *MemoryStore) Load(ctx context.Context) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return m.Records(), nil
}

// Append implements [Store].
func (m *MemoryStore) Append(ctx context.Context, r Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.Key.KeyType == KeySchema && r.Value == nil {
		m.forgetText(r.Key)
	}
	m.recs = append(m.recs, r.clone())
	return nil
}

// forgetText drops the schema text of the stored SCHEMA records of the
// version k names, which a tombstone for k deletes permanently. Each keeps
// its id, as a soft-deleted version without text: replay takes the id and
// serves nothing. The caller holds m.mu.
func (m *MemoryStore) forgetText(k Key) {
	for i, old := range m.recs {
		if old.Value == nil || old.Key.KeyType != KeySchema || old.Key.Subject != k.Subject || old.Key.Version != k.Version {
			continue
		}
		v := old.Value
		m.recs[i].Value = &Value{Subject: v.Subject, Version: v.Version, ID: v.ID, SchemaType: v.SchemaType, Deleted: true}
	}
}

// Records returns a copy of every record appended so far, oldest first.
func (m *MemoryStore) Records() []Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Record, len(m.recs))
	for i, r := range m.recs {
		out[i] = r.clone()
	}
	return out
}
