package registry

import (
	"crypto/sha256"
	"fmt"
	"math"
	"slices"
	"sort"
)

// storedSchema is one schema with its global id.
type storedSchema struct {
	id int
	parsedSchema
	refs int // versions, live or soft-deleted, that use it
}

// version is one version of a subject.
type version struct {
	subject string
	number  int
	schema  *storedSchema
	deleted bool
}

// subjectState holds a subject's versions, ascending by number.
type subjectState struct {
	versions []*version
}

// state is the registry's index, rebuilt by replaying records. It is not
// safe for concurrent use: the server guards it.
type state struct {
	subjects     map[string]*subjectState
	schemas      map[int]*storedSchema     // schemas some version, live or soft-deleted, uses
	byKey        map[string]*storedSchema  // identity -> first schema with it
	forgotten    map[[sha256.Size]byte]int // identity hash -> id, of schemas no version uses any more
	maxID        int                       // the highest id ever seen: new ids start above it
	defaultLevel Level
	global       Level
	configs      map[string]Level
}

func newState(defaultLevel Level) *state {
	return &state{
		subjects:     make(map[string]*subjectState),
		schemas:      make(map[int]*storedSchema),
		byKey:        make(map[string]*storedSchema),
		forgotten:    make(map[[sha256.Size]byte]int),
		defaultLevel: defaultLevel,
		global:       defaultLevel,
		configs:      make(map[string]Level),
	}
}

// apply changes the state as r says. Unknown key types are ignored, so a
// log written by a newer or bigger registry still replays. A record that
// cannot be applied returns an error wrapping [ErrInvalidRecord] and leaves
// the state as it was, but for its schema id, which stays taken.
func (st *state) apply(r Record) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %s record for %q: %v", ErrInvalidRecord, r.Key.KeyType, truncate(r.Key.Subject, maxEchoBytes), p)
		}
	}()
	switch r.Key.KeyType {
	case KeySchema:
		if r.Value == nil {
			st.removeVersion(r.Key.Subject, r.Key.Version)
			return nil
		}
		return st.putVersion(r.Key, *r.Value)
	case KeyConfig:
		if r.Value == nil {
			if r.Key.Subject == "" {
				st.global = st.defaultLevel
			} else {
				delete(st.configs, r.Key.Subject)
			}
			return nil
		}
		l, err := ParseLevel(string(r.Value.CompatibilityLevel))
		if err != nil {
			return fmt.Errorf("%w: config of %q: %w", ErrInvalidRecord, r.Key.Subject, err)
		}
		if r.Key.Subject == "" {
			st.global = l
		} else {
			st.configs[r.Key.Subject] = l
		}
	case KeyDeleteSubject:
		if r.Value == nil {
			return nil
		}
		if sub := st.subjects[r.Key.Subject]; sub != nil {
			for _, v := range sub.versions {
				if v.number <= r.Value.Version {
					v.deleted = true
				}
			}
		}
	}
	return nil
}

func (st *state) putVersion(k Key, v Value) error {
	if k.Subject == "" || k.Version < 1 || v.ID < 1 {
		return fmt.Errorf("%w: schema record %+v needs a subject, a version and an id", ErrInvalidRecord, k)
	}
	if (v.Subject != "" && v.Subject != k.Subject) || (v.Version != 0 && v.Version != k.Version) {
		return fmt.Errorf("%w: schema record key %s/%d holds %s/%d", ErrInvalidRecord, k.Subject, k.Version, v.Subject, v.Version)
	}
	if v.ID <= math.MaxInt32 {
		st.maxID = max(st.maxID, v.ID)
	}
	if v.SchemaType != "" && v.SchemaType != avroType {
		// Another registry's JSON Schema or Protobuf version: its id is
		// taken, the version itself is not served.
		return nil
	}
	if v.Schema == "" && v.Deleted {
		// A permanently deleted version whose text a compacting store let
		// go (see [MemoryStore]): its id is taken, nothing is served.
		return nil
	}
	s := st.schemas[v.ID]
	if s == nil {
		p, err := parseAvro(v.Schema, limits{})
		if err != nil {
			return fmt.Errorf("%w: schema id %d: %v", ErrInvalidRecord, v.ID, err)
		}
		s = &storedSchema{id: v.ID, parsedSchema: p}
		st.schemas[v.ID] = s
		if st.byKey[p.key] == nil {
			st.byKey[p.key] = s
		}
		delete(st.forgotten, sha256.Sum256([]byte(p.key)))
	}
	sub := st.subjects[k.Subject]
	if sub == nil {
		sub = &subjectState{}
		st.subjects[k.Subject] = sub
	}
	s.refs++
	if old := sub.find(k.Version); old != nil {
		st.unref(old.schema)
		old.schema, old.deleted = s, v.Deleted
		return nil
	}
	i := sort.Search(len(sub.versions), func(i int) bool { return sub.versions[i].number > k.Version })
	sub.versions = slices.Insert(sub.versions, i, &version{subject: k.Subject, number: k.Version, schema: s, deleted: v.Deleted})
	return nil
}

