package graphql_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/slatehq/slate/graphql"
)

// get fetches u with the given request headers and returns the response
// and its body as sent (not decompressed).
func get(t *testing.T, u string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	// A Transport of its own that does not add Accept-Encoding or
	// decompress, so the test sees what the server sent.
	res, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

// pageRefs is every URL the page names in an attribute (src, href,
// data-*, action...), by tag, in document order.
type pageRef struct{ tag, attr, val string }

func pageRefs(t *testing.T, page []byte) []pageRef {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var refs []pageRef
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				switch a.Key {
				case "src", "href", "action", "data-endpoint", "data-default-query", "srcset", "poster":
					refs = append(refs, pageRef{n.Data, a.Key, a.Val})
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return refs
}

// The GraphiQL page at / works without internet access: it names no
// other host, and every script and stylesheet it loads is served by the
// server itself, with its content type, and is the file in
// graphql/assets.
func TestGraphiQLPageIsSelfContained(t *testing.T) {
	hs, _ := newServer(t, graphql.Config{})
	res, page := get(t, hs.URL+"/", nil)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %s, Content-Type %q", res.Status, res.Header.Get("Content-Type"))
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("Content-Security-Policy %q: want scripts and connections from the page's origin only", csp)
	}
	for _, ext := range []string{"http://", "https://", "//cdn", "jsdelivr", "unpkg"} {
		if bytes.Contains(page, []byte(ext)) {
			t.Errorf("the page contains %q:\n%s", ext, page)
		}
	}

	base, _ := url.Parse(hs.URL + "/")
	kinds := map[string]string{"script": "text/javascript; charset=utf-8", "link": "text/css; charset=utf-8"}
	var scripts, styles []string
	for _, ref := range pageRefs(t, page) {
		if ref.attr == "data-default-query" {
			// The query the editor opens with runs as it is.
			if r := query(t, hs.URL, ref.val, nil); len(r.Errors) > 0 || r.Data["titles"] == nil {
				t.Errorf("the editor's default query %s: %+v", ref.val, r)
			}
			continue
		}
		u, err := base.Parse(ref.val)
		if err != nil {
			t.Fatalf("<%s %s=%q>: %v", ref.tag, ref.attr, ref.val, err)
		}
		if ref.tag == "link" && ref.val == "data:," {
			continue // the empty favicon, so the browser asks for none
		}
		if u.Host != base.Host {
			t.Errorf("<%s %s=%q> points at %s, not the server", ref.tag, ref.attr, ref.val, u.Host)
			continue
		}
		if ref.attr == "data-endpoint" {
			if u.Path != "/query" {
				t.Errorf("the page queries %s, want /query", u)
			}
			continue
		}
		want, ok := kinds[ref.tag]
		if !ok {
			t.Errorf("unexpected reference <%s %s=%q>", ref.tag, ref.attr, ref.val)
			continue
		}
		res, body := get(t, u.String(), nil)
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != want {
			t.Errorf("GET %s: %s, Content-Type %q, want 200 and %q", u.Path, res.Status, res.Header.Get("Content-Type"), want)
			continue
		}
		file, err := os.ReadFile("assets/" + path.Base(u.Path))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(body, file) {
			t.Errorf("GET %s: %d bytes, not the %d of assets/%s", u.Path, len(body), len(file), path.Base(u.Path))
		}
		if ref.tag == "script" {
			scripts = append(scripts, path.Base(u.Path))
		} else {
			styles = append(styles, path.Base(u.Path))
		}
	}
	wantScripts := "react.production.min.js react-dom.production.min.js graphiql.min.js graphiql-init.js"
	if got := strings.Join(scripts, " "); got != wantScripts {
		t.Errorf("scripts %s, want %s in that order", got, wantScripts)
	}
	if got := strings.Join(styles, " "); got != "graphiql.min.css page.css" {
		t.Errorf("stylesheets %s", got)
	}
	if res, lic := get(t, hs.URL+"/graphiql/LICENSE", nil); res.StatusCode != http.StatusOK || !bytes.Contains(lic, []byte("MIT License")) {
		t.Errorf("GET /graphiql/LICENSE: %s, %d bytes", res.Status, len(lic))
	}
}

// Assets are sent gzipped to clients that accept it, and a reload with
// the ETag is answered 304; a name that is not an asset is a 404.
func TestGraphiQLAssetsEncodingAndRevalidation(t *testing.T) {
	hs, _ := newServer(t, graphql.Config{})
	u := hs.URL + "/graphiql/graphiql.min.js"
	file, err := os.ReadFile("assets/graphiql.min.js")
	if err != nil {
		t.Fatal(err)
	}
	res, body := get(t, u, map[string]string{"Accept-Encoding": "br, gzip;q=0.8"})
	if res.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("Accept-Encoding gzip: Content-Encoding %q, Vary %q", res.Header.Get("Content-Encoding"), res.Header.Get("Vary"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(plain, file) {
		t.Fatalf("gzipped body: %v, %d bytes unzipped, want %d", err, len(plain), len(file))
	}
	if len(body) > len(file)/2 {
		t.Errorf("gzipped %d of %d bytes", len(body), len(file))
	}
	etag := res.Header.Get("ETag")
	if res, _ := get(t, u, map[string]string{"Accept-Encoding": "gzip", "If-None-Match": etag}); res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match %s: %s, want 304", etag, res.Status)
	}

	res, body = get(t, u, map[string]string{"Accept-Encoding": "gzip;q=0"})
	if res.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, file) {
		t.Errorf("gzip;q=0: Content-Encoding %q, %d bytes", res.Header.Get("Content-Encoding"), len(body))
	}
	if plainTag := res.Header.Get("ETag"); plainTag == etag || plainTag == "" {
		t.Errorf("ETag of the plain body %q, of the gzipped %q: want two different ones", plainTag, etag)
	}
	for _, p := range []string{"/graphiql/nope.js", "/graphiql/", "/graphiql/fetch.sh", "/nope"} {
		if res, _ := get(t, hs.URL+p, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", p, res.Status)
		}
	}
}
