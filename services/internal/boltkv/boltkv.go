// Package boltkv keeps versioned records in a bbolt file: the embedded
// store of the studio's owner services. A [Table] holds records by id, each
// with its version, and the last version of every deleted id, so that
// versions stay monotonic per id across deletes and restarts.
//
// Versions are the table's to assign: 1 for a new id, the stored version
// plus one on every put and delete, and the delete's version plus one for
// an id put again after a delete. Every method is one bbolt transaction.
package boltkv

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/slatehq/slate/services/internal/service"
)

// OpenTimeout is how long [Open] waits for another process to release the
// file's lock.
const OpenTimeout = 2 * time.Second

// DB is an open bbolt file. It is safe for concurrent use.
type DB struct{ db *bbolt.DB }

// Open opens (creating it if needed) the bbolt file at path.
func Open(path string) (*DB, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: OpenTimeout})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &DB{db: db}, nil
}

// Close closes the file. Tables of d fail after it.
func (d *DB) Close() error { return d.db.Close() }

// Table returns the table name, creating its buckets if needed. Its
// errors name a record by its id.
func (d *DB) Table(name string) (*Table, error) { return d.NamedTable(name, "") }

// NamedTable is [DB.Table] for a table whose errors name a record by noun
// and id, such as "title t1".
func (d *DB) NamedTable(name, noun string) (*Table, error) {
	t := &Table{db: d.db, records: []byte(name), tombstones: []byte(name + ".deleted"), noun: noun}
	err := d.db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{t.records, t.tombstones} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create table %s: %w", name, err)
	}
	return t, nil
}

// Record is a stored value and its version.
type Record struct {
	ID      string
	Version int64
	Value   []byte
	// Deleted marks a tombstone ([Table.GetWithTombstones]): the id was
	// deleted at Version, and Value is empty.
	Deleted bool
}

// Table is one kind of record in a [DB].
type Table struct {
	db                  *bbolt.DB
	records, tombstones []byte
	noun                string
}

// name is how errors name the record with id.
func (t *Table) name(id string) string {
	if t.noun == "" {
		return id
	}
	return t.noun + " " + id
}

// Put stores the value encode returns for the new version under id and
// returns that version, and whether id had no record before (a create).
// With expectedVersion not 0, it puts only over a stored record at that
// version: [service.ErrNotFound] if there is none,
// [service.ErrVersionMismatch] if it is at another. An error of encode is
// returned as it is, and nothing is stored.
func (t *Table) Put(ctx context.Context, id string, expectedVersion int64, encode func(version int64) ([]byte, error)) (version int64, created bool, err error) {
	return t.write(ctx, putAny, id, expectedVersion, encode)
}

// Create is [Table.Put] for an id that has no record:
// [service.ErrExists] if it has one.
func (t *Table) Create(ctx context.Context, id string, encode func(version int64) ([]byte, error)) (int64, error) {
	v, _, err := t.write(ctx, putNew, id, 0, encode)
	return v, err
}

// Replace is [Table.Put] over a stored record, whatever expectedVersion:
// [service.ErrNotFound] if id has none.
func (t *Table) Replace(ctx context.Context, id string, expectedVersion int64, encode func(version int64) ([]byte, error)) (int64, error) {
	v, _, err := t.write(ctx, putOver, id, expectedVersion, encode)
	return v, err
}

// putMode says which records a write may create or replace.
type putMode int

const (
	putAny  putMode = iota // create, or replace at the expected version
	putNew                 // create only
	putOver                // replace only
)

