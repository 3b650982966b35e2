package runner_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/runner"
)

const validYAML = `
kafka:
  brokers: 127.0.0.1:9092
registry:
  url: http://127.0.0.1:8081
enrich:
  - entity_type: asset
    resolvers:
      asset:
        target: 127.0.0.1:9090
        rpc: studio.test.v1.Assets/BatchGetAssets
        records_field: assets
        version_field: revision
sink:
  - name: asset-audit
    inputs: [studio.asset.materialized]
    sinks:
      - {type: hive, root: /tmp/hive, table: asset}
`

func TestLoadDefaults(t *testing.T) {
	c, err := runner.Load(strings.NewReader(validYAML))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Enrich[0]
	if c.TopicPrefix != "studio." || p.Name != "asset-enricher" || p.Output != "studio.asset.materialized" ||
		len(p.Inputs) != 1 || p.Inputs[0] != "studio.asset.changes" || p.Resolvers["asset"].Method != enricher.MethodBatchGet {
		t.Errorf("enrich defaults: prefix %q, %+v", c.TopicPrefix, p)
	}
	s := c.Sink[0]
	if s.Group != "asset-audit" || s.Dedupe.Type != runner.DedupeMemory || s.Sinks[0].Name != "hive" {
		t.Errorf("sink defaults: %+v", s)
	}

	c, err = runner.Load(strings.NewReader(strings.Replace(validYAML, "enrich:", "topic_prefix: prod.\nenrich:", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Enrich[0]; p.Output != "prod.asset.materialized" || p.Inputs[0] != "prod.asset.changes" {
		t.Errorf("topic_prefix prod.: output %s, inputs %v", p.Output, p.Inputs)
	}
}

func TestLoadRefusesBadTopicPrefix(t *testing.T) {
	_, err := runner.Load(strings.NewReader(strings.Replace(validYAML, "enrich:", "topic_prefix: \"prod/\"\nenrich:", 1)))
	if !errors.Is(err, runner.ErrConfig) || !strings.Contains(err.Error(), `topic_prefix: schema: invalid topic prefix: "prod/"`) {
		t.Fatalf("err = %v, want ErrConfig naming topic_prefix", err)
	}
}

func TestApplyEnv(t *testing.T) {
	c, err := runner.Load(strings.NewReader(validYAML))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SLATE_KAFKA_BROKERS": "k1:9092,k2:9092", "SLATE_REGISTRY_URL": "http://reg:8081"}
	c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if c.Kafka.Brokers != "k1:9092,k2:9092" || c.Registry.URL != "http://reg:8081" {
		t.Errorf("after env: brokers %q, registry %q", c.Kafka.Brokers, c.Registry.URL)
	}
}

func TestValidateNamesYAMLPath(t *testing.T) {
	for _, tt := range []struct {
		name, old, new, want string
	}{
		{"unknown key", "registry:\n", "registry:\n  urls: x\n", "registry.urls: unknown key (line 5); the settings here are basic_auth_user_info, tls, url"},
		{"unknown pipeline key", "    resolvers:\n", "    resolverz: {}\n    resolvers:\n", "enrich[0].resolverz: unknown key (line 8)"},
		{"unknown resolver key", "        rpc: ", "        tls: {ca: x}\n        rpc: ", "enrich[0].resolvers.asset.tls.ca: unknown key (line 11)"},
		{"unknown sink key", "{type: hive,", "{type: hive, colour: red,", "sink[0].sinks[0].colour: unknown key (line 18)"},
		{"registry tls over http", "  url: http://127.0.0.1:8081\n", "  url: http://127.0.0.1:8081\n  tls: {ca_file: x}\n",
			`registry.tls: set, but registry.url "http://127.0.0.1:8081" is not https`},
		{"registry url", "  url: http://127.0.0.1:8081\n", "  url: reg:8081\n", `registry.url: "reg:8081": want an http:// or https:// URL`},
		{"registry user info", "  url: http://127.0.0.1:8081\n", "  url: http://127.0.0.1:8081\n  basic_auth_user_info: slate\n",
			"registry.basic_auth_user_info: want user:password"},
		{"resolver tls file", "        rpc: ", "        tls: {ca_file: /nonexistent/ca.pem}\n        rpc: ", "enrich[0].resolvers.asset.tls.ca_file: open /nonexistent/ca.pem"},
		{"missing resolver", "    resolvers:\n", "    primary: assets\n    resolvers:\n",
			`enrich[0].primary: names no resolver: "assets"`},
		{"missing join resolver", "    resolvers:\n", "    joins: [{field: owner, resolver: people}]\n    resolvers:\n",
			`enrich[0].joins[0].resolver: names no resolver: "people"`},
		{"missing target", "        target: 127.0.0.1:9090\n", "", "enrich[0].resolvers.asset.target: required"},
		{"missing rpc", "        rpc: studio.test.v1.Assets/BatchGetAssets\n", "", "enrich[0].resolvers.asset.rpc: required"},
		{"missing records field", "        records_field: assets\n", "", "enrich[0].resolvers.asset.records_field: required for method batch_get"},
		{"bad method", "        records_field: assets\n", "        records_field: assets\n        method: list\n",
			`enrich[0].resolvers.asset.method: "list", want batch_get, get or dependents`},
		{"sink type", "{type: hive, root: /tmp/hive, table: asset}", "{type: solr}",
			`sink[0].sinks[0].type: "solr" is not a sink type (es, bleve, hive, kafka)`},
		{"second sink pipeline", "      - {type: hive, root: /tmp/hive, table: asset}\n",
			"      - {type: hive, root: /tmp/hive, table: asset}\n  - name: b\n    inputs: [x]\n    sinks: [{type: solr}]\n",
			`sink[1].sinks[0].type: "solr" is not a sink type (es, bleve, hive, kafka)`},
		{"sink setting", "table: asset}", "table: asset, topic: x}", "sink[0].sinks[0].topic: type hive does not use it"},
		{"hive table", ", table: asset}", "}", "sink[0].sinks[0].table: required for type hive"},
		{"redis addr", "    sinks:\n", "    dedupe: {type: redis}\n    sinks:\n", "sink[0].dedupe.addr: required for type redis"},
		{"dedupe type", "    sinks:\n", "    dedupe: {type: disk}\n    sinks:\n", `sink[0].dedupe.type: "disk" is not a dedupe store type (memory, redis)`},
		{"redis password", "    sinks:\n", "    dedupe: {type: redis, addr: x, username: slate}\n    sinks:\n", `sink[0].dedupe.password: required with username "slate"`},
		{"memory with password", "    sinks:\n", "    dedupe: {password: x}\n    sinks:\n", "sink[0].dedupe: only type redis uses username, password and tls"},
		{"es api key and user", "{type: hive, root: /tmp/hive, table: asset}", "{type: es, url: http://es:9200, username: u, password: p, api_key: k}",
			"sink[0].sinks[0].api_key: set with username"},
		{"es tls over http", "{type: hive, root: /tmp/hive, table: asset}", "{type: es, url: http://es:9200, tls: {ca_file: x}}",
			`sink[0].sinks[0].tls: set, but url "http://es:9200" is not https`},
		{"hive with password", "table: asset}", "table: asset, password: x}", "sink[0].sinks[0].password: type hive does not use it"},
		{"sink inputs", "    inputs: [studio.asset.materialized]\n", "", "sink[0].inputs: needs at least one topic"},
		{"sasl without password", "  brokers: 127.0.0.1:9092\n", "  brokers: 127.0.0.1:9092\n  sasl: {username: slate}\n",
			"kafka.sasl.password: required when sasl.username is set"},
		{"brokers", "  brokers: 127.0.0.1:9092\n", "", "kafka.brokers: required"},
		{"registry", "  url: http://127.0.0.1:8081\n", "", "registry.url: required"},
		{"duplicate name", "  - name: asset-audit\n", "  - name: asset-enricher\n",
			`sink[0].name: "asset-enricher" is also the name of enrich[0]`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(validYAML, tt.old) {
				t.Fatalf("test: %q is not in the config", tt.old)
			}
			_, err := runner.Load(strings.NewReader(strings.Replace(validYAML, tt.old, tt.new, 1)))
			if err == nil || !errors.Is(err, runner.ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want ErrConfig naming %q", err, tt.want)
			}
		})
	}
}

// The example of the package documentation is a valid config.
func TestDocExampleLoads(t *testing.T) {
	c, err := runner.Load(strings.NewReader(`
kafka:
  brokers: kafka-1:9092,kafka-2:9092
  sasl: {mechanism: SCRAM-SHA-256, username: slate, password: secret}
registry:
  url: http://registry:8081
enrich:
  - entity_type: asset
    resolvers:
      asset:
        target: assets:9090
        rpc: studio.assets.v1.Assets/BatchGetAssets
        records_field: assets
        version_field: revision
sink:
  - name: asset-search
    inputs: [studio.asset.materialized]
    dedupe: {type: redis, addr: 127.0.0.1:6379}
    sinks:
      - {type: es, url: http://es:9200}
      - {type: hive, root: /data/hive, table: asset}
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Has(runner.Which{Kind: runner.KindSink, Name: "asset-search"}); err != nil {
		t.Error(err)
	}
	if err := c.Has(runner.Which{Kind: runner.KindEnrich, Name: "asset-enricher"}); err != nil {
		t.Error(err)
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{"HOST": "k1", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, tt := range []struct{ in, want, err string }{
		{"brokers: ${HOST}:9092", "brokers: k1:9092", ""},
		{"a: ${MISSING:-127.0.0.1:9092}", "a: 127.0.0.1:9092", ""},
		{"a: ${EMPTY:-d}", "a: d", ""},
		{"a: ${HOST:-d}", "a: k1", ""},
		{"password: pa$$word$", "password: pa$word$", ""},
		{"a: $HOST", "a: $HOST", ""},
		{"a: 1\nb: ${MISSING}", "", "line 2: ${MISSING}: MISSING is not set"},
		{"a: ${HOST", "", "line 1: ${ without a closing }"},
		{"a: ${9X}", "", `"9X" is not a variable name`},
	} {
		got, err := runner.Expand([]byte(tt.in), lookup)
		if tt.err != "" {
			if err == nil || !errors.Is(err, runner.ErrConfig) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Expand(%q) = %q, %v; want an error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("Expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestApplyEnvSecrets(t *testing.T) {
	c, err := runner.Load(strings.NewReader(strings.Replace(validYAML, "  brokers: 127.0.0.1:9092\n",
		"  brokers: 127.0.0.1:9092\n  sasl: {username: slate}\n", 1)))
	if err == nil {
		t.Fatalf("sasl without password loaded: %+v", c.Kafka)
	}
	c, err = runner.Decode(strings.NewReader(strings.Replace(validYAML, "  brokers: 127.0.0.1:9092\n",
		"  brokers: 127.0.0.1:9092\n  sasl: {username: slate}\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SLATE_KAFKA_SASL_PASSWORD": "s3cret", "SLATE_REGISTRY_BASIC_AUTH_USER_INFO": "u:p"}
	c.ApplyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	c.Defaults()
	if err := c.Validate(); err != nil || c.Kafka.SASL.Password != "s3cret" || c.Registry.BasicAuthUserInfo != "u:p" {
		t.Errorf("after env: %v, sasl %+v, registry %+v", err, c.Kafka.SASL, c.Registry)
	}
}
