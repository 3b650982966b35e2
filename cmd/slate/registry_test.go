package main

import (
	"context"
	"strings"
	"testing"
)

// TestRegistryRefusesOpenBind checks that `slate registry --host 0.0.0.0`
// without authentication fails at once, naming the flag that allows it.
func TestRegistryRefusesOpenBind(t *testing.T) {
	cmd := registryCmd()
	cmd.PersistentFlags().String("log-level", "error", "")
	cmd.SetArgs([]string{"--host", "0.0.0.0", "--port", "0"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // were it to start serving, it would stop at once
	err := cmd.ExecuteContext(ctx)
	if err == nil || !strings.Contains(err.Error(), "--insecure-bind") {
		t.Fatalf("err = %v, want a refusal naming --insecure-bind", err)
	}
}
