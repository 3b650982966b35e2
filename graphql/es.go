package graphql

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/slatehq/slate/consumer/sink/es"
)

// MaxResultWindow is Elasticsearch's default index.max_result_window: the
// most hits one search returns. [Elasticsearch] asks no more, and fails a
// search for more that matches more.
const MaxResultWindow = 10000

// ESStore reads views from the indices the es sink writes: view "title"
// from index prefix+"title" (the sink's default prefix is "studio-"),
// each document's version its external version (the envelope's
// sequence).
type ESStore struct {
	client *elasticsearch.Client
	prefix string
}

// Elasticsearch returns the store of the indices prefix+view of client's
// cluster; prefix "" is the es sink's default, [es.DefaultIndexPrefix].
func Elasticsearch(client *elasticsearch.Client, prefix string) *ESStore {
	if prefix == "" {
		prefix = es.DefaultIndexPrefix
	}
	return &ESStore{client: client, prefix: prefix}
}

// Index is the index that holds a view.
func (s *ESStore) Index(view string) string { return s.prefix + strings.ToLower(view) }

// Ping reports whether the cluster answers (GET /): nil when it does.
func (s *ESStore) Ping(ctx context.Context) error {
	res, err := s.client.Info(s.client.Info.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("elasticsearch: %w", err)
	}
	defer drain(res.Body)
	if res.IsError() {
		return esError("info", res)
	}
	return nil
}

// esDoc is a document of a GET, an _mget or a hit of a search.
type esDoc struct {
	ID      string          `json:"_id"`
	Version int64           `json:"_version"`
	Found   bool            `json:"found"`
	Source  json.RawMessage `json:"_source"`
	Error   *esErr          `json:"error"`
}

type esErr struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

// Get implements [Store] with GET /{index}/_doc/{id}. A deleted document
// is not found, with version 0: Elasticsearch does not answer a delete's
// version.
func (s *ESStore) Get(ctx context.Context, view, id string) (map[string]any, int64, bool, error) {
	index := s.Index(view)
	res, err := s.client.Get(index, id, s.client.Get.WithContext(ctx))
	if err != nil {
		return nil, 0, false, fmt.Errorf("elasticsearch: get %s/%s: %w", index, id, err)
	}
	defer drain(res.Body)
	if res.StatusCode == 404 {
		return nil, 0, false, nil // no such document, or no such index
	}
	if res.IsError() {
		return nil, 0, false, esError("get "+index+"/"+id, res)
	}
	var d esDoc
	if err := json.NewDecoder(res.Body).Decode(&d); err != nil {
		return nil, 0, false, fmt.Errorf("elasticsearch: get %s/%s: %w", index, id, err)
	}
	if !d.Found {
		return nil, 0, false, nil
	}
	doc, err := decodeDoc(d.Source)
	if err != nil {
		return nil, 0, false, fmt.Errorf("elasticsearch: get %s/%s: %w", index, id, err)
	}
	return doc, d.Version, true, nil
}

// GetMany implements [Store] with one POST /{index}/_mget.
func (s *ESStore) GetMany(ctx context.Context, view string, ids []string) (map[string]Hit, error) {
	out := make(map[string]Hit, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	index := s.Index(view)
	body, _ := json.Marshal(map[string]any{"ids": ids})
	res, err := s.client.Mget(bytes.NewReader(body), s.client.Mget.WithIndex(index), s.client.Mget.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: mget %s (%d ids): %w", index, len(ids), err)
	}
	defer drain(res.Body)
	if res.StatusCode == 404 && errorType(res) == "index_not_found_exception" {
		return out, nil
	}
	if res.IsError() {
		return nil, esError(fmt.Sprintf("mget %s (%d ids)", index, len(ids)), res)
	}
	var r struct {
		Docs []esDoc `json:"docs"`
	}
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("elasticsearch: mget %s: %w", index, err)
	}
	for _, d := range r.Docs {
		if d.Error != nil {
			if d.Error.Type == "index_not_found_exception" {
				continue
			}
			return nil, fmt.Errorf("elasticsearch: mget %s: %s: %s: %s", index, d.ID, d.Error.Type, d.Error.Reason)
		}
		if !d.Found {
			continue
		}
		doc, err := decodeDoc(d.Source)
		if err != nil {
			return nil, fmt.Errorf("elasticsearch: mget %s: %s: %w", index, d.ID, err)
		}
		out[d.ID] = Hit{ID: d.ID, Version: d.Version, Doc: doc}
	}
	return out, nil
}

