package cdc_test

import (
	"context"
	"testing"
	"time"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/schema"
)

func TestEncoderRoundTrip(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	f := &cdc.Filter{ExcludeColumns: []string{"public.acct.secret"}, MaskColumns: []string{"public.acct.email"}}
	enc := cdc.NewEncoder(reg, f)
	tbl := &cdc.Table{DB: "fin", Schema: "public", Name: "acct", Columns: []cdc.Column{
		{Name: "id", Kind: cdc.KindLong, Key: true},
		{Name: "name", Kind: cdc.KindString},
		{Name: "ok", Kind: cdc.KindBool},
		{Name: "at", Kind: cdc.KindTimestamp},
		{Name: "amount", Kind: cdc.KindString},
		{Name: "secret", Kind: cdc.KindString},
		{Name: "email", Kind: cdc.KindString},
	}}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	ch := &cdc.Change{
		Op: schema.OpUpdate, Table: tbl, ID: "x/1",
		Before: []any{"7", "old", "f", nil, "1.50", "s", "a@b"},
		After:  []any{"7", "new", "t", "2026-01-02 03:04:05.123456+00", "2.50", "s", "a@b"},
		Source: cdc.SourceInfo{Connector: "postgresql", LSN: 42, TxID: 9, TxOrder: 1, Time: ts},
	}
	ev, err := enc.Encode(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Topic != "studio.cdc.fin.public.acct" || ev.Envelope.Subject != "7" || ev.Envelope.Sequence != 42 ||
		ev.Envelope.Source != "//pg/fin/public/acct" || ev.Envelope.EntityType != "acct" {
		t.Fatalf("event = %+v", ev)
	}
	if err := ev.Envelope.Validate(); err != nil {
		t.Fatal(err)
	}
	again, err := enc.Encode(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	if again.Envelope.ID != ev.Envelope.ID {
		t.Error("the same change gave two envelope ids; replays would not dedupe")
	}
	var rec map[string]any
	if err := schema.DecodeData(ctx, reg, ev.Envelope.Data, &rec); err != nil {
		t.Fatal(err)
	}
	after := unionRow(rec["after"])
	before := unionRow(rec["before"])
	if after["id"] != int64(7) || after["name"] != "new" || after["ok"] != true || !after["at"].(time.Time).Equal(ts) ||
		after["amount"] != "2.50" || before["name"] != "old" || before["at"] != nil {
		t.Errorf("decoded = %#v", rec)
	}
	if _, ok := after["secret"]; ok {
		t.Error("excluded column published")
	}
	if after["email"] == "a@b" || len(after["email"].(string)) != 64 {
		t.Errorf("email not masked: %v", after["email"])
	}
	src := rec["source"].(map[string]any)
	if src["lsn"] != int64(42) || src["txid"] != int64(9) || src["snapshot"] != false || src["table"] != "acct" {
		t.Errorf("source = %#v", src)
	}
}
