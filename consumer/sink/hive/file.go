package hive

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
)

// partition is one Hive partition: an hour of event time, in UTC.
type partition struct {
	dt   string // YYYY-MM-DD
	hour string // HH
}

func partitionOf(t time.Time) partition {
	t = t.UTC()
	return partition{dt: t.Format(time.DateOnly), hour: fmt.Sprintf("%02d", t.Hour())}
}

// path is the partition's directory relative to the table directory.
func (p partition) path() string {
	return filepath.Join("dt="+p.dt, "hour="+p.hour)
}

const (
	partPrefix = "part-"
	partSuffix = ".parquet"
	tmpPrefix  = ".tmp-"
)

// fileName returns the name of the file holding offsets first..last of a
// topic partition.
func fileName(topic string, partition int32, first, last int64) string {
	return fmt.Sprintf("%s%s-%d-%d-%d%s", partPrefix, fileTopic(topic), partition, first, last, partSuffix)
}

// fileTopic makes a topic safe as part of a file name. Legal Kafka topic
// names ([a-zA-Z0-9._-]) are kept as they are.
func fileTopic(topic string) string {
	if topic == "" {
		return "_"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '_'
	}, topic)
}

// partFile is a data file name taken apart.
type partFile struct {
	name        string
	topic       string // as in the name (see fileTopic)
	partition   int32
	first, last int64
}

// parseFileName reverses fileName. Topics may contain '-', so the numbers
// are taken from the right.
func parseFileName(name string) (partFile, bool) {
	if !strings.HasPrefix(name, partPrefix) || !strings.HasSuffix(name, partSuffix) {
		return partFile{}, false
	}
	fields := strings.Split(strings.TrimSuffix(strings.TrimPrefix(name, partPrefix), partSuffix), "-")
	n := len(fields)
	if n < 4 {
		return partFile{}, false
	}
	p, err1 := strconv.ParseInt(fields[n-3], 10, 32)
	first, err2 := strconv.ParseInt(fields[n-2], 10, 64)
	last, err3 := strconv.ParseInt(fields[n-1], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil || first > last {
		return partFile{}, false
	}
	return partFile{name: name, topic: strings.Join(fields[:n-3], "-"), partition: int32(p), first: first, last: last}, true
}

// writeGroup writes the rows of one topic partition in one partition
// directory as one file, merged with the existing files of that topic
// partition whose offset ranges overlap it.
func (s *Sink) writeGroup(g group, rows []row) error {
	rel := g.part.path()
	dir := filepath.Join(s.root, rel)
	if err := s.ensureDir(g.part); err != nil {
		return err
	}

	byOffset := make(map[int64]row, len(rows))
	first, last := rows[0].KafkaOffset, rows[0].KafkaOffset
	for _, r := range rows {
		byOffset[r.KafkaOffset] = r
		first, last = min(first, r.KafkaOffset), max(last, r.KafkaOffset)
	}

	// Merge overlapping files until none is left: each merge widens the
	// range, which may reach one more file.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("hive: list %s: %w", rel, err)
	}
	topic := fileTopic(g.topic)
	var old []partFile
	for _, e := range entries {
		if f, ok := parseFileName(e.Name()); ok && f.topic == topic && f.partition == g.kafkaPartition {
			old = append(old, f)
		}
	}
	var merged []string
	for changed := true; changed; {
		changed = false
		for i, f := range old {
			if f.name == "" || f.last < first || f.first > last {
				continue
			}
			prev, err := parquet.ReadFile[row](filepath.Join(dir, f.name))
			if err != nil {
				return fmt.Errorf("hive: read %s/%s to merge: %w", rel, f.name, err)
			}
			for _, r := range prev {
				if _, ok := byOffset[r.KafkaOffset]; !ok {
					byOffset[r.KafkaOffset] = r
				}
			}
			first, last = min(first, f.first), max(last, f.last)
			merged = append(merged, f.name)
			old[i].name = "" // taken
			changed = true
		}
	}

	out := make([]row, 0, len(byOffset))
	for _, r := range byOffset {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b row) int { return cmp.Compare(a.KafkaOffset, b.KafkaOffset) })
	first, last = out[0].KafkaOffset, out[len(out)-1].KafkaOffset
	name := fileName(g.topic, g.kafkaPartition, first, last)

	if err := writeFileAtomic(dir, name, func(f *os.File) error {
		w := parquet.NewGenericWriter[row](f, parquet.Compression(&parquet.Snappy))
		if _, err := w.Write(out); err != nil {
			return err
		}
		return w.Close()
	}); err != nil {
		return fmt.Errorf("hive: write %s/%s: %w", rel, name, err)
	}

	// The merged file is in place: the files it absorbed go. A crash here
	// leaves them beside it, and the next write that overlaps them merges
	// them away.
	removed := 0
	for _, m := range merged {
		if m == name {
			continue
		}
		if err := os.Remove(filepath.Join(dir, m)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("hive: remove merged file %s/%s: %w", rel, m, err)
		}
		removed++
	}
	if removed > 0 {
		if err := syncDir(dir); err != nil {
			return fmt.Errorf("hive: sync %s: %w", rel, err)
		}
	}
	s.log.Debug("hive: file committed", "file", filepath.ToSlash(filepath.Join(rel, name)),
		"rows", len(out), "new_rows", len(rows), "merged_files", len(merged))
	return nil
}

// ensureDir creates a partition directory and syncs its parents, once per
// directory per sink.
func (s *Sink) ensureDir(p partition) error {
	rel := p.path()
	if s.dirs[rel] {
		return nil
	}
	dir := filepath.Join(s.root, rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("hive: create %s: %w", rel, err)
	}
	// Make the new directory entries themselves durable.
	for _, d := range []string{filepath.Dir(dir), s.root} {
		if err := syncDir(d); err != nil {
			return fmt.Errorf("hive: sync %s: %w", d, err)
		}
	}
	s.dirs[rel] = true
	return nil
}

// writeFileAtomic writes dir/name through fill: into a hidden temporary file
// in dir, fsynced, then renamed over name, and dir synced. Readers see the
// old file or the new one, never part of one; on error nothing changes.
func writeFileAtomic(dir, name string, fill func(*os.File) error) (err error) {
	f, err := os.CreateTemp(dir, tmpPrefix+name+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = fill(f); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
