package graphql

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// The GraphiQL page at / loads only files of the binary: GraphiQL, React
// and ReactDOM, fetched from the npm registry at pinned versions by
// assets/fetch.sh (MIT, see assets/LICENSE, served too), graphiql-init.js,
// which starts GraphiQL against the API, and page.css. They are served under graphiQLPrefix,
// relative to the page, so nothing it needs is on another host and it
// works without internet access and behind a path prefix.
//
//go:embed assets/*.js assets/*.css assets/LICENSE
var graphiQLFiles embed.FS

// graphiQLPrefix is the path, under the page's, of the assets.
const graphiQLPrefix = "graphiql/"

// graphiQLScripts and graphiQLStyles are the assets the page loads, in
// order.
var (
	graphiQLScripts = []string{"react.production.min.js", "react-dom.production.min.js", "graphiql.min.js", "graphiql-init.js"}
	graphiQLStyles  = []string{"graphiql.min.css", "page.css"}
)

// graphiQLQuery is the query the editor opens with.
const graphiQLQuery = `# The studio's materialized views. Ctrl-Enter runs the query;
# Ctrl-Space completes fields, the docs (top left) list the schema.
{
  titles(search: "*", first: 10) {
    edges {
      node { id name kind status releaseDate version freshness }
    }
    pageInfo { hasNextPage endCursor }
  }
}
`

// graphiQLCSP is the page's Content-Security-Policy: scripts, styles and
// connections only from the page's own origin (GraphiQL sets inline
// styles; its fonts and icons are data: URLs in its CSS).
const graphiQLCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"font-src 'self' data:; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var graphiQLPage = template.Must(template.New("graphiql").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>slate GraphQL</title>
<link rel="icon" href="data:,">
{{- range .Styles}}
<link rel="stylesheet" href="{{.}}">
{{- end}}
</head>
<body>
<div id="graphiql" data-endpoint="{{.Endpoint}}" data-default-query="{{.Query}}">Loading GraphiQL…</div>
{{- range .Scripts}}
<script src="{{.}}"></script>
{{- end}}
</body>
</html>
`))

// graphiQLAsset is one embedded file, with its content type, ETag and
// gzip encoding (made on first use).
type graphiQLAsset struct {
	body, gz    []byte
	contentType string
	etag        string
	once        sync.Once
}

func (a *graphiQLAsset) gzipped() []byte {
	a.once.Do(func() {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(a.body)
		_ = zw.Close()
		a.gz = buf.Bytes()
	})
	return a.gz
}

// graphiQL serves the GraphiQL page of endpoint (a URL relative to the
// page, or absolute) at the pattern's root and its assets under
// graphiQLPrefix.
type graphiQL struct {
	page   []byte
	assets map[string]*graphiQLAsset
}

func newGraphiQL(endpoint string) (*graphiQL, error) {
	g := &graphiQL{assets: map[string]*graphiQLAsset{}}
	entries, err := fs.ReadDir(graphiQLFiles, "assets")
	if err != nil {
		return nil, fmt.Errorf("graphql: graphiql assets: %w", err)
	}
	for _, e := range entries {
		body, err := fs.ReadFile(graphiQLFiles, "assets/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("graphql: graphiql assets: %w", err)
		}
		sum := sha256.Sum256(body)
		g.assets[e.Name()] = &graphiQLAsset{body: body, contentType: contentType(e.Name()),
			etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`}
	}
	for _, name := range append(append([]string{}, graphiQLScripts...), graphiQLStyles...) {
		if g.assets[name] == nil {
			return nil, fmt.Errorf("graphql: graphiql asset %s is not embedded (run graphql/assets/fetch.sh)", name)
		}
	}
	prefixed := func(names []string) []string {
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = graphiQLPrefix + n
		}
		return out
	}
	var page bytes.Buffer
	if err := graphiQLPage.Execute(&page, map[string]any{
		"Endpoint": endpoint, "Query": graphiQLQuery,
		"Styles": prefixed(graphiQLStyles), "Scripts": prefixed(graphiQLScripts),
	}); err != nil {
		return nil, fmt.Errorf("graphql: graphiql page: %w", err)
	}
	g.page = page.Bytes()
	return g, nil
}

// mountGraphiQL serves GraphiQL for endpoint on mux: the page at / and its
// assets under /graphiql/.
func mountGraphiQL(mux *http.ServeMux, endpoint string) {
	g, err := newGraphiQL(endpoint)
	if err != nil {
		// The files are compiled in: a missing one is a broken build.
		panic(err)
	}
	mux.HandleFunc("GET /{$}", g.servePage)
	mux.HandleFunc("GET /"+graphiQLPrefix+"{name}", g.serveAsset)
}

func (g *graphiQL) servePage(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", graphiQLCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(g.page)
}

// serveAsset serves one asset, gzipped when the client accepts it, with
// an ETag so a reload revalidates instead of downloading it again.
func (g *graphiQL) serveAsset(w http.ResponseWriter, r *http.Request) {
	a := g.assets[r.PathValue("name")]
	if a == nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	h.Set("Vary", "Accept-Encoding")
	body, etag := a.body, a.etag
	if acceptsGzip(r) {
		body, etag = a.gzipped(), strings.TrimSuffix(a.etag, `"`)+`-gz"`
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// contentType is the media type of an asset by its name.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	}
	return "text/plain; charset=utf-8" // LICENSE
}

// acceptsGzip reports whether r's Accept-Encoding lists gzip without
// q=0.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") {
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