func (st *state) removeVersion(subject string, number int) {
	sub := st.subjects[subject]
	if sub == nil {
		return
	}
	for i, v := range sub.versions {
		if v.number == number {
			st.unref(v.schema)
			sub.versions = slices.Delete(sub.versions, i, i+1)
			break
		}
	}
	if len(sub.versions) == 0 {
		delete(st.subjects, subject)
	}
}

// unref drops a version's hold on s. When no version uses s any more, its
// text and parsed form are let go (a hard-deleted schema costs memory no
// longer); only a hash of its identity is kept, so that registering the same
// schema again gets the same id back, and maxID keeps the number from ever
// going to another schema.
func (st *state) unref(s *storedSchema) {
	s.refs--
	if s.refs > 0 {
		return
	}
	delete(st.schemas, s.id)
	if st.byKey[s.key] == s {
		delete(st.byKey, s.key)
	}
	st.forgotten[sha256.Sum256([]byte(s.key))] = s.id
}

// idFor returns the id a new version with identity key gets: that of a
// schema with the same identity, live, soft-deleted or forgotten, or the
// next unused one.
func (st *state) idFor(key string) (id int, text string, known bool) {
	if s := st.byKey[key]; s != nil {
		return s.id, s.text, true
	}
	if id, ok := st.forgotten[sha256.Sum256([]byte(key))]; ok {
		return id, "", true
	}
	return st.maxID + 1, "", false
}

// targets returns what a compatibility check against subject needs: its
// level and a copy of its live versions, oldest first.
func (st *state) targets(subject string) (Level, []target) {
	live := st.visible(subject, false)
	out := make([]target, len(live))
	for i, v := range live {
		out[i] = target{number: v.number, id: v.schema.id, schema: v.schema.parsed, text: v.schema.text}
	}
	return st.level(subject), out
}

// level is the compatibility level that applies to subject.
func (st *state) level(subject string) Level {
	if l, ok := st.configs[subject]; ok {
		return l
	}
	return st.global
}

// visible returns the versions of subject a request sees: the live ones, or
// every one when deleted is set. It is empty for an unknown subject.
func (st *state) visible(subject string, deleted bool) []*version {
	sub := st.subjects[subject]
	if sub == nil {
		return nil
	}
	if deleted {
		return sub.versions
	}
	var out []*version
	for _, v := range sub.versions {
		if !v.deleted {
			out = append(out, v)
		}
	}
	return out
}

// versionsOf returns every version, in any subject, that uses schema id,
// ordered by subject and version.
func (st *state) versionsOf(id int, deleted bool) []*version {
	names := make([]string, 0, len(st.subjects))
	for name := range st.subjects {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []*version
	for _, name := range names {
		for _, v := range st.visible(name, deleted) {
			if v.schema.id == id {
				out = append(out, v)
			}
		}
	}
	return out
}

func (sub *subjectState) find(number int) *version {
	for _, v := range sub.versions {
		if v.number == number {
			return v
		}
	}
	return nil
}