func (t *Table) write(ctx context.Context, mode putMode, id string, expectedVersion int64, encode func(version int64) ([]byte, error)) (version int64, created bool, err error) {
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	err = t.db.Update(func(tx *bbolt.Tx) error {
		recs, tombs := tx.Bucket(t.records), tx.Bucket(t.tombstones)
		key := []byte(id)
		cur, ok := decode(recs.Get(key))
		created = !ok
		switch {
		case ok && mode == putNew:
			return fmt.Errorf("%w: %s", service.ErrExists, t.name(id))
		case ok:
			if expectedVersion != 0 && expectedVersion != cur {
				return fmt.Errorf("%w: %s is at version %d, expected %d", service.ErrVersionMismatch, t.name(id), cur, expectedVersion)
			}
			version = cur + 1
		case expectedVersion != 0, mode == putOver:
			return fmt.Errorf("%w: %s", service.ErrNotFound, t.name(id))
		default:
			deleted, _ := decode(tombs.Get(key))
			version = deleted + 1
		}
		value, err := encode(version)
		if err != nil {
			return err
		}
		if err := tombs.Delete(key); err != nil {
			return err
		}
		return recs.Put(key, encodeRecord(version, value))
	})
	if err != nil {
		return 0, false, err
	}
	return version, created, nil
}

// Delete removes the record with id and returns the version the delete was
// recorded at. [service.ErrNotFound] if there is none;
// [service.ErrVersionMismatch] if expectedVersion is not 0 and differs from
// the stored version.
func (t *Table) Delete(ctx context.Context, id string, expectedVersion int64) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var version int64
	err := t.db.Update(func(tx *bbolt.Tx) error {
		recs, tombs := tx.Bucket(t.records), tx.Bucket(t.tombstones)
		key := []byte(id)
		cur, ok := decode(recs.Get(key))
		switch {
		case !ok:
			return fmt.Errorf("%w: %s", service.ErrNotFound, t.name(id))
		case expectedVersion != 0 && expectedVersion != cur:
			return fmt.Errorf("%w: %s is at version %d, expected %d", service.ErrVersionMismatch, t.name(id), cur, expectedVersion)
		}
		version = cur + 1
		if err := recs.Delete(key); err != nil {
			return err
		}
		return tombs.Put(key, encodeRecord(version, nil))
	})
	if err != nil {
		return 0, err
	}
	return version, nil
}

// Get returns the records among ids, keyed by id; absent ids are missing
// from the map.
func (t *Table) Get(ctx context.Context, ids []string) (map[string]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	found := make(map[string]Record, len(ids))
	err := t.db.View(func(tx *bbolt.Tx) error {
		recs := tx.Bucket(t.records)
		for _, id := range ids {
			if r, ok := record(id, recs.Get([]byte(id))); ok {
				found[id] = r
			}
		}
		return nil
	})
	return found, err
}

// GetWithTombstones is [Table.Get] that also returns, for each deleted id
// among ids, its tombstone: a Record with Deleted set at the delete's
// version. It reads both in one transaction.
func (t *Table) GetWithTombstones(ctx context.Context, ids []string) (map[string]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	found := make(map[string]Record, len(ids))
	err := t.db.View(func(tx *bbolt.Tx) error {
		recs, tombs := tx.Bucket(t.records), tx.Bucket(t.tombstones)
		for _, id := range ids {
			if r, ok := record(id, recs.Get([]byte(id))); ok {
				found[id] = r
			} else if v, ok := decode(tombs.Get([]byte(id))); ok {
				found[id] = Record{ID: id, Version: v, Deleted: true}
			}
		}
		return nil
	})
	return found, err
}

// List returns every record, in id order.
func (t *Table) List(ctx context.Context) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Record
	err := t.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(t.records).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if r, ok := record(string(k), v); ok {
				out = append(out, r)
			}
		}
		return nil
	})
	return out, err
}

// A stored value is its version, 8 bytes big-endian, then the value.

func encodeRecord(version int64, value []byte) []byte {
	b := make([]byte, 8, 8+len(value))
	binary.BigEndian.PutUint64(b, uint64(version))
	return append(b, value...)
}

func decode(b []byte) (int64, bool) {
	if len(b) < 8 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b)), true
}

// record copies b: bbolt's bytes are valid only inside the transaction.
func record(id string, b []byte) (Record, bool) {
	v, ok := decode(b)
	if !ok {
		return Record{}, false
	}
	return Record{ID: id, Version: v, Value: append([]byte(nil), b[8:]...)}, true
}
