package registry_test

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	avroregistry "github.com/hamba/avro/v2/registry"

	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/schema/registry"
)

// TestContract is the registry contract that slate's clients rely on. It
// does not depend on the registry's prior state (subjects are unique per
// run, ids are compared with each other, never with constants), so the same
// body runs against slate's server in memory, slate's server over the
// embedded broker's _schemas topic, and a real Confluent Schema Registry
// when SLATE_SR_URL is set.
func TestContract(t *testing.T) {
	targets := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"memory", func(t *testing.T) string { return newTestRegistry(t).url }},
		{"kafka store", func(t *testing.T) string {
			b, err := broker.Start()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(b.Close)
			return newTestRegistry(t, registry.WithStore(kafkaStore(t, b.Addr()))).url
		}},
		{"confluent", func(t *testing.T) string {
			u := os.Getenv("SLATE_SR_URL")
			if u == "" {
				t.Skip("SLATE_SR_URL is unset; set it to a Confluent Schema Registry URL to run the contract against it")
			}
			return u
		}},
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			c, err := avroregistry.NewClient(tg.url(t))
			if err != nil {
				t.Fatal(err)
			}
			contract(t, c)
		})
	}
}

func contract(t *testing.T, c *avroregistry.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run := "slate-contract-" + schema.NewID()
	subj, other := run+"-value", run+"-other-value"
	v1 := `{"type":"record","name":"Title","namespace":"contract","fields":[{"name":"id","type":"string"}]}`
	v2 := `{"type":"record","name":"Title","namespace":"contract","fields":[{"name":"id","type":"string"},{"name":"name","type":["null","string"],"default":null}]}`
	bad := `{"type":"record","name":"Title","namespace":"contract","fields":[{"name":"id","type":"long"}]}`
	t.Cleanup(func() {
		for _, s := range []string{subj, other} {
			_, _ = c.DeleteSubject(context.Background(), s)
		}
	})

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.SetCompatibilityLevel(ctx, subj, "BACKWARD"))

	id1, s1, err := c.CreateSchema(ctx, subj, v1)
	must(err)
	t.Run("register is idempotent", func(t *testing.T) {
		again, _, err := c.CreateSchema(ctx, subj, v1)
		must(err)
		if again != id1 {
			t.Fatalf("re-register gave id %d, first %d", again, id1)
		}
		vs, err := c.GetVersions(ctx, subj)
		must(err)
		if !slices.Equal(vs, []int{1}) {
			t.Fatalf("versions %v, want [1]", vs)
		}
	})
	t.Run("same schema, other subject, same id", func(t *testing.T) {
		id, _, err := c.CreateSchema(ctx, other, v1)
		must(err)
		if id != id1 {
			t.Fatalf("id %d in %s, %d in %s", id, other, id1, subj)
		}
	})
	t.Run("schema by id", func(t *testing.T) {
		s, err := c.GetSchema(ctx, id1)
		must(err)
		if s.Fingerprint() != s1.Fingerprint() {
			t.Fatalf("schema %d = %s, want %s", id1, s, s1)
		}
	})
	var id2 int
	t.Run("compatible evolution is a new version", func(t *testing.T) {
		ok, err := c.IsCompatible(ctx, subj, v2)
		must(err)
		if !ok {
			t.Fatal("adding an optional field reported incompatible")
		}
		id2, _, err = c.CreateSchema(ctx, subj, v2)
		must(err)
		if id2 == id1 {
			t.Fatalf("v2 got v1's id %d", id1)
		}
		info, err := c.GetLatestSchemaInfo(ctx, subj)
		must(err)
		if info.ID != id2 || info.Version != 2 {
			t.Fatalf("latest = id %d version %d, want id %d version 2", info.ID, info.Version, id2)
		}
		info, err = c.GetSchemaInfo(ctx, subj, 1)
		must(err)
		if info.ID != id1 {
			t.Fatalf("version 1 = id %d, want %d", info.ID, id1)
		}
	})
	t.Run("incompatible change is refused", func(t *testing.T) {
		ok, err := c.IsCompatible(ctx, subj, bad)
		must(err)
		if ok {
			t.Fatal("changing a field's type reported compatible")
		}
		_, _, err = c.CreateSchema(ctx, subj, bad)
		wantCode(t, err, registry.CodeIncompatibleSchema)
	})
	t.Run("lookup", func(t *testing.T) {
		id, _, err := c.IsRegistered(ctx, subj, v2)
		must(err)
		if id != id2 {
			t.Fatalf("lookup id %d, want %d", id, id2)
		}
		_, _, err = c.IsRegistered(ctx, subj, bad)
		wantCode(t, err, registry.CodeSchemaNotFound)
	})
	t.Run("config", func(t *testing.T) {
		lvl, err := c.GetCompatibilityLevel(ctx, subj)
		must(err)
		if lvl != "BACKWARD" {
			t.Fatalf("level %q, want BACKWARD", lvl)
		}
	})
	t.Run("subjects", func(t *testing.T) {
		ss, err := c.GetSubjects(ctx)
		must(err)
		if !slices.Contains(ss, subj) || !slices.Contains(ss, other) {
			t.Fatalf("subjects %v lack %s or %s", ss, subj, other)
		}
	})
	t.Run("soft delete", func(t *testing.T) {
		vs, err := c.DeleteSubject(ctx, other)
		must(err)
		if !slices.Equal(vs, []int{1}) {
			t.Fatalf("deleted versions %v, want [1]", vs)
		}
		_, err = c.GetVersions(ctx, other)
		wantCode(t, err, registry.CodeSubjectNotFound)
		// The id stays resolvable: records written with it still decode.
		if _, err := c.GetSchema(ctx, id1); err != nil {
			t.Fatalf("schema %d after its subject was deleted: %v", id1, err)
		}
	})
}
