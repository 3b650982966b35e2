package finance

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	financev1 "github.com/slatehq/slate/proto/finance/v1"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/services/finance/cashflow"
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
	// MaxBatchGet is the most ids one BatchGetBudgets call may name.
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

// Server implements financev1.FinanceServer. It is safe for concurrent
// use. Errors are gRPC status errors: INVALID_ARGUMENT names the bad field
// (also as a google.rpc.BadRequest detail), and the codes of the sentinel
// errors are listed with them. A request that fails validation leaves the
// store unchanged.
type Server struct {
	financev1.UnimplementedFinanceServer

	pub            Publisher // nil with a TransactionalStore
	store          Store
	log            *slog.Logger
	publishTimeout time.Duration
}

var _ financev1.FinanceServer = (*Server)(nil)

// NewServer returns a Server that keeps budgets and rates in store. After
// every successful write it publishes a change event through pub, unless
// store is a [TransactionalStore], which writes the events itself; pub may
// then be nil. It panics if store is nil, or if pub is nil and store
// writes no events.
func NewServer(pub Publisher, store Store, opts ...Option) *Server {
	if store == nil {
		panic("finance: NewServer with nil Store")
	}
	if _, ok := store.(TransactionalStore); ok {
		pub = nil
	} else if pub == nil {
		panic("finance: NewServer with nil Publisher and a store that writes no events")
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

// PutBudget creates or replaces the budget of a title; its event is a
// CREATE (the title had no budget) or an UPDATE.
func (s *Server) PutBudget(ctx context.Context, req *financev1.PutBudgetRequest) (*financev1.PutBudgetResponse, error) {
	if req.GetBudget() == nil {
		return nil, toStatus(&FieldError{Field: "budget", Reason: "is required"})
	}
	b := budgetFromProto(req.GetBudget())
	if err := service.ValidateID("budget.title_id", b.TitleID); err != nil {
		return nil, toStatus(err)
	}
	expected, err := service.ExpectedVersion(req.ExpectedVersion)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := b.Validate(); err != nil {
		return nil, toStatus(service.Prefix("budget.", err))
	}
	b.UpdatedAt = time.Now().UTC()
	stored, created, err := s.store.PutBudget(ctx, b, expected)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.publish(ctx, EntityType, stored.TitleID, putOp(created), stored.Version); err != nil {
		return nil, toStatus(err)
	}
	return &financev1.PutBudgetResponse{Budget: budgetToProto(stored)}, nil
}

// DeleteBudget removes the budget of a title; its DELETE event's sequence
// is the budget's last version plus one.
func (s *Server) DeleteBudget(ctx context.Context, req *financev1.DeleteBudgetRequest) (*financev1.DeleteBudgetResponse, error) {
	if err := service.ValidateID("title_id", req.GetTitleId()); err != nil {
		return nil, toStatus(err)
	}
	expected, err := service.ExpectedVersion(req.ExpectedVersion)
	if err != nil {
		return nil, toStatus(err)
	}
	version, err := s.store.DeleteBudget(ctx, req.GetTitleId(), expected)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.publish(ctx, EntityType, req.GetTitleId(), schema.OpDelete, version); err != nil {
		return nil, toStatus(err)
	}
	return &financev1.DeleteBudgetResponse{Version: version}, nil
}

// GetBudget returns the budget of one title.
func (s *Server) GetBudget(ctx context.Context, req *financev1.GetBudgetRequest) (*financev1.GetBudgetResponse, error) {
	id := req.GetTitleId()
	if err := service.ValidateID("title_id", id); err != nil {
		return nil, toStatus(err)
	}
	found, err := s.store.GetBudgets(ctx, []string{id})
	if err != nil {
		return nil, toStatus(err)
	}
	b, ok := found[id]
	if !ok || b.Deleted {
		return nil, toStatus(fmt.Errorf("budget %w: %s", ErrNotFound, id))
	}
	return &financev1.GetBudgetResponse{Budget: budgetToProto(b)}, nil
}

// BatchGetBudgets returns the budgets among ids, with the tombstones of
// deleted ones (deleted set, at the delete's version), and the ids that
// never had one, both in request order with repeated ids answered once.
// The tombstone makes a view that joins budgets (the title view) grow its
// version on the delete, and gives the view whose primary they are (the
// cashflow view) the version of its DELETE; see
// schedules.Server.BatchGetSchedules for why a tombstone rather than
// leaving the id out.
func (s *Server) BatchGetBudgets(ctx context.Context, req *financev1.BatchGetBudgetsRequest) (*financev1.BatchGetBudgetsResponse, error) {
	ids, err := service.BatchIDs(req.GetIds())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &financev1.BatchGetBudgetsResponse{}
	if len(ids) == 0 {
		return resp, nil
	}
	found, err := s.store.GetBudgets(ctx, ids)
	if err != nil {
		return nil, toStatus(err)
	}
	for _, id := range ids {
		if b, ok := found[id]; ok {
			resp.Budgets = append(resp.Budgets, budgetToProto(b))
		} else {
			resp.MissingIds = append(resp.MissingIds, id)
		}
	}
	return resp, nil
}

// PutRate sets the rate of a pair of currencies; its event (entity type
// "rate", id FROM-TO) is a CREATE for a new pair or an UPDATE.
func (s *Server) PutRate(ctx context.Context, req *financev1.PutRateRequest) (*financev1.PutRateResponse, error) {
	if req.GetRate() == nil {
		return nil, toStatus(&FieldError{Field: "rate", Reason: "is required"})
	}
	r := rateFromProto(req.GetRate())
	if err := r.Validate(); err != nil {
		return nil, toStatus(service.Prefix("rate.", err))
	}
	r.UpdatedAt = time.Now().UTC()
	stored, created, err := s.store.PutRate(ctx, r)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.publish(ctx, RateEntityType, stored.ID(), putOp(created), stored.Version); err != nil {
		return nil, toStatus(err)
	}
	return &financev1.PutRateResponse{Rate: rateToProto(stored)}, nil
}

// ListRates returns the rates into one reporting currency.
func (s *Server) ListRates(ctx context.Context, req *financev1.ListRatesRequest) (*financev1.ListRatesResponse, error) {
	to := req.GetToCurrency()
	if _, err := cashflow.MinorUnits(to); err != nil {
		return nil, toStatus(&FieldError{Field: "to_currency", Reason: reason(err)})
	}
	rates, err := s.store.ListRates(ctx, to)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &financev1.ListRatesResponse{}
	for _, r := range rates {
		resp.Rates = append(resp.Rates, rateToProto(r))
	}
	return resp, nil
}

// publish sends the change event of an applied write, unless the store
// wrote it in the write's transaction.
func (s *Server) publish(ctx context.Context, entityType, id string, op schema.Op, seq int64) error {
	if s.pub == nil {
		return nil
	}
	return service.Publish(ctx, s.pub, s.log, s.publishTimeout, entityType, id, op, seq)
}

func putOp(created bool) schema.Op {
	if created {
		return schema.OpCreate
	}
	return schema.OpUpdate
}
