package cdc_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/slatehq/slate/schema"
	slateregistry "github.com/slatehq/slate/schema/registry"
)

func newRegistry(t *testing.T) *schema.RegistryClient {
	t.Helper()
	srv, err := slateregistry.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	reg, err := schema.NewRegistryClient(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// unionRow unwraps a decoded ["null", Row] union value.
func unionRow(v any) map[string]any {
	m, _ := v.(map[string]any)
	for _, r := range m {
		row, _ := r.(map[string]any)
		return row
	}
	return nil
}