// Search implements [Store] with POST /{index}/_search of a query_string
// query. The query is in Bleve's syntax, which Elasticsearch's shares but
// for ranges of quoted values (`release_date:>="2027-01-01"`), rewritten
// to its form (release_date:>=2027\-01\-01). A search for more than
// [MaxResultWindow] hits asks that many, and fails if more match.
func (s *ESStore) Search(ctx context.Context, view, query string, size int) ([]Hit, error) {
	index := s.Index(view)
	if size <= 0 {
		size = DefaultPageSize
	}
	clamped := size > MaxResultWindow
	req := map[string]any{"size": min(size, MaxResultWindow), "version": true}
	if clamped {
		req["track_total_hits"] = true
	}
	if q := strings.TrimSpace(query); q == "" || q == "*" {
		req["query"] = map[string]any{"match_all": map[string]any{}}
	} else {
		req["query"] = map[string]any{"query_string": map[string]any{"query": esQueryString(q), "default_operator": "OR"}}
	}
	body, _ := json.Marshal(req)
	res, err := s.client.Search(s.client.Search.WithIndex(index), s.client.Search.WithBody(bytes.NewReader(body)),
		s.client.Search.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("elasticsearch: search %s %q: %w", index, query, err)
	}
	defer drain(res.Body)
	if res.StatusCode == 404 && errorType(res) == "index_not_found_exception" {
		return nil, nil
	}
	if res.IsError() {
		return nil, esError(fmt.Sprintf("search %s %q", index, query), res)
	}
	var r struct {
		Hits struct {
			Total struct {
				Value int `json:"value"`
			} `json:"total"`
			Hits []esDoc `json:"hits"`
		} `json:"hits"`
	}
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("elasticsearch: search %s: %w", index, err)
	}
	if clamped && r.Hits.Total.Value > MaxResultWindow {
		return nil, fmt.Errorf("elasticsearch: search %s %q: %d hits, more than the %d one search returns (index.max_result_window)",
			index, query, r.Hits.Total.Value, MaxResultWindow)
	}
	out := make([]Hit, 0, len(r.Hits.Hits))
	for _, h := range r.Hits.Hits {
		doc, err := decodeDoc(h.Source)
		if err != nil {
			return nil, fmt.Errorf("elasticsearch: search %s: %s: %w", index, h.ID, err)
		}
		out = append(out, Hit{ID: h.ID, Version: h.Version, Doc: doc})
	}
	return out, nil
}

// quotedRange is a range of a quoted value in Bleve's query string syntax.
var quotedRange = regexp.MustCompile(`([\pL\pN_.]+):(>=|<=|>|<)"((?:[^"\\]|\\.)*)"`)

// esReserved escapes the characters Elasticsearch's query string
// reserves.
var esReserved = strings.NewReplacer(`\`, `\\`, `+`, `\+`, `-`, `\-`, `=`, `\=`, `&`, `\&`, `|`, `\|`, `>`, `\>`, `<`, `\<`,
	`!`, `\!`, `(`, `\(`, `)`, `\)`, `{`, `\{`, `}`, `\}`, `[`, `\[`, `]`, `\]`, `^`, `\^`, `"`, `\"`, `~`, `\~`,
	`*`, `\*`, `?`, `\?`, `:`, `\:`, `/`, `\/`, ` `, `\ `)

// esQueryString rewrites Bleve's ranges of quoted values to
// Elasticsearch's form. A quoted value is a string, and the es sink's
// template maps a view's strings as text with a keyword subfield (dates
// too: it turns date detection off), so the range goes to the keyword,
// which compares ISO dates in order; the envelope's own fields are mapped
// by type and keep their name.
func esQueryString(q string) string {
	return quotedRange.ReplaceAllStringFunc(q, func(m string) string {
		p := quotedRange.FindStringSubmatch(m)
		field := p[1]
		if !strings.HasSuffix(field, ".keyword") && !strings.HasPrefix(field, es.EnvelopeField+".") {
			field += ".keyword"
		}
		return field + ":" + p[2] + esReserved.Replace(strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(p[3]))
	})
}

func errorType(res *esapi.Response) string {
	b, _ := io.ReadAll(res.Body)
	res.Body = io.NopCloser(bytes.NewReader(b))
	var e struct {
		Error esErr `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return e.Error.Type
}

// ErrElasticsearch is wrapped by the errors Elasticsearch answers.
var ErrElasticsearch = errors.New("elasticsearch")

func esError(what string, res *esapi.Response) error {
	var e struct {
		Error esErr `json:"error"`
	}
	_ = json.NewDecoder(res.Body).Decode(&e)
	return fmt.Errorf("%w: %s: %d %s: %s", ErrElasticsearch, what, res.StatusCode, e.Error.Type, e.Error.Reason)
}

func drain(r io.ReadCloser) {
	if r != nil {
		_, _ = io.Copy(io.Discard, r)
		_ = r.Close()
	}
}
