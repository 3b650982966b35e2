package titles_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/services/internal/servicetest"
	"github.com/slatehq/slate/services/titles"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// change is one PublishChange call.
type change = servicetest.Change

// recorder is a Publisher that records every call and fails while an
// error is set with FailWith.
type recorder = servicetest.Recorder

// serve runs a Server over gRPC on 127.0.0.1:0 for the test's lifetime and
// returns a client connected to it.
func serve(t *testing.T, pub titles.Publisher, opts ...titles.Option) titlesv1.TitlesClient {
	t.Helper()
	conn, _ := serveConn(t, pub, opts...)
	return titlesv1.NewTitlesClient(conn)
}

func serveConn(t *testing.T, pub titles.Publisher, opts ...titles.Option) (*grpc.ClientConn, context.CancelFunc) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- titles.Serve(ctx, lis, titles.NewServer(pub, opts...), titles.WithGracePeriod(2*time.Second))
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		cancel()
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v", err)
		}
	})
	return conn, cancel
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func feature(name string) *titlesv1.Title {
	return &titlesv1.Title{Name: name, Kind: titles.KindFeature, Status: titles.StatusDevelopment, ReleaseDate: "2027-07-01"}
}

func wantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("code = %v (err %v), want %v", got, err, want)
	}
}

func TestCRUD(t *testing.T) {
	ctx := ctxT(t)
	pub := &recorder{}
	c := serve(t, pub)

	before := time.Now()
	created, err := c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: feature("Night Train")})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	tl := created.GetTitle()
	if tl.GetId() == "" || tl.GetVersion() != 1 || tl.GetName() != "Night Train" || tl.GetReleaseDate() != "2027-07-01" {
		t.Fatalf("created = %v", tl)
	}
	if ts := tl.GetUpdatedAt().AsTime(); ts.Before(before.Add(-time.Second)) || ts.After(time.Now().Add(time.Second)) {
		t.Errorf("updated_at = %v, want about now", ts)
	}
	id := tl.GetId()

	got, err := c.GetTitle(ctx, &titlesv1.GetTitleRequest{Id: id})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if !proto.Equal(got.GetTitle(), tl) {
		t.Errorf("get = %v, want %v", got.GetTitle(), tl)
	}

	for i, st := range []string{titles.StatusProduction, titles.StatusPost, titles.StatusReleased} {
		up := &titlesv1.Title{Id: id, Name: "Night Train", Kind: titles.KindFeature, Status: st, ReleaseDate: "2027-06-0" + string(rune('1'+i))}
		resp, err := c.UpdateTitle(ctx, &titlesv1.UpdateTitleRequest{Title: up})
		if err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
		if v := resp.GetTitle().GetVersion(); v != int64(i+2) {
			t.Errorf("update %d: version %d, want %d", i, v, i+2)
		}
		if resp.GetTitle().GetStatus() != st || resp.GetTitle().GetReleaseDate() != up.ReleaseDate {
			t.Errorf("update %d: stored %v", i, resp.GetTitle())
		}
	}

	// Full replacement: an update that clears release_date clears it.
	resp, err := c.UpdateTitle(ctx, &titlesv1.UpdateTitleRequest{Title: &titlesv1.Title{Id: id, Name: "Night Train", Kind: titles.KindSeries, Status: titles.StatusReleased}})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if resp.GetTitle().GetReleaseDate() != "" || resp.GetTitle().GetKind() != titles.KindSeries || resp.GetTitle().GetVersion() != 5 {
		t.Errorf("after replacement: %v", resp.GetTitle())
	}

	del, err := c.DeleteTitle(ctx, &titlesv1.DeleteTitleRequest{Id: id})
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	if del.GetVersion() != 6 {
		t.Errorf("delete version %d, want 6", del.GetVersion())
	}
	_, err = c.GetTitle(ctx, &titlesv1.GetTitleRequest{Id: id})
	wantCode(t, err, codes.NotFound)

	want := []change{
		{EntityType: "title", ID: id, Op: schema.OpCreate, Seq: 1},
		{EntityType: "title", ID: id, Op: schema.OpUpdate, Seq: 2},
		{EntityType: "title", ID: id, Op: schema.OpUpdate, Seq: 3},
		{EntityType: "title", ID: id, Op: schema.OpUpdate, Seq: 4},
		{EntityType: "title", ID: id, Op: schema.OpUpdate, Seq: 5},
		{EntityType: "title", ID: id, Op: schema.OpDelete, Seq: 6},
	}
	if got := pub.Take(); !slices.Equal(got, want) {
		t.Errorf("published\n%v\nwant\n%v", got, want)
	}
}

