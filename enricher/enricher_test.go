package enricher_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

var (
	titleSchema = avro.MustParse(`{"type":"record","name":"Title","namespace":"test.v1","fields":[
		{"name":"id","type":"string"},{"name":"release_date","type":"string"},{"name":"version","type":"long"}]}`).(*avro.RecordSchema)
	scheduleSchema = avro.MustParse(`{"type":"record","name":"Schedule","namespace":"test.v1","fields":[
		{"name":"id","type":"string"},{"name":"title_id","type":"string"},{"name":"shoot_days","type":"int"}]}`).(*avro.RecordSchema)
	budgetSchema = avro.MustParse(`{"type":"record","name":"Budget","namespace":"test.v1","fields":[
		{"name":"title_id","type":"string"},{"name":"amount_cents","type":"long"}]}`).(*avro.RecordSchema)
)

type title struct {
	ID          string `avro:"id"`
	ReleaseDate string `avro:"release_date"`
	Version     int64  `avro:"version"`
}

type schedule struct {
	ID        string `avro:"id"`
	TitleID   string `avro:"title_id"`
	ShootDays int    `avro:"shoot_days"`
}

type budget struct {
	TitleID     string `avro:"title_id"`
	AmountCents int64  `avro:"amount_cents"`
}

func newRegistry(t testing.TB) schema.Registry {
	t.Helper()
	_, reg := testenv.Registry(t)
	return reg
}

// capture is a Publisher and DeadLetterPublisher that keeps what it got.
type capture struct {
	mu   sync.Mutex
	envs []schema.Envelope
	raw  []rawRecord
	fail error
}

type rawRecord struct {
	topic      string
	key, value []byte
	headers    []schema.Header
}

func (c *capture) Publish(_ context.Context, _ string, envs ...schema.Envelope) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	c.envs = append(c.envs, envs...)
	return nil
}

func (c *capture) PublishRaw(_ context.Context, topic string, key, value []byte, headers []schema.Header) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.raw = append(c.raw, rawRecord{topic, key, value, headers})
	return nil
}

func (c *capture) published() []schema.Envelope {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.envs)
}

func change(entity, id string, op schema.Op, seq, offset int64) sink.Event {
	env := schema.NewEnvelope("//test", op, entity, id)
	env.Sequence = seq
	return sink.Event{Envelope: env, Topic: schema.ChangesTopic(entity), Partition: 0, Offset: offset}
}

// titles is an in-process title store behind a ResolverFunc.
type titles struct {
	mu    sync.Mutex
	byID  map[string]title
	calls atomic.Int64
	ids   atomic.Int64
}

func (s *titles) resolver() enricher.Resolver {
	return enricher.ResolverFunc(func(_ context.Context, _ string, ids []string) (map[string]enricher.Record, error) {
		s.calls.Add(1)
		s.ids.Add(int64(len(ids)))
		s.mu.Lock()
		defer s.mu.Unlock()
		out := make(map[string]enricher.Record, len(ids))
		for _, id := range ids {
			if t, ok := s.byID[id]; ok {
				out[id] = enricher.Record{Version: t.Version, Schema: titleSchema, Value: t}
			}
		}
		return out, nil
	})
}

