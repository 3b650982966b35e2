package registry_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/slatehq/slate/schema/registry"
)

// TestCompatibilityMatrix registers each change under each level and checks
// that the registry accepts or rejects it (409) as Avro's resolution rules
// say, and that the compatibility endpoint agrees.
func TestCompatibilityMatrix(t *testing.T) {
	const (
		a         = `{"name":"a","type":"int"}`
		aLong     = `{"name":"a","type":"long"}`
		aString   = `{"name":"a","type":"string"}`
		b         = `{"name":"b","type":"string"}`
		bDefault  = `{"name":"b","type":"string","default":""}`
		uNull     = `{"name":"u","type":["null","string"],"default":null}`
		uNullInt  = `{"name":"u","type":["null","string","int"],"default":null}`
		uString   = `{"name":"u","type":"string"}`
		uOptional = `{"name":"u","type":["null","string"],"default":null}`
	)
	type want struct{ backward, forward, full, none bool }
	tests := []struct {
		name      string
		old, next string
		want      want
	}{
		{"add field with default", record(a), record(a, bDefault), want{true, true, true, true}},
		{"add field without default", record(a), record(a, b), want{false, true, false, true}},
		{"remove field without default", record(a, b), record(a), want{true, false, false, true}},
		{"remove field with default", record(a, bDefault), record(a), want{true, true, true, true}},
		{"change type int to string", record(a), record(aString), want{false, false, false, true}},
		{"promote int to long", record(a), record(aLong), want{true, false, false, true}},
		{"narrow long to int", record(aLong), record(a), want{false, true, false, true}},
		{"add a union branch", record(a, uNull), record(a, uNullInt), want{true, false, false, true}},
		{"remove a union branch", record(a, uNullInt), record(a, uNull), want{false, true, false, true}},
		{"make a field optional", record(a, uString), record(a, uOptional), want{true, false, false, true}},
		{"rename the record", record(a), strings.Replace(record(a), `"name":"R"`, `"name":"S"`, 1), want{false, false, false, true}},
	}
	levels := []struct {
		level registry.Level
		pick  func(want) bool
	}{
		{registry.Backward, func(w want) bool { return w.backward }},
		{registry.BackwardTransitive, func(w want) bool { return w.backward }},
		{registry.Forward, func(w want) bool { return w.forward }},
		{registry.ForwardTransitive, func(w want) bool { return w.forward }},
		{registry.Full, func(w want) bool { return w.full }},
		{registry.FullTransitive, func(w want) bool { return w.full }},
		{registry.None, func(w want) bool { return w.none }},
	}
	ctx := context.Background()
	tr := newTestRegistry(t)
	for i, tt := range tests {
		for _, l := range levels {
			t.Run(fmt.Sprintf("%s/%s", tt.name, l.level), func(t *testing.T) {
				subject := fmt.Sprintf("m%d-%s", i, l.level)
				if err := tr.client.SetCompatibilityLevel(ctx, subject, string(l.level)); err != nil {
					t.Fatal(err)
				}
				if _, _, err := tr.client.CreateSchema(ctx, subject, tt.old); err != nil {
					t.Fatal(err)
				}
				accept := l.pick(tt.want)

				ok, err := tr.client.IsCompatible(ctx, subject, tt.next)
				if err != nil {
					t.Fatal(err)
				}
				if ok != accept {
					t.Errorf("is_compatible = %v, want %v", ok, accept)
				}

				_, _, err = tr.client.CreateSchema(ctx, subject, tt.next)
				switch {
				case accept && err != nil:
					t.Errorf("register rejected: %v", err)
				case !accept && err == nil:
					t.Errorf("register accepted an incompatible change")
				case !accept:
					wantCode(t, err, registry.CodeIncompatibleSchema)
				}
			})
		}
	}
}

