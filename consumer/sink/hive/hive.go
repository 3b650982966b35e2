package hive

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/schema"
)

var (
	// ErrData is wrapped when an event's data cannot be stored as JSON:
	// invalid JSON, undecodable Avro, Avro without a registry, or an
	// unsupported content type. Such an event is poison: a retry fails the
	// same way, so Write names it in a [*sink.RejectedError] for the
	// consumer to dead-letter, and writes the rest of the batch.
	ErrData = errors.New("hive: data cannot be stored as json")
	// ErrStore is wrapped when a file of the table could not be written,
	// synced or renamed into place. It matches [sink.ErrUnavailable]: the
	// retry of the batch replaces what was written.
	ErrStore = sink.NewUnavailable("hive: table store failed")
	// ErrConfig is wrapped by the errors of [New] about its arguments.
	ErrConfig = errors.New("hive: invalid configuration")
)

// Sink writes events to a Parquet table in Hive partitions. It implements
// [sink.Sink]; Write must not be called concurrently (the consumer does
// not), Close may be called from any goroutine.
//
// Several sinks, in one process or many, may share a table as long as no two
// write the same Kafka partition at the same time, which consumer group
// assignment guarantees.
type Sink struct {
	root     string // <root>/<table>, absolute
	table    string
	location string
	reg      schema.Registry
	log      *slog.Logger
	now      func() time.Time

	sem    chan struct{} // held by Write and Close
	closed bool

	dirs  map[string]bool    // partition directories known to exist
	parts map[partition]bool // partitions listed in _hive.sql
}

// Name returns "hive", the sink's name in consumer.ToSinks: the label of
// its slate_sink_* metrics and the key of its per-sink dedupe marks.
func (s *Sink) Name() string { return "hive" }

// Option configures a [Sink].
type Option func(*Sink)

// WithRegistry sets the schema registry used to decode Avro data
// (datacontenttype application/avro, Confluent-framed) into the JSON data
// column. Without it, Avro data fails with [ErrData].
func WithRegistry(r schema.Registry) Option {
	return func(s *Sink) { s.reg = r }
}

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option {
	return func(s *Sink) {
		if l != nil {
			s.log = l
		}
	}
}

// WithClock sets the clock of the ingested_at column; the default is
// time.Now.
func WithClock(now func() time.Time) Option {
	return func(s *Sink) {
		if now != nil {
			s.now = now
		}
	}
}

// WithLocation sets the table LOCATION written to _hive.sql, for a table
// directory that Hive reaches under another name (say s3a://lake/audit/orders
// for a directory that is synced to object storage). The default is the
// table directory as a file:// URI.
func WithLocation(uri string) Option {
	return func(s *Sink) { s.location = uri }
}

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// New returns a sink writing table under the directory root. It creates
// <root>/<table> if needed and writes its _hive.sql, listing the partitions
// already on disk.
func New(root, table string, opts ...Option) (*Sink, error) {
	if root == "" {
		return nil, fmt.Errorf("%w: root directory is empty", ErrConfig)
	}
	if !tableName.MatchString(table) {
		return nil, fmt.Errorf("%w: table %q is not a Hive identifier (letters, digits, _)", ErrConfig, table)
	}
	abs, err := filepath.Abs(filepath.Join(root, table))
	if err != nil {
		return nil, fmt.Errorf("hive: table directory: %w", err)
	}
	s := &Sink{
		root:  abs,
		table: table,
		log:   slog.New(slog.DiscardHandler),
		now:   time.Now,
		sem:   make(chan struct{}, 1),
		dirs:  make(map[string]bool),
		parts: make(map[partition]bool),
	}
	for _, o := range opts {
		o(s)
	}
	if s.location == "" {
		s.location = "file://" + filepath.ToSlash(abs)
	}
	if err := os.MkdirAll(s.root, 0o755); err != nil {
		return nil, fmt.Errorf("hive: create table directory: %w", err)
	}
	if err := s.writeDDL(); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir returns the table directory, <root>/<table>, as an absolute path.
func (s *Sink) Dir() string { return s.root }

// group is the events of one output file.
type group struct {
	part           partition
	topic          string
	kafkaPartition int32
}

// Write implements [sink.Sink]: it writes one file per (dt, hour, topic,
// partition) of batch and returns nil once every file is renamed into place
// and synced. On error some files may be in place; the retry of the batch
// replaces them.
func (s *Sink) Write(ctx context.Context, batch []sink.Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("hive: write: %w", err)
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("hive: write: %w", ctx.Err())
	}
	defer func() { <-s.sem }()
	if s.closed {
		return sink.ErrClosed
	}
	if len(batch) == 0 {
		return nil
	}

	ingested := s.now().UTC().Truncate(time.Microsecond)
	groups := make(map[group][]row)
	var refused []sink.Rejection
	for i := range batch {
		ev := &batch[i]
		r, err := s.toRow(ctx, ev, ingested)
		if err != nil {
			err = fmt.Errorf("hive: event %s at %s/%d@%d: %w", ev.ID, ev.Topic, ev.Partition, ev.Offset, err)
			if errors.Is(err, ErrData) {
				refused = append(refused, sink.Rejection{Event: *ev, Err: err})
				continue
			}
			return err
		}
		g := group{part: partitionOf(r.Time), topic: ev.Topic, kafkaPartition: ev.Partition}
		groups[g] = append(groups[g], r)
	}

	keys := make([]group, 0, len(groups))
	for g := range groups {
		keys = append(keys, g)
	}
	slices.SortFunc(keys, func(a, b group) int {
		return cmp.Or(cmp.Compare(a.part.dt, b.part.dt), cmp.Compare(a.part.hour, b.part.hour),
			cmp.Compare(a.topic, b.topic), cmp.Compare(a.kafkaPartition, b.kafkaPartition))
	})
	newPart := false
	for _, g := range keys {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("hive: write: %w", err)
		}
		if err := s.writeGroup(g, groups[g]); err != nil {
			return fmt.Errorf("%w: %w", ErrStore, err)
		}
		if !s.parts[g.part] {
			newPart = true
		}
	}
	if newPart {
		if err := s.writeDDL(); err != nil {
			return fmt.Errorf("%w: %w", ErrStore, err)
		}
	}
	return sink.Reject(refused...)
}

// Close implements [sink.Sink]. Every Write commits its files before it
// returns, so there is nothing to flush: Close waits for a Write in progress
// (within ctx) and refuses later ones with [sink.ErrClosed]. Closing twice is
// a no-op.
func (s *Sink) Close(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("hive: close: %w", ctx.Err())
	}
	s.closed = true
	<-s.sem
	return nil
}