func TestCreateIDs(t *testing.T) {
	ctx := ctxT(t)
	pub := &recorder{}
	c := serve(t, pub)

	a, err := c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: feature("A")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: feature("B")})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{a.GetTitle().GetId(), b.GetTitle().GetId()} {
		if len(id) != 36 || id[14] != '7' {
			t.Errorf("generated id %q is not a UUIDv7", id)
		}
	}
	if a.GetTitle().GetId() >= b.GetTitle().GetId() {
		t.Errorf("ids %s, %s not time-ordered", a.GetTitle().GetId(), b.GetTitle().GetId())
	}

	chosen := feature("Chosen")
	chosen.Id = "tt-0042"
	chosen.Version = 99 // output only: ignored
	got, err := c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: chosen})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetTitle().GetId() != "tt-0042" || got.GetTitle().GetVersion() != 1 {
		t.Errorf("created %v", got.GetTitle())
	}
	_, err = c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: chosen})
	wantCode(t, err, codes.AlreadyExists)

	// Created again after a delete, the id's versions keep growing, so a
	// sink using them as external versions accepts the new title.
	if _, err := c.DeleteTitle(ctx, &titlesv1.DeleteTitleRequest{Id: "tt-0042"}); err != nil {
		t.Fatal(err)
	}
	again, err := c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: chosen})
	if err != nil {
		t.Fatal(err)
	}
	if again.GetTitle().GetVersion() != 3 {
		t.Errorf("re-created at version %d, want 3", again.GetTitle().GetVersion())
	}
	changes := pub.Take()
	want := []change{
		{EntityType: "title", ID: "tt-0042", Op: schema.OpCreate, Seq: 1},
		{EntityType: "title", ID: "tt-0042", Op: schema.OpDelete, Seq: 2},
		{EntityType: "title", ID: "tt-0042", Op: schema.OpCreate, Seq: 3},
	}
	if len(changes) != 5 || !slices.Equal(changes[2:], want) {
		t.Errorf("published %v, want 2 creates then %v", changes, want)
	}
}

