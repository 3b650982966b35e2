package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	avroregistry "github.com/hamba/avro/v2/registry"

	"github.com/slatehq/slate/schema/registry"
)

// testRegistry is a server behind httptest with a hamba/avro client.
type testRegistry struct {
	srv    *registry.Server
	url    string
	client *avroregistry.Client
}

func newTestRegistry(t *testing.T, opts ...registry.Option) *testRegistry {
	t.Helper()
	srv, err := registry.New(context.Background(), opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	c, err := avroregistry.NewClient(hs.URL)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return &testRegistry{srv: srv, url: hs.URL, client: c}
}

// do sends a raw request and returns the status and body.
func (tr *testRegistry) do(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, tr.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", registry.ContentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// doJSON is do that decodes a 2xx body into out.
func (tr *testRegistry) doJSON(t *testing.T, method, path string, body, out any) {
	t.Helper()
	status, b := tr.do(t, method, path, body)
	if status/100 != 2 {
		t.Fatalf("%s %s: status %d: %s", method, path, status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// wantCode fails unless err is a registry error with the given code.
func wantCode(t *testing.T, err error, code int) {
	t.Helper()
	var re avroregistry.Error
	if !errors.As(err, &re) {
		t.Fatalf("error %v (%T), want registry error %d", err, err, code)
	}
	if re.Code != code {
		t.Fatalf("error code %d (%q), want %d", re.Code, re.Message, code)
	}
}

// record returns an Avro record schema named R with the given field JSONs.
func record(fields ...string) string {
	return `{"type":"record","name":"R","namespace":"test","fields":[` + strings.Join(fields, ",") + `]}`
}
