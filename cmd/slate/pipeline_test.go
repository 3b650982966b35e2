package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slatehq/slate/internal/testenv"
)

func writeConfig(t *testing.T, yml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "slate.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const badEnrichYAML = `
kafka: {brokers: 127.0.0.1:1}
registry: {url: http://127.0.0.1:1}
enrich:
  - entity_type: title
    primary: titles
    resolvers:
      titles: {rpc: slate.titles.v1.Titles/BatchGetTitles, records_field: titles}
`

// slate enrich and slate sink refuse a bad file or flag before starting
// anything, naming the YAML path or the flag.
func TestPipelineCommandsRejectBadConfig(t *testing.T) {
	bad := writeConfig(t, badEnrichYAML)
	good := writeConfig(t, strings.Replace(badEnrichYAML, "{rpc:", "{target: 127.0.0.1:1, rpc:", 1))
	// A port in use: a command that got as far as serving /metrics would
	// fail on it instead.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	addr := held.Addr().String()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"enrich", "--config", bad, "--http-addr", addr},
			"--config " + bad + ": runner: invalid config: enrich[0].resolvers.titles.target: required"},
		{[]string{"enrich", "--config", filepath.Join(t.TempDir(), "missing.yaml"), "--http-addr", addr}, "--config: open "},
		{[]string{"enrich", "--config", good, "--http-addr", addr, "--pipeline", "people-enricher"},
			`--pipeline people-enricher: runner: invalid config: no enrich pipeline is named "people-enricher" (have title-enricher)`},
		{[]string{"sink", "--config", good, "--http-addr", addr}, "--config " + good + ": runner: invalid config: sink: no pipelines"},
		{[]string{"enrich", "--config", good, "--http-addr", "localhost"}, `--http-addr "localhost"`},
		{[]string{"enrich", "--config", good, "--http-addr", "127.0.0.1:70000"}, "--http-addr 70000: must be a port"},
		{[]string{"enrich", "--config", good, "--http-addr", "0.0.0.0:0"}, "--http-addr 0.0.0.0 is reachable from other machines"},
	} {
		err := execute(context.Background(), tt.args)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("slate %s: err %v, want %q", strings.Join(tt.args, " "), err, tt.want)
		}
	}
}

// slate sink serves /healthz (once it joined its group) and /metrics
// while it runs and exits 0 on SIGTERM.
func TestSinkCommandStopsOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a broker and a sink pipeline")
	}
	env := testenv.Start(t, "//test/cmd")
	testenv.CreateTopics(t, env.Brokers, 1, "studio.cmdtest.materialized")
	cfg := writeConfig(t, fmt.Sprintf(`
kafka: {brokers: %s}
registry: {url: %s}
sink:
  - name: cmd-test-sink
    inputs: [studio.cmdtest.materialized]
    sinks: [{type: hive, name: cmd-test-hive, root: %s, table: cmdtest}]
`, env.Brokers, env.RegistryURL, t.TempDir()))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	code := make(chan int, 1)
	go func() { code <- run([]string{"sink", "--config", cfg, "--http-addr", addr, "--log-level", "warn"}) }()
	testenv.WaitFor(t, 30*time.Second, "/healthz", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	// /metrics serves the pipeline's consumer, which counts the record it
	// read, and the Go runtime's collectors.
	if err := env.Producer.PublishRaw(t.Context(), "studio.cmdtest.materialized", []byte("k"), []byte("not an envelope"), nil); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the consumer's metrics on /metrics", func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return err == nil && resp.StatusCode == http.StatusOK &&
			bytes.Contains(body, []byte(`slate_consumer_records_total{group="cmd-test-sink"`)) && bytes.Contains(body, []byte("go_goroutines "))
	})
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("slate sink exited %d after SIGTERM, want 0", c)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("slate sink did not stop within 30s of SIGTERM")
	}
}

// silentConfig writes an enrich config whose resolver target accepts
// connections and never answers, so that the start of the pipeline waits
// (up to its start timeout, 10s).
func silentConfig(t *testing.T) string {
	t.Helper()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return writeConfig(t, strings.Replace(badEnrichYAML, "{rpc:", "{target: "+silent.Addr().String()+", rpc:", 1))
}

// slate enrich answers /healthz with 503 while its pipelines start (here a
// resolver target that accepts connections and never answers), and 200
// only once they run: a probe must not route to a process that may still
// fail its start.
func TestHealthzWaitsForStart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs slate enrich in a child process")
	}
	p := startSlate(t, "slate enrich", "enrich", "--config", silentConfig(t))
	var code int
	testenv.WaitFor(t, 30*time.Second, "/healthz to answer", func() bool {
		p.running(t)
		resp, err := http.Get("http://" + p.httpAddr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		code = resp.StatusCode
		return true
	})
	if code != http.StatusServiceUnavailable {
		t.Errorf("/healthz answers %d while the resolver has not answered, want 503", code)
	}
}

// A SIGTERM while the pipelines start (a rollout stopping a process that
// is not ready yet) stops slate enrich with exit status 0, as one after
// the start does.
func TestSIGTERMDuringStartExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("runs slate enrich in a child process")
	}
	p := startSlate(t, "slate enrich", "enrich", "--config", silentConfig(t))
	testenv.WaitFor(t, 30*time.Second, "/healthz to answer 503", func() bool {
		p.running(t)
		resp, err := http.Get("http://" + p.httpAddr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	p.stop(t)
}
