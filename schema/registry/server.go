package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"
)

// ContentType is the media type of every JSON response, as Confluent's
// registry sends it.
const ContentType = "application/vnd.schemaregistry.v1+json"

// Defaults of the schema limits; see [WithMaxSchemaBytes] and
// [WithMaxFields].
const (
	DefaultMaxSchemaBytes = 1 << 20
	DefaultMaxFields      = 10000
)

// maxSmallBodyBytes bounds the body of a request that carries no schema
// (PUT /config, PUT /mode).
const maxSmallBodyBytes = 64 << 10

// Server is a Confluent Schema Registry compatible HTTP handler for Avro
// schemas. Mount it at the root of an http.Server (or httptest.NewServer).
// It is safe for concurrent use: reads run in parallel, changes one at a
// time, each appended to the [Store] before it becomes visible.
type Server struct {
	log    *slog.Logger
	store  Store
	mux    *http.ServeMux
	limits limits
	// readOnly and users are set once, in New.
	readOnly bool
	users    *Users

	mu sync.RWMutex
	st *state

	metrics *metrics

	// beforeCompat, when set (by tests), runs just before register checks
	// a schema's compatibility, with the lock held only in the rounds that
	// check under it.
	beforeCompat func(subject string)
}

// Option configures a [Server].
type Option func(*options)

type options struct {
	log      *slog.Logger
	store    Store
	level    Level
	limits   limits
	readOnly bool
	users    *Users
	metrics  prometheus.Registerer
}

// WithLogger sets the logger; each request is logged at debug level and
// store failures at error level. The default discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithStore sets where records are kept; the default is a new
// [MemoryStore].
func WithStore(s Store) Option { return func(o *options) { o.store = s } }

// WithCompatibility sets the global compatibility level the registry starts
// with (and returns to on DELETE /config); the default is [DefaultLevel]. A
// level set with PUT /config and kept in the store takes precedence.
func WithCompatibility(l Level) Option { return func(o *options) { o.level = l } }

// WithMaxSchemaBytes bounds the size of a schema a client may register,
// look up or check, in bytes of its JSON text; the default is
// [DefaultMaxSchemaBytes] (1 MiB). A larger schema is refused with
// [CodeSchemaTooLarge] before it is parsed, and a request body larger than
// twice the limit (JSON escaping) plus 64 KiB is not read to its end.
// Schemas already in the store are replayed whatever their size.
func WithMaxSchemaBytes(n int) Option { return func(o *options) { o.limits.maxBytes = n } }

// WithMaxFields bounds the number of record fields a schema may declare,
// summed over all its records (nested ones too); the default is
// [DefaultMaxFields]. A schema with more is refused with
// [CodeSchemaTooLarge] before it is parsed.
func WithMaxFields(n int) Option { return func(o *options) { o.limits.maxFields = n } }

