package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/schema"
)

// snapshotFetch is how many rows one FETCH reads.
const snapshotFetch = 1000

type snapTable struct {
	rel   *relation
	ident string
}

// snapshot reads every published table in the exported snapshot of the
// new slot and emits its rows as SNAPSHOT events (outbox rows as the
// events they carry), then a batch at the consistent point that marks the
// snapshot done once acknowledged.
func (st *stream) snapshot(ctx context.Context, name string, cp pglogrepl.LSN) error {
	cfg := &st.s.cfg
	start := time.Now()
	tx, err := st.meta.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, fmt.Sprintf("SET TRANSACTION SNAPSHOT '%s'", name)); err != nil {
		return fmt.Errorf("set transaction snapshot: %w", err)
	}
	tables, err := st.snapshotTables(ctx, tx)
	if err != nil {
		return err
	}
	seq, err := snapshotSequence(cp)
	if err != nil {
		return err
	}
	st.s.metrics.SnapshotTablesLeft.Set(float64(len(tables)))
	st.s.log.Info("snapshot started", "slot", cfg.Slot, "tables", len(tables))
	total := 0
	for _, t := range tables {
		n, err := st.snapshotTable(ctx, tx, t, cp, seq, start)
		if err != nil {
			return fmt.Errorf("%s: %w", t.rel.table.QualifiedName(), err)
		}
		total += n
		st.s.metrics.SnapshotTablesLeft.Dec()
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	st.lastSeq = seq
	st.s.log.Info("snapshot read", "slot", cfg.Slot, "rows", total, "took", time.Since(start).String())
	return st.emitBatch(ctx, cdc.Batch{Position: Position{LSN: cp, snapshotDone: true}})
}

func (st *stream) snapshotTables(ctx context.Context, tx pgx.Tx) ([]snapTable, error) {
	cfg := &st.s.cfg
	rows, err := tx.Query(ctx, `SELECT c.oid, pt.schemaname, pt.tablename
		FROM pg_publication_tables pt
		JOIN pg_namespace n ON n.nspname = pt.schemaname
		JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
		WHERE pt.pubname = $1 ORDER BY 2, 3`, cfg.Publication)
	if err != nil {
		return nil, fmt.Errorf("publication tables: %w", err)
	}
	type ref struct {
		oid          uint32
		schema, name string
	}
	var refs []ref
	for rows.Next() {
		var r ref
		if err := rows.Scan(&r.oid, &r.schema, &r.name); err != nil {
			rows.Close()
			return nil, err
		}
		refs = append(refs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []snapTable
	for _, r := range refs {
		pk, err := st.primaryKeyTx(ctx, tx, r.oid)
		if err != nil {
			return nil, err
		}
		cols, err := tx.Query(ctx, `SELECT attname, atttypid FROM pg_attribute
			WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, r.oid)
		if err != nil {
			return nil, err
		}
		t := &cdc.Table{DB: st.db, Schema: r.schema, Name: r.name}
		rel := &relation{table: t}
		for cols.Next() {
			var name string
			var typ uint32
			if err := cols.Scan(&name, &typ); err != nil {
				cols.Close()
				return nil, err
			}
			t.Columns = append(t.Columns, cdc.Column{Name: name, Kind: kindOf(typ), Key: pk[name]})
			rel.typeOID = append(rel.typeOID, typ)
		}
		cols.Close()
		if err := cols.Err(); err != nil {
			return nil, err
		}
		if len(pk) == 0 {
			for i := range t.Columns {
				t.Columns[i].Key = true
			}
		}
		rel.outbox = st.s.outbox != nil && cdc.IsOutbox(t, cfg.Outbox)
		rel.skip = (st.stateEnabled() && t.Name == cfg.StateTable) ||
			(!rel.outbox && !cfg.Filter.IncludesTable(t.Schema, t.Name))
		if rel.skip {
			continue
		}
		out = append(out, snapTable{rel: rel, ident: pgx.Identifier{r.schema, r.name}.Sanitize()})
	}
	return out, nil
}

func (st *stream) primaryKeyTx(ctx context.Context, tx pgx.Tx, oid uint32) (map[string]bool, error) {
	rows, err := tx.Query(ctx, `SELECT a.attname FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
		WHERE i.indrelid = $1 AND i.indisprimary`, oid)
	if err != nil {
		return nil, fmt.Errorf("primary key of relation %d: %w", oid, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("primary key of relation %d: %w", oid, err)
	}
	pk := make(map[string]bool, len(names))
	for _, n := range names {
		pk[n] = true
	}
	return pk, nil
}

// snapshotTable reads one table through a cursor in text format, emitting
// one batch per fetch.
func (st *stream) snapshotTable(ctx context.Context, tx pgx.Tx, t snapTable, cp pglogrepl.LSN, seq int64, start time.Time) (int, error) {
	if _, err := tx.Exec(ctx, "DECLARE slate_snap NO SCROLL CURSOR FOR SELECT * FROM "+t.ident); err != nil {
		return 0, err
	}
	table := t.rel.table
	rows := st.s.metrics.SnapshotRows.WithLabelValues(table.QualifiedName())
	n := 0
	for {
		rr := tx.Conn().PgConn().ExecParams(ctx, fmt.Sprintf("FETCH %d FROM slate_snap", snapshotFetch), nil, nil, nil, nil)
		var evs []cdc.Event
		var ids []outboxRow
		for rr.NextRow() {
			raw := rr.Values()
			vals := make([]any, len(raw))
			for i, v := range raw {
				if v != nil {
					vals[i] = string(v)
				}
			}
			n++
			if t.rel.outbox {
				ev, id, err := st.s.outbox.Route(ctx, table, vals)
				if err != nil {
					rr.Close()
					return n, err
				}
				evs = append(evs, ev)
				ids = append(ids, newOutboxRow(table, id))
				continue
			}
			ch := &cdc.Change{
				Op: schema.OpSnapshot, Table: table, After: vals,
				Source: cdc.SourceInfo{Connector: "postgresql", LSN: int64(cp), Snapshot: true, Time: start},
				// Below every streamed change's (sequence.go).
				Sequence: seq,
			}
			key, err := st.s.enc.Key(table, vals)
			if err != nil {
				rr.Close()
				return n, err
			}
			ch.ID = fmt.Sprintf("pg/%s/snapshot/%s/%s/%s", st.db, cp, table.QualifiedName(), key)
			ev, err := st.s.enc.Encode(ctx, ch)
			if err != nil {
				rr.Close()
				return n, err
			}
			evs = append(evs, ev)
		}
		if _, err := rr.Close(); err != nil {
			return n, err
		}
		rows.Add(float64(len(evs)))
		if len(evs) == 0 {
			break
		}
		var pos cdc.Position
		if len(ids) > 0 && st.s.cfg.OutboxDelete {
			// Outbox rows read by the snapshot are deleted once this
			// chunk is acknowledged.
			pos = Position{LSN: cp, outboxIDs: ids}
		}
		if err := st.emitBatch(ctx, cdc.Batch{Events: evs, Position: pos}); err != nil {
			return n, err
		}
		if len(evs) < snapshotFetch {
			break
		}
	}
	_, err := tx.Exec(ctx, "CLOSE slate_snap")
	return n, err
}
