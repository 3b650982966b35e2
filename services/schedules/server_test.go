package schedules_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"

	schedulesv1 "github.com/slatehq/slate/proto/schedules/v1"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/services/internal/servicetest"
	"github.com/slatehq/slate/services/schedules"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
)

// ev is the change event of a schedule write.
func ev(id string, op schema.Op, seq int64) servicetest.Change {
	return servicetest.Change{EntityType: schedules.EntityType, ID: id, Op: op, Seq: seq}
}

// serve runs a Server with a BoltStore in a temporary directory for the
// test's lifetime and returns a client of it.
func serve(t *testing.T, pub schedules.Publisher) (schedulesv1.SchedulesClient, *servicetest.Recorder) {
	t.Helper()
	rec, _ := pub.(*servicetest.Recorder)
	store := openStore(t, filepath.Join(t.TempDir(), "schedules.db"))
	srv := schedules.NewServer(pub, store)
	conn := servicetest.Serve(t, func(ctx context.Context, lis net.Listener) error {
		return schedules.Serve(ctx, lis, srv)
	})
	return schedulesv1.NewSchedulesClient(conn), rec
}

func schedule(id string) *schedulesv1.Schedule {
	return &schedulesv1.Schedule{TitleId: id, ProductionStart: "2027-01-04", ProductionEnd: "2027-09-30",
		Releases: []*schedulesv1.Release{{Territory: "US", Date: "2028-02-01"}, {Territory: "GB", Date: "2028-02-08"}}}
}

func TestWritesPublishOneEventEach(t *testing.T) {
	ctx := servicetest.Ctx(t)
	c, rec := serve(t, &servicetest.Recorder{})

	put, err := c.PutSchedule(ctx, &schedulesv1.PutScheduleRequest{Schedule: schedule("t1")})
	if err != nil {
		t.Fatal(err)
	}
	if got := put.GetSchedule(); got.GetVersion() != 1 || got.GetUpdatedAt() == nil ||
		got.GetReleases()[0].GetTerritory() != "GB" || got.GetReleases()[1].GetTerritory() != "US" {
		t.Fatalf("PutSchedule = %v, want version 1 with releases sorted by territory", got)
	}
	rec.WantChanges(t, ev("t1", schema.OpCreate, 1))

	again := schedule("t1")
	again.ProductionEnd = "2027-10-31"
	put, err = c.PutSchedule(ctx, &schedulesv1.PutScheduleRequest{Schedule: again, ExpectedVersion: proto.Int64(1)})
	if err != nil || put.GetSchedule().GetVersion() != 2 {
		t.Fatalf("PutSchedule over version 1 = %v, %v", put, err)
	}
	rec.WantChanges(t, ev("t1", schema.OpUpdate, 2))

	got, err := c.GetSchedule(ctx, &schedulesv1.GetScheduleRequest{TitleId: "t1"})
	if err != nil || got.GetSchedule().GetProductionEnd() != "2027-10-31" || got.GetSchedule().GetVersion() != 2 {
		t.Fatalf("GetSchedule = %v, %v", got, err)
	}

	batch, err := c.BatchGetSchedules(ctx, &schedulesv1.BatchGetSchedulesRequest{Ids: []string{"nope", "t1", "nope", "t1"}})
	if err != nil || len(batch.GetSchedules()) != 1 || batch.GetSchedules()[0].GetTitleId() != "t1" ||
		len(batch.GetMissingIds()) != 1 || batch.GetMissingIds()[0] != "nope" {
		t.Fatalf("BatchGetSchedules = %v, %v", batch, err)
	}

	del, err := c.DeleteSchedule(ctx, &schedulesv1.DeleteScheduleRequest{TitleId: "t1", ExpectedVersion: proto.Int64(2)})
	if err != nil || del.GetVersion() != 3 {
		t.Fatalf("DeleteSchedule = %v, %v; want version 3", del, err)
	}
	rec.WantChanges(t, ev("t1", schema.OpDelete, 3))
	// A deleted schedule is not found, but a batch read answers its
	// tombstone at the delete's version.
	_, err = c.GetSchedule(ctx, &schedulesv1.GetScheduleRequest{TitleId: "t1"})
	servicetest.WantCode(t, err, codes.NotFound)
	batch, err = c.BatchGetSchedules(ctx, &schedulesv1.BatchGetSchedulesRequest{Ids: []string{"t1", "nope"}})
	if err != nil || len(batch.GetSchedules()) != 1 || !proto.Equal(batch.GetSchedules()[0], &schedulesv1.Schedule{TitleId: "t1", Version: 3, Deleted: true}) ||
		len(batch.GetMissingIds()) != 1 || batch.GetMissingIds()[0] != "nope" {
		t.Fatalf("BatchGetSchedules after the delete = %v, %v; want the tombstone of t1 at version 3", batch, err)
	}

	put, err = c.PutSchedule(ctx, &schedulesv1.PutScheduleRequest{Schedule: schedule("t1")})
	if err != nil || put.GetSchedule().GetVersion() != 4 {
		t.Fatalf("PutSchedule after the delete = %v, %v; want version 4", put, err)
	}
	rec.WantChanges(t, ev("t1", schema.OpCreate, 4))
}

