package grpcresolver_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/enricher/grpcresolver"
	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/services/titles"
)

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "titles"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestTitlesOverTLS reads the titles service, whose reflection serves the
// descriptors linked into its binary, over TLS; a plaintext client cannot
// reach it.
func TestTitlesOverTLS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cert, pool := selfSigned(t)
	srv := titles.NewServer(titles.PublisherFunc(func(context.Context, string, string, schema.Op, int64) error { return nil }))
	created, err := srv.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: &titlesv1.Title{
		Name: "Pilot", Kind: titles.KindFeature, Status: titles.StatusProduction, ReleaseDate: "2027-07-16"}})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() {
		served <- titles.Serve(ctx, lis, srv, titles.WithGracePeriod(time.Second),
			titles.WithTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	}()
	defer func() { cancel(); <-served }()

	spec := grpcresolver.Spec{Target: lis.Addr().String(), Method: "slate.titles.v1.Titles/BatchGetTitles",
		RecordsField: "titles", VersionField: "version"}
	r := newResolver(t, spec, grpcresolver.WithTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	id := created.GetTitle().GetId()
	got, err := r.Resolve(ctx, titles.EntityType, []string{id, "missing"})
	if err != nil {
		t.Fatal(err)
	}
	rec, ok := got[id]
	if !ok || len(got) != 1 || rec.Version != 1 {
		t.Fatalf("resolved %+v, want %s at version 1 only", got, id)
	}
	v := rec.Value.(map[string]any)
	if v["name"] != "Pilot" || v["release_date"] != "2027-07-16" || r.Schema().FullName() != "slate.titles.v1.Title" {
		t.Errorf("record %v of %s", v, r.Schema().FullName())
	}

	_, err = grpcresolver.New(ctx, spec, grpcresolver.WithStartTimeout(2*time.Second))
	if err == nil || !strings.Contains(err.Error(), "unreachable") || !enricher.IsRetryable(err) {
		t.Errorf("plaintext client of a TLS server: err %v, want a retryable unreachable target", err)
	}
}