func TestHandleCoalescesAndChunks(t *testing.T) {
	reg := newRegistry(t)
	ctx := context.Background()
	tests := []struct {
		name        string
		ids         int
		perID       int
		maxLookup   int
		concurrency int
	}{
		{"one chunk", 10, 5, 500, 4},
		{"many chunks in parallel", 1000, 3, 64, 4},
		{"many chunks serially", 300, 2, 50, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &titles{byID: map[string]title{}}
			var batch []sink.Event
			for round := range tt.perID {
				for i := range tt.ids {
					id := "t-" + strconv.Itoa(i)
					if i%10 != 9 { // every tenth id was deleted at the source
						store.byID[id] = title{ID: id, ReleaseDate: "2027-07-01", Version: int64(tt.perID)}
					}
					batch = append(batch, change("title", id, schema.OpUpdate, int64(round+1), int64(len(batch))))
				}
			}
			pub := &capture{}
			e, err := enricher.New("title", store.resolver(), pub, reg,
				enricher.WithMaxLookup(tt.maxLookup), enricher.WithConcurrency(tt.concurrency))
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Handle(ctx, batch); err != nil {
				t.Fatal(err)
			}
			out := pub.published()
			if len(out) != tt.ids || e.Published() != int64(tt.ids) {
				t.Fatalf("published %d (counter %d), want one per id: %d", len(out), e.Published(), tt.ids)
			}
			if got := store.ids.Load(); got != int64(tt.ids) {
				t.Errorf("looked up %d ids, want %d (coalesced)", got, tt.ids)
			}
			if want := int64((tt.ids + tt.maxLookup - 1) / tt.maxLookup); store.calls.Load() != want {
				t.Errorf("resolver calls = %d, want %d", store.calls.Load(), want)
			}
			seen := map[string]bool{}
			for _, env := range out {
				if seen[env.Subject] {
					t.Fatalf("%s published twice", env.Subject)
				}
				seen[env.Subject] = true
				n, _ := strconv.Atoi(env.Subject[2:])
				wantType := schema.OpUpdate
				if n%10 == 9 {
					wantType = schema.OpDelete
				}
				if env.Type != wantType || env.Sequence != int64(tt.perID) {
					t.Errorf("%s: %s seq %d, want %s seq %d", env.Subject, env.Type, env.Sequence, wantType, tt.perID)
				}
			}
		})
	}
}

// flaky fails its first n calls with code, then answers.
func flaky(n int, code codes.Code, calls *atomic.Int64) enricher.Resolver {
	return enricher.ResolverFunc(func(_ context.Context, _ string, ids []string) (map[string]enricher.Record, error) {
		if calls.Add(1) <= int64(n) {
			return nil, fmt.Errorf("titles: batch get: %w", status.Error(code, "injected"))
		}
		out := map[string]enricher.Record{}
		for _, id := range ids {
			out[id] = enricher.Record{Version: 1, Schema: titleSchema, Value: title{ID: id, Version: 1}}
		}
		return out, nil
	})
}

func TestRetries(t *testing.T) {
	reg := newRegistry(t)
	fast := enricher.WithRetry(enricher.RetryPolicy{Attempts: 4, Base: time.Millisecond, Max: 4 * time.Millisecond})
	tests := []struct {
		name      string
		fails     int
		code      codes.Code
		wantCalls int64
		fail      bool
		exhausted bool
	}{
		{"unavailable recovers", 2, codes.Unavailable, 3, false, false},
		{"deadline exceeded recovers", 3, codes.DeadlineExceeded, 4, false, false},
		{"resource exhausted recovers", 1, codes.ResourceExhausted, 2, false, false},
		{"aborted recovers", 1, codes.Aborted, 2, false, false},
		{"unavailable exhausts", 10, codes.Unavailable, 4, true, true},
		{"invalid argument is not retried", 10, codes.InvalidArgument, 1, true, false},
		{"internal is not retried", 10, codes.Internal, 1, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			e, err := enricher.New("title", flaky(tt.fails, tt.code, &calls), &capture{}, reg, fast, enricher.WithBreaker(100, time.Second))
			if err != nil {
				t.Fatal(err)
			}
			err = e.Handle(context.Background(), []sink.Event{change("title", "a", schema.OpUpdate, 1, 0)})
			if calls.Load() != tt.wantCalls {
				t.Errorf("calls = %d, want %d", calls.Load(), tt.wantCalls)
			}
			if !tt.fail {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var le *enricher.LookupError
			if !errors.As(err, &le) || le.Resolver != "title" || le.Attempts != int(tt.wantCalls) {
				t.Fatalf("err = %v, want a *LookupError of title after %d attempts", err, tt.wantCalls)
			}
			if errors.Is(err, enricher.ErrRetriesExhausted) != tt.exhausted {
				t.Errorf("err = %v, ErrRetriesExhausted wrapped: %v, want %v", err, !tt.exhausted, tt.exhausted)
			}
			if st, _ := status.FromError(err); st.Code() != tt.code {
				t.Errorf("code = %v, want %v kept through the wrapping", st.Code(), tt.code)
			}
			if enricher.IsRetryable(err) != tt.exhausted {
				t.Errorf("IsRetryable = %v, want %v", enricher.IsRetryable(err), tt.exhausted)
			}
		})
	}
}

