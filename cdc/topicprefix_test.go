package cdc_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/schema"
)

func TestTopicPrefix(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	tbl := &cdc.Table{DB: "fin", Schema: "public", Name: "acct", Columns: []cdc.Column{{Name: "id", Kind: cdc.KindLong, Key: true}}}
	ch := &cdc.Change{Op: schema.OpCreate, Table: tbl, ID: "x/1", After: []any{"7"},
		Source: cdc.SourceInfo{Connector: "postgresql", LSN: 42, Time: time.Now()}}
	outboxTbl := &cdc.Table{DB: "fin", Schema: "public", Name: cdc.OutboxTable, Columns: []cdc.Column{
		{Name: "id"}, {Name: "aggregatetype"}, {Name: "aggregateid"}, {Name: "type"}, {Name: "payload"}}}
	codec, err := schema.NewCodec(reg)
	if err != nil {
		t.Fatal(err)
	}
	env := schema.NewEnvelope("//studio/titles", schema.OpUpdate, "title", "t-1")
	payload, err := codec.Encode(ctx, nil, "acme.title.changes", &env)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		opts          []cdc.Option
		rows, changes string
	}{
		{"default", nil, "studio.cdc.fin.public.acct", "studio.title.changes"},
		{"empty is the default", []cdc.Option{cdc.WithTopicPrefix("")}, "studio.cdc.fin.public.acct", "studio.title.changes"},
		{"acme.", []cdc.Option{cdc.WithTopicPrefix("acme.")}, "acme.cdc.fin.public.acct", "acme.title.changes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := cdc.NewEncoder(reg, nil, tt.opts...).Encode(ctx, ch)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Topic != tt.rows {
				t.Errorf("row event topic %q, want %q", ev.Topic, tt.rows)
			}
			r, err := cdc.NewOutboxRouter(reg, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			ev, _, err = r.Route(ctx, outboxTbl, []any{env.ID, "title", "t-1", "UPDATE", payload})
			if err != nil {
				t.Fatal(err)
			}
			if ev.Topic != tt.changes || ev.Envelope.ID != env.ID {
				t.Errorf("outbox event on %q (id %s), want %q (id %s)", ev.Topic, ev.Envelope.ID, tt.changes, env.ID)
			}
		})
	}
	_, err = cdc.NewOutboxRouter(reg, cdc.WithTopicPrefix("acme,"))
	if !errors.Is(err, cdc.ErrConfig) || !strings.Contains(err.Error(), `WithTopicPrefix: schema: invalid topic prefix: "acme,"`) {
		t.Fatalf("bad prefix: err = %v, want ErrConfig naming WithTopicPrefix", err)
	}
}
