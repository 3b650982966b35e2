package cdc_test

import (
	"testing"

	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

func newRegistry(t *testing.T) *schema.RegistryClient {
	t.Helper()
	_, reg := testenv.Registry(t)
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
