package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/cdc/cdctest"
	"github.com/slatehq/slate/cdc/postgres"
	"github.com/slatehq/slate/schema"
)

type pgHarness struct {
	h   *harness
	tbl string
}

func (p *pgHarness) Setup(t *testing.T) string {
	p.h = newHarness(t)
	p.tbl = p.h.table("kv")
	exec(t, p.h.db, fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, v bigint NOT NULL)", p.tbl))
	t.Cleanup(func() { exec(t, p.h.db, "DROP TABLE IF EXISTS "+p.tbl) })
	return cdc.Topic("postgres", "public", p.tbl)
}

func (p *pgHarness) NewSource(t *testing.T, reg schema.Registry) cdc.Source {
	src, err := postgres.New(p.h.config("public."+p.tbl), postgres.WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func (p *pgHarness) WaitReady(*testing.T) { p.h.waitActive() }

func (p *pgHarness) Upsert(t *testing.T, id int, v int64, commit bool) {
	ctx := context.Background()
	tx, err := p.h.db.Begin(ctx)
	if err != nil {
		t.Error(err)
		return
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+p.tbl+" VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v", id, v); err != nil {
		t.Error(err)
	}
	if commit {
		err = tx.Commit(ctx)
	} else {
		err = tx.Rollback(ctx)
	}
	if err != nil {
		t.Error(err)
	}
}

// TestContract runs the suite every CDC source passes.
func TestContract(t *testing.T) {
	cdctest.Run(t, &pgHarness{})
}
