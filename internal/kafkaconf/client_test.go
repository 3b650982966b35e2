package kafkaconf_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"gopkg.in/yaml.v3"

	"github.com/slatehq/slate/internal/devcert"
	"github.com/slatehq/slate/internal/kafkaconf"
)

func TestValidateNamesTheSetting(t *testing.T) {
	files, err := devcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(t.TempDir(), "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := "127.0.0.1:9092"
	tests := []struct {
		name string
		c    kafkaconf.Client
		want string // "" for valid
	}{
		{"plaintext", kafkaconf.Client{Brokers: b}, ""},
		{"no brokers", kafkaconf.Client{}, "brokers: required"},
		{"empty broker entry", kafkaconf.Client{Brokers: b + ","}, "brokers"},
		{"sasl", kafkaconf.Client{Brokers: b, SASL: kafkaconf.SASL{Username: "u", Password: "p"}}, ""},
		{"sasl lower case", kafkaconf.Client{Brokers: b, SASL: kafkaconf.SASL{Mechanism: "scram-sha-512", Username: "u", Password: "p"}}, ""},
		{"no password", kafkaconf.Client{Brokers: b, SASL: kafkaconf.SASL{Username: "u"}}, "sasl.password: required when sasl.username is set"},
		{"no user", kafkaconf.Client{Brokers: b, SASL: kafkaconf.SASL{Password: "p"}}, "sasl.username: required when sasl.password is set"},
		{"mechanism alone", kafkaconf.Client{Brokers: b, SASL: kafkaconf.SASL{Mechanism: "PLAIN"}}, "sasl.username: required when sasl.mechanism is set"},
		{"unknown mechanism", kafkaconf.Client{Brokers: b, SASL: kafkaconf.SASL{Mechanism: "GSSAPI", Username: "u", Password: "p"}}, `sasl.mechanism "GSSAPI"`},
		{"tls system roots", kafkaconf.Client{Brokers: b, TLS: &kafkaconf.TLS{}}, ""},
		{"mutual tls", kafkaconf.Client{Brokers: b, TLS: &kafkaconf.TLS{CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey}}, ""},
		{"cert without key", kafkaconf.Client{Brokers: b, TLS: &kafkaconf.TLS{CertFile: files.ClientCert}}, "tls.cert_file and tls.key_file go together"},
		{"unreadable CA", kafkaconf.Client{Brokers: b, TLS: &kafkaconf.TLS{CAFile: "/nonexistent/ca.pem"}}, "tls.ca_file: open /nonexistent/ca.pem"},
		{"CA not PEM", kafkaconf.Client{Brokers: b, TLS: &kafkaconf.TLS{CAFile: notPEM}}, "tls.ca_file " + notPEM + ": no PEM certificate"},
		{"unreadable key", kafkaconf.Client{Brokers: b, TLS: &kafkaconf.TLS{CertFile: files.ClientCert, KeyFile: "/nonexistent/k.pem"}}, "tls.key_file: open /nonexistent/k.pem"},
		{"key of another cert", kafkaconf.Client{Brokers: b, TLS: &kafkaconf.TLS{CertFile: files.ClientCert, KeyFile: files.ServerKey}}, "tls.cert_file " + files.ClientCert},
		{"extra", kafkaconf.Client{Brokers: b, Extra: map[string]string{"socket.timeout.ms": "5000"}}, ""},
		{"extra protocol without typed settings", kafkaconf.Client{Brokers: b, Extra: map[string]string{"security.protocol": "SSL"}}, ""},
		{"extra against typed", kafkaconf.Client{Brokers: b, SASL: kafkaconf.SASL{Username: "u", Password: "p"},
			Extra: map[string]string{"sasl.password": "q"}}, "extra: sasl.password is set by the typed settings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate() = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

func TestValidateAsUsesTheFrontEndsNames(t *testing.T) {
	c := kafkaconf.Client{Brokers: "b:9092", SASL: kafkaconf.SASL{Username: "u"}}
	err := c.ValidateAs(map[string]string{"sasl.username": "--kafka-sasl-user", "sasl.password": "--kafka-sasl-password"})
	if err == nil || err.Error() != "--kafka-sasl-password: required when --kafka-sasl-user is set" {
		t.Fatalf("ValidateAs = %v", err)
	}
}

func TestConfigMap(t *testing.T) {
	files, err := devcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sasl := kafkaconf.SASL{Mechanism: "scram-sha-512", Username: "svc", Password: "pw"}
	mtls := &kafkaconf.TLS{CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey}
	tests := []struct {
		name string
		c    kafkaconf.Client
		want kafka.ConfigMap
	}{
		{"plaintext", kafkaconf.Client{Brokers: "b:1", ClientID: "x"}, kafka.ConfigMap{"bootstrap.servers": "b:1", "client.id": "x"}},
		{"sasl", kafkaconf.Client{Brokers: "b:1", SASL: sasl}, kafka.ConfigMap{"bootstrap.servers": "b:1",
			"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "svc", "sasl.password": "pw"}},
		{"default mechanism", kafkaconf.Client{Brokers: "b:1", SASL: kafkaconf.SASL{Username: "u", Password: "p"}}, kafka.ConfigMap{"bootstrap.servers": "b:1",
			"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "SCRAM-SHA-256", "sasl.username": "u", "sasl.password": "p"}},
		{"tls", kafkaconf.Client{Brokers: "b:1", TLS: &kafkaconf.TLS{}}, kafka.ConfigMap{"bootstrap.servers": "b:1", "security.protocol": "SSL"}},
		{"sasl and mutual tls", kafkaconf.Client{Brokers: "b:1", SASL: sasl, TLS: mtls, Extra: map[string]string{"socket.timeout.ms": "5000"}},
			kafka.ConfigMap{"bootstrap.servers": "b:1", "security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512",
				"sasl.username": "svc", "sasl.password": "pw", "ssl.ca.location": files.CA,
				"ssl.certificate.location": files.ClientCert, "ssl.key.location": files.ClientKey, "socket.timeout.ms": "5000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.c.ConfigMap()
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Errorf("ConfigMap() = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
		})
	}
	if _, err := (kafkaconf.Client{Brokers: "b:1", Extra: map[string]string{"a": "b"}}).FranzOptions(); err != kafkaconf.ErrFranzExtra {
		t.Errorf("FranzOptions with Extra = %v, want ErrFranzExtra", err)
	}
}

func TestYAML(t *testing.T) {
	var c kafkaconf.Client
	err := yaml.Unmarshal([]byte(`
brokers: k1:9093,k2:9093
client_id: slate-cdc
sasl: {mechanism: SCRAM-SHA-512, username: cdc, password: pw}
tls: {ca_file: /etc/kafka/ca.pem}
extra: {socket.keepalive.enable: "true"}
`), &c)
	if err != nil {
		t.Fatal(err)
	}
	want := kafkaconf.Client{Brokers: "k1:9093,k2:9093", ClientID: "slate-cdc",
		SASL: kafkaconf.SASL{Mechanism: "SCRAM-SHA-512", Username: "cdc", Password: "pw"},
		TLS:  &kafkaconf.TLS{CAFile: "/etc/kafka/ca.pem"}, Extra: map[string]string{"socket.keepalive.enable": "true"}}
	if c.Brokers != want.Brokers || c.ClientID != want.ClientID || c.SASL != want.SASL || c.TLS == nil || *c.TLS != *want.TLS ||
		c.Extra["socket.keepalive.enable"] != "true" {
		t.Fatalf("decoded %+v, want %+v", c, want)
	}
}
