package kafkaconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// The SASL mechanisms a [Client] speaks.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// DefaultSASLMechanism is the mechanism of a [SASL] that names none.
const DefaultSASLMechanism = SASLScramSHA256

// Client is what every slate Kafka client needs to reach a cluster: where
// it is, who the client is, and how it authenticates and encrypts. The
// producers, consumers, the dead-letter reader (librdkafka, [Client.ConfigMap])
// and the registry's Kafka store (franz-go, [Client.FranzOptions]) are all
// configured from one.
type Client struct {
	// Brokers is the bootstrap list, host:port[,host:port...]. Required.
	Brokers string `yaml:"brokers"`
	// ClientID is the Kafka client.id; empty keeps the client's own.
	ClientID string `yaml:"client_id,omitempty"`
	// SASL authenticates the client; the zero value does not.
	SASL SASL `yaml:"sasl,omitempty"`
	// TLS encrypts the connections; nil speaks plaintext.
	TLS *TLS `yaml:"tls,omitempty"`
	// Extra are librdkafka settings passed through as they are, after
	// the ones above. A key those settings produce (security.protocol,
	// sasl.*, ssl.*.location, bootstrap.servers, client.id) may be set
	// here only while its typed field is unset. franz-go clients have no
	// use for them: [Client.FranzOptions] refuses a Client with Extra.
	Extra map[string]string `yaml:"extra,omitempty"`
}

// SASL is a SASL account. It is on when Username is set.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (any case);
	// empty is [DefaultSASLMechanism].
	Mechanism string `yaml:"mechanism,omitempty"`
	Username  string `yaml:"username,omitempty"`
	Password  string `yaml:"password,omitempty"`
}

// On reports whether s names an account, or part of one.
func (s SASL) On() bool { return s != SASL{} }

// TLS is the client side of TLS toward the brokers.
type TLS struct {
	// CAFile is the PEM bundle of the CAs that sign the brokers'
	// certificates; empty trusts the system's roots.
	CAFile string `yaml:"ca_file,omitempty"`
	// CertFile and KeyFile are the PEM certificate and key the client
	// presents (mutual TLS); both or neither.
	CertFile string `yaml:"cert_file,omitempty"`
	KeyFile  string `yaml:"key_file,omitempty"`
}

// mechanism returns s's mechanism in its canonical spelling.
func (s SASL) mechanism() string {
	if s.Mechanism == "" {
		return DefaultSASLMechanism
	}
	return strings.ToUpper(s.Mechanism)
}

// Validate reports the first setting that cannot work, by its name
// ("sasl.password: required when sasl.username is set"); it reads every
// file TLS names.
func (c Client) Validate() error { return c.ValidateAs(nil) }

// ValidateAs is [Client.Validate] with the settings called by the names
// a front end knows them by (the command-line flags): names maps a setting
// (brokers, client_id, sasl.mechanism, sasl.username, sasl.password,
// tls.ca_file, tls.cert_file, tls.key_file, extra) to its name there; a
// setting names does not map keeps its own.
func (c Client) ValidateAs(names map[string]string) error {
	_, err := c.load(names)
	return err
}

// loadedClient is a validated Client with its TLS files read.
type loadedClient struct {
	Client
	tls *tls.Config // nil: plaintext
}

func (c Client) load(names map[string]string) (*loadedClient, error) {
	n := func(setting string) string {
		if v, ok := names[setting]; ok {
			return v
		}
		return setting
	}
	if strings.TrimSpace(c.Brokers) == "" {
		return nil, fmt.Errorf("%s: required", n("brokers"))
	}
	for _, b := range strings.Split(c.Brokers, ",") {
		if strings.TrimSpace(b) == "" {
			return nil, fmt.Errorf("%s %q: an empty entry", n("brokers"), c.Brokers)
		}
	}
	l := &loadedClient{Client: c}
	if s := c.SASL; s.On() {
		switch {
		case s.Username == "" && s.Password != "":
			return nil, fmt.Errorf("%s: required when %s is set", n("sasl.username"), n("sasl.password"))
		case s.Username == "":
			return nil, fmt.Errorf("%s: required when %s is set", n("sasl.username"), n("sasl.mechanism"))
		case s.Password == "":
			return nil, fmt.Errorf("%s: required when %s is set", n("sasl.password"), n("sasl.username"))
		}
		switch s.mechanism() {
		case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		default:
			return nil, fmt.Errorf("%s %q: want %s, %s or %s", n("sasl.mechanism"), s.Mechanism,
				SASLPlain, SASLScramSHA256, SASLScramSHA512)
		}
	}
	if t := c.TLS; t != nil {
		if (t.CertFile == "") != (t.KeyFile == "") {
			return nil, fmt.Errorf("%s and %s go together", n("tls.cert_file"), n("tls.key_file"))
		}
		l.tls = &tls.Config{MinVersion: tls.VersionTLS12}
		if t.CAFile != "" {
			b, err := os.ReadFile(t.CAFile)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", n("tls.ca_file"), err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(b) {
				return nil, fmt.Errorf("%s %s: no PEM certificate", n("tls.ca_file"), t.CAFile)
			}
			l.tls.RootCAs = pool
		}
		if t.CertFile != "" {
			for _, f := range []struct{ setting, path string }{{"tls.cert_file", t.CertFile}, {"tls.key_file", t.KeyFile}} {
				fh, err := os.Open(f.path)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", n(f.setting), err)
				}
				_ = fh.Close()
			}
			cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("%s %s, %s %s: %w", n("tls.cert_file"), t.CertFile, n("tls.key_file"), t.KeyFile, err)
			}
			l.tls.Certificates = []tls.Certificate{cert}
		}
	}
	owned := l.owned()
	for _, k := range slices.Sorted(maps.Keys(c.Extra)) {
		if strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("%s: an empty key", n("extra"))
		}
		if _, ok := owned[k]; ok {
			return nil, fmt.Errorf("%s: %s is set by the typed settings; set it there or drop them", n("extra"), k)
		}
	}
	return l, nil
}

