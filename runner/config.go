package runner

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	avroregistry "github.com/hamba/avro/v2/registry"
	"gopkg.in/yaml.v3"

	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/internal/kafkaconf"
	"github.com/slatehq/slate/schema"
)

// DefaultTopicPrefix is the prefix of the topics the runner names itself
// (the default inputs and output of an enrich pipeline).
const DefaultTopicPrefix = schema.DefaultTopicPrefix

// Dedupe store types of a [DedupeSpec].
const (
	DedupeMemory = "memory"
	DedupeRedis  = "redis"
)

// Sink types of a [SinkSpec].
const (
	SinkES    = "es"
	SinkBleve = "bleve"
	SinkHive  = "hive"
	SinkKafka = "kafka"
)

var sinkTypes = []string{SinkES, SinkBleve, SinkHive, SinkKafka}

// ErrConfig is wrapped by every error of [Load] and [Config.Validate], and
// by the errors of [Start] about a setting.
var ErrConfig = errors.New("runner: invalid config")

// Config is slate.yaml: the Kafka cluster, the schema registry and the
// pipelines.
type Config struct {
	// Kafka is the cluster every pipeline reads from and writes to.
	Kafka kafkaconf.Client `yaml:"kafka"`
	// Registry is the schema registry.
	Registry RegistrySpec `yaml:"registry"`
	// TopicPrefix prefixes the topics the runner names itself: an enrich
	// pipeline without inputs reads <prefix><entity_type>.changes (and the
	// changes topic of each fan-out source), one without output writes
	// <prefix><entity_type>.materialized. Default [DefaultTopicPrefix].
	TopicPrefix string `yaml:"topic_prefix"`
	// Enrich are the enrich pipelines, in the shape of enricher.Pipeline;
	// their resolvers carry the settings of grpcresolver.Spec.
	Enrich []enricher.Pipeline `yaml:"enrich"`
	// Sink are the sink pipelines.
	Sink []SinkPipeline `yaml:"sink"`
}

// RegistrySpec is where the schema registry is and how to reach it.
type RegistrySpec struct {
	// URL of the registry. Required.
	URL string `yaml:"url"`
	// BasicAuthUserInfo is user:password of HTTP basic auth (Confluent's
	// basic.auth.user.info); empty sends none. Prefer the environment
	// (SLATE_REGISTRY_BASIC_AUTH_USER_INFO) to the file.
	BasicAuthUserInfo string `yaml:"basic_auth_user_info"`
	// TLS is the client side of an https URL: the CA to trust and the
	// client certificate of mutual TLS.
	TLS *enricher.ClientTLS `yaml:"tls"`
}

// SinkPipeline consumes materialized topics, drops duplicates and writes
// every event to its sinks in order.
type SinkPipeline struct {
	// Name names the pipeline. Required.
	Name string `yaml:"name"`
	// Group is the consumer group (default: the name).
	Group string `yaml:"group"`
	// Inputs are the topics consumed. Required.
	Inputs []string `yaml:"inputs"`
	// Dedupe is the store of the event ids already written.
	Dedupe DedupeSpec `yaml:"dedupe"`
	// Sinks receive every fresh event, in order. At least one.
	Sinks []SinkSpec `yaml:"sinks"`
	// DeadLetter sends an event the sinks keep refusing to <topic>.dlq.
	DeadLetter SinkDeadLetterSpec `yaml:"dead_letter"`
	// Concurrency is the number of partition lanes (default 1).
	Concurrency int `yaml:"concurrency"`
}

// DedupeSpec is a dedupe store.
type DedupeSpec struct {
	// Type is memory (default; lost on restart) or redis.
	Type string `yaml:"type"`
	// Addr is, for redis, host:port of one server or a comma list of
	// Redis Cluster nodes. Required for redis.
	Addr string `yaml:"addr"`
	// KeyPrefix prefixes the Redis keys (default dedupe.DefaultKeyPrefix).
	KeyPrefix string `yaml:"key_prefix"`
	// Lease bounds how long a claimed id stays blocked when the process
	// dies mid-write (default 1m).
	Lease time.Duration `yaml:"lease"`
	// TTL is how long a written id is remembered (default 7 days).
	TTL time.Duration `yaml:"ttl"`
	// Username and Password are, for redis, the ACL user (empty: the
	// default user) and its password (AUTH); write the password as
	// ${SOME_VARIABLE} to keep it out of the file.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// TLS is, for redis, the client side of a TLS connection: the CA to
	// trust and the client certificate of mutual TLS.
	TLS *enricher.ClientTLS `yaml:"tls"`
}

