package grpcresolver_test

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/enricher/grpcresolver"
	"github.com/slatehq/slate/internal/devcert"
	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/services/titles"
)

// TestTitlesOverTLS reads the titles service, whose reflection serves the
// descriptors linked into its binary, over TLS; a plaintext client cannot
// reach it.
func TestTitlesOverTLS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	files, err := devcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(files.ServerCert, files.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
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

	spec := grpcresolver.Spec{Target: lis.Addr().String(), RPC: "slate.titles.v1.Titles/BatchGetTitles",
		RecordsField: "titles", VersionField: "version", TLS: &enricher.ClientTLS{CAFile: files.CA}}
	r := newResolver(t, spec)
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

	plain := spec
	plain.TLS = nil
	_, err = grpcresolver.New(ctx, plain, grpcresolver.WithStartTimeout(2*time.Second))
	if err == nil || !strings.Contains(err.Error(), "unreachable") || !enricher.IsRetryable(err) {
		t.Errorf("plaintext client of a TLS server: err %v, want a retryable unreachable target", err)
	}
	other, err := devcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		tls  enricher.ClientTLS
		want string
	}{
		{enricher.ClientTLS{CAFile: other.CA}, "unreachable"},
		{enricher.ClientTLS{CAFile: files.CA + ".missing"}, "tls.ca_file: open "},
		{enricher.ClientTLS{CAFile: files.CA, CertFile: files.ClientCert}, "tls.cert_file: cert_file and key_file go together"},
	} {
		bad := spec
		bad.TLS = &tt.tls
		if _, err := grpcresolver.New(ctx, bad, grpcresolver.WithStartTimeout(2*time.Second)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("tls %+v: err %v, want %q", tt.tls, err, tt.want)
		}
	}
}