// New returns a server with the state replayed from the store. ctx bounds
// the replay. It fails when an option is invalid or the store cannot be
// read. A stored record that cannot be applied (a schema that does not
// parse, a value that does not fit its key) is skipped with a warning
// wrapping [ErrInvalidRecord], as Confluent's registry skips it: one bad
// record must not keep the registry from starting.
func New(ctx context.Context, opts ...Option) (*Server, error) {
	o := options{level: DefaultLevel, limits: limits{maxBytes: DefaultMaxSchemaBytes, maxFields: DefaultMaxFields}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.limits.maxBytes <= 0 {
		return nil, fmt.Errorf("registry: WithMaxSchemaBytes(%d): must be positive", o.limits.maxBytes)
	}
	if o.limits.maxFields <= 0 {
		return nil, fmt.Errorf("registry: WithMaxFields(%d): must be positive", o.limits.maxFields)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.store == nil {
		o.store = NewMemoryStore()
	}
	level, err := ParseLevel(string(o.level))
	if err != nil {
		return nil, fmt.Errorf("registry: WithCompatibility: %w", err)
	}
	recs, err := o.store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("registry: load store: %w", err)
	}
	st := newState(level)
	skipped := 0
	for i, r := range recs {
		if err := st.apply(r); err != nil {
			skipped++
			o.log.Warn("registry record skipped", "record", i, "keytype", string(r.Key.KeyType),
				"subject", truncate(r.Key.Subject, maxEchoBytes), "err", err)
		}
	}
	s := &Server{log: o.log, store: o.store, st: st, mux: http.NewServeMux(), limits: o.limits,
		readOnly: o.readOnly, users: o.users}
	s.metrics = newMetrics(o.metrics, s)
	s.routes()
	if f, ok := o.store.(Follower); ok {
		s.follow(f)
	}
	s.log.Debug("registry loaded", "records", len(recs), "skipped", skipped, "subjects", len(st.subjects), "schemas", len(st.schemas))
	return s, nil
}

func (s *Server) routes() {
	h := s.mux.HandleFunc
	h("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, struct{}{}) })
	h("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok")
	})

	s.mux.Handle("GET /metrics", s.metrics.handler)

	h("GET /subjects", s.handle(s.listSubjects))
	h("POST /subjects/{subject}", s.handle(s.lookup))
	h("DELETE /subjects/{subject}", s.handle(s.deleteSubject))
	h("GET /subjects/{subject}/versions", s.handle(s.listVersions))
	h("POST /subjects/{subject}/versions", s.handle(s.register))
	h("GET /subjects/{subject}/versions/{version}", s.handle(s.getVersion))
	h("DELETE /subjects/{subject}/versions/{version}", s.handle(s.deleteVersion))
	h("GET /subjects/{subject}/versions/{version}/schema", s.handle(s.getVersionSchema))
	h("GET /subjects/{subject}/versions/{version}/referencedby", s.handle(s.referencedBy))

	h("GET /schemas/types", s.handle(func(http.ResponseWriter, *http.Request) (any, error) {
		return []string{avroType}, nil
	}))
	h("GET /schemas/ids/{id}", s.handle(s.getSchemaByID))
	h("GET /schemas/ids/{id}/schema", s.handle(s.getRawSchemaByID))
	h("GET /schemas/ids/{id}/versions", s.handle(s.getIDVersions))
	h("GET /schemas/ids/{id}/subjects", s.handle(s.getIDSubjects))

	h("POST /compatibility/subjects/{subject}/versions", s.handle(s.checkCompatibility))
	h("POST /compatibility/subjects/{subject}/versions/{version}", s.handle(s.checkCompatibility))

	h("GET /mode", s.handle(s.getMode))
	h("GET /mode/{subject}", s.handle(s.getMode))
	h("PUT /mode", s.handle(s.putMode))
	h("PUT /mode/{subject}", s.handle(s.putMode))
	h("DELETE /mode/{subject}", s.handle(s.putMode))

	h("GET /config", s.handle(s.getGlobalConfig))
	h("PUT /config", s.handle(s.putConfig))
	h("DELETE /config", s.handle(s.deleteConfig))
	h("GET /config/{subject}", s.handle(s.getSubjectConfig))
	h("PUT /config/{subject}", s.handle(s.putConfig))
	h("DELETE /config/{subject}", s.handle(s.deleteConfig))
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusWriter{ResponseWriter: w}
	// Confluent's server accepts a trailing slash (GET /config/s/). An
	// escaped one (%2F) is part of the subject's name: DELETE /subjects/s%2F
	// names subject "s/", not s.
	if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") && (r.URL.RawPath == "" || strings.HasSuffix(r.URL.RawPath, "/")) {
		r.URL.Path = strings.TrimSuffix(p, "/")
		r.URL.RawPath = strings.TrimSuffix(r.URL.RawPath, "/")
	}
	if ae := s.guard(r); ae != nil {
		if ae.status == http.StatusUnauthorized {
			rec.Header().Set("WWW-Authenticate", `Basic realm="slate schema registry", charset="UTF-8"`)
		}
		writeError(rec, ae)
	} else if h, pattern := s.mux.Handler(r); pattern == "" {
		// No route: answer the mux's 404 or 405 in Confluent's error shape.
		probe := &statusProbe{header: make(http.Header)}
		h.ServeHTTP(probe, r)
		switch probe.code {
		case http.StatusNotFound, http.StatusMethodNotAllowed:
			if allow := probe.header.Get("Allow"); allow != "" {
				rec.Header().Set("Allow", allow)
			}
			writeError(rec, errHTTP(probe.code))
		default:
			h.ServeHTTP(rec, r)
		}
	} else {
		s.mux.ServeHTTP(rec, r)
	}
	_, route := s.mux.Handler(r)
	s.metrics.observe(r.Method, route, rec.status(), time.Since(start))
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "registry request",
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", rec.status()), slog.Duration("duration", time.Since(start)))
}

// handle adapts a handler that returns a JSON body or an error.
func (s *Server) handle(fn func(http.ResponseWriter, *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost || r.Method == http.MethodPut {
			if !acceptedContentType(r.Header.Get("Content-Type")) {
				writeError(w, errHTTP(http.StatusUnsupportedMediaType))
				return
			}
		}
		out, err := s.call(fn, w, r)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				s.log.LogAttrs(r.Context(), slog.LevelError, "registry store failed",
					slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
				ae = errStore()
			}
			writeError(w, ae)
			return
		}
		switch out := out.(type) {
		case nil:
			// The handler wrote the response itself.
		case rawSchema:
			w.Header().Set("Content-Type", ContentType)
			_, _ = io.WriteString(w, string(out))
		default:
			writeJSON(w, http.StatusOK, out)
		}
	}
}

// call runs fn and turns a panic into an error, so that a request the code
// did not foresee is answered 500 rather than dropping the connection.
func (s *Server) call(fn func(http.ResponseWriter, *http.Request) (any, error), w http.ResponseWriter, r *http.Request) (out any, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("panic: %v", p)
		}
	}()
	return fn(w, r)
}

// rawSchema is a handler result sent as is rather than as a JSON string.
type rawSchema string

func acceptedContentType(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch mt {
	case ContentType, "application/vnd.schemaregistry+json", "application/json", "application/octet-stream":
		return true
	}
	return false
}

// decodeBody reads a JSON request body of at most limit bytes into v; an
// empty body leaves v zero. A longer body answers tooLarge.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, limit int64, tooLarge *apiError) error {
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit)).Decode(v)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return tooLarge
	}
	return errBadRequest(truncate(err.Error(), maxEchoBytes))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, &apiError{http.StatusInternalServerError, http.StatusInternalServerError, err.Error()})
		return
	}
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, e *apiError) {
	b, _ := json.Marshal(struct {
		Code    int    `json:"error_code"`
		Message string `json:"message"`
	}{e.code, e.message})
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}

// statusWriter remembers the status a handler sent, for the request log.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// statusProbe records the status of a mux fallback handler and drops its
// plain-text body.
type statusProbe struct {
	header http.Header
	code   int
}

func (p *statusProbe) Header() http.Header { return p.header }

func (p *statusProbe) WriteHeader(code int) {
	if p.code == 0 {
		p.code = code
	}
}

func (p *statusProbe) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil
}

// contentCounts are the sizes the registry's gauges report.
type contentCounts struct{ schemas, subjects int }

func (s *Server) counts() contentCounts {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := contentCounts{schemas: len(s.st.schemas)}
	for _, sub := range s.st.subjects {
		for _, v := range sub.versions {
			if !v.deleted {
				c.subjects++
				break
			}
		}
	}
	return c
}
