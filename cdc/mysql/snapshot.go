package mysql

import (
	"context"
	"fmt"
	"time"

	"github.com/go-mysql-org/go-mysql/canal"
	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/schema"
)

// snapshot reads every captured table of the database in one consistent
// view and emits its rows as SNAPSHOT events, then the binlog position of
// that view as the batch position; streaming starts there. The tables
// are locked only while the transaction starts and the position is read
// (FLUSH TABLES WITH READ LOCK, START TRANSACTION WITH CONSISTENT
// SNAPSHOT, SHOW MASTER STATUS, UNLOCK TABLES).
func (s *Source) snapshot(ctx context.Context, c *canal.Canal, h *handler, emit cdc.EmitFunc) (Position, error) {
	conn, err := client.Connect(s.addr, s.user, s.pass, s.dbName)
	if err != nil {
		return Position{}, fmt.Errorf("mysql: snapshot connect: %w", err)
	}
	defer conn.Close()
	// ctx ends the snapshot by closing the connection under a running query.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	pos, err := s.snapshotStart(conn)
	if err != nil {
		if ctx.Err() != nil {
			return Position{}, ctx.Err()
		}
		return Position{}, err
	}
	r, err := conn.Execute("SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")
	if err != nil {
		return Position{}, fmt.Errorf("mysql: snapshot: list tables: %w", err)
	}
	var tables []*tableInfo
	for i := range r.RowNumber() {
		name, _ := r.GetString(i, 0)
		mt, err := c.GetTable(s.dbName, name)
		if err != nil {
			return Position{}, fmt.Errorf("mysql: snapshot: table %s: %w", name, err)
		}
		h.mu.Lock()
		ti := h.table(mt)
		h.mu.Unlock()
		if !ti.skip && !ti.outbox {
			tables = append(tables, ti)
		}
	}
	s.metrics.SnapshotTablesLeft.Set(float64(len(tables)))
	s.log.Info("snapshot started", "tables", len(tables), "position", pos.String())
	at := time.Now()
	for _, ti := range tables {
		if err := s.snapshotTable(ctx, conn, ti, pos, at, emit); err != nil {
			if ctx.Err() != nil {
				return Position{}, ctx.Err()
			}
			return Position{}, err
		}
		s.metrics.SnapshotTablesLeft.Dec()
	}
	if _, err := conn.Execute("COMMIT"); err != nil {
		return Position{}, fmt.Errorf("mysql: snapshot: commit: %w", err)
	}
	// The snapshot's position: acknowledged (and stored) only once every
	// snapshot event is, so a crash before that takes the snapshot again.
	if err := emit(ctx, cdc.Batch{Position: pos}); err != nil {
		return Position{}, err
	}
	s.log.Info("snapshot read", "tables", len(tables), "took", time.Since(at).Round(time.Millisecond))
	return pos, nil
}

// snapshotStart opens the consistent read and returns its binlog position.
func (s *Source) snapshotStart(conn *client.Conn) (Position, error) {
	if _, err := conn.Execute("FLUSH TABLES WITH READ LOCK"); err != nil {
		return Position{}, fmt.Errorf("mysql: snapshot: lock tables: %w", err)
	}
	unlocked := false
	defer func() {
		if !unlocked {
			_, _ = conn.Execute("UNLOCK TABLES")
		}
	}()
	if _, err := conn.Execute("START TRANSACTION WITH CONSISTENT SNAPSHOT"); err != nil {
		return Position{}, fmt.Errorf("mysql: snapshot: start transaction: %w", err)
	}
	r, err := conn.Execute("SHOW MASTER STATUS")
	if err != nil {
		return Position{}, fmt.Errorf("mysql: snapshot: binlog position: %w", err)
	}
	if r.RowNumber() == 0 {
		return Position{}, fmt.Errorf("mysql: snapshot: SHOW MASTER STATUS is empty: binary logging is off")
	}
	file, _ := r.GetString(0, 0)
	off, _ := r.GetInt(0, 1)
	pos := Position{File: file, Pos: uint32(off)}
	if s.cfg.Flavor == gomysql.MariaDBFlavor {
		if g, err := conn.Execute("SELECT @@GLOBAL.gtid_binlog_pos"); err == nil && g.RowNumber() > 0 {
			pos.GTID, _ = g.GetString(0, 0)
		}
	} else if g, err := conn.Execute("SELECT @@GLOBAL.gtid_executed"); err == nil && g.RowNumber() > 0 {
		pos.GTID, _ = g.GetString(0, 0)
	}
	if _, err := conn.Execute("UNLOCK TABLES"); err != nil {
		return Position{}, fmt.Errorf("mysql: snapshot: unlock tables: %w", err)
	}
	unlocked = true
	return pos, nil
}

// snapshotTable streams one table's rows as SNAPSHOT events, handed on
// MaxTxEvents at a time without a position.
func (s *Source) snapshotTable(ctx context.Context, conn *client.Conn, ti *tableInfo, pos Position, at time.Time, emit cdc.EmitFunc) error {
	t := ti.table
	rows := s.metrics.SnapshotRows.WithLabelValues(t.QualifiedName())
	seq := pos.Sequence() - 1 // every streamed change orders after the snapshot
	var buf []cdc.Event
	var order int64
	var result gomysql.Result
	q := "SELECT * FROM `" + s.dbName + "`.`" + t.Name + "`"
	err := conn.ExecuteSelectStreaming(q, &result, func(row []gomysql.FieldValue) error {
		if len(row) != len(t.Columns) {
			return fmt.Errorf("mysql: snapshot %s: %d values for %d columns", t.QualifiedName(), len(row), len(t.Columns))
		}
		vals := make([]any, len(row))
		for i := range row {
			v := row[i].Value()
			if b, ok := v.([]byte); ok {
				v = string(b) // copies: the row buffer is reused
			}
			vals[i] = v
		}
		key, err := s.enc.Key(t, vals)
		if err != nil {
			return err
		}
		order++
		ch := &cdc.Change{
			Op: schema.OpSnapshot, Table: t, After: vals,
			Source: cdc.SourceInfo{Connector: "mysql", LSN: seq, TxOrder: order, Snapshot: true, Time: at,
				File: pos.File, Pos: int64(pos.Pos), GTID: pos.GTID},
			Sequence: seq,
			ID:       fmt.Sprintf("mysql/%s/snapshot/%s/%d/%s/%s", s.cfg.Name, pos.File, pos.Pos, t.Name, key),
		}
		ev, err := s.enc.Encode(ctx, ch)
		if err != nil {
			return err
		}
		buf = append(buf, ev)
		rows.Inc()
		if len(buf) >= s.cfg.MaxTxEvents {
			b := cdc.Batch{Events: buf}
			buf = nil
			return emit(ctx, b)
		}
		return nil
	}, nil)
	if err != nil {
		return fmt.Errorf("mysql: snapshot %s: %w", t.QualifiedName(), err)
	}
	if len(buf) == 0 {
		return nil
	}
	return emit(ctx, cdc.Batch{Events: buf})
}