// SinkSpec is one sink. The settings used depend on the type.
type SinkSpec struct {
	// Type is es, bleve, hive or kafka. Required.
	Type string `yaml:"type"`
	// Name labels the sink's metrics and its per-sink dedupe marks
	// (default: the type). Keep it stable across deployments.
	Name string `yaml:"name"`
	// URL is, for es, the Elasticsearch URL. Required for es.
	URL string `yaml:"url"`
	// IndexPrefix is, for es, the prefix of the index names (default
	// es.DefaultIndexPrefix).
	IndexPrefix string `yaml:"index_prefix"`
	// Path is, for bleve, the index directory. Required for bleve.
	Path string `yaml:"path"`
	// Root and Table are, for hive, the warehouse directory and the table
	// name. Both required for hive.
	Root  string `yaml:"root"`
	Table string `yaml:"table"`
	// Topic is, for kafka, the topic every event is republished to.
	// Required for kafka.
	Topic string `yaml:"topic"`
	// Username and Password (HTTP basic auth) or APIKey (the base64
	// "id:key" Elasticsearch hands out) are, for es, the credentials; write
	// secrets as ${SOME_VARIABLE} to keep them out of the file.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	APIKey   string `yaml:"api_key"`
	// TLS is, for es, the client side of an https URL: the CA to trust
	// and the client certificate of mutual TLS.
	TLS *enricher.ClientTLS `yaml:"tls"`
}

// SinkDeadLetterSpec configures a sink pipeline's dead letters.
type SinkDeadLetterSpec struct {
	// Enabled sends an event to <topic>.dlq after Attempts failed writes.
	Enabled bool `yaml:"enabled"`
	// Attempts before an event is dead-lettered (default 10).
	Attempts int `yaml:"attempts"`
}

// Decode reads a YAML config, rejecting unknown keys, without applying
// defaults or validating it: for a caller that overrides settings (from
// the environment, from flags) before [Config.Defaults] and
// [Config.Validate]. References to environment variables in the text are
// replaced first ([Expand] with os.LookupEnv).
func Decode(r io.Reader) (*Config, error) { return DecodeWith(r, os.LookupEnv) }

// DecodeWith is [Decode] with the variables of [Expand] looked up by
// lookup.
func DecodeWith(r io.Reader, lookup func(string) (string, bool)) (*Config, error) {
	text, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("runner: config: %w", err)
	}
	if text, err = Expand(text, lookup); err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrConfig, yamlError(err))
	}
	if err := unknownKey(&doc, reflect.TypeFor[Config](), ""); err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(text))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s", ErrConfig, yamlError(err))
	}
	return &c, nil
}