func TestValidation(t *testing.T) {
	ctx := ctxT(t)
	pub := &recorder{}
	c := serve(t, pub)
	existing, err := c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: feature("Existing")})
	if err != nil {
		t.Fatal(err)
	}
	id := existing.GetTitle().GetId()
	pub.Take()

	with := func(f func(*titlesv1.Title)) *titlesv1.Title {
		tl := feature("Name")
		f(tl)
		return tl
	}
	v := func(n int64) *int64 { return &n }
	tooMany := make([]string, titles.MaxBatchGet+1)
	for i := range tooMany {
		tooMany[i] = "id"
	}

	tests := []struct {
		name  string
		call  func() error
		field string
	}{
		{"create nil title", func() error {
			_, err := c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{})
			return err
		}, "title"},
		{"create empty name", func() error {
			_, err := c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: with(func(t *titlesv1.Title) { t.Name = "  " })})
			return err
		}, "title.name"},
		{"create long name", func() error {
			_, err := c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: with(func(t *titlesv1.Title) { t.Name = strings.Repeat("x", 513) })})
			return err
		}, "title.name"},
		{"create unknown kind", func() error {
			_, err := c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: with(func(t *titlesv1.Title) { t.Kind = "MOVIE" })})
			return err
		}, "title.kind"},
		{"create lower-case kind", func() error {
			_, err := c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: with(func(t *titlesv1.Title) { t.Kind = "feature" })})
			return err
		}, "title.kind"},
		{"create empty status", func() error {
			_, err := c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: with(func(t *titlesv1.Title) { t.Status = "" })})
			return err
		}, "title.status"},
		{"create unknown status", func() error {
			_, err := c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: with(func(t *titlesv1.Title) { t.Status = "SHELVED" })})
			return err
		}, "title.status"},
		{"create bad date format", func() error {
			_, err := c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: with(func(t *titlesv1.Title) { t.ReleaseDate = "07/01/2027" })})
			return err
		}, "title.release_date"},
		{"create impossible date", func() error {
			_, err := c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: with(func(t *titlesv1.Title) { t.ReleaseDate = "2027-02-30" })})
			return err
		}, "title.release_date"},
		{"create id with space", func() error {
			_, err := c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: with(func(t *titlesv1.Title) { t.Id = "a b" })})
			return err
		}, "title.id"},
		{"create long id", func() error {
			_, err := c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: with(func(t *titlesv1.Title) { t.Id = strings.Repeat("a", 129) })})
			return err
		}, "title.id"},
		{"update empty id", func() error {
			_, err := c.UpdateTitle(ctx, &titlesv1.UpdateTitleRequest{Title: feature("x")})
			return err
		}, "title.id"},
		{"update bad kind", func() error {
			_, err := c.UpdateTitle(ctx, &titlesv1.UpdateTitleRequest{Title: with(func(t *titlesv1.Title) { t.Id = id; t.Kind = "" })})
			return err
		}, "title.kind"},
		{"update zero expected_version", func() error {
			_, err := c.UpdateTitle(ctx, &titlesv1.UpdateTitleRequest{Title: with(func(t *titlesv1.Title) { t.Id = id }), ExpectedVersion: v(0)})
			return err
		}, "expected_version"},
		{"delete empty id", func() error {
			_, err := c.DeleteTitle(ctx, &titlesv1.DeleteTitleRequest{})
			return err
		}, "id"},
		{"delete negative expected_version", func() error {
			_, err := c.DeleteTitle(ctx, &titlesv1.DeleteTitleRequest{Id: id, ExpectedVersion: v(-1)})
			return err
		}, "expected_version"},
		{"get empty id", func() error {
			_, err := c.GetTitle(ctx, &titlesv1.GetTitleRequest{})
			return err
		}, "id"},
		{"batch too many ids", func() error {
			_, err := c.BatchGetTitles(ctx, &titlesv1.BatchGetTitlesRequest{Ids: tooMany})
			return err
		}, "ids"},
		{"batch empty id", func() error {
			_, err := c.BatchGetTitles(ctx, &titlesv1.BatchGetTitlesRequest{Ids: []string{id, ""}})
			return err
		}, "ids[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			wantCode(t, err, codes.InvalidArgument)
			st := status.Convert(err)
			if !strings.Contains(st.Message(), tt.field+":") {
				t.Errorf("message %q does not name %s", st.Message(), tt.field)
			}
			var field string
			for _, d := range st.Details() {
				if br, ok := d.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) == 1 {
					field = br.GetFieldViolations()[0].GetField()
				}
			}
			if field != tt.field {
				t.Errorf("BadRequest field = %q, want %q", field, tt.field)
			}
		})
	}
	if got := pub.Take(); len(got) != 0 {
		t.Errorf("rejected calls published %v", got)
	}
	got, err := c.GetTitle(ctx, &titlesv1.GetTitleRequest{Id: id})
	if err != nil || got.GetTitle().GetVersion() != 1 {
		t.Errorf("after rejected calls: %v, %v; want version 1", got.GetTitle(), err)
	}
}

func TestNotFound(t *testing.T) {
	ctx := ctxT(t)
	pub := &recorder{}
	c := serve(t, pub)
	tests := []struct {
		name string
		call func() error
	}{
		{"get", func() error {
			_, err := c.GetTitle(ctx, &titlesv1.GetTitleRequest{Id: "nope"})
			return err
		}},
		{"update", func() error {
			_, err := c.UpdateTitle(ctx, &titlesv1.UpdateTitleRequest{Title: &titlesv1.Title{Id: "nope", Name: "n", Kind: titles.KindEpisode, Status: titles.StatusPost}})
			return err
		}},
		{"delete", func() error {
			_, err := c.DeleteTitle(ctx, &titlesv1.DeleteTitleRequest{Id: "nope"})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			wantCode(t, err, codes.NotFound)
			if !strings.Contains(status.Convert(err).Message(), "nope") {
				t.Errorf("message %q does not name the id", status.Convert(err).Message())
			}
		})
	}
	if got := pub.Take(); len(got) != 0 {
		t.Errorf("failed calls published %v", got)
	}
}

