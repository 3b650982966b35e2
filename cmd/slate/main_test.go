package main

import (
	"os"
	"testing"
)

// envRunMain makes the test binary run the slate command line instead of
// the tests: the end-to-end tests start slate as child processes of the
// test binary (os.Args[0]) with it set to 1.
const envRunMain = "SLATE_TEST_RUN_MAIN"

//go:generate bash testdata/generate.sh

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		os.Exit(run(os.Args[1:]))
	}
	os.Exit(m.Run())
}
