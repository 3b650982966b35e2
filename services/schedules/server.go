package schedules

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	schedulesv1 "github.com/slatehq/slate/proto/schedules/v1"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/services/internal/service"
)

// Publisher publishes an ID-only change event: entity type, id, operation
// and the entity's new version as the event's sequence. It returns only
// when the event is durably accepted, or with an error. It is the contract
// of titles.Publisher: the producer SDK and a titles.PublisherFunc satisfy
// it, as does a [PublisherFunc].
type Publisher = service.Publisher

// PublisherFunc adapts a function to [Publisher].
type PublisherFunc = service.PublisherFunc

// DefaultPublishTimeout bounds one PublishChange call unless
// [WithPublishTimeout] says otherwise.
const DefaultPublishTimeout = service.DefaultPublishTimeout

// Limits on requests.
const (
	// MaxBatchGet is the most ids one BatchGetSchedules call may name.
	MaxBatchGet = service.MaxBatchGet
	// MaxIDLen is the longest title id, in bytes.
	MaxIDLen = service.MaxIDLen
)

// Option configures a [Server].
type Option func(*Server)

// WithLogger sets the logger. Default: discard. A nil logger keeps the
// default.
func WithLogger(l *slog.Logger) Option {
	return func(srv *Server) {
		if l != nil {
			srv.log = l
		}
	}
}

// WithPublishTimeout bounds each PublishChange call. Default:
// [DefaultPublishTimeout]; a non-positive d keeps the default.
func WithPublishTimeout(d time.Duration) Option {
	return func(srv *Server) {
		if d > 0 {
			srv.publishTimeout = d
		}
	}
}

// Server implements schedulesv1.SchedulesServer. It is safe for concurrent
// use. Errors are gRPC status errors: INVALID_ARGUMENT names the bad field
// (also as a google.rpc.BadRequest detail), and the codes of the sentinel
// errors are listed with them. A request that fails validation leaves the
// store unchanged.
type Server struct {
	schedulesv1.UnimplementedSchedulesServer

	pub            Publisher
	store          Store
	log            *slog.Logger
	publishTimeout time.Duration
}

var _ schedulesv1.SchedulesServer = (*Server)(nil)

// NewServer returns a Server that keeps schedules in store and publishes a
// change event through pub after every successful write. It panics if pub
// or store is nil.
func NewServer(pub Publisher, store Store, opts ...Option) *Server {
	if pub == nil || store == nil {
		panic("schedules: NewServer needs a Publisher and a Store")
	}
	s := &Server{
		pub:            pub,
		store:          store,
		log:            slog.New(slog.DiscardHandler),
		publishTimeout: DefaultPublishTimeout,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// PutSchedule creates or replaces the schedule of a title and publishes a
// CREATE event (the title had no schedule) or an UPDATE event.
func (s *Server) PutSchedule(ctx context.Context, req *schedulesv1.PutScheduleRequest) (*schedulesv1.PutScheduleResponse, error) {
	if req.GetSchedule() == nil {
		return nil, toStatus(&FieldError{Field: "schedule", Reason: "is required"})
	}
	sc := fromProto(req.GetSchedule())
	if err := service.ValidateID("schedule.title_id", sc.TitleID); err != nil {
		return nil, toStatus(err)
	}
	expected, err := service.ExpectedVersion(req.ExpectedVersion)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := sc.Validate(); err != nil {
		return nil, toStatus(service.Prefix("schedule.", err))
	}
	sc.UpdatedAt = time.Now().UTC()
	stored, created, err := s.store.Put(ctx, sc, expected)
	if err != nil {
		return nil, toStatus(err)
	}
	op := schema.OpUpdate
	if created {
		op = schema.OpCreate
	}
	if err := s.publish(ctx, stored.TitleID, op, stored.Version); err != nil {
		return nil, toStatus(err)
	}
	return &schedulesv1.PutScheduleResponse{Schedule: toProto(stored)}, nil
}

// DeleteSchedule removes the schedule of a title and publishes a DELETE
// event whose sequence is the schedule's last version plus one.
func (s *Server) DeleteSchedule(ctx context.Context, req *schedulesv1.DeleteScheduleRequest) (*schedulesv1.DeleteScheduleResponse, error) {
	if err := service.ValidateID("title_id", req.GetTitleId()); err != nil {
		return nil, toStatus(err)
	}
	expected, err := service.ExpectedVersion(req.ExpectedVersion)
	if err != nil {
		return nil, toStatus(err)
	}
	version, err := s.store.Delete(ctx, req.GetTitleId(), expected)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.publish(ctx, req.GetTitleId(), schema.OpDelete, version); err != nil {
		return nil, toStatus(err)
	}
	return &schedulesv1.DeleteScheduleResponse{Version: version}, nil
}

// GetSchedule returns the schedule of one title.
func (s *Server) GetSchedule(ctx context.Context, req *schedulesv1.GetScheduleRequest) (*schedulesv1.GetScheduleResponse, error) {
	id := req.GetTitleId()
	if err := service.ValidateID("title_id", id); err != nil {
		return nil, toStatus(err)
	}
	found, err := s.store.Get(ctx, []string{id})
	if err != nil {
		return nil, toStatus(err)
	}
	sc, ok := found[id]
	if !ok || sc.Deleted {
		return nil, toStatus(fmt.Errorf("schedule %w: %s", ErrNotFound, id))
	}
	return &schedulesv1.GetScheduleResponse{Schedule: toProto(sc)}, nil
}

// BatchGetSchedules returns the schedules among ids, with the tombstones
// of deleted ones, and the ids that never had one, both in request order
// with repeated ids answered once.
//
// A deleted schedule is answered with its tombstone (deleted set, at the
// delete's version) rather than left out, so that a view that joins
// schedules sees the delete as a change at a higher version: the title
// view's version (enricher.ViewVersion) adds up the versions of its
// joined records, and a schedule that just went missing would take its
// version away, make the view's version drop, and the sinks, which keep
// the highest version, refuse the view without it. The store keeps each
// delete's version anyway, for a schedule put again to continue after
// it, so the tombstone costs nothing but its key. (A monotonic
// component in the view version, such as a timestamp, would also grow,
// but it would give replicas and retries different versions for one
// state, and the enricher's ids, derived from the version, would stop
// deduplicating them.)
func (s *Server) BatchGetSchedules(ctx context.Context, req *schedulesv1.BatchGetSchedulesRequest) (*schedulesv1.BatchGetSchedulesResponse, error) {
	ids, err := service.BatchIDs(req.GetIds())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &schedulesv1.BatchGetSchedulesResponse{}
	if len(ids) == 0 {
		return resp, nil
	}
	found, err := s.store.Get(ctx, ids)
	if err != nil {
		return nil, toStatus(err)
	}
	for _, id := range ids {
		if sc, ok := found[id]; ok {
			resp.Schedules = append(resp.Schedules, toProto(sc))
		} else {
			resp.MissingIds = append(resp.MissingIds, id)
		}
	}
	return resp, nil
}

func (s *Server) publish(ctx context.Context, id string, op schema.Op, seq int64) error {
	return service.Publish(ctx, s.pub, s.log, s.publishTimeout, EntityType, id, op, seq)
}
