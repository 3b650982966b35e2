package stack_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/slatehq/slate/internal/stack"
	"github.com/slatehq/slate/internal/testenv"
	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
)

// The whole system with TLS and authentication on every part: a change
// written over mutual TLS reaches the sink, and a client short of the CA,
// its certificate or its credentials is refused by the registry (TLS
// handshake, then 401), the broker (SASL) and the titles service (TLS
// handshake).
func TestSecureStack(t *testing.T) {
	dir := t.TempDir()
	sec, err := stack.DemoSecurity(filepath.Join(dir, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := stack.Start(context.Background(), stack.Config{DataDir: dir, Security: sec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	ctx := context.Background()

	// The pipeline works with the credentials.
	created, err := s.Titles.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: &titlesv1.Title{
		Name: "Behind Locked Doors", Kind: "FEATURE", Status: "DEVELOPMENT", ReleaseDate: "2027-03-01"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]stack.Expectation{created.GetTitle().GetId(): {Version: created.GetTitle().GetVersion()}}
	testenv.WaitFor(t, 20*time.Second, "the title in the sink", func() bool { return len(s.Tracker.Missing(want)) == 0 })
	if _, _, found, err := s.Search.Get(ctx, "title", created.GetTitle().GetId()); err != nil || !found {
		t.Fatalf("search index: found %v, err %v", found, err)
	}

	caPEM, err := os.ReadFile(sec.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	clientCert, err := tls.LoadX509KeyPair(sec.ClientCertFile, sec.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	trusted := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	full := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{clientCert}, MinVersion: tls.VersionTLS12}

	t.Run("registry", func(t *testing.T) {
		if !strings.HasPrefix(s.RegistryURL, "https://") {
			t.Fatalf("registry URL %s, want https", s.RegistryURL)
		}
		user, password, _ := strings.Cut(sec.RegistryUserInfo, ":")
		get := func(tc *tls.Config, url, user, password string) (int, error) {
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			if user != "" {
				req.SetBasicAuth(user, password)
			}
			resp, err := c.Do(req)
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		}
		subjects := s.RegistryURL + "/subjects"
		if code, err := get(nil, "http://"+strings.TrimPrefix(subjects, "https://"), user, password); err == nil && code == http.StatusOK {
			t.Error("plain HTTP was served")
		}
		if _, err := get(&tls.Config{MinVersion: tls.VersionTLS12}, subjects, user, password); err == nil {
			t.Error("a client that does not trust the CA was served")
		}
		if _, err := get(trusted, subjects, user, password); err == nil {
			t.Error("a client without a certificate was served (mutual TLS)")
		}
		for name, auth := range map[string][2]string{"no basic auth": {}, "a wrong password": {user, "guess"}} {
			if code, err := get(full, subjects, auth[0], auth[1]); err != nil || code != http.StatusUnauthorized {
				t.Errorf("with %s: %d, %v; want 401", name, code, err)
			}
		}
		if code, err := get(full, subjects, user, password); err != nil || code != http.StatusOK {
			t.Errorf("with every credential: %d, %v; want 200", code, err)
		}
	})

	t.Run("graphql", func(t *testing.T) {
		if !strings.HasPrefix(s.GraphQLURL, "https://") {
			t.Fatalf("graphql URL %s, want https", s.GraphQLURL)
		}
		post := func(tc *tls.Config) (int, error) {
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
			resp, err := c.Post(s.GraphQLURL+"/query", "application/json", strings.NewReader(`{"query":"{ title(id: \"t-1\") { id } }"}`))
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		}
		if _, err := post(trusted); err == nil {
			t.Error("a client without a certificate was served (mutual TLS)")
		}
		if code, err := post(full); err != nil || code != http.StatusOK {
			t.Errorf("with a client certificate: %d, %v; want 200", code, err)
		}
	})

	t.Run("broker", func(t *testing.T) {
		ping := func(opts ...kgo.Opt) error {
			cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.Brokers), kgo.RequestRetries(0)}, opts...)...)
			if err != nil {
				return err
			}
			defer cl.Close()
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			return cl.Ping(pctx)
		}
		auth := scram.Auth{User: sec.SASLUser, Pass: sec.SASLPassword}.AsSha256Mechanism()
		wrong := scram.Auth{User: sec.SASLUser, Pass: "guess"}.AsSha256Mechanism()
		for name, opts := range map[string][]kgo.Opt{
			"plaintext":        {kgo.SASL(auth)},
			"TLS without SASL": {kgo.DialTLSConfig(full.Clone())},
			"a wrong password": {kgo.DialTLSConfig(full.Clone()), kgo.SASL(wrong)},
			"no certificate":   {kgo.DialTLSConfig(trusted.Clone()), kgo.SASL(auth)},
		} {
			if err := ping(opts...); err == nil {
				t.Errorf("a client with %s was served", name)
			}
		}
		if err := ping(kgo.DialTLSConfig(full.Clone()), kgo.SASL(auth)); err != nil {
			t.Errorf("with every credential: %v", err)
		}
	})

	t.Run("titles", func(t *testing.T) {
		call := func(creds credentials.TransportCredentials) error {
			conn, err := grpc.NewClient(s.TitlesAddr, grpc.WithTransportCredentials(creds))
			if err != nil {
				return err
			}
			defer conn.Close()
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			_, err = titlesv1.NewTitlesClient(conn).GetTitle(cctx, &titlesv1.GetTitleRequest{Id: created.GetTitle().GetId()})
			return err
		}
		for name, creds := range map[string]credentials.TransportCredentials{
			"plaintext":      insecure.NewCredentials(),
			"an unknown CA":  credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12}),
			"no certificate": credentials.NewTLS(trusted.Clone()),
		} {
			if err := call(creds); err == nil {
				t.Errorf("a client with %s was served", name)
			}
		}
		if err := call(credentials.NewTLS(full.Clone())); err != nil {
			t.Errorf("with every credential: %v", err)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		get := func(tc *tls.Config) error {
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}
			resp, err := c.Get("https://" + s.HTTPAddr + "/metrics")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return errors.New(resp.Status)
			}
			return nil
		}
		if err := get(trusted.Clone()); err == nil {
			t.Error("/metrics served a client without a certificate")
		}
		if err := get(full.Clone()); err != nil {
			t.Errorf("/metrics with a client certificate: %v", err)
		}
	})
}