func TestInvalidRequestsLeaveTheStoreUnchanged(t *testing.T) {
	ctx := servicetest.Ctx(t)
	c, rec := serve(t, &servicetest.Recorder{})
	if _, err := c.PutSchedule(ctx, &schedulesv1.PutScheduleRequest{Schedule: schedule("t1")}); err != nil {
		t.Fatal(err)
	}
	rec.Take()

	with := func(f func(s *schedulesv1.Schedule)) *schedulesv1.PutScheduleRequest {
		s := schedule("t1")
		f(s)
		return &schedulesv1.PutScheduleRequest{Schedule: s}
	}
	for _, tc := range []struct {
		name  string
		req   *schedulesv1.PutScheduleRequest
		field string
	}{
		{"no schedule", &schedulesv1.PutScheduleRequest{}, "schedule"},
		{"no title id", with(func(s *schedulesv1.Schedule) { s.TitleId = "" }), "schedule.title_id"},
		{"title id with a space", with(func(s *schedulesv1.Schedule) { s.TitleId = "t 1" }), "schedule.title_id"},
		{"end before start", with(func(s *schedulesv1.Schedule) { s.ProductionEnd = "2027-01-03" }), "schedule.production_end"},
		{"no start", with(func(s *schedulesv1.Schedule) { s.ProductionStart = "" }), "schedule.production_start"},
		{"start not a date", with(func(s *schedulesv1.Schedule) { s.ProductionStart = "2027-02-30" }), "schedule.production_start"},
		{"lower-case territory", with(func(s *schedulesv1.Schedule) { s.Releases[1].Territory = "gb" }), "schedule.releases[1].territory"},
		{"UK is not ISO 3166", with(func(s *schedulesv1.Schedule) { s.Releases[1].Territory = "UK" }), "schedule.releases[1].territory"},
		{"alpha-3 territory", with(func(s *schedulesv1.Schedule) { s.Releases[0].Territory = "USA" }), "schedule.releases[0].territory"},
		{"territory twice", with(func(s *schedulesv1.Schedule) { s.Releases[1].Territory = "US" }), "schedule.releases[1].territory"},
		{"release not a date", with(func(s *schedulesv1.Schedule) { s.Releases[0].Date = "01/02/2028" }), "schedule.releases[0].date"},
		{"expected version zero", &schedulesv1.PutScheduleRequest{Schedule: schedule("t1"), ExpectedVersion: proto.Int64(0)}, "expected_version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.PutSchedule(ctx, tc.req)
			servicetest.WantField(t, err, tc.field)
		})
	}

	_, err := c.PutSchedule(ctx, &schedulesv1.PutScheduleRequest{Schedule: schedule("t1"), ExpectedVersion: proto.Int64(7)})
	servicetest.WantCode(t, err, codes.FailedPrecondition)
	_, err = c.DeleteSchedule(ctx, &schedulesv1.DeleteScheduleRequest{TitleId: "t1", ExpectedVersion: proto.Int64(7)})
	servicetest.WantCode(t, err, codes.FailedPrecondition)
	_, err = c.PutSchedule(ctx, &schedulesv1.PutScheduleRequest{Schedule: schedule("t2"), ExpectedVersion: proto.Int64(1)})
	servicetest.WantCode(t, err, codes.NotFound)
	_, err = c.GetSchedule(ctx, &schedulesv1.GetScheduleRequest{TitleId: "t2"})
	servicetest.WantCode(t, err, codes.NotFound)
	_, err = c.DeleteSchedule(ctx, &schedulesv1.DeleteScheduleRequest{TitleId: "t2"})
	servicetest.WantCode(t, err, codes.NotFound)
	_, err = c.BatchGetSchedules(ctx, &schedulesv1.BatchGetSchedulesRequest{Ids: []string{"t1", ""}})
	servicetest.WantField(t, err, "ids[1]")

	got, err := c.GetSchedule(ctx, &schedulesv1.GetScheduleRequest{TitleId: "t1"})
	if err != nil || !proto.Equal(got.GetSchedule().GetReleases()[1], schedule("t1").GetReleases()[0]) || got.GetSchedule().GetVersion() != 1 {
		t.Fatalf("after the refused requests GetSchedule = %v, %v; want version 1 as put", got, err)
	}
	rec.WantChanges(t)
}

func TestPublishFailureKeepsTheWrite(t *testing.T) {
	ctx := servicetest.Ctx(t)
	c, rec := serve(t, &servicetest.Recorder{})
	rec.FailWith(errors.New("broker down"))
	_, err := c.PutSchedule(ctx, &schedulesv1.PutScheduleRequest{Schedule: schedule("t1")})
	servicetest.WantCode(t, err, codes.Unavailable)
	rec.FailWith(nil)
	got, err := c.GetSchedule(ctx, &schedulesv1.GetScheduleRequest{TitleId: "t1"})
	if err != nil || got.GetSchedule().GetVersion() != 1 {
		t.Fatalf("GetSchedule after a failed publish = %v, %v; want the write applied", got, err)
	}
	if _, err := c.PutSchedule(ctx, &schedulesv1.PutScheduleRequest{Schedule: schedule("t1")}); err != nil {
		t.Fatal(err)
	}
	rec.WantChanges(t, ev("t1", schema.OpUpdate, 2))
}

func TestServeHealthAndReflection(t *testing.T) {
	ctx := servicetest.Ctx(t)
	store := openStore(t, filepath.Join(t.TempDir(), "schedules.db"))
	srv := schedules.NewServer(&servicetest.Recorder{}, store)
	conn := servicetest.Serve(t, func(ctx context.Context, lis net.Listener) error {
		return schedules.Serve(ctx, lis, srv)
	})
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "slate.schedules.v1.Schedules"})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", h, err)
	}
	stream, err := rpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range resp.GetListServicesResponse().GetService() {
		found = found || s.GetName() == "slate.schedules.v1.Schedules"
	}
	if !found {
		t.Fatalf("reflection lists %v, want slate.schedules.v1.Schedules", resp.GetListServicesResponse())
	}

	// A request that does not unmarshal is the client's fault.
	err = servicetest.InvokeRaw(ctx, conn, "/slate.schedules.v1.Schedules/GetSchedule", []byte{0x0a, 0x05, 'a'})
	servicetest.WantCode(t, err, codes.InvalidArgument)
}
