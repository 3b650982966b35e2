package runner_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slatehq/slate/consumer/sink/es/estest"
	"github.com/slatehq/slate/internal/devcert"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/runner"
)

// passwordRedis starts a Redis server of the test's own that requires
// password and returns its address.
func passwordRedis(t *testing.T, password string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Unavailable(t, "redis-server", "install Debian's redis-server package", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cmd := exec.Command(bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
		"--requirepass", password, "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	rc := redis.NewClient(&redis.Options{Addr: addr, Password: password})
	defer rc.Close()
	testenv.WaitFor(t, 10*time.Second, "redis-server with a password", func() bool { return rc.Ping(t.Context()).Err() == nil })
	return addr
}

// secureES serves the Elasticsearch double (the real HTTP API cannot run
// here) over TLS behind basic auth, as a secured cluster answers, and
// returns its URL, the CA file that signs it and the double.
func secureES(t *testing.T, user, password string) (url, caFile string, es *estest.Server) {
	t.Helper()
	files, err := devcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(files.ServerCert, files.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	es = estest.New()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="security"`)
			http.Error(w, `{"error":{"type":"security_exception","reason":"unable to authenticate user"},"status":401}`, http.StatusUnauthorized)
			return
		}
		es.ServeHTTP(w, r)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL, files.CA, es
}

// A sink pipeline reaches a Redis dedupe store that requires a password
// and an Elasticsearch cluster on TLS with basic auth, their secrets read
// from the environment through ${...}; a wrong secret fails the start,
// naming the store that refused it.
func TestSinkStoresWithCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a broker, a registry and Redis")
	}
	env := testenv.Start(t, "//test/credentials")
	redisAddr := passwordRedis(t, "r3dis")
	esURL, ca, double := secureES(t, "elastic", "changeme")
	yml := fmt.Sprintf(`
kafka: {brokers: "%s"}
registry: {url: "%s"}
sink:
  - name: secured
    inputs: [studio.asset.materialized]
    dedupe: {type: redis, addr: "%s", password: "${TEST_REDIS_PASSWORD}"}
    sinks:
      - {type: es, url: "%s", username: elastic, password: "${TEST_ES_PASSWORD}", tls: {ca_file: "%s"}}
`, env.Brokers, env.RegistryURL, redisAddr, esURL, ca)
	start := func(redisPassword, esPassword string) error {
		t.Setenv("TEST_REDIS_PASSWORD", redisPassword)
		t.Setenv("TEST_ES_PASSWORD", esPassword)
		cfg, err := runner.Load(strings.NewReader(yml))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		r, err := runner.Start(ctx, cfg, runner.Which{Kind: runner.KindSink}, runner.WithStartTimeout(5*time.Second))
		if err != nil {
			return err
		}
		cancel()
		return r.Wait()
	}
	if err := start("r3dis", "changeme"); err != nil {
		t.Fatalf("start with the right secrets: %v", err)
	}
	if double.Requests("template") == 0 {
		t.Error("the sink did not put its index template through the secured cluster")
	}
	if err := start("wrong", "changeme"); err == nil || !strings.Contains(err.Error(), "sink[0].dedupe") || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("a wrong Redis password: err %v, want one naming sink[0].dedupe and WRONGPASS", err)
	}
	if err := start("r3dis", "wrong"); err == nil || !strings.Contains(err.Error(), "sink[0].sinks[0]") || !strings.Contains(err.Error(), "401") {
		t.Errorf("a wrong Elasticsearch password: err %v, want one naming sink[0].sinks[0] and 401", err)
	}
}
