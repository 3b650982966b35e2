package mysql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-mysql-org/go-mysql/canal"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	mschema "github.com/go-mysql-org/go-mysql/schema"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/schema"
)

// Config is what a Source reads and how.
type Config struct {
	// DSN is user[:password]@tcp(host:port)/database, the database whose
	// tables are captured and where the offsets table lives.
	DSN string `yaml:"dsn"`
	// Name identifies this source's row in the offsets table and is the
	// <db> part of topics and sources (default "mysql").
	Name string `yaml:"name"`
	// Flavor is "mariadb" (default) or "mysql".
	Flavor string `yaml:"flavor"`
	// ServerID is the replica id to register with (default: random in
	// 1001..1<<30); it must differ from every other replica's.
	ServerID uint32 `yaml:"server_id"`
	// OffsetsTable stores acknowledged positions (default "slate_cdc_offsets").
	OffsetsTable string `yaml:"offsets_table"`
	// FlushInterval is how often acknowledged positions are stored
	// (default 1s); they are also stored on stop.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// Outbox is the outbox table (default cdc.OutboxTable; "-" disables).
	Outbox string `yaml:"outbox"`
	// TopicPrefix prefixes the topics events go to:
	// <prefix>cdc.<db>.<schema>.<table> for rows and
	// <prefix><aggregatetype>.changes for outbox rows (default
	// schema.DefaultTopicPrefix, "studio."). It should be the prefix of the
	// services' producers and enrichers.
	TopicPrefix string `yaml:"topic_prefix"`
	// Filter selects tables (schema = the database) and columns.
	Filter cdc.Filter `yaml:"filter"`
	// MaxTxEvents bounds the events of one transaction held before they
	// are handed on without a position (default 1000).
	MaxTxEvents int `yaml:"max_tx_events"`
	// Snapshot reads every captured table in one consistent view on the
	// first run (no offsets row), as SNAPSHOT events, and streams from that
	// view's binlog position. The offsets row is stored only once the
	// snapshot is acknowledged, so a crash mid-snapshot takes it again.
	// It needs the RELOAD privilege (FLUSH TABLES WITH READ LOCK).
	Snapshot bool `yaml:"snapshot"`
}

