package main

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slatehq/slate/internal/devcert"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema/registry"
)

func TestSchemaCmd(t *testing.T) {
	srv, err := registry.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	v1 := write("v1.avsc", `{"type":"record","name":"Title","fields":[{"name":"id","type":"string"}]}`)
	v2 := write("v2.avsc", `{"type":"record","name":"Title","fields":[{"name":"id","type":"string"},{"name":"name","type":["null","string"],"default":null}]}`)
	bad := write("bad.avsc", `{"type":"record","name":"Title","fields":[{"name":"id","type":"long"}]}`)
	notJSON := write("x.avsc", `record Title`)

	tests := []struct {
		name    string
		args    []string
		stdin   string
		want    []string
		wantErr string
	}{
		{"check before any version", []string{"check", "title-value", v1}, "", []string{"compatible"}, ""},
		{"register v1", []string{"register", "title-value", v1}, "", []string{"subject title-value version 1 id 1"}, ""},
		{"register v1 again", []string{"register", "title-value", v1}, "", []string{"version 1 id 1"}, ""},
		{"check v2", []string{"check", "title-value", v2}, "", []string{"compatible with subject title-value"}, ""},
		{"check incompatible", []string{"check", "title-value", bad}, "", []string{"incompatible"}, "not compatible"},
		{"register incompatible", []string{"register", "title-value", bad}, "", nil, "incompatible with an earlier schema"},
		{"register v2 from stdin", []string{"register", "title-value", "-"}, mustRead(t, v2), []string{"version 2 id 2"}, ""},
		{"get latest", []string{"get", "title-value"}, "", []string{"# subject title-value version 2 id 2", `"name": "name"`}, ""},
		{"get version 1", []string{"get", "title-value", "1"}, "", []string{"version 1 id 1"}, ""},
		{"get by id", []string{"get", "--id", "1"}, "", []string{`"name": "Title"`}, ""},
		{"get bad version", []string{"get", "title-value", "x"}, "", nil, `version "x"`},
		{"list subjects", []string{"list"}, "", []string{"title-value"}, ""},
		{"list versions", []string{"list", "title-value"}, "", []string{"1\n2\n"}, ""},
		{"not JSON", []string{"register", "title-value", notJSON}, "", nil, "is not JSON"},
		{"unknown subject", []string{"get", "nope"}, "", nil, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := schemaCmd()
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			cmd.SetIn(strings.NewReader(tt.stdin))
			cmd.SetArgs(append([]string{"--registry-url", hs.URL}, tt.args...))
			err := cmd.ExecuteContext(context.Background())
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("err = %v\n%s", err, out.String())
			case tt.wantErr == "certificate" && err != nil && refusedHandshake(err):
				// Under TLS 1.3 the server's refusal of a missing client
				// certificate reaches the client after its handshake, as
				// an alert or, depending on timing, as a closed connection.
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want it to say %q", err, tt.wantErr)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output\n%s\nlacks %q", out.String(), w)
				}
			}
			if tt.name == "check incompatible" && !errors.Is(err, errIncompatible) {
				t.Errorf("err = %v, want errIncompatible", err)
			}
		})
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// slate schema reaches a registry served over mutual TLS with basic auth
// when given the CA, the client certificate and the account, and is refused
// without the account.
func TestSchemaCmdSecured(t *testing.T) {
	files, err := devcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	users, err := registry.ParseUsers([]byte("ops: s3cret\n"))
	if err != nil {
		t.Fatal(err)
	}
	url := testenv.ServeRegistry(t, registry.ListenConfig{CertFile: files.ServerCert, KeyFile: files.ServerKey,
		ClientCAFile: files.CA, RequireClientCert: true, Authenticated: true}, registry.WithUsers(users))
	tlsArgs := []string{"--tls-ca", files.CA, "--tls-client-cert", files.ClientCert, "--tls-client-key", files.ClientKey}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"every credential", append([]string{"--registry-basic-auth-user-info", "ops:s3cret"}, tlsArgs...), ""},
		{"no account", tlsArgs, "Unauthorized"},
		{"no client certificate", []string{"--tls-ca", files.CA, "--registry-basic-auth-user-info", "ops:s3cret"}, "certificate"},
		{"half a client pair", []string{"--tls-ca", files.CA, "--tls-client-cert", files.ClientCert}, "--tls-client-cert"},
		{"a bad CA file", []string{"--tls-ca", "/nonexistent.crt"}, "--tls-ca"},
		{"a bad account", []string{"--registry-basic-auth-user-info", "ops"}, "--registry-basic-auth-user-info"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := schemaCmd()
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			cmd.SetArgs(append([]string{"list", "--registry-url", url}, tt.args...))
			err := cmd.ExecuteContext(context.Background())
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("err = %v\n%s", err, out.String())
			case tt.wantErr == "certificate" && err != nil && refusedHandshake(err):
				// Under TLS 1.3 the server's refusal of a missing client
				// certificate reaches the client after its handshake, as
				// an alert or, depending on timing, as a closed connection.
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want it to say %q", err, tt.wantErr)
			}
		})
	}
}

// refusedHandshake reports whether err is a TLS peer closing the
// connection at the handshake: an alert, a broken pipe or a reset.
func refusedHandshake(err error) bool {
	// Over HTTP/2 the refusal can also surface as a connection that could
	// not be established.
	for _, s := range []string{"certificate", "broken pipe", "connection reset", "EOF", "client conn could not be established"} {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}
