package finance_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	"github.com/slatehq/slate/enricher/grpcresolver"
	financev1 "github.com/slatehq/slate/proto/finance/v1"
	"github.com/slatehq/slate/services/finance"
	"github.com/slatehq/slate/services/internal/servicetest"
)

// The generic gRPC resolver reads BatchGetBudgets through the server's
// reflection, as an enrich pipeline does; amounts stay integer minor units.
func TestGenericResolverReadsBudgets(t *testing.T) {
	ctx := servicetest.Ctx(t)
	srv := finance.NewServer(&servicetest.Recorder{}, openBolt(t, filepath.Join(t.TempDir(), "f.db")))
	for range 2 {
		if _, err := srv.PutBudget(ctx, &financev1.PutBudgetRequest{Budget: pbBudget("t1")}); err != nil {
			t.Fatal(err)
		}
	}
	addr := servicetest.Run(t, func(ctx context.Context, lis net.Listener) error { return finance.Serve(ctx, lis, srv) })
	r, err := grpcresolver.New(ctx, grpcresolver.Spec{Target: addr, RPC: "slate.finance.v1.Finance/BatchGetBudgets",
		RecordsField: "budgets", IDField: "title_id", VersionField: "version"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	got, err := r.Resolve(ctx, finance.EntityType, []string{"missing", "t1"})
	if err != nil {
		t.Fatal(err)
	}
	rec, ok := got["t1"]
	if !ok || len(got) != 1 || rec.Version != 2 || r.Schema().FullName() != "slate.finance.v1.Budget" {
		t.Fatalf("resolved %+v of %s, want t1 at version 2 only", got, r.Schema().FullName())
	}
	lines := rec.Value.(map[string]any)["line_items"].([]any)
	if first := lines[0].(map[string]any); len(lines) != 3 || first["amount"] != int64(12_000_000_00) || first["currency"] != "USD" {
		t.Errorf("line items %v", lines)
	}
}