var (
	dsnRE   = regexp.MustCompile(`^([^:@]+)(?::([^@]*))?@tcp\(([^)]+)\)/([A-Za-z0-9_$]+)(?:\?.*)?$`)
	identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*$`)
)

// Validate fills defaults and reports the first wrong field.
func (c *Config) Validate() error {
	if c.Name == "" {
		c.Name = "mysql"
	}
	if c.Flavor == "" {
		c.Flavor = gomysql.MariaDBFlavor
	}
	if c.ServerID == 0 {
		c.ServerID = 1001 + rand.Uint32N(1<<30)
	}
	if c.OffsetsTable == "" {
		c.OffsetsTable = "slate_cdc_offsets"
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = time.Second
	}
	if c.Outbox == "" {
		c.Outbox = cdc.OutboxTable
	}
	if c.MaxTxEvents == 0 {
		c.MaxTxEvents = 1000
	}
	if c.TopicPrefix == "" {
		c.TopicPrefix = schema.DefaultTopicPrefix
	}
	switch {
	case !dsnRE.MatchString(c.DSN):
		return fmt.Errorf("%w: dsn %q: want user[:password]@tcp(host:port)/database", cdc.ErrConfig, c.DSN)
	case c.Flavor != gomysql.MariaDBFlavor && c.Flavor != gomysql.MySQLFlavor:
		return fmt.Errorf("%w: flavor %q: want mariadb or mysql", cdc.ErrConfig, c.Flavor)
	case !identRE.MatchString(c.OffsetsTable):
		return fmt.Errorf("%w: offsets_table %q: want a plain identifier", cdc.ErrConfig, c.OffsetsTable)
	case c.FlushInterval < 0:
		return fmt.Errorf("%w: flush_interval %s is negative", cdc.ErrConfig, c.FlushInterval)
	case c.MaxTxEvents < 1:
		return fmt.Errorf("%w: max_tx_events %d, need at least 1", cdc.ErrConfig, c.MaxTxEvents)
	}
	if err := schema.ValidateTopicPrefix(c.TopicPrefix); err != nil {
		return fmt.Errorf("%w: topic_prefix: %w", cdc.ErrConfig, err)
	}
	return c.Filter.Validate()
}

type options struct {
	reg     schema.Registry
	log     *slog.Logger
	metrics *cdc.Metrics
}

// Option configures [New].
type Option func(*options)

// WithRegistry sets the schema registry. Required.
func WithRegistry(r schema.Registry) Option { return func(o *options) { o.reg = r } }

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithMetrics makes the source update m.
func WithMetrics(m *cdc.Metrics) Option { return func(o *options) { o.metrics = m } }

// Position is a binlog position: file, offset after a transaction's XID
// event, and the GTID set then executed (empty when unknown).
type Position struct {
	File string
	Pos  uint32
	GTID string
}

// String returns file:offset.
func (p Position) String() string { return fmt.Sprintf("%s:%d", p.File, p.Pos) }

// Sequence returns the binlog-derived number of p: the file's numeric
// suffix in the high 32 bits, the offset in the low ones.
func (p Position) Sequence() int64 { return sequence(p.File, p.Pos) }

func sequence(file string, pos uint32) int64 {
	n, _ := strconv.ParseInt(file[strings.LastIndexByte(file, '.')+1:], 10, 64)
	return n<<32 | int64(pos)
}

func (p Position) after(q Position) bool { return p.Sequence() > q.Sequence() }

// Source captures one MySQL/MariaDB database from the binlog. Create it
// with [New]; Run it once.
type Source struct {
	cfg                      Config
	user, pass, addr, dbName string
	log                      *slog.Logger
	enc                      *cdc.Encoder
	outbox                   *cdc.OutboxRouter
	metrics                  *cdc.Metrics

	mu     sync.Mutex
	acked  Position
	stored Position
}

// New returns a source for cfg. It does not connect; Run does.
func New(cfg Config, opts ...Option) (*Source, error) {
	o := options{log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.reg == nil {
		return nil, fmt.Errorf("%w: no schema registry (WithRegistry)", cdc.ErrConfig)
	}
	if o.metrics == nil {
		o.metrics = cdc.NewMetrics(nil)
	}
	m := dsnRE.FindStringSubmatch(cfg.DSN)
	s := &Source{cfg: cfg, user: m[1], pass: m[2], addr: m[3], dbName: m[4], log: o.log, metrics: o.metrics}
	s.enc = cdc.NewEncoder(o.reg, &s.cfg.Filter, cdc.WithTopicPrefix(s.cfg.TopicPrefix))
	if cfg.Outbox != "-" {
		r, err := cdc.NewOutboxRouter(o.reg, cdc.WithTopicPrefix(s.cfg.TopicPrefix))
		if err != nil {
			return nil, err
		}
		s.outbox = r
	}
	return s, nil
}

// Ack implements [cdc.Source]; the position is stored at the next flush.
func (s *Source) Ack(pos cdc.Position) error {
	p, ok := pos.(Position)
	if !ok {
		return fmt.Errorf("mysql: ack of a %T, want mysql.Position", pos)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.after(s.acked) {
		s.acked = p
	}
	return nil
}

// Run implements [cdc.Source]: it resumes from the stored position (or
// the server's current one on a first run) and streams until ctx ends.
func (s *Source) Run(ctx context.Context, emit cdc.EmitFunc) error {
	ccfg := canal.NewDefaultConfig()
	ccfg.Addr, ccfg.User, ccfg.Password = s.addr, s.user, s.pass
	ccfg.Flavor = s.cfg.Flavor
	ccfg.ServerID = s.cfg.ServerID
	ccfg.Dump.ExecutionPath = ""
	ccfg.IncludeTableRegex = []string{"^" + regexp.QuoteMeta(s.dbName) + `\..*$`}
	ccfg.Logger = s.log
	ccfg.HeartbeatPeriod = 5 * time.Second
	ccfg.ReadTimeout = 30 * time.Second
	ccfg.DisableRetrySync = true
	c, err := canal.NewCanal(ccfg)
	if err != nil {
		return fmt.Errorf("mysql: connect %s: %w", s.addr, err)
	}
	defer c.Close()
	start, fresh, err := s.startPosition(c)
	if err != nil {
		return err
	}
	h := &handler{s: s, c: c, ctx: ctx, emit: emit, pos: start, tables: make(map[string]*tableInfo)}
	if fresh && s.cfg.Snapshot {
		if start, err = s.snapshot(ctx, c, h, emit); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		h.pos = start
	}
	c.SetEventHandler(h)
	s.log.Info("streaming binlog", "from", start.String(), "server_id", s.cfg.ServerID)

	runErr := make(chan error, 1)
	go func() { runErr <- c.RunFrom(gomysql.Position{Name: start.File, Pos: start.Pos}) }()
	tick := time.NewTicker(s.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			c.Close()
			<-runErr
			return s.flush(c)
		case err := <-runErr:
			_ = s.flush(c)
			if ctx.Err() != nil {
				return nil
			}
			h.mu.Lock()
			herr := h.err
			h.mu.Unlock()
			if herr != nil {
				return herr
			}
			if err == nil {
				err = errors.New("binlog stream ended")
			}
			return fmt.Errorf("mysql: %w", err)
		case <-tick.C:
			if err := s.flush(c); err != nil {
				c.Close()
				<-runErr
				return err
			}
		}
	}
}

func (s *Source) offsetsTable() string { return "`" + s.dbName + "`.`" + s.cfg.OffsetsTable + "`" }

// startPosition reads the stored position, or on a first run (fresh)
// returns the server's current one, stored at once unless a snapshot is
// to be taken.
func (s *Source) startPosition(c *canal.Canal) (pos Position, fresh bool, err error) {
	ddl := "CREATE TABLE IF NOT EXISTS " + s.offsetsTable() + ` (
		name varchar(255) NOT NULL PRIMARY KEY, file varchar(255) NOT NULL, pos bigint NOT NULL,
		gtid text NOT NULL, updated_at timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6))`
	if _, err := c.Execute(ddl); err != nil {
		return Position{}, false, fmt.Errorf("mysql: create offsets table: %w", err)
	}
	r, err := c.Execute("SELECT file, pos, gtid FROM "+s.offsetsTable()+" WHERE name = ?", s.cfg.Name)
	if err != nil {
		return Position{}, false, fmt.Errorf("mysql: read offsets: %w", err)
	}
	if r.RowNumber() > 0 {
		file, _ := r.GetString(0, 0)
		pos, _ := r.GetInt(0, 1)
		gtid, _ := r.GetString(0, 2)
		p := Position{File: file, Pos: uint32(pos), GTID: gtid}
		s.mu.Lock()
		s.acked, s.stored = p, p
		s.mu.Unlock()
		return p, false, nil
	}
	mp, err := c.GetMasterPos()
	if err != nil {
		return Position{}, false, fmt.Errorf("mysql: current binlog position: %w", err)
	}
	p := Position{File: mp.Name, Pos: mp.Pos}
	if s.cfg.Snapshot {
		return p, true, nil
	}
	s.mu.Lock()
	s.acked = p
	s.mu.Unlock()
	if err := s.flush(c); err != nil {
		return Position{}, false, err
	}
	return p, true, nil
}

// flush stores the acknowledged position when it moved.
func (s *Source) flush(c *canal.Canal) error {
	s.mu.Lock()
	p := s.acked
	dirty := p != s.stored
	s.mu.Unlock()
	if !dirty {
		return nil
	}
	_, err := c.Execute("INSERT INTO "+s.offsetsTable()+" (name, file, pos, gtid) VALUES (?, ?, ?, ?) "+
		"ON DUPLICATE KEY UPDATE file = VALUES(file), pos = VALUES(pos), gtid = VALUES(gtid)",
		s.cfg.Name, p.File, int64(p.Pos), p.GTID)
	if err != nil {
		return fmt.Errorf("mysql: store offset %s: %w", p, err)
	}
	s.mu.Lock()
	s.stored = p
	s.mu.Unlock()
	s.metrics.Confirmed.Set(float64(p.Sequence()))
	return nil
}

type tableInfo struct {
	table  *cdc.Table
	skip   bool
	outbox bool
}

// handler receives canal's callbacks on canal's goroutine, and one more
// (OnPosSynced) from canal.Close on the caller's: mu serializes them.
type handler struct {
	canal.DummyEventHandler
	mu   sync.Mutex
	s    *Source
	c    *canal.Canal
	ctx  context.Context
	emit cdc.EmitFunc
	err  error

	pos    Position // current binlog file (offsets come from events)
	tables map[string]*tableInfo
	txid   int64
	order  int64
	when   time.Time
	buf    []cdc.Event

	lastSeq int64 // the last envelope sequence handed out
}

func (h *handler) String() string { return "slate-cdc" }

func (h *handler) fail(err error) error {
	if h.err == nil {
		h.err = err
	}
	return err
}

func (h *handler) OnRotate(_ *replication.EventHeader, e *replication.RotateEvent) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pos.File = string(e.NextLogName)
	return nil
}

func (h *handler) OnTableChanged(_ *replication.EventHeader, db, table string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.tables, db+"."+table)
	return nil
}

func (h *handler) OnGTID(hd *replication.EventHeader, e gomysql.BinlogGTIDEvent) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.order = 0
	h.when = time.Unix(int64(hd.Timestamp), 0)
	if g, ok := e.(*replication.MariadbGTIDEvent); ok {
		h.txid = int64(g.GTID.SequenceNumber)
	} else {
		h.txid++
	}
	return nil
}

func kindOf(c *mschema.TableColumn) cdc.Kind {
	switch c.Type {
	case mschema.TYPE_NUMBER, mschema.TYPE_MEDIUM_INT:
		return cdc.KindLong
	case mschema.TYPE_DATETIME, mschema.TYPE_TIMESTAMP:
		return cdc.KindTimestamp
	}
	return cdc.KindString
}

func (h *handler) table(t *mschema.Table) *tableInfo {
	key := t.Schema + "." + t.Name
	if ti, ok := h.tables[key]; ok && len(ti.table.Columns) == len(t.Columns) {
		return ti
	}
	pk := map[int]bool{}
	for _, i := range t.PKColumns {
		pk[i] = true
	}
	ct := &cdc.Table{DB: h.s.cfg.Name, Schema: t.Schema, Name: t.Name}
	for i := range t.Columns {
		ct.Columns = append(ct.Columns, cdc.Column{Name: t.Columns[i].Name, Kind: kindOf(&t.Columns[i]), Key: pk[i] || len(pk) == 0})
	}
	ti := &tableInfo{table: ct}
	ti.outbox = h.s.outbox != nil && cdc.IsOutbox(ct, h.s.cfg.Outbox)
	ti.skip = t.Name == h.s.cfg.OffsetsTable || (!ti.outbox && !h.s.cfg.Filter.IncludesTable(t.Schema, t.Name))
	h.tables[key] = ti
	return ti
}

func (h *handler) OnRow(e *canal.RowsEvent) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	ti := h.table(e.Table)
	if ti.skip {
		return nil
	}
	// Sequences (see rowSequence): the event's start plus the number of
	// row images up to the change's.
	start := sequence(h.pos.File, e.Header.LogPos-e.Header.EventSize)
	step := 1
	var op schema.Op
	switch e.Action {
	case canal.InsertAction:
		op = schema.OpCreate
	case canal.DeleteAction:
		op = schema.OpDelete
	case canal.UpdateAction:
		op, step = schema.OpUpdate, 2
	default:
		return nil
	}
	for i := 0; i+step-1 < len(e.Rows); i += step {
		var before, after []any
		switch op {
		case schema.OpCreate:
			after = e.Rows[i]
		case schema.OpDelete:
			before = e.Rows[i]
		case schema.OpUpdate:
			before, after = e.Rows[i], e.Rows[i+1]
		}
		if ti.outbox {
			h.order++
			if op != schema.OpCreate {
				continue
			}
			ev, _, err := h.s.outbox.Route(h.ctx, ti.table, after)
			if err != nil {
				return h.fail(err)
			}
			if err := h.add(ev); err != nil {
				return err
			}
			continue
		}
		if op == schema.OpUpdate && cdc.KeyChanged(ti.table, before, after) {
			// The row moved to another key: the old key is deleted (its
			// sequence is the before image's), the new one created.
			if err := h.change(ti, e, schema.OpDelete, before, nil, start+int64(i+1)); err != nil {
				return err
			}
			if err := h.change(ti, e, schema.OpCreate, nil, after, start+int64(i+2)); err != nil {
				return err
			}
			continue
		}
		if err := h.change(ti, e, op, before, after, start+int64(i+step)); err != nil {
			return err
		}
	}
	return nil
}

// change encodes one row change at sequence seq (before the carry) and
// adds it to the open transaction.
func (h *handler) change(ti *tableInfo, e *canal.RowsEvent, op schema.Op, before, after []any, seq int64) error {
	h.order++
	ch := &cdc.Change{
		Op: op, Table: ti.table, Before: before, After: after,
		Source: cdc.SourceInfo{Connector: "mysql", LSN: sequence(h.pos.File, e.Header.LogPos), TxID: h.txid, TxOrder: h.order, Time: h.when,
			File: h.pos.File, Pos: int64(e.Header.LogPos)},
		Sequence: h.rowSequence(seq),
		ID:       fmt.Sprintf("mysql/%s/%s/%d/%d", h.s.cfg.Name, h.pos.File, e.Header.LogPos, h.order),
	}
	ev, err := h.s.enc.Encode(h.ctx, ch)
	if err != nil {
		return h.fail(err)
	}
	return h.add(ev)
}

// add appends ev to the open transaction, handing a large one on.
func (h *handler) add(ev cdc.Event) error {
	h.buf = append(h.buf, ev)
	if len(h.buf) >= h.s.cfg.MaxTxEvents {
		b := cdc.Batch{Events: h.buf}
		h.buf = nil
		if err := h.emit(h.ctx, b); err != nil {
			return h.fail(err)
		}
	}
	return nil
}

// rowSequence returns seq, the envelope sequence of a row change, or the
// last sequence plus one when seq is not above it. A row's seq is the
// binlog sequence (Position.Sequence) of its rows event's first byte plus
// the count of row images up to and including the row's (an update has
// two): every image takes at least one byte of the event, so the rows of
// one event get distinct sequences that grow in binlog order, below the
// next event's. The binlog is written in commit order, and a snapshot's
// position is where the binlog ended when it was read, so streamed
// changes order after the snapshot's rows (Sequence - 1) and after every
// change committed before them. Only a compressed rows event can hold
// more rows than bytes; the carry keeps its sequences growing.
func (h *handler) rowSequence(seq int64) int64 {
	if seq <= h.lastSeq {
		seq = h.lastSeq + 1
	}
	h.lastSeq = seq
	return seq
}

func (h *handler) OnXID(_ *replication.EventHeader, next gomysql.Position) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	pos := Position{File: next.Name, Pos: next.Pos}
	if gs := h.c.SyncedGTIDSet(); gs != nil {
		pos.GTID = gs.String()
	}
	b := cdc.Batch{Events: h.buf, Position: pos}
	h.buf = nil
	if err := h.emit(h.ctx, b); err != nil {
		return h.fail(err)
	}
	return nil
}

func (h *handler) OnPosSynced(_ *replication.EventHeader, p gomysql.Position, _ gomysql.GTIDSet, _ bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if p.Name != "" {
		h.pos.File = p.Name
	}
	if len(h.buf) > 0 {
		return nil // inside a transaction; its XID brings the position
	}
	// DDL and rotations: nothing to publish, but the position moves.
	if err := h.emit(h.ctx, cdc.Batch{Position: Position{File: p.Name, Pos: p.Pos}}); err != nil {
		return h.fail(err)
	}
	return nil
}
