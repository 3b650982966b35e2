package registry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHardDeleteDropsSchemaText checks that once every version using a
// schema is permanently deleted, the server's state no longer holds the
// schema's text (the store is a log and keeps it until compaction), while
// the id stays the schema's: a re-registration gets it back and a new
// schema never does.
func TestHardDeleteDropsSchemaText(t *testing.T) {
	store := NewMemoryStore()
	srv, err := New(context.Background(), WithStore(store))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	marker := strings.Repeat("q", 100_000)
	big := `{"type":"record","name":"Big","fields":[{"name":"a","type":"string","doc":"` + marker + `"}]}`
	do := func(method, path, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d", method, path, resp.StatusCode)
		}
	}
	body := `{"schema":` + jsonQuote(big) + `}`
	for range 3 {
		do(http.MethodPost, "/subjects/big/versions", body)
		do(http.MethodDelete, "/subjects/big", "")
		do(http.MethodDelete, "/subjects/big?permanent=true", "")
	}
	srv.mu.RLock()
	for id, s := range srv.st.schemas {
		if strings.Contains(s.text, marker) || strings.Contains(s.key, marker) {
			t.Errorf("schema %d still holds the hard-deleted text", id)
		}
	}
	for key := range srv.st.byKey {
		if strings.Contains(key, marker) {
			t.Error("the identity index still holds the hard-deleted text")
		}
	}
	maxID := srv.st.maxID
	srv.mu.RUnlock()
	if maxID != 1 {
		t.Fatalf("max id = %d, want 1: a re-registration of the same schema reuses its id", maxID)
	}
	do(http.MethodPost, "/subjects/other/versions", `{"schema":"\"int\""}`)
	if srv.st.maxID != 2 {
		t.Fatalf("new schema got id %d, want 2", srv.st.maxID)
	}
}

func jsonQuote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}
