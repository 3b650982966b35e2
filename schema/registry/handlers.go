package registry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// latestVersion stands for "latest" (or -1) in a version path segment.
const latestVersion = -1

type schemaRequest struct {
	Schema     string `json:"schema"`
	SchemaType string `json:"schemaType"`
	References []any  `json:"references"`
}

type idResponse struct {
	ID int `json:"id"`
}

type versionResponse struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
	ID      int    `json:"id"`
	Schema  string `json:"schema"`
}

type subjectVersion struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

type compatResponse struct {
	IsCompatible bool     `json:"is_compatible"`
	Messages     []string `json:"messages,omitempty"`
}

// configResponse carries the level under both names: Confluent's server
// answers GET /config with compatibilityLevel, while some clients
// (hamba/avro's among them) read compatibility, the name PUT uses.
type configResponse struct {
	CompatibilityLevel Level `json:"compatibilityLevel"`
	Compatibility      Level `json:"compatibility"`
}

type configRequest struct {
	Compatibility      string `json:"compatibility"`
	CompatibilityLevel string `json:"compatibilityLevel"`
}

type configUpdateResponse struct {
	Compatibility Level `json:"compatibility"`
}

// commit appends recs to the store and applies each one that was stored.
// The caller holds the write lock.
func (s *Server) commit(ctx context.Context, recs ...Record) error {
	for _, r := range recs {
		if err := s.store.Append(ctx, r); err != nil {
			return fmt.Errorf("append %s record for %q: %w", r.Key.KeyType, r.Key.Subject, err)
		}
		if err := s.st.apply(r); err != nil {
			return fmt.Errorf("apply %s record for %q: %w", r.Key.KeyType, r.Key.Subject, err)
		}
	}
	return nil
}

func boolQuery(r *http.Request, name string) bool {
	b, _ := strconv.ParseBool(r.URL.Query().Get(name))
	return b
}

func parseVersion(raw string) (int, error) {
	if raw == "latest" {
		return latestVersion, nil
	}
	n, err := strconv.ParseInt(raw, 10, 32)
	if err != nil || (n < 1 && n != latestVersion) {
		return 0, errInvalidVersion(raw)
	}
	return int(n), nil
}

// parseSchemaRequest reads and parses the schema of a request body.
func (s *Server) parseSchemaRequest(w http.ResponseWriter, r *http.Request) (parsedSchema, error) {
	var req schemaRequest
	limit := 2*int64(s.limits.maxBytes) + maxSmallBodyBytes
	tooLarge := errSchemaTooLarge(fmt.Sprintf("the request body is larger than %d bytes", limit))
	if err := decodeBody(w, r, &req, limit, tooLarge); err != nil {
		return parsedSchema{}, err
	}
	if req.SchemaType != "" && !strings.EqualFold(req.SchemaType, avroType) {
		return parsedSchema{}, errInvalidSchema(fmt.Sprintf("schema type %s is not supported; this registry serves AVRO only", req.SchemaType))
	}
	if len(req.References) > 0 {
		return parsedSchema{}, errInvalidSchema("schema references are not supported by this registry")
	}
	p, err := parseAvro(req.Schema, s.limits)
	if tl, ok := errors.AsType[*errTooLarge](err); ok {
		return parsedSchema{}, errSchemaTooLarge(tl.detail)
	}
	if err != nil {
		return parsedSchema{}, errInvalidSchema(err.Error())
	}
	return p, nil
}

// MaxSubjectBytes is the longest subject name the registry accepts: the
// value subject of the longest Kafka topic name (249 bytes) plus "-value".
const MaxSubjectBytes = 255

// checkSubject refuses a subject name that could not be served back as it
// was written: empty, longer than [MaxSubjectBytes], not UTF-8 (JSON would
// mangle it, and it could not be named in a request again), or holding
// control characters (NUL, CR, LF, DEL and the C1 range), as Confluent's
// registry refuses them.
func checkSubject(subject string) error {
	switch {
	case subject == "":
		return errInvalidSubject(subject, "it is empty")
	case len(subject) > MaxSubjectBytes:
		return errInvalidSubject(subject, fmt.Sprintf("it is %d bytes long, the limit is %d", len(subject), MaxSubjectBytes))
	case !utf8.ValidString(subject):
		return errInvalidSubject(subject, "it is not valid UTF-8")
	}
	for _, c := range subject {
		if unicode.IsControl(c) {
			return errInvalidSubject(subject, fmt.Sprintf("it holds the control character %U", c))
		}
	}
	return nil
}

