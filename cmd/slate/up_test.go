package main

import "testing"

// slate up --duration runs the whole system, then exits 0 only if every
// change reached the sink.
func TestUpWithDuration(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system for a few seconds")
	}
	code := run([]string{"up", "--duration", "3s", "--settle", "20s", "--rate", "100",
		"--data-dir", t.TempDir(), "--kafka-port", "0", "--registry-port", "0", "--titles-port", "0", "--http-port", "0",
		"--log-level", "warn"})
	if code != 0 {
		t.Fatalf("slate up exited %d", code)
	}
}

func TestUpRejectsBadConfig(t *testing.T) {
	for _, args := range [][]string{
		{"up", "--rate", "0", "--data-dir", t.TempDir()},
		{"up", "--data-dir", ""},
		{"up", "--log-level", "loud"},
	} {
		if code := run(args); code == 0 {
			t.Errorf("slate %v exited 0", args)
		}
	}
}
