package stack

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	avroregistry "github.com/hamba/avro/v2/registry"

	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/internal/devcert"
	"github.com/slatehq/slate/internal/kafkaconf"
	"github.com/slatehq/slate/schema/registry"
)

// Security turns on TLS and authentication across the stack; errors name
// the `slate up` flag of the field that is wrong. The zero value serves
// every part in plaintext and without authentication, on 127.0.0.1 only.
type Security struct {
	// CertFile and KeyFile (--tls-cert, --tls-key; both or neither) are
	// the PEM certificate and key every server of the stack presents: the
	// embedded broker (SSL, or SASL_SSL with SASL), the registry (HTTPS),
	// the titles gRPC service and /metrics.
	CertFile, KeyFile string
	// CAFile (--tls-ca) is the PEM bundle of the CAs the stack's clients
	// trust for the servers they dial (Kafka's ssl.ca.location, the
	// registry client's schema.registry.ssl.ca.location, the enricher's
	// gRPC client). Empty: the system's roots. With an external --brokers,
	// setting it also turns TLS on toward the brokers.
	CAFile string
	// ClientCAFile (--tls-client-ca) makes every server of the stack
	// require a client certificate signed by one of these CAs (mutual
	// TLS). The stack's own clients then present ClientCertFile and
	// ClientKeyFile (--tls-client-cert, --tls-client-key).
	ClientCAFile                  string
	ClientCertFile, ClientKeyFile string
	// SASLMechanism (--sasl-mechanism: PLAIN, SCRAM-SHA-256, the default,
	// or SCRAM-SHA-512), SASLUser and SASLPassword (--sasl-user,
	// --sasl-password; both or neither): the embedded broker requires
	// SASL with this account, and every Kafka client of the stack
	// (producers, consumers, the registry's store) authenticates with it.
	SASLMechanism, SASLUser, SASLPassword string
	// RegistryUserInfo (--registry-basic-auth-user-info, Confluent's
	// basic.auth.user.info) is "user:password": the stack's registry
	// requires HTTP basic auth with this account, and the stack's registry
	// client sends it.
	RegistryUserInfo string
}

// loaded is a validated Security with its files read.
type loaded struct {
	Security
	server *tls.Config // nil: plaintext servers
	client *tls.Config // what the stack's clients dial with
}

// Validate reports the first setting that cannot work, naming its flag; it
// reads every named file.
func (s Security) Validate() error {
	_, err := s.load()
	return err
}

