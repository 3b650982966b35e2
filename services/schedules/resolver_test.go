package schedules_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	"github.com/slatehq/slate/enricher/grpcresolver"
	schedulesv1 "github.com/slatehq/slate/proto/schedules/v1"
	"github.com/slatehq/slate/services/internal/servicetest"
	"github.com/slatehq/slate/services/schedules"
)

// The generic gRPC resolver reads BatchGetSchedules through the server's
// reflection, as an enrich pipeline does.
func TestGenericResolverReadsSchedules(t *testing.T) {
	ctx := servicetest.Ctx(t)
	srv := schedules.NewServer(&servicetest.Recorder{}, openStore(t, filepath.Join(t.TempDir(), "s.db")))
	if _, err := srv.PutSchedule(ctx, &schedulesv1.PutScheduleRequest{Schedule: schedule("t1")}); err != nil {
		t.Fatal(err)
	}
	addr := servicetest.Run(t, func(ctx context.Context, lis net.Listener) error { return schedules.Serve(ctx, lis, srv) })
	r, err := grpcresolver.New(ctx, grpcresolver.Spec{Target: addr, RPC: "slate.schedules.v1.Schedules/BatchGetSchedules",
		RecordsField: "schedules", IDField: "title_id", VersionField: "version", DeletedField: "deleted"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	got, err := r.Resolve(ctx, schedules.EntityType, []string{"t1", "missing"})
	if err != nil {
		t.Fatal(err)
	}
	rec, ok := got["t1"]
	if !ok || len(got) != 1 || rec.Version != 1 || r.Schema().FullName() != "slate.schedules.v1.Schedule" {
		t.Fatalf("resolved %+v of %s, want t1 at version 1 only", got, r.Schema().FullName())
	}
	v := rec.Value.(map[string]any)
	if v["production_start"] != "2027-01-04" || len(v["releases"].([]any)) != 2 || rec.Deleted {
		t.Errorf("record %v", v)
	}

	// A deleted schedule resolves as a tombstone at the delete's version.
	if _, err := srv.DeleteSchedule(ctx, &schedulesv1.DeleteScheduleRequest{TitleId: "t1"}); err != nil {
		t.Fatal(err)
	}
	got, err = r.Resolve(ctx, schedules.EntityType, []string{"t1", "missing"})
	if err != nil {
		t.Fatal(err)
	}
	if rec, ok := got["t1"]; !ok || len(got) != 1 || !rec.Deleted || rec.Version != 2 {
		t.Fatalf("resolved %+v after the delete, want the tombstone of t1 at version 2", got)
	}
}
