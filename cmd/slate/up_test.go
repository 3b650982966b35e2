package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slatehq/slate/internal/devcert"
	"github.com/slatehq/slate/internal/stack"
	"github.com/slatehq/slate/runner"
)

// slate up --duration runs the whole system, then exits 0 only if every
// change reached the sink.
func TestUpWithDuration(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system for a few seconds")
	}
	code := run([]string{"up", "--duration", "3s", "--settle", "20s", "--rate", "100",
		"--data-dir", t.TempDir(), "--kafka-port", "0", "--registry-port", "0", "--titles-port", "0", "--schedules-port", "0", "--finance-port", "0", "--http-port", "0", "--graphql-port", "0",
		"--log-level", "warn"})
	if code != 0 {
		t.Fatalf("slate up exited %d", code)
	}
}

// slate up --redis keeps the dedupe store in the local Redis.
func TestUpWithRedis(t *testing.T) {
	addr := os.Getenv("SLATE_REDIS_ADDR")
	if testing.Short() || addr == "" {
		t.Skip("needs SLATE_REDIS_ADDR (a local Redis) and runs the whole system for a few seconds")
	}
	prefix := fmt.Sprintf("slatetest:up:%d:", time.Now().UnixNano())
	t.Cleanup(func() {
		rc := redis.NewClient(&redis.Options{Addr: addr})
		defer rc.Close()
		ctx := context.Background()
		iter := rc.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rc.Unlink(ctx, iter.Val())
		}
	})
	code := run([]string{"up", "--duration", "3s", "--settle", "20s", "--rate", "100", "--redis", addr, "--redis-key-prefix", prefix,
		"--data-dir", t.TempDir(), "--kafka-port", "0", "--registry-port", "0", "--titles-port", "0", "--schedules-port", "0", "--finance-port", "0", "--http-port", "0", "--graphql-port", "0",
		"--log-level", "warn"})
	if code != 0 {
		t.Fatalf("slate up --redis %s exited %d", addr, code)
	}
}

// goodUpYAML is a user's slate.yaml for slate up: its own names, a Kafka
// sink mirroring the titles, and no search index.
const goodUpYAML = `
kafka: {brokers: "${SLATE_UP_BROKERS}"}
registry: {url: "${SLATE_UP_REGISTRY_URL}"}
enrich:
  - name: my-titles
    entity_type: title
    resolvers:
      title: {target: "${SLATE_UP_TITLES_ADDR}", rpc: slate.titles.v1.Titles/BatchGetTitles, records_field: titles, version_field: version}
sink:
  - name: my-title-sink
    inputs: [studio.title.materialized]
    sinks:
      - {type: hive, root: "${SLATE_UP_DATA_DIR}/audit", table: titles}
      - {type: kafka, topic: mirror.title}
`

var badUpYAML = strings.Replace(goodUpYAML, "type: kafka", "type: kafak", 1)

// slate up --print-config prints the embedded slate.yaml, which slate
// enrich and slate sink load as it is.
func TestUpPrintConfig(t *testing.T) {
	var out strings.Builder
	cmd := newRoot()
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"up", "--print-config"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if out.String() != string(stack.DefaultPipelines) || !strings.Contains(out.String(), "rpc: slate.titles.v1.Titles/BatchGetTitles") {
		t.Fatalf("printed %q", out.String())
	}
	c, err := runner.LoadFile(writeConfig(t, out.String()))
	if err != nil {
		t.Fatal(err)
	}
	if c.Kafka.Brokers != "127.0.0.1:9092" || c.Registry.URL != "http://127.0.0.1:8081" || c.Enrich[0].Resolvers["title"].Target != "127.0.0.1:50051" {
		t.Errorf("defaults of the printed file: %+v", c)
	}
}

// slate up --config runs a user's pipelines instead of the embedded ones,
// and its services publish under the file's topic prefix.
func TestUpWithConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system for a few seconds")
	}
	for name, yml := range map[string]string{
		"default prefix": goodUpYAML,
		"acme prefix":    "topic_prefix: acme.\n" + strings.ReplaceAll(goodUpYAML, "studio.title.materialized", "acme.title.materialized"),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			code := run([]string{"up", "--config", writeConfig(t, yml), "--duration", "3s", "--settle", "20s", "--rate", "100",
				"--data-dir", dir, "--kafka-port", "0", "--registry-port", "0", "--titles-port", "0", "--schedules-port", "0", "--finance-port", "0", "--http-port", "0", "--graphql-port", "0",
				"--log-level", "warn"})
			if code != 0 {
				t.Fatalf("slate up --config exited %d", code)
			}
			if _, err := os.Stat(filepath.Join(dir, "audit", "titles")); err != nil {
				t.Errorf("the file's hive sink wrote nothing: %v", err)
			}
		})
	}
}

