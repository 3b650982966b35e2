package titles

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/services/internal/service"
)

// Publisher publishes an ID-only change event: entity type, id, operation
// and the entity's new version as the event's sequence. It returns only when
// the event is durably accepted (for Kafka: acknowledged by the broker), or
// with an error. The producer SDK satisfies it; so does a [PublisherFunc].
type Publisher = service.Publisher

// PublisherFunc adapts a function to [Publisher].
type PublisherFunc = service.PublisherFunc

// DefaultPublishTimeout bounds one PublishChange call unless
// [WithPublishTimeout] says otherwise.
const DefaultPublishTimeout = service.DefaultPublishTimeout

// Option configures a [Server].
type Option func(*Server)

// WithStore sets where titles are kept. Default: a new [MemoryStore]. A nil
// store keeps the default.
func WithStore(s Store) Option {
	return func(srv *Server) {
		if s != nil {
			srv.store = s
		}
	}
}

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

// Server implements titlesv1.TitlesServer. It is safe for concurrent use.
// Errors are gRPC status errors: INVALID_ARGUMENT names the bad field (also
// as a google.rpc.BadRequest detail), and the codes of the sentinel errors
// are listed with them.
type Server struct {
	titlesv1.UnimplementedTitlesServer

	pub            Publisher
	store          Store
	log            *slog.Logger
	publishTimeout time.Duration
}

var _ titlesv1.TitlesServer = (*Server)(nil)

// NewServer returns a Server that publishes a change event through pub
// after every successful write. It panics if pub is nil.
func NewServer(pub Publisher, opts ...Option) *Server {
	if pub == nil {
		panic("titles: NewServer with nil Publisher")
	}
	s := &Server{
		pub:            pub,
		log:            slog.New(slog.DiscardHandler),
		publishTimeout: DefaultPublishTimeout,
	}
	for _, o := range opts {
		o(s)
	}
	if s.store == nil {
		s.store = NewMemoryStore()
	}
	return s
}

// CreateTitle stores a new title, choosing a UUIDv7 id if title.id is
// empty, and publishes a CREATE event.
func (s *Server) CreateTitle(ctx context.Context, req *titlesv1.CreateTitleRequest) (*titlesv1.CreateTitleResponse, error) {
	if req.GetTitle() == nil {
		return nil, toStatus(&FieldError{Field: "title", Reason: "is required"})
	}
	t := fromProto(req.GetTitle())
	if t.ID == "" {
		t.ID = schema.NewID()
	} else if err := validateNewID(t.ID); err != nil {
		return nil, toStatus(err)
	}
	if err := validateTitle(&t); err != nil {
		return nil, toStatus(err)
	}
	t.UpdatedAt = now()
	stored, err := s.store.Create(ctx, t)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.publish(ctx, stored.ID, schema.OpCreate, stored.Version); err != nil {
		return nil, toStatus(err)
	}
	return &titlesv1.CreateTitleResponse{Title: toProto(stored)}, nil
}

// UpdateTitle replaces the mutable fields of a title and publishes an
// UPDATE event.
func (s *Server) UpdateTitle(ctx context.Context, req *titlesv1.UpdateTitleRequest) (*titlesv1.UpdateTitleResponse, error) {
	if req.GetTitle() == nil {
		return nil, toStatus(&FieldError{Field: "title", Reason: "is required"})
	}
	t := fromProto(req.GetTitle())
	if err := service.ValidateID("title.id", t.ID); err != nil {
		return nil, toStatus(err)
	}
	expected, err := service.ExpectedVersion(req.ExpectedVersion)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := validateTitle(&t); err != nil {
		return nil, toStatus(err)
	}
	t.UpdatedAt = now()
	stored, err := s.store.Update(ctx, t, expected)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.publish(ctx, stored.ID, schema.OpUpdate, stored.Version); err != nil {
		return nil, toStatus(err)
	}
	return &titlesv1.UpdateTitleResponse{Title: toProto(stored)}, nil
}

// DeleteTitle removes a title and publishes a DELETE event whose sequence
// is the title's last version plus one.
func (s *Server) DeleteTitle(ctx context.Context, req *titlesv1.DeleteTitleRequest) (*titlesv1.DeleteTitleResponse, error) {
	if err := service.ValidateID("id", req.GetId()); err != nil {
		return nil, toStatus(err)
	}
	expected, err := service.ExpectedVersion(req.ExpectedVersion)
	if err != nil {
		return nil, toStatus(err)
	}
	version, err := s.store.Delete(ctx, req.GetId(), expected)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.publish(ctx, req.GetId(), schema.OpDelete, version); err != nil {
		return nil, toStatus(err)
	}
	return &titlesv1.DeleteTitleResponse{Version: version}, nil
}

// GetTitle returns one title.
func (s *Server) GetTitle(ctx context.Context, req *titlesv1.GetTitleRequest) (*titlesv1.GetTitleResponse, error) {
	id := req.GetId()
	if err := service.ValidateID("id", id); err != nil {
		return nil, toStatus(err)
	}
	found, err := s.store.Get(ctx, []string{id})
	if err != nil {
		return nil, toStatus(err)
	}
	t, ok := found[id]
	if !ok {
		return nil, toStatus(fmt.Errorf("%w: title %s", ErrNotFound, id))
	}
	return &titlesv1.GetTitleResponse{Title: toProto(t)}, nil
}

// BatchGetTitles returns the titles among ids and the ids that have none,
// both in request order with repeated ids answered once.
func (s *Server) BatchGetTitles(ctx context.Context, req *titlesv1.BatchGetTitlesRequest) (*titlesv1.BatchGetTitlesResponse, error) {
	unique, err := service.BatchIDs(req.GetIds())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &titlesv1.BatchGetTitlesResponse{}
	if len(unique) == 0 {
		return resp, nil
	}
	found, err := s.store.Get(ctx, unique)
	if err != nil {
		return nil, toStatus(err)
	}
	for _, id := range unique {
		if t, ok := found[id]; ok {
			resp.Titles = append(resp.Titles, toProto(t))
		} else {
			resp.MissingIds = append(resp.MissingIds, id)
		}
	}
	return resp, nil
}

// publish sends the change event of an applied write; see
// [service.Publish].
func (s *Server) publish(ctx context.Context, id string, op schema.Op, seq int64) error {
	return service.Publish(ctx, s.pub, s.log, s.publishTimeout, EntityType, id, op, seq)
}

// validateTitle validates t and reports fields by their request path.
func validateTitle(t *Title) error { return service.Prefix("title.", t.Validate()) }

func now() time.Time { return time.Now().UTC() }