// Load reads a YAML config, rejecting unknown keys, applies the defaults
// and validates it. It reads the environment only for the ${NAME}
// references of the text; for SLATE_* settings see [Config.ApplyEnv].
func Load(r io.Reader) (*Config, error) {
	c, err := Decode(r)
	if err != nil {
		return nil, err
	}
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadFile is [Load] of a file, with the environment applied
// ([Config.ApplyEnv]) before the defaults and validation. Its errors
// start with the path.
func LoadFile(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("runner: config: %w", err)
	}
	c, err := Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.ApplyEnv(os.LookupEnv)
	c.Defaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Expand replaces each ${NAME} in text with the value lookup gives NAME,
// and each ${NAME:-default} with it or, when NAME is unset or empty, with
// default; $$ is a literal $. A $ before anything else stays as it is.
// A ${NAME} without a default whose NAME is unset is an error naming the
// variable and its line, so a missing secret fails at start instead of
// becoming an empty setting.
func Expand(text []byte, lookup func(string) (string, bool)) ([]byte, error) {
	var out bytes.Buffer
	line := 1
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c == '\n' {
			line++
		}
		if c != '$' || i+1 == len(text) {
			out.WriteByte(c)
			continue
		}
		switch text[i+1] {
		case '$':
			out.WriteByte('$')
			i++
			continue
		case '{':
		default:
			out.WriteByte(c)
			continue
		}
		end := bytes.IndexByte(text[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("%w: line %d: ${ without a closing }", ErrConfig, line)
		}
		ref := string(text[i+2 : i+end])
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validVar(name) {
			return nil, fmt.Errorf("%w: line %d: ${%s}: %q is not a variable name (letters, digits, _)", ErrConfig, line, ref, name)
		}
		v, ok := lookup(name)
		switch {
		case hasDef && v == "":
			v = def
		case !ok:
			return nil, fmt.Errorf("%w: line %d: ${%s}: %s is not set (give a default with ${%s:-value})", ErrConfig, line, name, name, name)
		}
		out.WriteString(v)
		i += end
	}
	return out.Bytes(), nil
}

func validVar(name string) bool {
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		return false
	}
	for _, r := range name {
		if r != '_' && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// yamlError drops the "yaml: " prefix of the decoder's errors; they name
// the line and the key.
func yamlError(err error) string {
	return strings.TrimPrefix(strings.ReplaceAll(err.Error(), "\n ", ""), "yaml: ")
}

// ApplyEnv replaces settings with the environment's, through lookup
// (os.LookupEnv): SLATE_KAFKA_BROKERS replaces kafka.brokers and
// SLATE_REGISTRY_URL registry.url, SLATE_REGISTRY_BASIC_AUTH_USER_INFO
// registry.basic_auth_user_info and SLATE_KAFKA_SASL_PASSWORD
// kafka.sasl.password. Command-line flags, applied after it, win over
// all of them.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) {
	if v, ok := lookup("SLATE_REGISTRY_BASIC_AUTH_USER_INFO"); ok && v != "" {
		c.Registry.BasicAuthUserInfo = v
	}
	if v, ok := lookup("SLATE_KAFKA_SASL_PASSWORD"); ok && v != "" {
		c.Kafka.SASL.Password = v
	}
	if v, ok := lookup("SLATE_KAFKA_BROKERS"); ok && v != "" {
		c.Kafka.Brokers = v
	}
	if v, ok := lookup("SLATE_REGISTRY_URL"); ok && v != "" {
		c.Registry.URL = v
	}
}

// Defaults fills the unset settings, the pipelines' included.
func (c *Config) Defaults() {
	if c.TopicPrefix == "" {
		c.TopicPrefix = DefaultTopicPrefix
	}
	for i := range c.Enrich {
		p := &c.Enrich[i]
		if p.EntityType != "" {
			if p.Output == "" {
				p.Output = c.TopicPrefix + p.EntityType + ".materialized"
			}
			if len(p.Inputs) == 0 {
				own := p.EntityType
				if p.PrimaryEntityType != "" {
					own = p.PrimaryEntityType
				}
				p.Inputs = []string{c.TopicPrefix + own + ".changes"}
				for _, f := range p.FanOut {
					if f.EntityType != "" {
						p.Inputs = append(p.Inputs, c.TopicPrefix+f.EntityType+".changes")
					}
				}
			}
		}
		p.Defaults()
	}
	for i := range c.Sink {
		p := &c.Sink[i]
		if p.Group == "" {
			p.Group = p.Name
		}
		if p.Dedupe.Type == "" {
			p.Dedupe.Type = DedupeMemory
		}
		if p.Dedupe.Lease == 0 {
			p.Dedupe.Lease = time.Minute
		}
		if p.Dedupe.TTL == 0 {
			p.Dedupe.TTL = 7 * 24 * time.Hour
		}
		if p.DeadLetter.Attempts == 0 {
			p.DeadLetter.Attempts = 10
		}
		if p.Concurrency == 0 {
			p.Concurrency = 1
		}
		for j := range p.Sinks {
			if p.Sinks[j].Name == "" {
				p.Sinks[j].Name = p.Sinks[j].Type
			}
		}
	}
}

// bad is an error about the setting at path.
func bad(path, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrConfig, path, fmt.Sprintf(format, args...))
}

