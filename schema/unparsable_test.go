package schema_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/slatehq/slate/schema"
)

// A schema that another registry serves and the Avro parser refuses
// (without panicking) is poison: no retry will parse it, so the lookup
// fails wrapping ErrDecode and the record is dead-lettered. A registry
// that fails (503) is not: that lookup is retried. The server here is a
// stand-in for a foreign registry, since slate's own refuses to store such
// a schema in the first place.
func TestUnparsableServedSchemaIsPoison(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/schemas/ids/1":
			w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
			_, _ = w.Write([]byte(`{"schema":"{\"type\":\"record\",\"name\":\"A\",\"fields\":[{\"name\":\"f\",\"type\":\"nosuchtype\"}]}"}`))
		default:
			w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error_code":50301,"message":"busy"}`))
		}
	}))
	defer hs.Close()
	reg, err := schema.NewRegistryClient(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.SchemaByID(context.Background(), 1); !errors.Is(err, schema.ErrDecode) {
		t.Errorf("unparsable schema: err = %v, want it to wrap ErrDecode", err)
	}
	if _, err := reg.SchemaByID(context.Background(), 2); err == nil || errors.Is(err, schema.ErrDecode) {
		t.Errorf("registry unavailable: err = %v, want a temporary error (not ErrDecode)", err)
	}
	if _, err := reg.SchemaByID(context.Background(), 3); err == nil {
		t.Error("registry unavailable: no error")
	}
}
