package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/schema"
)

// ErrNoSlot is returned by Run when the slot does not exist and
// CreateSlot is off.
var ErrNoSlot = errors.New("postgres: replication slot does not exist")

// ErrNoPublication is returned by Run when the publication does not exist
// and CreatePublication is off.
var ErrNoPublication = errors.New("postgres: publication does not exist")

// Position is a PostgreSQL LSN: the end of a committed transaction (or the
// snapshot's consistent point) that becomes confirmable once acknowledged.
type Position struct {
	LSN pglogrepl.LSN

	snapshotDone bool
	outboxIDs    []outboxRow
}

// outboxRow is a published outbox row: the table it was read from (quoted
// schema.table, since a bare Config.Outbox matches in every schema) and
// its id.
type outboxRow struct{ table, id string }

// newOutboxRow names the row id of the outbox table t.
func newOutboxRow(t *cdc.Table, id string) outboxRow {
	return outboxRow{table: pgx.Identifier{t.Schema, t.Name}.Sanitize(), id: id}
}

// String returns the LSN as PostgreSQL prints it (16/B374D848).
func (p Position) String() string { return p.LSN.String() }

// Source captures one database through a logical replication slot with
// the pgoutput plugin. Create it with [New]; Run it once (Runner.Run).
type Source struct {
	cfg     Config
	log     *slog.Logger
	enc     *cdc.Encoder
	outbox  *cdc.OutboxRouter
	metrics *cdc.Metrics

	mu            sync.Mutex
	acked         pglogrepl.LSN // acknowledged by Kafka, confirmable
	snapshotAcked bool
	deletable     []outboxRow // outbox rows acknowledged, not yet deleted
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
	s := &Source{cfg: cfg, log: o.log, metrics: o.metrics}
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

// Ack implements [cdc.Source]: pos (a [Position]) and everything before
// it is on Kafka. The next standby status update confirms it.
func (s *Source) Ack(pos cdc.Position) error {
	p, ok := pos.(Position)
	if !ok {
		return fmt.Errorf("postgres: ack of a %T, want postgres.Position", pos)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.LSN > s.acked {
		s.acked = p.LSN
	}
	if p.snapshotDone {
		s.snapshotAcked = true
	}
	if s.cfg.OutboxDelete {
		s.deletable = append(s.deletable, p.outboxIDs...)
	}
	return nil
}

func (s *Source) ackedLSN() pglogrepl.LSN {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

// connConfig parses the DSN with the session settings the decoders rely on.
func (s *Source) connConfig(replication bool) (*pgconn.Config, error) {
	pc, err := pgconn.ParseConfig(s.cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("%w: dsn: %w", cdc.ErrConfig, err)
	}
	pc.RuntimeParams["timezone"] = "UTC"
	pc.RuntimeParams["datestyle"] = "ISO, YMD"
	pc.RuntimeParams["application_name"] = "slate-cdc"
	if replication {
		pc.RuntimeParams["replication"] = "database"
	}
	return pc, nil
}

// stream is the state of one Run.
type stream struct {
	s      *Source
	db     string
	meta   *pgx.Conn
	repl   *pgconn.PgConn
	emit   cdc.EmitFunc
	rels   map[uint32]*relation
	walEnd pglogrepl.LSN

	// the open transaction
	inTx       bool
	xid        uint32
	commitTime time.Time
	order      int64
	txSeq      int64 // sequence base of the open transaction (sequence.go)
	carried    bool  // the open transaction's sequences continue the last one's
	buf        []pending
	outboxIDs  []outboxRow

	lastSeq int64 // the last envelope sequence handed out

	pipe *pipeline // decoded units to the encoders, in order to emit

	emitted        pglogrepl.LSN // position of the last emitted batch
	undeleted      []outboxRow   // acknowledged outbox rows not found yet
	undeletedTries int           // ticks the undeleted rows were looked for
	snapshotMarked bool
	snapshotActive bool // a snapshot was taken in this run and is not marked done yet
}

type relation struct {
	table   *cdc.Table
	skip    bool // filtered out, or the state table
	outbox  bool
	typeOID []uint32
}

// Run implements [cdc.Source]. It prepares the publication and slot as
// configured, takes the initial snapshot when the slot is new, then
// streams committed transactions until ctx ends. On return it confirms
// the last acknowledged position to the server.
func (s *Source) Run(ctx context.Context, emit cdc.EmitFunc) error {
	mc, err := s.connConfig(false)
	if err != nil {
		return err
	}
	pcfg, err := pgx.ParseConfig(s.cfg.DSN)
	if err != nil {
		return fmt.Errorf("%w: dsn: %w", cdc.ErrConfig, err)
	}
	pcfg.Config = *mc
	meta, err := pgx.ConnectConfig(ctx, pcfg)
	if err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	defer meta.Close(context.Background())
	st := &stream{s: s, meta: meta, emit: emit, rels: make(map[uint32]*relation)}
	if err := meta.QueryRow(ctx, "SELECT current_database()").Scan(&st.db); err != nil {
		return fmt.Errorf("postgres: current database: %w", err)
	}
	if err := st.prepare(ctx); err != nil {
		return err
	}
	rc, err := s.connConfig(true)
	if err != nil {
		return err
	}
	repl, err := pgconn.ConnectConfig(ctx, rc)
	if err != nil {
		return fmt.Errorf("postgres: replication connect: %w", err)
	}
	defer repl.Close(context.Background())
	st.repl = repl
	if err := st.openSlot(ctx); err != nil {
		return err
	}
	err = st.loop(ctx)
	// Confirm what was acknowledged, so a restart does not replay it, and
	// record an acknowledged snapshot as done, so a restart does not take
	// it again.
	fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = st.sendStatus(fctx)
	if herr := st.housekeeping(fctx); herr != nil {
		st.s.log.Warn("housekeeping at stop", "err", herr)
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (st *stream) stateEnabled() bool { return st.s.cfg.StateTable != "-" }

// prepare creates the state table and publication as configured.
func (st *stream) prepare(ctx context.Context) error {
	cfg := &st.s.cfg
	if st.stateEnabled() {
		ddl := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (
			slot text PRIMARY KEY, snapshot_done boolean NOT NULL DEFAULT false, heartbeat_at timestamptz)`,
			pgx.Identifier{cfg.StateTable}.Sanitize())
		if _, err := st.meta.Exec(ctx, ddl); err != nil {
			return fmt.Errorf("postgres: create state table: %w", err)
		}
	}
	var exists bool
	if err := st.meta.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", cfg.Publication).Scan(&exists); err != nil {
		return fmt.Errorf("postgres: look up publication: %w", err)
	}
	if exists {
		return nil
	}
	if !cfg.CreatePublication {
		return fmt.Errorf("%w: %s (create it, or set create_publication)", ErrNoPublication, cfg.Publication)
	}
	target := "ALL TABLES"
	if len(cfg.Tables) > 0 {
		names := make([]string, len(cfg.Tables))
		for i, t := range cfg.Tables {
			names[i] = pgx.Identifier(strings.SplitN(t, ".", 2)).Sanitize()
		}
		target = "TABLE " + strings.Join(names, ", ")
	}
	if _, err := st.meta.Exec(ctx, fmt.Sprintf("CREATE PUBLICATION %s FOR %s", pgx.Identifier{cfg.Publication}.Sanitize(), target)); err != nil {
		return fmt.Errorf("postgres: create publication: %w", err)
	}
	st.s.log.Info("publication created", "publication", cfg.Publication, "for", target)
	return nil
}

// openSlot finds or creates the slot, snapshots a new one, and starts
// streaming from the slot's confirmed position.
func (st *stream) openSlot(ctx context.Context) error {
	cfg := &st.s.cfg
	var confirmed *string
	err := st.meta.QueryRow(ctx, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", cfg.Slot).Scan(&confirmed)
	found := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgres: look up slot: %w", err)
	}
	if found && cfg.Snapshot && st.stateEnabled() {
		var done bool
		q := fmt.Sprintf("SELECT snapshot_done FROM %s WHERE slot = $1", pgx.Identifier{cfg.StateTable}.Sanitize())
		err := st.meta.QueryRow(ctx, q, cfg.Slot).Scan(&done)
		if err == nil && !done {
			// A previous run created the slot but did not finish its
			// snapshot: start over.
			st.s.log.Warn("unfinished snapshot: dropping the slot to take it again", "slot", cfg.Slot)
			if _, err := st.meta.Exec(ctx, "SELECT pg_drop_replication_slot($1)", cfg.Slot); err != nil {
				return fmt.Errorf("postgres: drop slot with unfinished snapshot: %w", err)
			}
			found = false
		} else if err == nil {
			st.snapshotMarked = true
		}
	}
	if found {
		if confirmed != nil {
			lsn, err := pglogrepl.ParseLSN(*confirmed)
			if err != nil {
				return fmt.Errorf("postgres: slot position %q: %w", *confirmed, err)
			}
			st.s.mu.Lock()
			if lsn > st.s.acked {
				st.s.acked = lsn
			}
			st.s.mu.Unlock()
			st.emitted = lsn
		}
	} else {
		if !cfg.CreateSlot {
			return fmt.Errorf("%w: %s (create it, or set create_slot)", ErrNoSlot, cfg.Slot)
		}
		if err := st.createSlot(ctx); err != nil {
			return err
		}
	}
	err = pglogrepl.StartReplication(ctx, st.repl, cfg.Slot, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", fmt.Sprintf("publication_names '%s'", cfg.Publication)},
	})
	if err != nil {
		return fmt.Errorf("postgres: start replication on slot %s: %w", cfg.Slot, err)
	}
	st.s.log.Info("streaming", "slot", cfg.Slot, "publication", cfg.Publication, "from", st.s.ackedLSN().String())
	return nil
}

func (st *stream) createSlot(ctx context.Context) error {
	cfg := &st.s.cfg
	if cfg.Snapshot && st.stateEnabled() {
		q := fmt.Sprintf(`INSERT INTO %s (slot, snapshot_done) VALUES ($1, false)
			ON CONFLICT (slot) DO UPDATE SET snapshot_done = false`, pgx.Identifier{cfg.StateTable}.Sanitize())
		if _, err := st.meta.Exec(ctx, q, cfg.Slot); err != nil {
			return fmt.Errorf("postgres: record snapshot start: %w", err)
		}
	}
	action := "NOEXPORT_SNAPSHOT"
	if cfg.Snapshot {
		action = "EXPORT_SNAPSHOT"
	}
	res, err := pglogrepl.CreateReplicationSlot(ctx, st.repl, cfg.Slot, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{SnapshotAction: action, Mode: pglogrepl.LogicalReplication})
	if err != nil {
		return fmt.Errorf("postgres: create slot %s: %w", cfg.Slot, err)
	}
	cp, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return fmt.Errorf("postgres: consistent point %q: %w", res.ConsistentPoint, err)
	}
	st.s.log.Info("slot created", "slot", cfg.Slot, "consistent_point", res.ConsistentPoint)
	st.s.mu.Lock()
	st.s.acked = cp
	st.s.mu.Unlock()
	st.emitted = cp
	if !cfg.Snapshot {
		return nil
	}
	st.snapshotActive = true
	if err := st.snapshot(ctx, res.SnapshotName, cp); err != nil {
		return fmt.Errorf("postgres: snapshot: %w", err)
	}
	return nil
}

// sendStatus confirms the acknowledged position to the server.
func (st *stream) sendStatus(ctx context.Context) error {
	lsn := st.s.ackedLSN()
	err := pglogrepl.SendStandbyStatusUpdate(ctx, st.repl, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: lsn, WALFlushPosition: lsn, WALApplyPosition: lsn,
	})
	if err != nil {
		return fmt.Errorf("postgres: standby status: %w", err)
	}
	st.s.metrics.Confirmed.Set(float64(lsn))
	if st.walEnd > lsn {
		st.s.metrics.LagBytes.Set(float64(st.walEnd - lsn))
	} else {
		st.s.metrics.LagBytes.Set(0)
	}
	return nil
}

// housekeeping runs at each status tick: mark the snapshot done, delete
// published outbox rows.
func (st *stream) housekeeping(ctx context.Context) error {
	cfg := &st.s.cfg
	st.s.mu.Lock()
	snapDone := st.s.snapshotAcked
	ids := st.s.deletable
	st.s.deletable = nil
	st.s.mu.Unlock()
	if snapDone && st.snapshotActive && !st.snapshotMarked && st.stateEnabled() {
		q := fmt.Sprintf("UPDATE %s SET snapshot_done = true WHERE slot = $1", pgx.Identifier{cfg.StateTable}.Sanitize())
		if _, err := st.meta.Exec(ctx, q, cfg.Slot); err != nil {
			return fmt.Errorf("postgres: record snapshot done: %w", err)
		}
		st.snapshotMarked = true
		st.s.log.Info("snapshot acknowledged", "slot", cfg.Slot)
	}
	ids = append(ids, st.undeleted...)
	st.undeleted = nil
	if len(ids) == 0 {
		return nil
	}
	byTable := map[string][]string{}
	var tables []string
	for _, r := range ids {
		if _, ok := byTable[r.table]; !ok {
			tables = append(tables, r.table)
		}
		byTable[r.table] = append(byTable[r.table], r.id)
	}
	missing := false
	for _, table := range tables {
		deleted, err := st.deleteOutboxRows(ctx, table, byTable[table])
		if err != nil {
			return err
		}
		// A commit is decoded from the WAL a moment before the committing
		// backend makes it visible to other sessions, so a fast ack can
		// try to delete a row this session cannot see yet. Such ids are
		// tried again at the next ticks, a bounded number of times (an id
		// deleted by someone else meanwhile is never found).
		for _, id := range byTable[table] {
			if !deleted[strings.ToLower(id)] {
				missing = true
				st.undeleted = append(st.undeleted, outboxRow{table: table, id: id})
			}
		}
	}
	st.undeletedTries++
	if !missing || st.undeletedTries > outboxDeleteTries {
		st.undeleted = nil
		st.undeletedTries = 0
	}
	return nil
}

// deleteOutboxRows deletes the rows ids from the outbox table (quoted
// schema.table) and returns the ids it found, in lower case.
func (st *stream) deleteOutboxRows(ctx context.Context, table string, ids []string) (map[string]bool, error) {
	rows, err := st.meta.Query(ctx, "DELETE FROM "+table+" WHERE id = ANY($1::uuid[]) RETURNING id::text", ids)
	if err != nil {
		return nil, fmt.Errorf("postgres: delete published outbox rows of %s: %w", table, err)
	}
	deleted, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: delete published outbox rows of %s: %w", table, err)
	}
	found := make(map[string]bool, len(deleted))
	for _, id := range deleted {
		found[id] = true
	}
	return found, nil
}

// outboxDeleteTries bounds how many status ticks an acknowledged outbox id
// that was not found is looked for again.
const outboxDeleteTries = 50

func (st *stream) heartbeat(ctx context.Context) error {
	cfg := &st.s.cfg
	q := fmt.Sprintf(`INSERT INTO %s (slot, snapshot_done, heartbeat_at) VALUES ($1, true, now())
		ON CONFLICT (slot) DO UPDATE SET heartbeat_at = now()`, pgx.Identifier{cfg.StateTable}.Sanitize())
	if _, err := st.meta.Exec(ctx, q, cfg.Slot); err != nil {
		return fmt.Errorf("postgres: heartbeat: %w", err)
	}
	return nil
}

func (st *stream) loop(ctx context.Context) error {
	cfg := &st.s.cfg
	workers := runtime.GOMAXPROCS(0)
	if workers < 2 {
		workers = 2
	}
	st.pipe = startPipeline(ctx, st.s.enc, st.emit, workers, 256)
	defer st.pipe.stop()
	// A failed pipeline (encode or publish error) ends the receive wait.
	ctx = st.pipe.ctx
	var recv deadline
	defer recv.stop()
	nextStatus := time.Now()
	var nextBeat time.Time
	if cfg.HeartbeatInterval > 0 {
		nextBeat = time.Now().Add(cfg.HeartbeatInterval)
	}
	for {
		now := time.Now()
		if !now.Before(nextStatus) {
			st.idleConfirm()
			if err := st.sendStatus(ctx); err != nil {
				return err
			}
			if err := st.housekeeping(ctx); err != nil {
				return err
			}
			nextStatus = now.Add(cfg.StatusInterval)
		}
		if !nextBeat.IsZero() && !now.Before(nextBeat) {
			if err := st.heartbeat(ctx); err != nil {
				return err
			}
			nextBeat = now.Add(cfg.HeartbeatInterval)
		}
		wake := nextStatus
		if !nextBeat.IsZero() && nextBeat.Before(wake) {
			wake = nextBeat
		}
		msg, err := st.repl.ReceiveMessage(recv.until(ctx, wake))
		if err != nil {
			if perr := st.pipe.failure(); perr != nil {
				return perr
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if pgconn.Timeout(err) {
				continue
			}
			return fmt.Errorf("postgres: receive: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("postgres: replication: %w", pgconn.ErrorResponseToPgError(m))
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				continue
			}
			switch m.Data[0] {
			case pglogrepl.PrimaryKeepaliveMessageByteID:
				ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
				if err != nil {
					return fmt.Errorf("postgres: keepalive: %w", err)
				}
				if ka.ServerWALEnd > st.walEnd {
					st.walEnd = ka.ServerWALEnd
				}
				if ka.ReplyRequested {
					nextStatus = time.Time{}
				}
			case pglogrepl.XLogDataByteID:
				xld, err := pglogrepl.ParseXLogData(m.Data[1:])
				if err != nil {
					return fmt.Errorf("postgres: xlogdata: %w", err)
				}
				if xld.ServerWALEnd > st.walEnd {
					st.walEnd = xld.ServerWALEnd
				}
				if err := st.handle(ctx, xld); err != nil {
					return err
				}
			}
		}
	}
}

// deadline is one deadline context per wake time, reused for every
// message received until then instead of made per message.
type deadline struct {
	ctx    context.Context
	cancel context.CancelFunc
	at     time.Time
}

func (d *deadline) until(parent context.Context, at time.Time) context.Context {
	if d.ctx == nil || !at.Equal(d.at) {
		d.stop()
		d.ctx, d.cancel = context.WithDeadline(parent, at)
		d.at = at
	}
	return d.ctx
}

func (d *deadline) stop() {
	if d.cancel != nil {
		d.cancel()
	}
}

// idleConfirm moves the confirmable position to the server's WAL end when
// nothing is open or in flight: the WAL in between holds nothing this
// slot publishes, and confirming it lets the server recycle it.
func (st *stream) idleConfirm() {
	if st.inTx || st.walEnd == 0 {
		return
	}
	st.s.mu.Lock()
	defer st.s.mu.Unlock()
	if st.s.acked >= st.emitted && st.walEnd > st.s.acked {
		st.s.acked = st.walEnd
		st.emitted = st.walEnd
	}
}

func (st *stream) emitBatch(ctx context.Context, b cdc.Batch) error {
	if err := st.emit(ctx, b); err != nil {
		return err
	}
	if p, ok := b.Position.(Position); ok {
		st.s.mu.Lock()
		if p.LSN > st.emitted {
			st.emitted = p.LSN
		}
		st.s.mu.Unlock()
	}
	return nil
}

// Tables are read with their text output; these types keep a typed field.
func kindOf(oid uint32) cdc.Kind {
	switch oid {
	case 20, 21, 23, 26: // int8, int2, int4, oid
		return cdc.KindLong
	case 16: // bool
		return cdc.KindBool
	case 1114, 1184: // timestamp, timestamptz
		return cdc.KindTimestamp
	}
	return cdc.KindString
}

// primaryKey returns the primary key columns of a relation.
func (st *stream) primaryKey(ctx context.Context, oid uint32) (map[string]bool, error) {
	rows, err := st.meta.Query(ctx, `SELECT a.attname FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
		WHERE i.indrelid = $1 AND i.indisprimary`, oid)
	if err != nil {
		return nil, fmt.Errorf("postgres: primary key of relation %d: %w", oid, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: primary key of relation %d: %w", oid, err)
	}
	pk := make(map[string]bool, len(names))
	for _, n := range names {
		pk[n] = true
	}
	return pk, nil
}

func (st *stream) relation(ctx context.Context, m *pglogrepl.RelationMessage) error {
	cfg := &st.s.cfg
	pk, err := st.primaryKey(ctx, m.RelationID)
	if err != nil {
		return err
	}
	t := &cdc.Table{DB: st.db, Schema: m.Namespace, Name: m.RelationName}
	r := &relation{table: t}
	for _, c := range m.Columns {
		key := pk[c.Name]
		if len(pk) == 0 && m.ReplicaIdentity != 'f' {
			key = c.Flags&1 == 1 // no primary key: the replica identity index
		}
		t.Columns = append(t.Columns, cdc.Column{Name: c.Name, Kind: kindOf(c.DataType), Key: key})
		r.typeOID = append(r.typeOID, c.DataType)
	}
	if len(pk) == 0 && m.ReplicaIdentity == 'f' {
		for i := range t.Columns {
			t.Columns[i].Key = true
		}
	}
	r.outbox = st.s.outbox != nil && cdc.IsOutbox(t, cfg.Outbox)
	r.skip = (st.stateEnabled() && t.Name == cfg.StateTable) ||
		(!r.outbox && !cfg.Filter.IncludesTable(t.Schema, t.Name))
	st.rels[m.RelationID] = r
	return nil
}

// values decodes a tuple; unchanged TOAST columns take the old row's
// value when there is one, else the placeholder, and are then listed in
// unchanged. They never become null: sinks replace whole rows.
func values(td *pglogrepl.TupleData, old []any, placeholder string) (vals []any, unchanged []int) {
	if td == nil {
		return nil, nil
	}
	vals = make([]any, len(td.Columns))
	for i, c := range td.Columns {
		switch c.DataType {
		case pglogrepl.TupleDataTypeText, pglogrepl.TupleDataTypeBinary:
			vals[i] = string(c.Data) // copies: the receive buffer is reused
		case pglogrepl.TupleDataTypeToast:
			if old != nil && i < len(old) && old[i] != nil {
				vals[i] = old[i]
			} else {
				vals[i] = placeholder
				unchanged = append(unchanged, i)
			}
		}
	}
	return vals, unchanged
}

func (st *stream) handle(ctx context.Context, xld pglogrepl.XLogData) error {
	msg, err := pglogrepl.Parse(xld.WALData)
	if err != nil {
		return fmt.Errorf("postgres: decode pgoutput: %w", err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		return st.relation(ctx, m)
	case *pglogrepl.BeginMessage:
		seq, err := txSequence(m.FinalLSN)
		if err != nil {
			return err
		}
		st.inTx, st.xid, st.commitTime, st.order = true, m.Xid, m.CommitTime, 0
		st.txSeq, st.carried = seq, false
		st.buf, st.outboxIDs = st.buf[:0], nil
	case *pglogrepl.CommitMessage:
		u := &unit{items: st.buf, pos: Position{LSN: m.TransactionEndLSN, outboxIDs: st.outboxIDs}}
		st.buf, st.inTx = nil, false
		return st.submit(ctx, u)
	case *pglogrepl.InsertMessage:
		new, unch := values(m.Tuple, nil, st.s.cfg.UnavailableValue)
		return st.change(ctx, xld.WALStart, m.RelationID, schema.OpCreate, nil, new, unch)
	case *pglogrepl.UpdateMessage:
		old, _ := values(m.OldTuple, nil, st.s.cfg.UnavailableValue)
		new, unch := values(m.NewTuple, old, st.s.cfg.UnavailableValue)
		if r, ok := st.rels[m.RelationID]; ok && !r.outbox && cdc.KeyChanged(r.table, old, new) {
			// The row moved to another key: the old key is deleted.
			if err := st.change(ctx, xld.WALStart, m.RelationID, schema.OpDelete, old, nil, nil); err != nil {
				return err
			}
			return st.change(ctx, xld.WALStart, m.RelationID, schema.OpCreate, nil, new, unch)
		}
		return st.change(ctx, xld.WALStart, m.RelationID, schema.OpUpdate, old, new, unch)
	case *pglogrepl.DeleteMessage:
		old, _ := values(m.OldTuple, nil, st.s.cfg.UnavailableValue)
		return st.change(ctx, xld.WALStart, m.RelationID, schema.OpDelete, old, nil, nil)
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			if err := st.change(ctx, xld.WALStart, id, schema.OpTruncate, nil, nil, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

func (st *stream) change(ctx context.Context, lsn pglogrepl.LSN, relID uint32, op schema.Op, before, after []any, unchanged []int) error {
	r, ok := st.rels[relID]
	if !ok {
		return fmt.Errorf("postgres: change of relation %d before its relation message", relID)
	}
	st.order++
	if r.skip {
		return nil
	}
	if r.outbox {
		if op != schema.OpCreate {
			return nil // updates and deletes (our own cleanup) are not events
		}
		ev, id, err := st.s.outbox.Route(ctx, r.table, after)
		if err != nil {
			return err
		}
		st.buf = append(st.buf, pending{ev: ev})
		st.outboxIDs = append(st.outboxIDs, newOutboxRow(r.table, id))
		return st.flushLarge(ctx)
	}
	ch := &cdc.Change{
		Op: op, Table: r.table, Before: before, After: after,
		Source:   cdc.SourceInfo{Connector: "postgresql", LSN: int64(lsn), TxID: int64(st.xid), TxOrder: st.order, Time: st.commitTime},
		Sequence: st.sequence(),
		ID:       changeID(st.db, lsn, st.order),
	}
	for _, i := range unchanged {
		ch.Unchanged = append(ch.Unchanged, r.table.Columns[i].Name)
	}
	st.buf = append(st.buf, pending{ch: ch})
	return st.flushLarge(ctx)
}

// sequence returns the envelope sequence of the open transaction's
// change at st.order (see sequence.go).
func (st *stream) sequence() int64 {
	seq := st.txSeq + st.order
	if seq <= st.lastSeq {
		if !st.carried {
			st.carried = true
			st.s.log.Warn("transaction too large for its sequence range: its sequences continue the previous one's",
				"xid", st.xid, "changes", st.order)
		}
		seq = st.lastSeq + 1
	}
	st.lastSeq = seq
	return seq
}

// changeID is fmt.Sprintf("pg/%s/%s/%d", db, lsn, order) without fmt: the
// seed of the envelope id, which must never change for a given change.
func changeID(db string, lsn pglogrepl.LSN, order int64) string {
	b := make([]byte, 0, len(db)+32)
	b = append(b, "pg/"...)
	b = append(b, db...)
	b = append(b, '/')
	b = appendUpperHex(b, uint64(uint32(lsn>>32)))
	b = append(b, '/')
	b = appendUpperHex(b, uint64(uint32(lsn)))
	b = append(b, '/')
	b = strconv.AppendInt(b, order, 10)
	return string(b)
}

func appendUpperHex(b []byte, v uint64) []byte {
	n := len(b)
	b = strconv.AppendUint(b, v, 16)
	for i := n; i < len(b); i++ {
		if b[i] >= 'a' {
			b[i] -= 'a' - 'A'
		}
	}
	return b
}

// flushLarge hands on the events of a big transaction without a position:
// the transaction's position comes with its commit.
func (st *stream) flushLarge(ctx context.Context) error {
	if len(st.buf) < st.s.cfg.MaxTxEvents {
		return nil
	}
	u := &unit{items: st.buf}
	st.buf = nil
	return st.submit(ctx, u)
}

// submit hands a unit to the encoders. Its position counts as emitted
// from here on: idleConfirm must not confirm past a transaction that is
// still being encoded or published.
func (st *stream) submit(ctx context.Context, u *unit) error {
	if p, ok := u.pos.(Position); ok {
		st.s.mu.Lock()
		if p.LSN > st.emitted {
			st.emitted = p.LSN
		}
		st.s.mu.Unlock()
	}
	return st.pipe.submit(ctx, u)
}
