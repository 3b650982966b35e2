package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	financev1 "github.com/slatehq/slate/proto/finance/v1"
	schedulesv1 "github.com/slatehq/slate/proto/schedules/v1"
	"github.com/slatehq/slate/services/finance"
	"github.com/slatehq/slate/services/schedules"
	"github.com/slatehq/slate/services/titles"
)

// DefaultFreshnessSLA is the freshness SLA of the views unless
// Studio.FreshnessSLA says otherwise: a view follows a change of its
// sources within it.
const DefaultFreshnessSLA = 10 * time.Second

// DefaultDuplicateAfter is the pause between a change event and its
// duplicate under Studio.Disorder unless Studio.DuplicateAfter says
// otherwise.
const DefaultDuplicateAfter = 20 * time.Millisecond

// Studio holds the settings of the studio's services and of the views
// built from them.
type Studio struct {
	// FreshnessSLA is how long after a source change its views may
	// follow it (default [DefaultFreshnessSLA]): the trackers of the views
	// count the events that came later (slate_view_freshness_breaches_total)
	// and Stack.Tracker and Stack.Cashflows report their freshness.
	FreshnessSLA time.Duration
	// Disorder makes the services publish their change events through a
	// [Disorder] (Stack.Disorder): each twice, DuplicateAfter apart
	// (default [DefaultDuplicateAfter]), and some held back after the next.
	Disorder       bool
	DuplicateAfter time.Duration
}

func (c *Studio) validate() error {
	switch {
	case c.FreshnessSLA < 0:
		return fmt.Errorf("stack: freshness SLA %s: must not be negative", c.FreshnessSLA)
	case c.DuplicateAfter < 0:
		return errors.New("stack: the pause before a duplicate must not be negative")
	}
	return nil
}

// freshnessSLA is the SLA with its default.
func (c *Studio) freshnessSLA() time.Duration {
	if c.FreshnessSLA == 0 {
		return DefaultFreshnessSLA
	}
	return c.FreshnessSLA
}

// publisher is what the services publish their change events through:
// the Disorder over the producer, or the producer itself.
func (s *Stack) publisher() titles.Publisher {
	if !s.cfg.Disorder {
		return s.Producer
	}
	if s.Disorder == nil {
		after := s.cfg.DuplicateAfter
		if after == 0 {
			after = DefaultDuplicateAfter
		}
		s.Disorder = NewDisorder(s.Producer, after)
	}
	return s.Disorder
}

// startStudio starts the schedules and finance services on stores under
// the data directory (bbolt files, kept across restarts), publishing
// their changes through the producer of the titles service, and clients
// of both.
func (s *Stack) startStudio(ctx context.Context) error {
	dir := filepath.Join(s.cfg.DataDir, "studio")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("stack: studio data: %w", err)
	}
	ss, err := schedules.OpenBoltStore(filepath.Join(dir, "schedules.db"))
	if err != nil {
		return fmt.Errorf("stack: schedules store: %w", err)
	}
	s.onStop(func(context.Context) error { return ss.Close() })
	fs, err := finance.OpenBoltStore(filepath.Join(dir, "finance.db"))
	if err != nil {
		return fmt.Errorf("stack: finance store: %w", err)
	}
	s.onStop(func(context.Context) error { return fs.Close() })

	sched := schedules.NewServer(s.publisher(), ss, schedules.WithLogger(s.cfg.Log))
	fin := finance.NewServer(s.publisher(), fs, finance.WithLogger(s.cfg.Log))
	var schedOpts []schedules.ServeOption
	var finOpts []finance.ServeOption
	creds := insecure.NewCredentials()
	if s.sec.server != nil {
		schedOpts = append(schedOpts, schedules.WithTLS(s.sec.server))
		finOpts = append(finOpts, finance.WithTLS(s.sec.server))
		creds = credentials.NewTLS(s.sec.client.Clone())
	}
	if s.SchedulesAddr, err = s.serveGRPC(ctx, "schedules", s.cfg.SchedulesPort,
		func(ctx context.Context, lis net.Listener) error {
			return schedules.Serve(ctx, lis, sched, schedOpts...)
		}); err != nil {
		return err
	}
	if s.FinanceAddr, err = s.serveGRPC(ctx, "finance", s.cfg.FinancePort,
		func(ctx context.Context, lis net.Listener) error { return finance.Serve(ctx, lis, fin, finOpts...) }); err != nil {
		return err
	}
	for _, c := range []struct {
		addr string
		set  func(*grpc.ClientConn)
	}{
		{s.SchedulesAddr, func(cc *grpc.ClientConn) { s.Schedules = schedulesv1.NewSchedulesClient(cc) }},
		{s.FinanceAddr, func(cc *grpc.ClientConn) { s.Finance = financev1.NewFinanceClient(cc) }},
	} {
		cc, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			return fmt.Errorf("stack: client of %s: %w", c.addr, err)
		}
		s.onStop(func(context.Context) error { return cc.Close() })
		c.set(cc)
	}
	// The studio's exchange rates into USD, the reporting currency of the
	// cashflow view, before any budget needs them.
	for _, r := range [][2]string{{"EUR", "1.08345"}, {"GBP", "1.2710"}, {"JPY", "0.0066"}, {"CAD", "0.7350"}} {
		if _, err := s.Finance.PutRate(ctx, &financev1.PutRateRequest{Rate: &financev1.Rate{FromCurrency: r[0], ToCurrency: "USD", Rate: r[1]}}); err != nil {
			return fmt.Errorf("stack: exchange rate %s→USD: %w", r[0], err)
		}
	}
	return nil
}

// serveGRPC listens on 127.0.0.1:port and runs serve until ctx ends.
func (s *Stack) serveGRPC(ctx context.Context, name string, port int, serve func(context.Context, net.Listener) error) (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return "", fmt.Errorf("stack: %s listen: %w", name, err)
	}
	s.group.Go(func() error { return serve(ctx, lis) })
	s.cfg.Log.Info(name+" service listening", "addr", lis.Addr().String(), "tls", s.sec.server != nil)
	return lis.Addr().String(), nil
}
