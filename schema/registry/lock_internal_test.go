package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fieldsSchema returns a record schema named name with n int fields, each
// with a default, so that adding one keeps it backward compatible.
func fieldsSchema(name string, n int) string {
	fs := make([]string, n)
	for i := range fs {
		fs[i] = fmt.Sprintf(`{"name":"f%d","type":"int","default":0}`, i)
	}
	return `{"type":"record","name":"` + name + `","fields":[` + strings.Join(fs, ",") + `]}`
}

// serve sends one request to srv and returns the recorded response.
func serve(srv *Server, method, path, schema string) *httptest.ResponseRecorder {
	var body string
	if schema != "" {
		b, _ := json.Marshal(map[string]string{"schema": schema})
		body = string(b)
	}
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", ContentType)
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, req)
	return w
}

// TestCompatCheckDoesNotBlockOtherSubjects registers a new version of a
// 9,000-field schema and holds its compatibility check: while it is held,
// a read of another subject and a registration under another subject both
// complete, because the check runs without the registry's lock. Then the
// held registration completes as well.
func TestCompatCheckDoesNotBlockOtherSubjects(t *testing.T) {
	srv, err := New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ subject, schema string }{
		{"big", fieldsSchema("Big", 9000)},
		{"other", fieldsSchema("Other", 1)},
	} {
		if w := serve(srv, http.MethodPost, "/subjects/"+r.subject+"/versions", r.schema); w.Code != http.StatusOK {
			t.Fatalf("register %s: %d %s", r.subject, w.Code, w.Body)
		}
	}

	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	srv.beforeCompat = func(subject string) {
		if subject == "big" {
			once.Do(func() { close(entered) })
			<-release
		}
	}
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock)

	registered := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		registered <- serve(srv, http.MethodPost, "/subjects/big/versions", fieldsSchema("Big", 9001))
	}()
	select {
	case <-entered:
	case w := <-registered:
		t.Fatalf("register of big answered %d %s without checking compatibility", w.Code, w.Body)
	}

	// While big's check is held: a read and a write of another subject.
	for _, r := range []struct{ method, path, schema string }{
		{http.MethodGet, "/subjects/other/versions/latest", ""},
		{http.MethodPost, "/subjects/other/versions", fieldsSchema("Other", 2)},
	} {
		done := make(chan *httptest.ResponseRecorder, 1)
		go func() { done <- serve(srv, r.method, r.path, r.schema) }()
		select {
		case w := <-done:
			if w.Code != http.StatusOK {
				t.Fatalf("%s %s while big's check runs: %d %s", r.method, r.path, w.Code, w.Body)
			}
		case <-time.After(20 * time.Second):
			// A deadlock guard, not a timing assertion: the request
			// waits on the lock the check holds and would wait forever.
			unblock()
			t.Fatalf("%s %s did not complete while the compatibility check of big was held: the check holds the lock", r.method, r.path)
		}
	}

	unblock()
	if w := <-registered; w.Code != http.StatusOK {
		t.Fatalf("register of big: %d %s", w.Code, w.Body)
	}
	w := serve(srv, http.MethodGet, "/subjects/big/versions", "")
	if got := strings.TrimSpace(w.Body.String()); got != "[1,2]" {
		t.Fatalf("versions of big = %s, want [1,2]", got)
	}
}