func TestBatchGet(t *testing.T) {
	ctx := ctxT(t)
	c := serve(t, &recorder{})
	var ids []string
	for _, name := range []string{"One", "Two", "Three"} {
		r, err := c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: feature(name)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.GetTitle().GetId())
	}
	if _, err := c.DeleteTitle(ctx, &titlesv1.DeleteTitleRequest{Id: ids[1]}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name        string
		ids         []string
		wantFound   []string
		wantMissing []string
	}{
		{"none", nil, nil, nil},
		{"all found", []string{ids[2], ids[0]}, []string{ids[2], ids[0]}, nil},
		{"deleted and unknown are missing", []string{"ghost", ids[0], ids[1], ids[2]}, []string{ids[0], ids[2]}, []string{"ghost", ids[1]}},
		{"repeats answered once", []string{ids[0], "ghost", ids[0], "ghost"}, []string{ids[0]}, []string{"ghost"}},
		{"at the limit", append(slices.Repeat([]string{"ghost"}, titles.MaxBatchGet-1), ids[2]), []string{ids[2]}, []string{"ghost"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.BatchGetTitles(ctx, &titlesv1.BatchGetTitlesRequest{Ids: tt.ids})
			if err != nil {
				t.Fatal(err)
			}
			var found []string
			for _, tl := range resp.GetTitles() {
				found = append(found, tl.GetId())
				if tl.GetVersion() != 1 || tl.GetName() == "" {
					t.Errorf("incomplete title %v", tl)
				}
			}
			if !slices.Equal(found, tt.wantFound) {
				t.Errorf("found %v, want %v", found, tt.wantFound)
			}
			if !slices.Equal(resp.GetMissingIds(), tt.wantMissing) {
				t.Errorf("missing %v, want %v", resp.GetMissingIds(), tt.wantMissing)
			}
		})
	}
}

func TestOptimisticConcurrency(t *testing.T) {
	ctx := ctxT(t)
	pub := &recorder{}
	c := serve(t, pub)
	created, err := c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: feature("Contested")})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetTitle().GetId()
	v := func(n int64) *int64 { return &n }
	update := func(name string, expected *int64) (*titlesv1.UpdateTitleResponse, error) {
		return c.UpdateTitle(ctx, &titlesv1.UpdateTitleRequest{
			Title:           &titlesv1.Title{Id: id, Name: name, Kind: titles.KindFeature, Status: titles.StatusProduction},
			ExpectedVersion: expected,
		})
	}

	if r, err := update("first", v(1)); err != nil || r.GetTitle().GetVersion() != 2 {
		t.Fatalf("update at expected version: %v, %v", r, err)
	}
	_, err = update("stale", v(1))
	wantCode(t, err, codes.FailedPrecondition)
	if msg := status.Convert(err).Message(); !strings.Contains(msg, "version 2") {
		t.Errorf("message %q does not say the stored version", msg)
	}
	_, err = c.DeleteTitle(ctx, &titlesv1.DeleteTitleRequest{Id: id, ExpectedVersion: v(7)})
	wantCode(t, err, codes.FailedPrecondition)

	got, err := c.GetTitle(ctx, &titlesv1.GetTitleRequest{Id: id})
	if err != nil || got.GetTitle().GetName() != "first" || got.GetTitle().GetVersion() != 2 {
		t.Fatalf("after conflicts: %v, %v", got.GetTitle(), err)
	}
	if r, err := update("unconditional", nil); err != nil || r.GetTitle().GetVersion() != 3 {
		t.Fatalf("update without expected version: %v, %v", r, err)
	}
	if r, err := c.DeleteTitle(ctx, &titlesv1.DeleteTitleRequest{Id: id, ExpectedVersion: v(3)}); err != nil || r.GetVersion() != 4 {
		t.Fatalf("delete at expected version: %v, %v", r, err)
	}
	want := []change{
		{EntityType: "title", ID: id, Op: schema.OpCreate, Seq: 1},
		{EntityType: "title", ID: id, Op: schema.OpUpdate, Seq: 2},
		{EntityType: "title", ID: id, Op: schema.OpUpdate, Seq: 3},
		{EntityType: "title", ID: id, Op: schema.OpDelete, Seq: 4},
	}
	if got := pub.Take(); !slices.Equal(got, want) {
		t.Errorf("published %v, want %v", got, want)
	}
}

