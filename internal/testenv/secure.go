package testenv

import (
	"crypto/rand"
	"crypto/tls"
	"testing"

	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/internal/devcert"
)

// SecureKafka is an embedded broker that requires SASL over TLS (clients
// speak SASL_SSL), with what a client needs to reach it.
type SecureKafka struct {
	Brokers string
	// CAFile signs the broker's certificate (for 127.0.0.1); ClientCert
	// and ClientKey are a client certificate of the same CA, for tests
	// that need one.
	CAFile, ClientCert, ClientKey string
	Mechanism, User, Password     string
}

// StartSecureKafka starts an embedded broker on a free port that serves
// TLS with a throwaway CA and requires SASL SCRAM-SHA-512 with a random
// password; it stops at the end of the test. It ignores
// SLATE_KAFKA_BROKERS: the account exists only on this broker.
func StartSecureKafka(tb testing.TB, opts ...broker.Option) SecureKafka {
	tb.Helper()
	files, err := devcert.Write(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(files.ServerCert, files.ServerKey)
	if err != nil {
		tb.Fatal(err)
	}
	k := SecureKafka{CAFile: files.CA, ClientCert: files.ClientCert, ClientKey: files.ClientKey,
		Mechanism: broker.SASLScramSHA512, User: "slate", Password: rand.Text()}
	b, err := broker.Start(append([]broker.Option{
		broker.WithTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}),
		broker.WithSASL(k.Mechanism, k.User, k.Password),
	}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Close)
	k.Brokers = b.Addr()
	return k
}
