package main

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateRate(t *testing.T) {
	for _, r := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1e-300, 0, -1, 1e7, 5e-6} {
		if err := validateRate("rate", r); err == nil || !strings.Contains(err.Error(), "--rate") {
			t.Errorf("validateRate(%v) = %v, want an error naming --rate", r, err)
		}
	}
	for _, r := range []float64{minRate, 0.5, 50, 1e6} {
		if err := validateRate("rate", r); err != nil {
			t.Errorf("validateRate(%v) = %v", r, err)
		}
	}
}

func TestValidatePort(t *testing.T) {
	for _, p := range []int{-1, 65536, 1 << 40} {
		if err := validatePort("titles-port", p); err == nil || !strings.Contains(err.Error(), "--titles-port") {
			t.Errorf("validatePort(%d) = %v, want an error naming --titles-port", p, err)
		}
	}
	for _, p := range []int{0, 1, 8081, 65535} {
		if err := validatePort("titles-port", p); err != nil {
			t.Errorf("validatePort(%d) = %v", p, err)
		}
	}
}

// A bad flag fails the command, naming the flag, before any part of the
// system starts (the data directory is never created).
func TestBadFlagsStartNothing(t *testing.T) {
	tests := []struct {
		flag string
		args []string
	}{
		{"--rate", []string{"--rate", "NaN"}},
		{"--rate", []string{"--rate", "+Inf"}},
		{"--rate", []string{"--rate", "1e-300"}},
		{"--titles-port", []string{"--titles-port", "70000"}},
		{"--http-port", []string{"--http-port", "-1"}},
		{"--graphql-port", []string{"--graphql-port", "-1"}},
		{"--kafka-port", []string{"--kafka-port", "65536"}},
		{"--registry-port", []string{"--registry-port", "99999"}},
		{"--duration", []string{"--duration", "-1s"}},
		{"--config", []string{"--config", "/nonexistent/slate.yaml"}},
		{"sink[0].sinks[1].type", []string{"--config", writeConfig(t, badUpYAML)}},
		{"no sink pipeline reads studio.title.materialized", []string{"--config", writeConfig(t, strings.ReplaceAll(goodUpYAML, "studio.title.materialized", "studio.other.materialized"))}},
		{"colour: unknown key (line 3)", []string{"--config", writeConfig(t, "kafka: {brokers: x}\nregistry: {url: http://x}\ncolour: blue\n")}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, "="), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			args := append([]string{"up", "--data-dir", dir, "--kafka-port", "0", "--registry-port", "0",
				"--titles-port", "0", "--schedules-port", "0", "--finance-port", "0", "--http-port", "0", "--graphql-port", "0", "--log-level", "error"}, tt.args...)
			err := execute(context.Background(), args)
			if err == nil || !strings.Contains(err.Error(), tt.flag) {
				t.Fatalf("slate %v = %v, want an error naming %s", args, err, tt.flag)
			}
			if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
				t.Fatalf("slate %v created %s before failing: %v", args, dir, serr)
			}
		})
	}
	if err := execute(context.Background(), []string{"cdc", "--metrics-host", "0.0.0.0"}); err == nil || !strings.Contains(err.Error(), "--metrics-host") {
		t.Fatalf("slate cdc --metrics-host 0.0.0.0 = %v, want an error naming --metrics-host", err)
	}
	t.Setenv("SLATE_METRICS_PORT", "123456")
	if err := execute(context.Background(), []string{"cdc"}); err == nil || !strings.Contains(err.Error(), "--metrics-port") {
		t.Fatalf("SLATE_METRICS_PORT=123456 slate cdc = %v, want an error naming --metrics-port", err)
	}
}
