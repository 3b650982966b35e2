package titles

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
	"github.com/slatehq/slate/schema"
)

// Publisher publishes an ID-only change event: entity type, id, operation
// and the entity's new version as the event's sequence. It returns only when
// the event is durably accepted (for Kafka: acknowledged by the broker), or
// with an error. The producer SDK satisfies it; so does a [PublisherFunc].
type Publisher interface {
	PublishChange(ctx context.Context, entityType, id string, op schema.Op, seq int64) error
}

// PublisherFunc adapts a function to [Publisher].
type PublisherFunc func(ctx context.Context, entityType, id string, op schema.Op, seq int64) error

// PublishChange calls f.
func (f PublisherFunc) PublishChange(ctx context.Context, entityType, id string, op schema.Op, seq int64) error {
	return f(ctx, entityType, id, op, seq)
}

// DefaultPublishTimeout bounds one PublishChange call unless
// [WithPublishTimeout] says otherwise.
const DefaultPublishTimeout = 10 * time.Second

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
	if err := validateID("title.id", t.ID); err != nil {
		return nil, toStatus(err)
	}
	expected, err := expectedVersion(req.ExpectedVersion)
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
	if err := validateID("id", req.GetId()); err != nil {
		return nil, toStatus(err)
	}
	expected, err := expectedVersion(req.ExpectedVersion)
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
	if err := validateID("id", id); err != nil {
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
	ids := req.GetIds()
	if len(ids) > MaxBatchGet {
		return nil, toStatus(&FieldError{Field: "ids", Reason: strconv.Itoa(len(ids)) + " ids, at most " + strconv.Itoa(MaxBatchGet) + " allowed"})
	}
	unique := make([]string, 0, len(ids))
	seen := make(map[string]struct{}, len(ids))
	for i, id := range ids {
		if err := validateID("ids["+strconv.Itoa(i)+"]", id); err != nil {
			return nil, toStatus(err)
		}
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		unique = append(unique, id)
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

// publish sends the change event of an applied write. It is detached from
// the caller's cancellation (but bounded by the publish timeout): once the
// write is stored, a client that gives up must not also cost the event.
func (s *Server) publish(ctx context.Context, id string, op schema.Op, seq int64) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.publishTimeout)
	defer cancel()
	if err := s.pub.PublishChange(ctx, EntityType, id, op, seq); err != nil {
		s.log.ErrorContext(ctx, "change event not published; write stays applied",
			"entitytype", EntityType, "id", id, "op", string(op), "seq", seq, "err", err)
		return fmt.Errorf("%w: %s title %s at version %d is applied: %w", ErrPublish, op, id, seq, err)
	}
	s.log.DebugContext(ctx, "change published",
		"entitytype", EntityType, "id", id, "op", string(op), "seq", seq)
	return nil
}

// validateID checks an id a request names. No stored title has an id
// longer than [MaxIDLen], so a longer one is refused before it reaches the
// store; the error quotes at most the id's first 64 bytes.
func validateID(field, id string) error {
	switch {
	case id == "":
		return &FieldError{Field: field, Reason: "must not be empty"}
	case len(id) > MaxIDLen:
		return &FieldError{Field: field, Reason: strconv.Itoa(len(id)) + " bytes, at most " + strconv.Itoa(MaxIDLen) + " allowed: " + quote(id)}
	case !utf8.ValidString(id):
		return &FieldError{Field: field, Reason: "not valid UTF-8: " + quote(id)}
	case strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		return &FieldError{Field: field, Reason: "contains a space or a control character: " + quote(id)}
	}
	return nil
}

// validateTitle validates t and reports fields by their request path.
func validateTitle(t *Title) error {
	err := t.Validate()
	if fe, ok := err.(*FieldError); ok {
		fe.Field = "title." + fe.Field
	}
	return err
}

// expectedVersion turns the optional expected_version into the store's
// form, where 0 means no check.
func expectedVersion(v *int64) (int64, error) {
	if v == nil {
		return 0, nil
	}
	if *v <= 0 {
		return 0, &FieldError{Field: "expected_version", Reason: "must be positive when set"}
	}
	return *v, nil
}

func now() time.Time { return time.Now().UTC() }