// TestConcurrentWrites races writers on one title: unconditional updates
// all apply with distinct versions; updates expecting the same version let
// exactly one through.
func TestConcurrentWrites(t *testing.T) {
	ctx := ctxT(t)
	pub := &recorder{}
	c := serve(t, pub)
	created, err := c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: feature("Raced")})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetTitle().GetId()
	pub.Take()

	const n = 40
	run := func(expected *int64) (ok, conflicts int) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for range n {
			wg.Go(func() {
				_, err := c.UpdateTitle(ctx, &titlesv1.UpdateTitleRequest{
					Title:           &titlesv1.Title{Id: id, Name: "Raced", Kind: titles.KindFeature, Status: titles.StatusPost},
					ExpectedVersion: expected,
				})
				mu.Lock()
				defer mu.Unlock()
				switch status.Code(err) {
				case codes.OK:
					ok++
				case codes.FailedPrecondition:
					conflicts++
				default:
					t.Errorf("update: %v", err)
				}
			})
		}
		wg.Wait()
		return ok, conflicts
	}

	if ok, conflicts := run(nil); ok != n || conflicts != 0 {
		t.Fatalf("unconditional: %d ok, %d conflicts; want %d, 0", ok, conflicts, n)
	}
	var seqs []int64
	for _, ch := range pub.Take() {
		seqs = append(seqs, ch.Seq)
	}
	slices.Sort(seqs)
	for i, s := range seqs {
		if s != int64(i+2) {
			t.Fatalf("published sequences %v, want 2..%d once each", seqs, n+1)
		}
	}

	expected := int64(n + 1)
	if ok, conflicts := run(&expected); ok != 1 || conflicts != n-1 {
		t.Fatalf("conditional: %d ok, %d conflicts; want 1, %d", ok, conflicts, n-1)
	}
	if got := pub.Take(); len(got) != 1 || got[0].Seq != n+2 {
		t.Errorf("published %v, want one update at %d", got, n+2)
	}
}

func TestPublishFailure(t *testing.T) {
	ctx := ctxT(t)
	pub := &recorder{}
	c := serve(t, pub)
	created, err := c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: feature("Unlucky")})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetTitle().GetId()
	pub.FailWith(errors.New("broker down"))

	_, err = c.UpdateTitle(ctx, &titlesv1.UpdateTitleRequest{Title: &titlesv1.Title{Id: id, Name: "Renamed", Kind: titles.KindFeature, Status: titles.StatusPost}})
	wantCode(t, err, codes.Unavailable)
	if msg := status.Convert(err).Message(); !strings.Contains(msg, "broker down") || !strings.Contains(msg, "version 2") {
		t.Errorf("message %q should carry the cause and the applied version", msg)
	}
	// The write stays applied.
	got, err := c.GetTitle(ctx, &titlesv1.GetTitleRequest{Id: id})
	if err != nil || got.GetTitle().GetName() != "Renamed" || got.GetTitle().GetVersion() != 2 {
		t.Fatalf("after failed publish: %v, %v", got.GetTitle(), err)
	}

	_, err = c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: feature("Also unlucky")})
	wantCode(t, err, codes.Unavailable)
	_, err = c.DeleteTitle(ctx, &titlesv1.DeleteTitleRequest{Id: id})
	wantCode(t, err, codes.Unavailable)
	_, err = c.GetTitle(ctx, &titlesv1.GetTitleRequest{Id: id})
	wantCode(t, err, codes.NotFound)

	pub.FailWith(nil)
	if got := pub.Take(); len(got) != 1 || got[0].Op != schema.OpCreate {
		t.Errorf("published %v, want only the first create", got)
	}
}

// TestPublishDetached checks that a client giving up after the write does
// not cancel the publish, while the publish timeout still bounds it.
func TestPublishDetached(t *testing.T) {
	ctx := ctxT(t)
	published := make(chan error, 1)
	release := make(chan struct{})
	pub := titles.PublisherFunc(func(ctx context.Context, _, _ string, _ schema.Op, _ int64) error {
		select {
		case <-release:
			published <- nil
		case <-ctx.Done():
			published <- ctx.Err()
		}
		return nil
	})
	c := serve(t, pub, titles.WithPublishTimeout(time.Second))

	callCtx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err := c.CreateTitle(callCtx, &titlesv1.CreateTitleRequest{Title: feature("Impatient")})
	wantCode(t, err, codes.DeadlineExceeded)
	time.Sleep(100 * time.Millisecond) // well past the client's deadline
	close(release)
	if err := <-published; err != nil {
		t.Fatalf("publish was cancelled with the call: %v", err)
	}

	stuck := make(chan error, 1)
	blocking := titles.PublisherFunc(func(ctx context.Context, _, _ string, _ schema.Op, _ int64) error {
		<-ctx.Done()
		stuck <- ctx.Err()
		return ctx.Err()
	})
	c = serve(t, blocking, titles.WithPublishTimeout(100*time.Millisecond))
	start := time.Now()
	_, err = c.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: feature("Stuck")})
	wantCode(t, err, codes.Unavailable)
	if err := <-stuck; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("publish ctx ended with %v, want the publish timeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stuck publish took %v, want about the 100ms timeout", d)
	}
}

func TestNewServerNilPublisher(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewServer(nil) did not panic")
		}
	}()
	titles.NewServer(nil)
}
