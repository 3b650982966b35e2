package graphql

import (
	"context"
	"fmt"
	"strings"
	"time"

	gqlgen "github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/slatehq/slate/graphql/gen"
)

// Subscriptions are served at /query over websockets, in the
// graphql-transport-ws protocol (and the older graphql-ws one). One
// [Feed] per server (Config.Feed) publishes the views' changes to a [Hub]
// that fans them out to the subscriptions: [Server.Run] runs it.
//
// A subscription's first event is the view as its store has it now, if it
// has one; then come the feed's changes of that document with a higher
// version than the last one sent, each the view at that record's
// version. A deletion is an event with deleted true whose version is the
// delete's; the subscription stays open, since a cash flow's budget, for
// one, can come back. A subscription that falls Config.SubscriberBuffer
// changes behind is dropped: it ends with an error that says so, and the
// others never wait for it.

// The websocket transport's settings.
const (
	// DefaultKeepAlive is how often the server pings a websocket client
	// (graphql-transport-ws ping; the client's pong must come within
	// twice that, or the connection closes).
	DefaultKeepAlive = 15 * time.Second
	// wsInitTimeout bounds the wait for a client's connection_init.
	wsInitTimeout = 10 * time.Second
)

// Run runs the server's [Feed] into its subscriptions until ctx ends or
// the feed fails; then every subscription ends (with the feed's error,
// which Run returns). Without a feed it returns nil at once.
func (s *Server) Run(ctx context.Context) error {
	h := s.cfg.hub
	if h == nil {
		return nil
	}
	if err := s.cfg.Feed.Run(ctx, h); err != nil {
		err = fmt.Errorf("graphql: change feed: %w", err)
		h.Close(err)
		return err
	}
	h.Close(nil)
	return nil
}

// Hub returns the hub of the server's subscriptions, nil without a feed.
func (s *Server) Hub() *Hub { return s.cfg.hub }

// websocket is the transport of subscriptions.
func websocket(cfg Config) transport.Websocket {
	keepAlive := cfg.KeepAlive
	if keepAlive == 0 {
		keepAlive = DefaultKeepAlive
	}
	return transport.Websocket{
		Implementation: transport.CoderWebsocketImplementation{
			AcceptOptions: coderws.AcceptOptions{OriginPatterns: wsOrigins(cfg.AllowedOrigins)}},
		InitTimeout:           wsInitTimeout,
		KeepAlivePingInterval: keepAlive, // graphql-ws (the older protocol): ka messages
		PingPongInterval:      keepAlive, // graphql-transport-ws: ping, expecting pong
		ErrorFunc: func(_ context.Context, err error) {
			cfg.Log.Debug("graphql websocket", "err", err)
		},
	}
}

// wsOrigins are the hosts of origins other than the server's own whose
// pages may open a websocket: those of the CORS origins
// ([Config.AllowedOrigins]), "*" for any. A page of the server's own
// origin always may, and a client that sends no Origin (not a browser)
// too. The websocket check matches hosts, not schemes.
func wsOrigins(origins []string) []string {
	out := make([]string, 0, len(origins))
	for _, o := range origins {
		if _, host, ok := strings.Cut(o, "://"); ok {
			o = host
		}
		out = append(out, o)
	}
	return out
}

func (rt root) Subscription() gen.SubscriptionResolver { return rt.r }

// TitleChanged is Subscription.titleChanged.
func (r *resolver) TitleChanged(ctx context.Context, id string) (<-chan *gen.Title, error) {
	return subscribe(ctx, r.cfg, "titleChanged", r.cfg.Titles, r.cfg.TitleView, id, func(c Change, now time.Time) *gen.Title {
		if c.Deleted {
			return &gen.Title{ID: c.ID, Version: gen.Int64(c.Version), Deleted: true, Schedule: []*gen.Schedule{}, Budget: []*gen.Budget{}}
		}
		return title(c.Doc, c.Version, now)
	})
}