// lookupVersion finds a version of subject among the visible ones. The
// caller holds a lock.
func (s *Server) lookupVersion(subject, raw string, deleted bool) (*version, error) {
	n, err := parseVersion(raw)
	if err != nil {
		return nil, err
	}
	vs := s.st.visible(subject, deleted)
	if len(vs) == 0 {
		return nil, errSubjectNotFound(subject)
	}
	if n == latestVersion {
		return vs[len(vs)-1], nil
	}
	for _, v := range vs {
		if v.number == n {
			return v, nil
		}
	}
	return nil, errVersionNotFound(n)
}

func numbers(vs []*version) []int {
	out := make([]int, len(vs))
	for i, v := range vs {
		out[i] = v.number
	}
	return out
}

func (s *Server) listSubjects(_ http.ResponseWriter, r *http.Request) (any, error) {
	deleted := boolQuery(r, "deleted")
	prefix := r.URL.Query().Get("subjectPrefix")
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []string{}
	for name := range s.st.subjects {
		if strings.HasPrefix(name, prefix) && len(s.st.visible(name, deleted)) > 0 {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (s *Server) listVersions(_ http.ResponseWriter, r *http.Request) (any, error) {
	subject := r.PathValue("subject")
	s.mu.RLock()
	defer s.mu.RUnlock()
	vs := s.st.visible(subject, boolQuery(r, "deleted"))
	if len(vs) == 0 {
		return nil, errSubjectNotFound(subject)
	}
	return numbers(vs), nil
}

func (s *Server) getVersion(_ http.ResponseWriter, r *http.Request) (any, error) {
	subject := r.PathValue("subject")
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, err := s.lookupVersion(subject, r.PathValue("version"), boolQuery(r, "deleted"))
	if err != nil {
		return nil, err
	}
	return versionResponse{Subject: subject, Version: v.number, ID: v.schema.id, Schema: v.schema.text}, nil
}

func (s *Server) getVersionSchema(_ http.ResponseWriter, r *http.Request) (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, err := s.lookupVersion(r.PathValue("subject"), r.PathValue("version"), boolQuery(r, "deleted"))
	if err != nil {
		return nil, err
	}
	return rawSchema(v.schema.text), nil
}

// referencedBy answers the ids of schemas that reference a version: none,
// since the registry does not accept references.
func (s *Server) referencedBy(_ http.ResponseWriter, r *http.Request) (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, err := s.lookupVersion(r.PathValue("subject"), r.PathValue("version"), true); err != nil {
		return nil, err
	}
	return []int{}, nil
}

// optimisticRounds is how many times register checks compatibility
// without holding the write lock before it gives up on optimism and checks
// under the lock, for a subject that changes under it every time.
const optimisticRounds = 3

// register adds a schema to a subject, or finds it there. The compatibility
// check, whose cost grows with the size of the schemas, runs without the
// write lock, against a copy of the subject's live versions; the change is
// committed only if the subject still has those versions and level, and
// checked again otherwise.
func (s *Server) register(w http.ResponseWriter, r *http.Request) (any, error) {
	subject := r.PathValue("subject")
	if err := checkSubject(subject); err != nil {
		return nil, err
	}
	p, err := s.parseSchemaRequest(w, r)
	if err != nil {
		return nil, err
	}
	for round := 1; ; round++ {
		locked := round > optimisticRounds
		if locked {
			s.mu.Lock()
		} else {
			s.mu.RLock()
		}
		id, found := s.registeredID(subject, p.key)
		level, against := s.st.targets(subject)
		if !locked {
			s.mu.RUnlock()
		}
		if found {
			if locked {
				s.mu.Unlock()
			}
			return idResponse{ID: id}, nil
		}
		if s.beforeCompat != nil {
			s.beforeCompat(subject)
		}
		if inc := checkCompat(level, p.parsed, against); inc != nil {
			if locked {
				s.mu.Unlock()
			}
			return nil, errIncompatible(subject, strings.Join(inc.messages(level), ", "))
		}
		if !locked {
			s.mu.Lock()
			if now, vs := s.st.targets(subject); now != level || !sameTargets(vs, against) {
				s.mu.Unlock()
				continue
			}
		}
		resp, err := s.commitVersion(r.Context(), subject, p)
		s.mu.Unlock()
		return resp, err
	}
}

// registeredID returns the id of the live version of subject whose schema
// has identity key. The caller holds a lock.
func (s *Server) registeredID(subject, key string) (int, bool) {
	for _, v := range s.st.visible(subject, false) {
		if v.schema.key == key {
			return v.schema.id, true
		}
	}
	return 0, false
}

func sameTargets(a, b []target) bool {
	return slices.EqualFunc(a, b, func(x, y target) bool { return x.number == y.number && x.id == y.id })
}

// commitVersion stores p as the next version of subject. The caller holds
// the write lock and has checked compatibility.
func (s *Server) commitVersion(ctx context.Context, subject string, p parsedSchema) (any, error) {
	id, text, known := s.st.idFor(p.key)
	if !known || text == "" {
		text = p.text
	}
	if id > math.MaxInt32 {
		return nil, fmt.Errorf("schema ids exhausted")
	}
	next := 1
	if sub := s.st.subjects[subject]; sub != nil && len(sub.versions) > 0 {
		next = sub.versions[len(sub.versions)-1].number + 1
	}
	rec := schemaRecord(Value{Subject: subject, Version: next, ID: id, Schema: text})
	if err := s.commit(ctx, rec); err != nil {
		return nil, err
	}
	return idResponse{ID: id}, nil
}

// lookup finds which version of a subject holds a schema.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (any, error) {
	subject := r.PathValue("subject")
	deleted := boolQuery(r, "deleted")
	p, err := s.parseSchemaRequest(w, r)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	vs := s.st.visible(subject, deleted)
	if len(vs) == 0 {
		return nil, errSubjectNotFound(subject)
	}
	for i := len(vs) - 1; i >= 0; i-- {
		if v := vs[i]; v.schema.key == p.key {
			return versionResponse{Subject: subject, Version: v.number, ID: v.schema.id, Schema: v.schema.text}, nil
		}
	}
	return nil, errSchemaNotFound()
}

// deleteSubject soft-deletes every live version of a subject, or with
// ?permanent=true removes a soft-deleted subject for good.
func (s *Server) deleteSubject(_ http.ResponseWriter, r *http.Request) (any, error) {
	subject := r.PathValue("subject")
	permanent := boolQuery(r, "permanent")
	s.mu.Lock()
	defer s.mu.Unlock()
	all := s.st.visible(subject, true)
	if len(all) == 0 {
		return nil, errSubjectNotFound(subject)
	}
	live := s.st.visible(subject, false)
	var recs []Record
	var deleted []int
	if !permanent {
		if len(live) == 0 {
			return nil, errSubjectSoftDeleted(subject)
		}
		deleted = numbers(live)
		recs = append(recs, Record{
			Key:   Key{KeyType: KeyDeleteSubject, Subject: subject},
			Value: &Value{Subject: subject, Version: live[len(live)-1].number},
		})
		// As Confluent does, a soft-deleted subject loses its own level.
		if _, ok := s.st.configs[subject]; ok {
			recs = append(recs, tombstone(Key{KeyType: KeyConfig, Subject: subject}))
		}
	} else {
		if len(live) > 0 {
			return nil, errSubjectNotSoftDeleted(subject)
		}
		deleted = numbers(all)
		for _, n := range deleted {
			recs = append(recs, tombstone(Key{KeyType: KeySchema, Subject: subject, Version: n, Magic: 1}))
		}
	}
	if err := s.commit(r.Context(), recs...); err != nil {
		return nil, err
	}
	return deleted, nil
}

// deleteVersion soft-deletes one version, or with ?permanent=true removes a
// soft-deleted one for good. "latest" is the latest live version, or with
// permanent the latest of all.
func (s *Server) deleteVersion(_ http.ResponseWriter, r *http.Request) (any, error) {
	subject := r.PathValue("subject")
	permanent := boolQuery(r, "permanent")
	n, err := parseVersion(r.PathValue("version"))
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.st.subjects[subject]
	if sub == nil {
		return nil, errSubjectNotFound(subject)
	}
	var v *version
	if n == latestVersion {
		vs := s.st.visible(subject, permanent)
		if len(vs) == 0 {
			return nil, errSubjectNotFound(subject)
		}
		v = vs[len(vs)-1]
	} else if v = sub.find(n); v == nil {
		return nil, errVersionNotFound(n)
	}
	var rec Record
	if !permanent {
		if v.deleted {
			return nil, errVersionSoftDeleted(subject, v.number)
		}
		rec = schemaRecord(Value{Subject: subject, Version: v.number, ID: v.schema.id, Schema: v.schema.text, Deleted: true})
	} else {
		if !v.deleted {
			return nil, errVersionNotSoftDeleted(subject, v.number)
		}
		rec = tombstone(Key{KeyType: KeySchema, Subject: subject, Version: v.number, Magic: 1})
	}
	number := v.number
	if err := s.commit(r.Context(), rec); err != nil {
		return nil, err
	}
	return number, nil
}

// checkCompatibility tests a schema against one version of a subject, or
// without a version against the versions the subject's level names.
func (s *Server) checkCompatibility(w http.ResponseWriter, r *http.Request) (any, error) {
	subject := r.PathValue("subject")
	raw := r.PathValue("version")
	verbose := boolQuery(r, "verbose")
	n := 0
	if raw != "" {
		var err error
		if n, err = parseVersion(raw); err != nil {
			return nil, err
		}
	}
	p, err := s.parseSchemaRequest(w, r)
	if err != nil {
		return nil, err
	}
	level, against, err := s.compatTargets(subject, raw, n)
	if err != nil {
		return nil, err
	}
	// The check runs without the lock: it reads only the copies taken.
	inc := checkCompat(level, p.parsed, against)
	resp := compatResponse{IsCompatible: inc == nil}
	if verbose && inc != nil {
		resp.Messages = inc.messages(level)
	}
	return resp, nil
}

// compatTargets returns the level and the versions a compatibility check
// of subject looks at: every live one, or with a version in the path that
// one.
func (s *Server) compatTargets(subject, raw string, n int) (Level, []target, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	level, live := s.st.targets(subject)
	if raw == "" {
		return level, live, nil
	}
	switch {
	case len(live) == 0 && n == latestVersion:
		// Nothing registered yet: anything valid is compatible.
		return level, nil, nil
	case len(live) == 0:
		return "", nil, errSubjectNotFound(subject)
	}
	v, err := s.lookupVersion(subject, raw, false)
	if err != nil {
		return "", nil, err
	}
	for _, t := range live {
		if t.number == v.number {
			return level, []target{t}, nil
		}
	}
	return "", nil, errVersionNotFound(v.number)
}

func (s *Server) getGlobalConfig(_ http.ResponseWriter, _ *http.Request) (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return configResponse{s.st.global, s.st.global}, nil
}

func (s *Server) getSubjectConfig(_ http.ResponseWriter, r *http.Request) (any, error) {
	subject := r.PathValue("subject")
	s.mu.RLock()
	defer s.mu.RUnlock()
	l, ok := s.st.configs[subject]
	if !ok {
		if !boolQuery(r, "defaultToGlobal") {
			return nil, errSubjectCompatibilityNotConfigured(subject)
		}
		l = s.st.global
	}
	return configResponse{l, l}, nil
}

// putConfig sets the global level (PUT /config) or a subject's. The subject
// need not exist yet.
func (s *Server) putConfig(w http.ResponseWriter, r *http.Request) (any, error) {
	subject := r.PathValue("subject")
	if subject != "" {
		if err := checkSubject(subject); err != nil {
			return nil, err
		}
	}
	var req configRequest
	if err := decodeBody(w, r, &req, maxSmallBodyBytes, errBodyTooLarge(maxSmallBodyBytes)); err != nil {
		return nil, err
	}
	name := req.Compatibility
	if name == "" {
		name = req.CompatibilityLevel
	}
	l, err := ParseLevel(name)
	if err != nil {
		return nil, errInvalidLevel()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.commit(r.Context(), configRecord(subject, l)); err != nil {
		return nil, err
	}
	return configUpdateResponse{l}, nil
}

// deleteConfig returns the global level to the registry's default, or
// removes a subject's own level, and answers the level it replaced.
func (s *Server) deleteConfig(_ http.ResponseWriter, r *http.Request) (any, error) {
	subject := r.PathValue("subject")
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.st.global
	if subject != "" {
		l, ok := s.st.configs[subject]
		if !ok {
			return nil, errSubjectNotFound(subject)
		}
		old = l
	}
	if err := s.commit(r.Context(), tombstone(Key{KeyType: KeyConfig, Subject: subject})); err != nil {
		return nil, err
	}
	return configResponse{old, old}, nil
}

// schemaByID returns the schema with id if any version, live or
// soft-deleted, still uses it. The caller holds a lock.
func (s *Server) schemaByID(raw string) (*storedSchema, error) {
	id, err := strconv.Atoi(raw)
	if err != nil {
		return nil, errHTTP(http.StatusNotFound)
	}
	st := s.st.schemas[id]
	if st == nil || st.refs == 0 {
		return nil, errSchemaIDNotFound(id)
	}
	return st, nil
}

func (s *Server) getSchemaByID(_ http.ResponseWriter, r *http.Request) (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, err := s.schemaByID(r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return struct {
		Schema string `json:"schema"`
	}{st.text}, nil
}

func (s *Server) getRawSchemaByID(_ http.ResponseWriter, r *http.Request) (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, err := s.schemaByID(r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return rawSchema(st.text), nil
}

func (s *Server) getIDVersions(_ http.ResponseWriter, r *http.Request) (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, err := s.schemaByID(r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	out := []subjectVersion{}
	for _, v := range s.st.versionsOf(st.id, boolQuery(r, "deleted")) {
		out = append(out, subjectVersion{Subject: v.subject, Version: v.number})
	}
	return out, nil
}

func (s *Server) getIDSubjects(_ http.ResponseWriter, r *http.Request) (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, err := s.schemaByID(r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, v := range s.st.versionsOf(st.id, boolQuery(r, "deleted")) {
		if len(out) == 0 || out[len(out)-1] != v.subject {
			out = append(out, v.subject)
		}
	}
	return out, nil
}