// owned returns the librdkafka settings of the typed fields.
func (l *loadedClient) owned() kafka.ConfigMap {
	cm := kafka.ConfigMap{"bootstrap.servers": l.Brokers}
	if l.ClientID != "" {
		cm["client.id"] = l.ClientID
	}
	saslOn, tlsOn := l.SASL.On(), l.TLS != nil
	switch {
	case saslOn && tlsOn:
		cm["security.protocol"] = "SASL_SSL"
	case saslOn:
		cm["security.protocol"] = "SASL_PLAINTEXT"
	case tlsOn:
		cm["security.protocol"] = "SSL"
	}
	if saslOn {
		cm["sasl.mechanisms"] = l.SASL.mechanism()
		cm["sasl.username"] = l.SASL.Username
		cm["sasl.password"] = l.SASL.Password
	}
	if t := l.TLS; tlsOn {
		if t.CAFile != "" {
			cm["ssl.ca.location"] = t.CAFile
		}
		if t.CertFile != "" {
			cm["ssl.certificate.location"] = t.CertFile
			cm["ssl.key.location"] = t.KeyFile
		}
	}
	return cm
}

// ConfigMap validates c and returns its librdkafka settings:
// bootstrap.servers, client.id, security.protocol (SASL_SSL,
// SASL_PLAINTEXT or SSL), sasl.mechanisms, sasl.username, sasl.password,
// ssl.ca.location, ssl.certificate.location, ssl.key.location, then
// Extra. Pass it to [Producer] or [Consumer] as an override.
func (c Client) ConfigMap() (kafka.ConfigMap, error) {
	l, err := c.load(nil)
	if err != nil {
		return nil, err
	}
	cm := l.owned()
	for k, v := range c.Extra {
		cm[k] = v
	}
	return cm, nil
}

// ErrFranzExtra is returned by [Client.FranzOptions] for a Client with
// Extra settings, which only librdkafka understands.
var ErrFranzExtra = errors.New("extra: librdkafka settings do not apply to this client (franz-go)")

// FranzOptions validates c and returns it as franz-go client options: the
// seed brokers, the client id, kgo.DialTLSConfig and kgo.SASL.
func (c Client) FranzOptions() ([]kgo.Opt, error) {
	l, err := c.load(nil)
	if err != nil {
		return nil, err
	}
	if len(c.Extra) > 0 {
		return nil, ErrFranzExtra
	}
	var brokers []string
	for _, b := range strings.Split(c.Brokers, ",") {
		brokers = append(brokers, strings.TrimSpace(b))
	}
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...)}
	if c.ClientID != "" {
		opts = append(opts, kgo.ClientID(c.ClientID))
	}
	if l.tls != nil {
		opts = append(opts, kgo.DialTLSConfig(l.tls))
	}
	if s := c.SASL; s.On() {
		var m sasl.Mechanism
		switch s.mechanism() {
		case SASLPlain:
			m = plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism()
		case SASLScramSHA256:
			m = scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism()
		default:
			m = scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism()
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

// Security collects what the WithSASL and WithTLS options of slate's
// client packages set, for [Security.Client].
type Security struct {
	SASL *SASL // nil: WithSASL not used
	TLS  *TLS  // nil: WithTLS not used
}

// Client returns the [Client] of brokers with s's security settings, and
// validates it. A SASL option given an empty account is an error, not
// SASL turned off.
func (s Security) Client(brokers, clientID string) (Client, error) {
	c := Client{Brokers: brokers, ClientID: clientID, TLS: s.TLS}
	if s.SASL != nil {
		if !s.SASL.On() {
			return Client{}, errors.New("sasl.username: required (SASL option with an empty account)")
		}
		c.SASL = *s.SASL
	}
	return c, c.Validate()
}