func (s Security) load() (*loaded, error) {
	l := &loaded{Security: s, client: &tls.Config{MinVersion: tls.VersionTLS12}}
	switch {
	case (s.CertFile == "") != (s.KeyFile == ""):
		return nil, errors.New("stack: --tls-cert and --tls-key go together")
	case (s.ClientCertFile == "") != (s.ClientKeyFile == ""):
		return nil, errors.New("stack: --tls-client-cert and --tls-client-key go together")
	case s.ClientCAFile != "" && s.CertFile == "":
		return nil, errors.New("stack: --tls-client-ca needs --tls-cert and --tls-key (servers to verify clients)")
	case s.ClientCAFile != "" && s.ClientCertFile == "":
		return nil, errors.New("stack: --tls-client-ca needs --tls-client-cert and --tls-client-key (the certificate the stack's own clients present)")
	}
	if s.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("stack: --tls-cert %s, --tls-key %s: %w", s.CertFile, s.KeyFile, err)
		}
		l.server = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if s.ClientCAFile != "" {
		pool, err := loadPool("--tls-client-ca", s.ClientCAFile)
		if err != nil {
			return nil, err
		}
		l.server.ClientCAs, l.server.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	if s.CAFile != "" {
		pool, err := loadPool("--tls-ca", s.CAFile)
		if err != nil {
			return nil, err
		}
		l.client.RootCAs = pool
	}
	if s.ClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(s.ClientCertFile, s.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("stack: --tls-client-cert %s, --tls-client-key %s: %w", s.ClientCertFile, s.ClientKeyFile, err)
		}
		l.client.Certificates = []tls.Certificate{cert}
	}
	if s.SASLUser != "" || s.SASLPassword != "" {
		if l.SASLMechanism == "" {
			l.SASLMechanism = broker.SASLScramSHA256
		}
		l.SASLMechanism = strings.ToUpper(l.SASLMechanism)
		// The clients' half of the account, checked as every Kafka
		// client's settings are.
		c := kafkaconf.Client{Brokers: "embedded", SASL: l.kafkaSASL()}
		if err := c.ValidateAs(kafkaFlags); err != nil {
			return nil, fmt.Errorf("stack: %w", err)
		}
	}
	if s.RegistryUserInfo != "" {
		if _, err := s.registryUsers(); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func loadPool(flag, file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("stack: %s: %w", flag, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("stack: %s %s: no PEM certificate", flag, file)
	}
	return pool, nil
}

// registryUser splits RegistryUserInfo into user and password.
func (s Security) registryUser() (user, password string) {
	user, password, _ = strings.Cut(s.RegistryUserInfo, ":")
	return user, password
}

// registryUsers returns the registry's one account.
func (s Security) registryUsers() (*registry.Users, error) {
	user, password := s.registryUser()
	if !strings.Contains(s.RegistryUserInfo, ":") || user == "" || password == "" {
		return nil, errors.New("stack: --registry-basic-auth-user-info: want user:password, both non-empty")
	}
	if strings.HasPrefix(password, "$2") {
		// Users would take it for a bcrypt hash.
		return nil, errors.New("stack: --registry-basic-auth-user-info: the password must not start with $2")
	}
	u := &registry.Users{}
	if err := u.Add(user, password, registry.RoleReadWrite); err != nil {
		return nil, fmt.Errorf("stack: --registry-basic-auth-user-info: %w", err)
	}
	return u, nil
}

// kafkaTLS reports whether the stack's Kafka clients use TLS: toward the
// embedded broker when it serves TLS, toward external brokers when a CA
// is named.
func (l *loaded) kafkaTLS(external bool) bool {
	if external {
		return l.CAFile != ""
	}
	return l.server != nil
}

// brokerOptions are the embedded broker's TLS and SASL options.
func (l *loaded) brokerOptions() []broker.Option {
	var opts []broker.Option
	if l.server != nil {
		opts = append(opts, broker.WithTLS(l.server))
	}
	if l.SASLUser != "" {
		opts = append(opts, broker.WithSASL(l.SASLMechanism, l.SASLUser, l.SASLPassword))
	}
	return opts
}

// kafkaFlags are the `slate up` flags of the Kafka client settings.
var kafkaFlags = map[string]string{
	"sasl.mechanism": "--sasl-mechanism", "sasl.username": "--sasl-user", "sasl.password": "--sasl-password",
	"tls.ca_file": "--tls-ca", "tls.cert_file": "--tls-client-cert", "tls.key_file": "--tls-client-key",
}

func (l *loaded) kafkaSASL() kafkaconf.SASL {
	return kafkaconf.SASL{Mechanism: l.SASLMechanism, Username: l.SASLUser, Password: l.SASLPassword}
}

// kafka returns the settings every Kafka client of the stack uses to
// reach brokers: SASL when the stack has an account, TLS (with CAFile and
// the client certificate) when kafkaTLS says so.
func (l *loaded) kafka(brokers string, external bool) kafkaconf.Client {
	c := kafkaconf.Client{Brokers: brokers}
	if l.SASLUser != "" {
		c.SASL = l.kafkaSASL()
	}
	if l.kafkaTLS(external) {
		c.TLS = &kafkaconf.TLS{CAFile: l.CAFile, CertFile: l.ClientCertFile, KeyFile: l.ClientKeyFile}
	}
	return c
}

// StoreOptions are the options that give the registry's Kafka store c's
// SASL and TLS settings.
func StoreOptions(c kafkaconf.Client) []registry.KafkaStoreOption {
	var opts []registry.KafkaStoreOption
	if c.SASL.On() {
		opts = append(opts, registry.KafkaSASL(c.SASL.Mechanism, c.SASL.Username, c.SASL.Password))
	}
	if t := c.TLS; t != nil {
		opts = append(opts, registry.KafkaTLS(t.CAFile, t.CertFile, t.KeyFile))
	}
	return opts
}

// registryClientOptions make the stack's registry client trust CAFile,
// present the client certificate and send the basic auth account.
func (l *loaded) registryClientOptions() []avroregistry.ClientFunc {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = l.client.Clone()
	// The same request timeout as the hamba client's default.
	opts := []avroregistry.ClientFunc{avroregistry.WithHTTPClient(&http.Client{Transport: tr, Timeout: 10 * time.Second})}
	if l.RegistryUserInfo != "" {
		opts = append(opts, avroregistry.WithBasicAuth(l.registryUser()))
	}
	return opts
}

// authenticatesClients reports whether the servers verify who connects.
func (l *loaded) authenticatesClients() bool { return l.ClientCAFile != "" }

// isLoopback reports whether host names only the loopback interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// DemoSecurity writes a throwaway CA, a server and a client certificate
// (see [devcert.Write]) into dir, and returns the Security of a stack that
// uses all of them: TLS and mutual TLS on every server, SASL SCRAM-SHA-256
// on the embedded broker and basic auth on the registry, with random
// passwords. The accounts are also written to dir/credentials (mode 0600),
// for clients outside the stack. Every call makes new ones.
func DemoSecurity(dir string) (Security, error) {
	files, err := devcert.Write(dir)
	if err != nil {
		return Security{}, err
	}
	sec := Security{
		CertFile: files.ServerCert, KeyFile: files.ServerKey, CAFile: files.CA,
		ClientCAFile: files.CA, ClientCertFile: files.ClientCert, ClientKeyFile: files.ClientKey,
		SASLMechanism: broker.SASLScramSHA256, SASLUser: "slate", SASLPassword: rand.Text(),
		RegistryUserInfo: "slate:" + rand.Text(),
	}
	creds := fmt.Sprintf("# slate up --secure: throwaway accounts, new on every start\n"+
		"sasl.mechanism=%s\nsasl.username=%s\nsasl.password=%s\nbasic.auth.user.info=%s\n"+
		"ssl.ca.location=%s\nssl.certificate.location=%s\nssl.key.location=%s\n",
		sec.SASLMechanism, sec.SASLUser, sec.SASLPassword, sec.RegistryUserInfo, files.CA, files.ClientCert, files.ClientKey)
	path := filepath.Join(dir, "credentials")
	if err := os.WriteFile(path, []byte(creds), 0o600); err != nil {
		return Security{}, fmt.Errorf("stack: demo credentials: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return Security{}, fmt.Errorf("stack: demo credentials: %w", err)
	}
	return sec, nil
}

// RegistryClientOptions are the options of a client of a registry secured
// as s says: it trusts CAFile, presents ClientCertFile and sends
// RegistryUserInfo. Only those fields are read; an error names the flag.
func (s Security) RegistryClientOptions() ([]avroregistry.ClientFunc, error) {
	l, err := Security{CAFile: s.CAFile, ClientCertFile: s.ClientCertFile, ClientKeyFile: s.ClientKeyFile,
		RegistryUserInfo: s.RegistryUserInfo}.load()
	if err != nil {
		return nil, err
	}
	return l.registryClientOptions(), nil
}
