package cdc

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/slatehq/slate/outbox"
	"github.com/slatehq/slate/schema"
)

// The outbox table is the one outbox.Writer (and producer.Outbox) writes:
// these name package outbox's definitions, so that the writer and the CDC
// reader cannot drift apart.
const (
	// OutboxTable is the default name of the outbox table.
	OutboxTable = outbox.Table
	// OutboxDDL creates the outbox table (PostgreSQL). A service inserts
	// one row per event in the same transaction as its change; payload is
	// the envelope in the Confluent wire format (schema.Codec.Encode for
	// the topic schema.ChangesTopicIn(prefix, aggregatetype)). The CDC
	// source publishes each inserted row as the envelope it carries to
	// that topic (see [WithTopicPrefix]), keyed by aggregateid, and never
	// as a row event; it may delete rows once Kafka acknowledged them.
	OutboxDDL = outbox.DDLPostgres
	// OutboxDDLMySQL is [OutboxDDL] for MySQL/MariaDB.
	OutboxDDLMySQL = outbox.DDLMySQL
)

// ErrOutboxRow is wrapped when an outbox row cannot be published: a
// missing column or a payload that is not a slate envelope.
var ErrOutboxRow = errors.New("cdc: bad outbox row")

// OutboxRouter turns inserted outbox rows into the events they carry.
type OutboxRouter struct {
	codec  *schema.Codec
	prefix string
}

// NewOutboxRouter returns a router decoding payloads with the schemas in
// reg and routing them to the changes topics under the prefix of
// [WithTopicPrefix].
func NewOutboxRouter(reg schema.Registry, opts ...Option) (*OutboxRouter, error) {
	o := newOptions(opts)
	if err := schema.ValidateTopicPrefix(o.prefix); err != nil {
		return nil, fmt.Errorf("%w: WithTopicPrefix: %w", ErrConfig, err)
	}
	c, err := schema.NewCodec(reg)
	if err != nil {
		return nil, err
	}
	return &OutboxRouter{codec: c, prefix: o.prefix}, nil
}

// IsOutbox reports whether t is the outbox table named name (a bare table
// name matches in any schema, schema.table only there).
func IsOutbox(t *Table, name string) bool {
	if name == "" {
		return false
	}
	if strings.Contains(name, ".") {
		return t.QualifiedName() == name
	}
	return t.Name == name
}

// Route returns the event an inserted outbox row carries: the decoded
// envelope, published to schema.ChangesTopicIn(prefix, aggregatetype) with
// aggregateid as key (and so as subject). vals are the row's values in
// t's column order; payload may be raw bytes or PostgreSQL bytea text
// (\x...). It also returns the row id, for deletion after publishing.
func (o *OutboxRouter) Route(ctx context.Context, t *Table, vals []any) (Event, string, error) {
	get := func(name string) (any, error) {
		for i, c := range t.Columns {
			if c.Name == name && i < len(vals) {
				if vals[i] == nil {
					return nil, fmt.Errorf("%w: %s is null", ErrOutboxRow, name)
				}
				return vals[i], nil
			}
		}
		return nil, fmt.Errorf("%w: no column %s in %s", ErrOutboxRow, name, t.QualifiedName())
	}
	var out [4]any
	for i, n := range []string{"id", "aggregatetype", "aggregateid", "payload"} {
		v, err := get(n)
		if err != nil {
			return Event{}, "", err
		}
		out[i] = v
	}
	payload, err := bytesOf(out[3])
	if err != nil {
		return Event{}, "", err
	}
	env, err := o.codec.Decode(ctx, payload)
	if err != nil {
		if errors.Is(err, schema.ErrDecode) {
			return Event{}, "", fmt.Errorf("%w: payload of %s: %w", ErrOutboxRow, text(out[0]), err)
		}
		return Event{}, "", err
	}
	env.Subject = text(out[2])
	return Event{Topic: schema.ChangesTopicIn(o.prefix, text(out[1])), Envelope: env}, text(out[0]), nil
}

func bytesOf(v any) ([]byte, error) {
	switch x := v.(type) {
	case []byte:
		if len(x) > 2 && x[0] == '\\' && x[1] == 'x' {
			return decodeHex(x[2:])
		}
		return x, nil
	case string:
		if strings.HasPrefix(x, `\x`) {
			return decodeHex([]byte(x[2:]))
		}
		return []byte(x), nil
	}
	return nil, fmt.Errorf("%w: payload of type %T", ErrOutboxRow, v)
}

func decodeHex(b []byte) ([]byte, error) {
	out := make([]byte, hex.DecodedLen(len(b)))
	if _, err := hex.Decode(out, b); err != nil {
		return nil, fmt.Errorf("%w: payload bytea: %w", ErrOutboxRow, err)
	}
	return out, nil
}