// Validate reports the first setting that cannot work, by its YAML path
// ("sink[1].sinks[0].type: ..."). It reads the files kafka.tls names. Call
// it after [Config.Defaults].
func (c *Config) Validate() error {
	if err := c.Kafka.Validate(); err != nil {
		return fmt.Errorf("%w: kafka.%w", ErrConfig, err)
	}
	if err := c.Registry.validate(); err != nil {
		return err
	}
	if err := schema.ValidateTopicPrefix(c.TopicPrefix); err != nil {
		return fmt.Errorf("%w: topic_prefix: %w", ErrConfig, err)
	}
	if len(c.Enrich) == 0 && len(c.Sink) == 0 {
		return bad("enrich", "no pipelines: set enrich or sink")
	}
	names := map[string]string{}
	claim := func(path, name string) error {
		if prev, ok := names[name]; ok {
			return bad(path, "%q is also the name of %s", name, prev)
		}
		names[name] = strings.TrimSuffix(path, ".name")
		return nil
	}
	for i := range c.Enrich {
		at := fmt.Sprintf("enrich[%d]", i)
		if err := c.validateEnrich(at, &c.Enrich[i]); err != nil {
			return err
		}
		if err := claim(at+".name", c.Enrich[i].Name); err != nil {
			return err
		}
	}
	for i := range c.Sink {
		at := fmt.Sprintf("sink[%d]", i)
		if err := c.Sink[i].validate(at); err != nil {
			return err
		}
		if err := claim(at+".name", c.Sink[i].Name); err != nil {
			return err
		}
	}
	return nil
}

