package registry

import (
	"fmt"
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
	schemas      map[int]*storedSchema    // every id ever seen; never removed, so ids stay stable
	byKey        map[string]*storedSchema // identity -> first schema with it
	maxID        int
	defaultLevel Level
	global       Level
	configs      map[string]Level
}

func newState(defaultLevel Level) *state {
	return &state{
		subjects:     make(map[string]*subjectState),
		schemas:      make(map[int]*storedSchema),
		byKey:        make(map[string]*storedSchema),
		defaultLevel: defaultLevel,
		global:       defaultLevel,
		configs:      make(map[string]Level),
	}
}

// apply changes the state as r says. Unknown key types are ignored, so a
// log written by a newer or bigger registry still replays.
func (st *state) apply(r Record) error {
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
	st.maxID = max(st.maxID, v.ID)
	if v.SchemaType != "" && v.SchemaType != avroType {
		// Another registry's JSON Schema or Protobuf version: its id is
		// taken, the version itself is not served.
		return nil
	}
	s := st.schemas[v.ID]
	if s == nil {
		p, err := parseAvro(v.Schema)
		if err != nil {
			return fmt.Errorf("%w: schema id %d: %v", ErrInvalidRecord, v.ID, err)
		}
		s = &storedSchema{id: v.ID, parsedSchema: p}
		st.schemas[v.ID] = s
		if st.byKey[p.key] == nil {
			st.byKey[p.key] = s
		}
	}
	sub := st.subjects[k.Subject]
	if sub == nil {
		sub = &subjectState{}
		st.subjects[k.Subject] = sub
	}
	s.refs++
	if old := sub.find(k.Version); old != nil {
		old.schema.refs--
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
			v.schema.refs--
			sub.versions = slices.Delete(sub.versions, i, i+1)
			break
		}
	}
	if len(sub.versions) == 0 {
		delete(st.subjects, subject)
	}
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