func TestBreakerOpensAndRecovers(t *testing.T) {
	reg := newRegistry(t)
	var calls atomic.Int64
	var down atomic.Bool
	down.Store(true)
	r := enricher.ResolverFunc(func(_ context.Context, _ string, ids []string) (map[string]enricher.Record, error) {
		calls.Add(1)
		if down.Load() {
			return nil, status.Error(codes.Unavailable, "down")
		}
		return map[string]enricher.Record{}, nil
	})
	e, err := enricher.New("title", r, &capture{}, reg,
		enricher.WithRetry(enricher.RetryPolicy{Attempts: 1}), enricher.WithBreaker(3, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	batch := []sink.Event{change("title", "a", schema.OpUpdate, 1, 0)}
	for range 3 {
		if err := e.Handle(ctx, batch); err == nil {
			t.Fatal("Handle succeeded against a down resolver")
		}
	}
	if got := e.BreakerState("title"); got != enricher.BreakerOpen {
		t.Fatalf("breaker = %v after 3 failures, want open", got)
	}
	err = e.Handle(ctx, batch)
	if !errors.Is(err, enricher.ErrBreakerOpen) || calls.Load() != 3 {
		t.Fatalf("open breaker: err %v, calls %d; want ErrBreakerOpen without a call", err, calls.Load())
	}
	if !enricher.IsRetryable(err) {
		t.Error("ErrBreakerOpen must be retryable")
	}
	time.Sleep(60 * time.Millisecond)
	down.Store(false)
	if err := e.Handle(ctx, batch); err != nil {
		t.Fatalf("half-open probe: %v", err)
	}
	if got := e.BreakerState("title"); got != enricher.BreakerClosed {
		t.Fatalf("breaker = %v after a good probe, want closed", got)
	}
}

func TestDeadLetterAfterAttempts(t *testing.T) {
	reg := newRegistry(t)
	ctx := context.Background()
	bad := enricher.ResolverFunc(func(context.Context, string, []string) (map[string]enricher.Record, error) {
		return nil, status.Error(codes.InvalidArgument, "ids[0]: malformed")
	})
	dlq := &capture{}
	e, err := enricher.New("title", bad, &capture{}, reg, enricher.WithDeadLetter(dlq), enricher.WithDeadLetterAfter(3))
	if err != nil {
		t.Fatal(err)
	}
	batch := []sink.Event{change("title", "a", schema.OpUpdate, 1, 7), change("title", "b", schema.OpCreate, 1, 8)}
	for attempt := 1; attempt < 3; attempt++ {
		if err := e.Handle(ctx, batch); err == nil {
			t.Fatalf("attempt %d succeeded", attempt)
		}
	}
	if len(dlq.raw) != 0 {
		t.Fatalf("dead-lettered after %d attempts, want 3", 2)
	}
	if err := e.Handle(ctx, batch); err != nil {
		t.Fatalf("third attempt: %v, want nil after dead-lettering", err)
	}
	if len(dlq.raw) != 2 {
		t.Fatalf("%d dead letters, want the batch's 2 events", len(dlq.raw))
	}
	codec, err := schema.NewCodec(reg)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range dlq.raw {
		if r.topic != "studio.title.changes.dlq" || string(r.key) != batch[i].Subject {
			t.Errorf("dead letter %d: topic %s key %s", i, r.topic, r.key)
		}
		env, err := codec.Decode(ctx, r.value)
		if err != nil {
			t.Fatal(err)
		}
		if env.ID != batch[i].ID || env.Type != batch[i].Type {
			t.Errorf("dead letter %d is %s %s, want the input event %s %s", i, env.ID, env.Type, batch[i].ID, batch[i].Type)
		}
		h := func(k string) string { v, _ := schema.HeaderValue(r.headers, k); return v }
		if h(enricher.HeaderDLQAttempts) != "3" || h(enricher.HeaderDLQStage) != "enrich" || h(enricher.HeaderDLQError) == "" ||
			h(enricher.HeaderDLQTopic) != "studio.title.changes" || h(enricher.HeaderDLQOffset) != strconv.FormatInt(batch[i].Offset, 10) ||
			h(schema.HeaderID) != batch[i].ID {
			t.Errorf("dead letter %d headers: %v", i, r.headers)
		}
	}
}

// An open breaker means the dependency is down: the batch waits, it is not
// dead-lettered however often it fails.
func TestDeadLetterSkipsBreakerOpen(t *testing.T) {
	reg := newRegistry(t)
	down := enricher.ResolverFunc(func(context.Context, string, []string) (map[string]enricher.Record, error) {
		return nil, status.Error(codes.Unavailable, "down")
	})
	dlq := &capture{}
	e, err := enricher.New("title", down, &capture{}, reg, enricher.WithDeadLetter(dlq), enricher.WithDeadLetterAfter(100),
		enricher.WithRetry(enricher.RetryPolicy{Attempts: 1}), enricher.WithBreaker(1, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	batch := []sink.Event{change("title", "a", schema.OpUpdate, 1, 0)}
	for range 200 {
		if err := e.Handle(context.Background(), batch); err == nil {
			t.Fatal("Handle succeeded")
		}
	}
	if len(dlq.raw) != 0 {
		t.Fatalf("%d dead letters while the breaker was open", len(dlq.raw))
	}
}

func TestJoinsAndFanOut(t *testing.T) {
	reg := newRegistry(t)
	ctx := context.Background()
	store := &titles{byID: map[string]title{
		"t1": {ID: "t1", ReleaseDate: "2027-07-16", Version: 4},
		"t2": {ID: "t2", ReleaseDate: "2027-09-01", Version: 2},
	}}
	schedules := map[string]schedule{
		"s1": {ID: "s1", TitleID: "t1", ShootDays: 40},
		"s2": {ID: "s2", TitleID: "t1", ShootDays: 12},
		"s3": {ID: "s3", TitleID: "t2", ShootDays: 30},
		"s9": {ID: "s9", TitleID: "gone", ShootDays: 1},
	}
	byTitle := map[string][]string{"t1": {"s1", "s2"}, "t2": {"s3"}, "gone": {"s9"}}
	budgets := map[string]budget{"t1": {TitleID: "t1", AmountCents: 12_500_000_00}}

	scheduleResolver := enricher.ResolverFunc(func(_ context.Context, entity string, ids []string) (map[string]enricher.Record, error) {
		if entity != "schedule" {
			return nil, fmt.Errorf("asked for %s", entity)
		}
		out := map[string]enricher.Record{}
		for _, id := range ids {
			if s, ok := schedules[id]; ok {
				out[id] = enricher.Record{Version: 1, Schema: scheduleSchema, Value: s}
			}
		}
		return out, nil
	})
	budgetResolver := enricher.ResolverFunc(func(_ context.Context, _ string, ids []string) (map[string]enricher.Record, error) {
		out := map[string]enricher.Record{}
		for _, id := range ids {
			if b, ok := budgets[id]; ok {
				out[id] = enricher.Record{Version: 1, Schema: budgetSchema, Value: b}
			}
		}
		return out, nil
	})
	dependents := enricher.DependentsFunc(func(_ context.Context, ids []string) (map[string][]string, error) {
		out := map[string][]string{}
		for _, id := range ids {
			if s, ok := schedules[id]; ok {
				out[id] = []string{s.TitleID}
			}
		}
		return out, nil
	})
	pub := &capture{}
	e, err := enricher.New("title", store.resolver(), pub, reg,
		enricher.WithJoin(enricher.Join{Field: "schedules", EntityType: "schedule", Resolver: scheduleResolver, Schema: scheduleSchema,
			Keys: func(id string, _ enricher.Record) []string { return byTitle[id] }}),
		enricher.WithJoin(enricher.Join{Field: "budget", EntityType: "budget", Resolver: budgetResolver, Schema: budgetSchema}),
		enricher.WithFanOut(enricher.FanOut{EntityType: "schedule", Dependents: dependents}))
	if err != nil {
		t.Fatal(err)
	}
	// t1 changed itself; s3 changed, so t2 is re-materialized; s9's title
	// is gone, so nothing is published for it (not a DELETE).
	batch := []sink.Event{
		change("title", "t1", schema.OpUpdate, 4, 0),
		change("schedule", "s3", schema.OpUpdate, 2, 1),
		change("schedule", "s9", schema.OpUpdate, 2, 2),
		change("schedule", "s1", schema.OpUpdate, 2, 3), // t1 already in the batch
	}
	if err := e.Handle(ctx, batch); err != nil {
		t.Fatal(err)
	}
	out := pub.published()
	if len(out) != 2 || out[0].Subject != "t1" || out[1].Subject != "t2" {
		subjects := []string{}
		for _, env := range out {
			subjects = append(subjects, env.Subject)
		}
		t.Fatalf("published %v, want [t1 t2]", subjects)
	}
	tests := []struct {
		id        string
		version   int64
		seq       int64 // the view's version: the title's, then the joined records' sum
		shootDays []int
		budgets   int
	}{
		{"t1", 4, 4<<32 + 3, []int{40, 12}, 1},
		{"t2", 2, 2<<32 + 1, []int{30}, 0},
	}
	for i, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			env := out[i]
			if env.Sequence != tt.seq || env.Type != schema.OpUpdate {
				t.Errorf("%s seq %d, want UPDATE seq %d", env.Type, env.Sequence, tt.seq)
			}
			if env.DataSchema == "" || !contains(env.DataSchema, "test.v1.TitleView") {
				t.Errorf("dataschema %q, want the joined schema test.v1.TitleView", env.DataSchema)
			}
			var got map[string]any
			if err := schema.DecodeData(ctx, reg, env.Data, &got); err != nil {
				t.Fatal(err)
			}
			if got["id"] != tt.id || got["version"] != tt.version {
				t.Errorf("primary fields = %v", got)
			}
			scheds, _ := got["schedules"].([]any)
			var days []int
			for _, s := range scheds {
				days = append(days, s.(map[string]any)["shoot_days"].(int))
			}
			if !slices.Equal(days, tt.shootDays) {
				t.Errorf("joined shoot days %v, want %v", days, tt.shootDays)
			}
			if b, _ := got["budget"].([]any); len(b) != tt.budgets {
				t.Errorf("joined budgets %v, want %d", got["budget"], tt.budgets)
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestNewValidates(t *testing.T) {
	reg := newRegistry(t)
	r := enricher.ResolverFunc(func(context.Context, string, []string) (map[string]enricher.Record, error) { return nil, nil })
	deps := enricher.DependentsFunc(func(context.Context, []string) (map[string][]string, error) { return nil, nil })
	tests := []struct {
		name   string
		entity string
		opts   []enricher.Option
	}{
		{"no entity", "", nil},
		{"max lookup", "title", []enricher.Option{enricher.WithMaxLookup(0)}},
		{"concurrency", "title", []enricher.Option{enricher.WithConcurrency(0)}},
		{"breaker", "title", []enricher.Option{enricher.WithBreaker(0, time.Second)}},
		{"dead letter after", "title", []enricher.Option{enricher.WithDeadLetterAfter(0)}},
		{"join without schema", "title", []enricher.Option{enricher.WithJoin(enricher.Join{Field: "x", Resolver: r})}},
		{"join field twice", "title", []enricher.Option{
			enricher.WithJoin(enricher.Join{Field: "x", Resolver: r, Schema: budgetSchema}),
			enricher.WithJoin(enricher.Join{Field: "x", Resolver: r, Schema: budgetSchema})}},
		{"fan-out from itself", "title", []enricher.Option{enricher.WithFanOut(enricher.FanOut{EntityType: "title", Dependents: deps})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := enricher.New(tt.entity, r, &capture{}, reg, tt.opts...); !errors.Is(err, enricher.ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
}