func (r RegistrySpec) validate() error {
	u, err := url.Parse(r.URL)
	switch {
	case strings.TrimSpace(r.URL) == "":
		return bad("registry.url", "required")
	case err != nil:
		return bad("registry.url", "%v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("registry.url", "%q: want an http:// or https:// URL", r.URL)
	case r.TLS != nil && u.Scheme != "https":
		return bad("registry.tls", "set, but registry.url %q is not https", r.URL)
	case r.BasicAuthUserInfo != "" && !strings.Contains(r.BasicAuthUserInfo, ":"):
		return bad("registry.basic_auth_user_info", "want user:password")
	}
	if r.TLS != nil {
		if _, err := r.TLS.Config(); err != nil {
			return fmt.Errorf("%w: registry.tls.%w", ErrConfig, err)
		}
	}
	return nil
}

// clientOptions are the options of the registry client that r describes.
func (r RegistrySpec) clientOptions() ([]avroregistry.ClientFunc, error) {
	var opts []avroregistry.ClientFunc
	if r.TLS != nil {
		tc, err := r.TLS.Config()
		if err != nil {
			return nil, fmt.Errorf("registry.tls.%w", err)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tc
		opts = append(opts, avroregistry.WithHTTPClient(&http.Client{Transport: tr, Timeout: 10 * time.Second}))
	}
	if user, pass, ok := strings.Cut(r.BasicAuthUserInfo, ":"); ok {
		opts = append(opts, avroregistry.WithBasicAuth(user, pass))
	}
	return opts, nil
}

func (c *Config) validateEnrich(at string, p *enricher.Pipeline) error {
	if err := p.Validate(); err != nil {
		var fe *enricher.FieldError
		if errors.As(err, &fe) {
			return bad(at+"."+fe.Field, "%s", fe.Problem)
		}
		return fmt.Errorf("%w: %s: %w", ErrConfig, at, err)
	}
	for _, name := range slices.Sorted(maps.Keys(p.Resolvers)) {
		r := p.Resolvers[name]
		rat := at + ".resolvers." + name
		switch {
		case r.RPC == "":
			return bad(rat+".rpc", "required (the full method name, <package>.<Service>/<Method>)")
		case r.Method == enricher.MethodBatchGet && r.RecordsField == "":
			return bad(rat+".records_field", "required for method batch_get")
		case r.Method == enricher.MethodDependents && r.DependentsField == "":
			return bad(rat+".dependents_field", "required for method dependents")
		}
		if r.DescriptorSet != "" {
			if _, err := os.Stat(r.DescriptorSet); err != nil {
				return bad(rat+".descriptor_set", "%v", err)
			}
		}
		if r.TLS != nil {
			if _, err := r.TLS.Config(); err != nil {
				return fmt.Errorf("%w: %s.tls.%w", ErrConfig, rat, err)
			}
		}
	}
	return nil
}

func (p *SinkPipeline) validate(at string) error {
	switch {
	case p.Name == "":
		return bad(at+".name", "required")
	case len(p.Inputs) == 0:
		return bad(at+".inputs", "needs at least one topic")
	case len(p.Sinks) == 0:
		return bad(at+".sinks", "needs at least one sink")
	case p.Concurrency < 1:
		return bad(at+".concurrency", "%d, need at least 1", p.Concurrency)
	case p.DeadLetter.Attempts < 1:
		return bad(at+".dead_letter.attempts", "%d, need at least 1", p.DeadLetter.Attempts)
	}
	for i, in := range p.Inputs {
		if strings.TrimSpace(in) == "" {
			return bad(fmt.Sprintf("%s.inputs[%d]", at, i), "is empty")
		}
	}
	d := p.Dedupe
	switch {
	case d.Type != DedupeMemory && d.Type != DedupeRedis:
		return bad(at+".dedupe.type", "%q is not a dedupe store type (memory, redis)", d.Type)
	case d.Type == DedupeRedis && strings.TrimSpace(d.Addr) == "":
		return bad(at+".dedupe.addr", "required for type redis")
	case d.Type == DedupeMemory && (d.Addr != "" || d.KeyPrefix != ""):
		return bad(at+".dedupe.addr", "only type redis uses addr and key_prefix (type is memory)")
	case d.Lease < 0:
		return bad(at+".dedupe.lease", "%v is negative", d.Lease)
	case d.TTL < 0:
		return bad(at+".dedupe.ttl", "%v is negative", d.TTL)
	case d.Type == DedupeMemory && (d.Username != "" || d.Password != "" || d.TLS != nil):
		return bad(at+".dedupe", "only type redis uses username, password and tls (type is memory)")
	case d.Username != "" && d.Password == "":
		return bad(at+".dedupe.password", "required with username %q", d.Username)
	}
	if d.TLS != nil {
		if _, err := d.TLS.Config(); err != nil {
			return fmt.Errorf("%w: %s.dedupe.tls.%w", ErrConfig, at, err)
		}
	}
	names := map[string]bool{}
	for i, s := range p.Sinks {
		sat := fmt.Sprintf("%s.sinks[%d]", at, i)
		if err := s.validate(sat); err != nil {
			return err
		}
		if names[s.Name] {
			return bad(sat+".name", "%q is used twice", s.Name)
		}
		names[s.Name] = true
	}
	return nil
}

func (s SinkSpec) validate(at string) error {
	if !slices.Contains(sinkTypes, s.Type) {
		if s.Type == "" {
			return bad(at+".type", "required (%s)", strings.Join(sinkTypes, ", "))
		}
		return bad(at+".type", "%q is not a sink type (%s)", s.Type, strings.Join(sinkTypes, ", "))
	}
	used := map[string]string{"url": s.URL, "index_prefix": s.IndexPrefix, "path": s.Path,
		"root": s.Root, "table": s.Table, "topic": s.Topic, "username": s.Username, "password": s.Password, "api_key": s.APIKey}
	own := map[string][]string{SinkES: {"url", "index_prefix", "username", "password", "api_key"}, SinkBleve: {"path"},
		SinkHive: {"root", "table"}, SinkKafka: {"topic"}}
	required := map[string][]string{SinkES: {"url"}, SinkBleve: {"path"},
		SinkHive: {"root", "table"}, SinkKafka: {"topic"}}
	for _, k := range slices.Sorted(maps.Keys(used)) {
		if used[k] != "" && !slices.Contains(own[s.Type], k) {
			return bad(at+"."+k, "type %s does not use it", s.Type)
		}
	}
	for _, k := range required[s.Type] {
		if strings.TrimSpace(used[k]) == "" {
			return bad(at+"."+k, "required for type %s", s.Type)
		}
	}
	switch {
	case s.Type != SinkES && s.TLS != nil:
		return bad(at+".tls", "type %s does not use it", s.Type)
	case s.Username != "" && s.Password == "":
		return bad(at+".password", "required with username %q", s.Username)
	case s.Password != "" && s.Username == "":
		return bad(at+".username", "required with password")
	case s.APIKey != "" && s.Username != "":
		return bad(at+".api_key", "set with username: use one of basic auth and an API key")
	case s.TLS != nil && !strings.HasPrefix(strings.ToLower(s.URL), "https://"):
		return bad(at+".tls", "set, but url %q is not https", s.URL)
	}
	if s.TLS != nil {
		if _, err := s.TLS.Config(); err != nil {
			return fmt.Errorf("%w: %s.tls.%w", ErrConfig, at, err)
		}
	}
	return nil
}