// CashFlowChanged is Subscription.cashFlowChanged; every event has all
// the months.
func (r *resolver) CashFlowChanged(ctx context.Context, titleID string) (<-chan *gen.CashFlow, error) {
	return subscribe(ctx, r.cfg, "cashFlowChanged", r.cfg.CashFlows, r.cfg.CashFlowView, titleID, func(c Change, now time.Time) *gen.CashFlow {
		if c.Deleted {
			return &gen.CashFlow{TitleID: c.ID, Version: gen.Int64(c.Version), Deleted: true, Months: []*gen.Month{}}
		}
		return cashFlow(c.Doc, c.Version, "", "9999-12", now)
	})
}

// subscribe subscribes to id of view: it waits (up to MinVersionWait) for
// the feed to be live, sends the view as store has it, then every newer
// change the hub hands over.
func subscribe[T any](ctx context.Context, cfg Config, field string, store Store, view, id string, build func(Change, time.Time) T) (<-chan T, error) {
	hub := cfg.hub
	if hub == nil {
		return nil, gqlerror.Errorf("%s: subscriptions are off: the server has no change feed (Config.Feed)", field)
	}
	if id == "" {
		return nil, gqlerror.Errorf("%s: the id is empty", field)
	}
	// Subscribed before the store is read, so no change falls in between.
	sub, err := hub.Subscribe(view, id)
	if err != nil {
		return nil, gqlerror.Errorf("%s(%s): %v", field, id, err)
	}
	t := time.NewTimer(cfg.MinVersionWait)
	defer t.Stop()
	select {
	case <-hub.Started():
	case <-ctx.Done():
		sub.Close()
		return nil, ctx.Err()
	case <-t.C:
		sub.Close()
		return nil, gqlerror.Errorf("%s(%s): the change feed has not started after %s (MinVersionWait)", field, id, cfg.MinVersionWait)
	}
	doc, v, found, err := store.Get(ctx, view, id)
	if err != nil {
		sub.Close()
		return nil, fmt.Errorf("%s(%s): %s view: %w", field, id, view, err)
	}
	out := make(chan T)
	go func() {
		defer close(out)
		defer sub.Close()
		last := int64(-1)
		// send hands c to the connection; false when the subscription
		// is over.
		send := func(c Change) bool {
			if c.Version <= last {
				return true // replayed, or older than what was sent
			}
			select {
			case out <- build(c, time.Now()):
				last = c.Version
				sub.Delivered(c)
				return true
			case <-sub.Done():
				ended(ctx, field, id, sub.Err())
				return false
			case <-ctx.Done():
				return false
			}
		}
		if found || v > 0 {
			if !send(Change{View: view, ID: id, Version: v, Deleted: !found, Doc: doc}) {
				return
			}
		}
		for {
			select {
			case c := <-sub.Changes():
				if !send(c) {
					return
				}
			case <-sub.Done():
				ended(ctx, field, id, sub.Err())
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// ended reports to the client why the hub ended its subscription.
func ended(ctx context.Context, field, id string, err error) {
	if err == nil {
		return
	}
	e := gqlerror.Errorf("%s(%s): %v", field, id, err)
	e.Extensions = map[string]any{"code": "SUBSCRIPTION_ENDED"}
	transport.AddSubscriptionError(ctx, e)
}

// websocketSubscriptions refuses subscriptions over anything but a
// websocket: only that transport streams their events (and reports how
// they end).
type websocketSubscriptions struct{}

var _ interface {
	gqlgen.OperationContextMutator
	gqlgen.HandlerExtension
} = websocketSubscriptions{}

func (websocketSubscriptions) ExtensionName() string                  { return "WebsocketSubscriptions" }
func (websocketSubscriptions) Validate(gqlgen.ExecutableSchema) error { return nil }

func (websocketSubscriptions) MutateOperationContext(_ context.Context, oc *gqlgen.OperationContext) *gqlerror.Error {
	if oc.Operation == nil || oc.Operation.Operation != ast.Subscription {
		return nil
	}
	if !strings.EqualFold(oc.Headers.Get("Upgrade"), "websocket") {
		return gqlerror.Errorf("subscriptions are served over a websocket at /query (graphql-transport-ws), not over plain HTTP")
	}
	return nil
}