// TestTransitive checks that the _TRANSITIVE levels look at every live
// version and the plain ones only at the latest.
func TestTransitive(t *testing.T) {
	const (
		a        = `{"name":"a","type":"int"}`
		b        = `{"name":"b","type":"string"}`
		bDefault = `{"name":"b","type":"string","default":"x"}`
	)
	tests := []struct {
		name    string
		history []string
		next    string
		level   registry.Level
		accept  bool
	}{
		// v3 reads v2 (b present) but not v1 (b missing, no default).
		{"backward", []string{record(a), record(a, bDefault)}, record(a, b), registry.Backward, true},
		{"backward transitive", []string{record(a), record(a, bDefault)}, record(a, b), registry.BackwardTransitive, false},
		// v2 reads v3 (b has a default) but v1 does not (no default).
		{"forward", []string{record(a, b), record(a, bDefault)}, record(a), registry.Forward, true},
		{"forward transitive", []string{record(a, b), record(a, bDefault)}, record(a), registry.ForwardTransitive, false},
		{"full", []string{record(a, b), record(a, bDefault)}, record(a), registry.Full, true},
		{"full transitive", []string{record(a, b), record(a, bDefault)}, record(a), registry.FullTransitive, false},
	}
	ctx := context.Background()
	tr := newTestRegistry(t, registry.WithCompatibility(registry.None))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subject := fmt.Sprintf("t%d", i)
			for _, s := range tt.history {
				if _, _, err := tr.client.CreateSchema(ctx, subject, s); err != nil {
					t.Fatal(err)
				}
			}
			if err := tr.client.SetCompatibilityLevel(ctx, subject, string(tt.level)); err != nil {
				t.Fatal(err)
			}
			_, _, err := tr.client.CreateSchema(ctx, subject, tt.next)
			if tt.accept && err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !tt.accept {
				wantCode(t, err, registry.CodeIncompatibleSchema)
			}
		})
	}

	t.Run("soft-deleted versions are not checked", func(t *testing.T) {
		subject := "t-deleted"
		for _, s := range []string{record(a), record(a, bDefault)} {
			if _, _, err := tr.client.CreateSchema(ctx, subject, s); err != nil {
				t.Fatal(err)
			}
		}
		if err := tr.client.SetCompatibilityLevel(ctx, subject, string(registry.BackwardTransitive)); err != nil {
			t.Fatal(err)
		}
		tr.doJSON(t, http.MethodDelete, "/subjects/"+subject+"/versions/1", nil, nil)
		if _, _, err := tr.client.CreateSchema(ctx, subject, record(a, b)); err != nil {
			t.Fatalf("rejected against a deleted version: %v", err)
		}
	})
}

// TestCheckerCache guards against reusing a compatibility verdict across
// schemas that differ only in defaults: hamba/avro's checker caches by a
// fingerprint that ignores them.
func TestCheckerCache(t *testing.T) {
	ctx := context.Background()
	tr := newTestRegistry(t)
	if _, _, err := tr.client.CreateSchema(ctx, "s", record(`{"name":"a","type":"int"}`)); err != nil {
		t.Fatal(err)
	}
	_, _, err := tr.client.CreateSchema(ctx, "s", record(`{"name":"a","type":"int"}`, `{"name":"b","type":"string"}`))
	wantCode(t, err, registry.CodeIncompatibleSchema)
	if _, _, err := tr.client.CreateSchema(ctx, "s", record(`{"name":"a","type":"int"}`, `{"name":"b","type":"string","default":""}`)); err != nil {
		t.Fatalf("the same change with a default was rejected: %v", err)
	}
}

func TestCompatibilityEndpoint(t *testing.T) {
	ctx := context.Background()
	tr := newTestRegistry(t, registry.WithCompatibility(registry.None))
	const a, b = `{"name":"a","type":"int"}`, `{"name":"b","type":"string"}`
	for _, s := range []string{record(a), record(a, b)} {
		if _, _, err := tr.client.CreateSchema(ctx, "s", s); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.client.SetCompatibilityLevel(ctx, "s", string(registry.Backward)); err != nil {
		t.Fatal(err)
	}
	type resp struct {
		IsCompatible bool     `json:"is_compatible"`
		Messages     []string `json:"messages"`
	}
	tests := []struct {
		name, path, schema string
		want               bool
	}{
		// record(a, b) reads version 2 but not version 1 (b has no default).
		{"latest", "/compatibility/subjects/s/versions/latest", record(a, b), true},
		{"version 2", "/compatibility/subjects/s/versions/2", record(a, b), true},
		{"version 1", "/compatibility/subjects/s/versions/1", record(a, b), false},
		{"unknown subject, latest", "/compatibility/subjects/new/versions/latest", record(a), true},
		{"unknown subject, all", "/compatibility/subjects/new/versions", record(a), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r resp
			tr.doJSON(t, http.MethodPost, tt.path+"?verbose=true", map[string]string{"schema": tt.schema}, &r)
			if r.IsCompatible != tt.want {
				t.Fatalf("is_compatible = %v, want %v (%v)", r.IsCompatible, tt.want, r.Messages)
			}
			if !r.IsCompatible && (len(r.Messages) == 0 || !strings.Contains(strings.Join(r.Messages, " "), "oldSchemaVersion: 1")) {
				t.Fatalf("verbose messages = %v", r.Messages)
			}
		})
	}
}
