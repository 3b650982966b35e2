package registry_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	avroregistry "github.com/hamba/avro/v2/registry"
	"golang.org/x/crypto/bcrypt"

	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/schema/registry"
)

func mustUsers(t *testing.T, text string) *registry.Users {
	t.Helper()
	u, err := registry.ParseUsers([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestBasicAuth checks HTTP basic authentication: no or wrong credentials
// get 401 with a challenge and Confluent's error body, a read-write user
// may change schemas, a readonly user only read.
func TestBasicAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := mustUsers(t, "# users\nalice: "+string(hash)+"\nbob: plain-pass,readonly\n")
	tr := newTestRegistry(t, registry.WithUsers(users))
	send := func(user, pass, method, path, body string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, tr.url+path, strings.NewReader(body))
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	reg := `{"schema":"\"int\""}`
	for _, c := range []struct{ name, user, pass string }{
		{"no credentials", "", ""}, {"wrong password", "alice", "nope"}, {"unknown user", "mallory", "s3cret"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, m := range [][2]string{{http.MethodGet, "/subjects"}, {http.MethodPut, "/config"}} {
				resp, b := send(c.user, c.pass, m[0], m[1], `{"compatibility":"NONE"}`)
				wantAPIError(t, resp.StatusCode, b, http.StatusUnauthorized, registry.CodeUnauthorized)
				if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
					t.Fatalf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
				}
			}
		})
	}
	t.Run("read-write user", func(t *testing.T) {
		if resp, b := send("alice", "s3cret", http.MethodPost, "/subjects/s/versions", reg); resp.StatusCode != http.StatusOK {
			t.Fatalf("register: %d %s", resp.StatusCode, b)
		}
	})
	t.Run("readonly user", func(t *testing.T) {
		if resp, b := send("bob", "plain-pass", http.MethodGet, "/subjects/s/versions", ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("read: %d %s", resp.StatusCode, b)
		}
		if resp, b := send("bob", "plain-pass", http.MethodPost, "/subjects/s", reg); resp.StatusCode != http.StatusOK {
			t.Fatalf("lookup: %d %s", resp.StatusCode, b)
		}
		for _, m := range [][2]string{{http.MethodPost, "/subjects/s/versions"}, {http.MethodPut, "/config"}, {http.MethodDelete, "/subjects/s"}} {
			resp, b := send("bob", "plain-pass", m[0], m[1], reg)
			wantAPIError(t, resp.StatusCode, b, http.StatusForbidden, registry.CodeForbidden)
		}
	})
	t.Run("healthz stays open", func(t *testing.T) {
		if resp, _ := send("", "", http.MethodGet, "/healthz", ""); resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz: %d", resp.StatusCode)
		}
	})
	t.Run("bad users files", func(t *testing.T) {
		for _, text := range []string{"", "# only a comment\n", "nopassword\n", "x: y,admin\n", ": pw\n"} {
			if _, err := registry.ParseUsers([]byte(text)); !errors.Is(err, registry.ErrInvalidUsers) {
				t.Errorf("ParseUsers(%q) = %v, want ErrInvalidUsers", text, err)
			}
		}
	})
}

// TestReadOnlyMode checks READONLY: reads work, every change is refused
// with 42205, GET /mode says READONLY.
func TestReadOnlyMode(t *testing.T) {
	store := registry.NewMemoryStore()
	rw := newTestRegistry(t, registry.WithStore(store))
	if _, _, err := rw.client.CreateSchema(context.Background(), "s", schemaA); err != nil {
		t.Fatal(err)
	}
	ro := newTestRegistry(t, registry.WithStore(store), registry.WithReadOnly(true))
	if vs := mustVersions(t, ro, "s"); len(vs) != 1 {
		t.Fatalf("versions %v", vs)
	}
	var mode struct{ Mode string }
	ro.doJSON(t, http.MethodGet, "/mode", nil, &mode)
	if mode.Mode != "READONLY" {
		t.Fatalf("mode %q", mode.Mode)
	}
	ro.doJSON(t, http.MethodPost, "/compatibility/subjects/s/versions", map[string]string{"schema": schemaAB}, nil)
	for _, m := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, "/subjects/s/versions", map[string]string{"schema": schemaAB}},
		{http.MethodPut, "/config", map[string]string{"compatibility": "NONE"}},
		{http.MethodPut, "/config/s", map[string]string{"compatibility": "NONE"}},
		{http.MethodDelete, "/config", nil},
		{http.MethodDelete, "/subjects/s", nil},
		{http.MethodDelete, "/subjects/s/versions/1", nil},
		{http.MethodPut, "/mode", map[string]string{"mode": "READWRITE"}},
	} {
		status, b := ro.do(t, m.method, m.path, m.body)
		wantAPIError(t, status, b, http.StatusUnprocessableEntity, registry.CodeOperationNotPermitted)
	}
	rw.doJSON(t, http.MethodGet, "/mode", nil, &mode)
	if mode.Mode != "READWRITE" {
		t.Fatalf("mode %q", mode.Mode)
	}
}

