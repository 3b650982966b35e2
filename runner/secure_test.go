package runner_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	avroregistry "github.com/hamba/avro/v2/registry"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/internal/devcert"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/runner"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/schema/registry"
)

// collect is a sink that keeps what it is given.
type collect struct {
	mu     sync.Mutex
	events []sink.Event
}

func (c *collect) Name() string { return "collect" }

func (c *collect) Write(_ context.Context, batch []sink.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, batch...)
	return nil
}

func (c *collect) Close(context.Context) error { return nil }

func (c *collect) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

// secureRegistry serves slate's registry over TLS with one basic-auth
// account and returns its URL and the CA file that signs it.
func secureRegistry(t *testing.T) (url, caFile, userInfo string) {
	t.Helper()
	files, err := devcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	users := &registry.Users{}
	if err := users.Add("slate", "s3cret", registry.RoleReadWrite); err != nil {
		t.Fatal(err)
	}
	url = testenv.ServeRegistry(t, registry.ListenConfig{CertFile: files.ServerCert, KeyFile: files.ServerKey, Authenticated: true},
		registry.WithUsers(users))
	return url, files.CA, "slate:s3cret"
}

// Both kinds of pipeline run in one process against a registry on TLS
// with basic auth, set in the registry section; a sink the caller built
// receives the pipeline's events; Ready holds once both joined their
// groups; the caller reads the pipeline's own sinks and dedupe store.
func TestRunAllWithSecuredRegistryAndCallerSinks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a broker, a registry and two pipelines")
	}
	regURL, ca, userInfo := secureRegistry(t)
	yml := fmt.Sprintf(`
kafka: {brokers: "%%s"}
registry:
  url: %s
  tls: {ca_file: %s}
  basic_auth_user_info: "${TEST_REGISTRY_USER_INFO}"
enrich:
  - name: %%[2]s-enricher
    entity_type: %%[2]s
    resolvers:
      %%[2]s: {target: "%%[3]s", rpc: studio.test.v1.Assets/BatchGetAssets, records_field: assets, version_field: revision}
sink:
  - name: %%[2]s-sink
    inputs: [studio.%%[2]s.materialized]
    sinks: [{type: hive, root: "%%[4]s", table: assets}]
`, regURL, ca)
	brokers := testenv.Kafka(t)
	addr, srv := startServer(t, true)
	srv.put(t, `{"id": "a1", "revision": "2", "name": "Pilot"}`)
	et := fmt.Sprintf("secure%d", time.Now().UnixNano()%1_000_000_000)
	t.Setenv("TEST_REGISTRY_USER_INFO", userInfo)
	cfg, err := runner.Load(strings.NewReader(fmt.Sprintf(yml, brokers, et, addr, t.TempDir())))
	if err != nil {
		t.Fatal(err)
	}

	// Without the account the registry refuses the start.
	anon := *cfg
	anon.Registry.BasicAuthUserInfo = ""
	if r, err := runner.Start(t.Context(), &anon, runner.Which{Kind: runner.KindAll}, runner.WithStartTimeout(5*time.Second)); err == nil {
		t.Cleanup(func() { _ = r.Wait() })
		t.Fatal("started without the registry's account")
	}

	got := &collect{}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if _, err := runner.Start(ctx, cfg, runner.Which{Kind: runner.KindAll}, runner.WithSinks("nope", got)); err == nil ||
		!strings.Contains(err.Error(), `"nope", which is not a selected sink pipeline`) {
		t.Fatalf("sinks for a pipeline that does not run: err %v", err)
	}
	r, err := runner.Start(ctx, cfg, runner.Which{Kind: runner.KindAll}, runner.WithSinks(et+"-sink", got),
		runner.WithStartTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if names := r.Pipelines(); len(names) != 2 {
		t.Errorf("pipelines %v, want the enricher and the sink", names)
	}
	if _, ok := r.Sink(et+"-sink", "hive"); !ok {
		t.Error("the sink pipeline's hive sink is not found")
	}
	if _, ok := r.Dedupe(et + "-sink"); !ok {
		t.Error("the sink pipeline's dedupe store is not found")
	}
	testenv.CreateTopics(t, brokers, 1, "studio."+et+".changes", "studio."+et+".materialized")
	testenv.WaitFor(t, 30*time.Second, "both pipelines ready", func() bool { return r.Ready() == nil })

	tc, err := cfg.Registry.TLS.Config()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := schema.NewRegistryClient(regURL, avroregistry.WithBasicAuth("slate", "s3cret"),
		avroregistry.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: tc}}))
	if err != nil {
		t.Fatal(err)
	}
	pub := testenv.Producer(t, brokers, reg, "//test/secure")
	if err := pub.PublishChange(ctx, et, "a1", schema.OpCreate, 2); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 60*time.Second, "the record in the caller's sink", func() bool { return got.len() > 0 })
	cancel()
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	ev := got.events[0]
	if ev.Subject != "a1" || ev.Sequence != 2 {
		t.Errorf("event %s at %d, want a1 at 2", ev.Subject, ev.Sequence)
	}
}