func TestUpRejectsBadConfig(t *testing.T) {
	for _, args := range [][]string{
		{"up", "--redis", "127.0.0.1:1", "--data-dir", t.TempDir(), "--kafka-port", "0", "--registry-port", "0",
			"--titles-port", "0", "--schedules-port", "0", "--finance-port", "0", "--http-port", "0", "--graphql-port", "0"},
		{"up", "--rate", "0", "--data-dir", t.TempDir()},
		{"up", "--data-dir", ""},
		{"up", "--log-level", "loud"},
	} {
		if code := run(args); code == 0 {
			t.Errorf("slate %v exited 0", args)
		}
	}
}

// slate up --secure runs the whole system with a throwaway CA, mutual TLS
// everywhere, broker SASL and registry basic auth, and every change still
// reaches the sink.
func TestUpSecure(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system for a few seconds")
	}
	dir := t.TempDir()
	code := run([]string{"up", "--secure", "--duration", "2s", "--settle", "20s", "--rate", "50",
		"--data-dir", dir, "--kafka-port", "0", "--registry-port", "0", "--titles-port", "0", "--schedules-port", "0", "--finance-port", "0", "--http-port", "0", "--graphql-port", "0",
		"--log-level", "warn"})
	if code != 0 {
		t.Fatalf("slate up --secure exited %d", code)
	}
	fi, err := os.Stat(filepath.Join(dir, "tls", "credentials"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v, %v; want mode 0600", fi, err)
	}
}

// A bad security setting fails slate up at start, naming the flag, before
// anything starts (the data directory is never created).
func TestBadSecurityFlagsStartNothing(t *testing.T) {
	files, err := devcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(t.TempDir(), "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	server := []string{"--tls-cert", files.ServerCert, "--tls-key", files.ServerKey}
	tests := []struct {
		flag string
		args []string
	}{
		{"--tls-cert", []string{"--tls-cert", files.ServerCert}},
		{"--tls-cert", []string{"--tls-key", files.ServerKey}},
		{"--tls-cert", []string{"--tls-cert", "/nonexistent.crt", "--tls-key", files.ServerKey}},
		{"--tls-key", []string{"--tls-cert", files.ServerCert, "--tls-key", files.ClientKey}},
		{"--tls-ca", []string{"--tls-ca", "/nonexistent.crt"}},
		{"--tls-ca", []string{"--tls-ca", notPEM}},
		{"--tls-client-ca", append([]string{"--tls-client-ca", notPEM, "--tls-client-cert", files.ClientCert, "--tls-client-key", files.ClientKey}, server...)},
		{"--tls-client-ca", []string{"--tls-client-ca", files.CA}},
		{"--tls-client-ca", append([]string{"--tls-client-ca", files.CA}, server...)},
		{"--tls-client-cert", []string{"--tls-client-cert", files.ClientCert}},
		{"--sasl-user", []string{"--sasl-user", "slate"}},
		{"--sasl-password", []string{"--sasl-password", "s3cret"}},
		{"--sasl-mechanism", []string{"--sasl-user", "slate", "--sasl-password", "s3cret", "--sasl-mechanism", "GSSAPI"}},
		{"--registry-basic-auth-user-info", []string{"--registry-basic-auth-user-info", "slate"}},
		{"--registry-basic-auth-user-info", []string{"--registry-basic-auth-user-info", "slate:"}},
		{"--http-host", []string{"--http-host", "0.0.0.0"}},
		{"--http-host", append([]string{"--http-host", "0.0.0.0"}, server...)},
		{"--tls-cert", []string{"--secure", "--tls-cert", files.ServerCert}},
		{"--brokers", []string{"--secure", "--brokers", "kafka:9092"}},
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
}

// The summary of slate up --duration counts the duplicates the sinks
// dropped, which the services' own publishing makes (every change event
// twice, under --disorder), and reports each view's freshness against the
// SLA.
func TestUpSummary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system for a few seconds")
	}
	p := startProc(t, "slate up", "up", "--duration", "4s", "--settle", "20s", "--rate", "50", "--freshness-sla", "15s",
		"--data-dir", t.TempDir(), "--kafka-port", "0", "--registry-port", "0", "--titles-port", "0", "--schedules-port", "0",
		"--finance-port", "0", "--http-port", "0", "--graphql-port", "0", "--log-level", "warn")
	select {
	case <-p.exited:
	case <-time.After(2 * time.Minute):
		t.Fatalf("slate up --duration 4s still runs after 2 minutes:\n%s", p.out.String())
	}
	out := p.out.String()
	if p.err != nil {
		t.Fatalf("slate up exited with %v:\n%s", p.err, out)
	}
	m := regexp.MustCompile(`duplicates dropped +(\d+)`).FindStringSubmatch(out)
	if m == nil || m[1] == "0" {
		t.Errorf("the summary counts no duplicates dropped:\n%s", out)
	}
	for _, view := range []string{"titles", "cashflow"} {
		if !regexp.MustCompile(`freshness \(` + view + `\) +p50 \S+, p99 \S+, max \S+ over [1-9]\d* events; \d+ later than the SLA of 15s`).MatchString(out) {
			t.Errorf("the summary reports no freshness of the %s view against the SLA:\n%s", view, out)
		}
	}
}