// TestListenConfigRefusesOpenBind checks that a non-loopback address needs
// authentication, client certificates or an explicit --insecure-bind.
func TestListenConfigRefusesOpenBind(t *testing.T) {
	for _, host := range []string{"0.0.0.0", "::", "192.0.2.7"} {
		err := registry.ListenConfig{Host: host}.Validate()
		if !errors.Is(err, registry.ErrInsecureBind) || !strings.Contains(err.Error(), "--insecure-bind") {
			t.Errorf("host %s: err = %v, want ErrInsecureBind naming --insecure-bind", host, err)
		}
		for _, ok := range []registry.ListenConfig{
			{Host: host, InsecureBind: true},
			{Host: host, Authenticated: true},
			{Host: host, CertFile: "c", KeyFile: "k", ClientCAFile: "ca", RequireClientCert: true},
		} {
			if err := ok.Validate(); err != nil {
				t.Errorf("%+v: %v", ok, err)
			}
		}
	}
	for _, host := range []string{"", "127.0.0.1", "localhost", "::1"} {
		if err := (registry.ListenConfig{Host: host}).Validate(); err != nil {
			t.Errorf("loopback %q: %v", host, err)
		}
	}
	if err := (registry.ListenConfig{CertFile: "c"}).Validate(); err == nil || !strings.Contains(err.Error(), "--tls-key") {
		t.Errorf("cert without key: %v", err)
	}
}

// TestSlowBodyIsCut checks that the HTTP server built from a ListenConfig
// closes a connection whose body never arrives, at its ReadTimeout.
func TestSlowBodyIsCut(t *testing.T) {
	srv, err := registry.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	hs, err := registry.ListenConfig{ReadTimeout: 300 * time.Millisecond}.HTTPServer(srv)
	if err != nil {
		t.Fatal(err)
	}
	if hs.ReadHeaderTimeout == 0 || hs.IdleTimeout == 0 || hs.WriteTimeout == 0 {
		t.Fatalf("timeouts not all set: %+v", hs)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = registry.Serve(hs, lis) }()
	t.Cleanup(func() { _ = hs.Close() })
	conn, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write([]byte("POST /subjects/s/versions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"sch"))
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1024)
	for {
		_, err := conn.Read(buf)
		if err == nil {
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("the server kept a connection with a stalled body open")
		}
		return // closed by the server
	}
}

// TestTLSAndClientCerts serves the registry over mutual TLS with basic auth
// and talks to it with slate's registry client (hamba/avro's, given a
// tls.Config and credentials).
func TestTLSAndClientCerts(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCA(t)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.Raw)
	srvCert := issue(t, ca, caKey, filepath.Join(dir, "srv"), true)
	cliCert := issue(t, ca, caKey, filepath.Join(dir, "cli"), false)
	_ = srvCert

	srv, err := registry.New(context.Background(), registry.WithUsers(mustUsers(t, "app: pw\n")))
	if err != nil {
		t.Fatal(err)
	}
	lc := registry.ListenConfig{
		Host: "127.0.0.1", CertFile: filepath.Join(dir, "srv.pem"), KeyFile: filepath.Join(dir, "srv.key"),
		ClientCAFile: filepath.Join(dir, "ca.pem"), RequireClientCert: true, Authenticated: true,
	}
	hs, err := lc.HTTPServer(srv)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = registry.Serve(hs, lis) }()
	t.Cleanup(func() { _ = hs.Close() })
	url := "https://" + lis.Addr().String()
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	client := func(certs []tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs}}}
	}

	rc, err := schema.NewRegistryClient(url, avroregistry.WithHTTPClient(client([]tls.Certificate{cliCert})), avroregistry.WithBasicAuth("app", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := rc.Register(context.Background(), "s", schemaA)
	if err != nil || id != 1 {
		t.Fatalf("register over mTLS = %d, %v", id, err)
	}
	if _, err := rc.SchemaByID(context.Background(), id); err != nil {
		t.Fatal(err)
	}

	// Without a client certificate the handshake fails.
	if resp, err := client(nil).Get(url + "/subjects"); err == nil {
		resp.Body.Close()
		t.Fatalf("no client certificate: status %d, want a failed handshake", resp.StatusCode)
	}
	// With one but no password: 401.
	resp, err := client([]tls.Certificate{cliCert}).Get(url + "/subjects")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no credentials over mTLS: %d", resp.StatusCode)
	}
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

// issue writes base.pem and base.key signed by ca and returns the pair.
func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, base string, server bool) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: filepath.Base(base)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	writePEM(t, base+".pem", "CERTIFICATE", der)
	writePEM(t, base+".key", "EC PRIVATE KEY", kb)
	pair, err := tls.LoadX509KeyPair(base+".pem", base+".key")
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
