package titles_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/slatehq/slate/services/internal/servicetest"
	"github.com/slatehq/slate/services/titles"
)

// The service over mTLS answers a client with a certificate and refuses
// plaintext clients and TLS clients without one.
func TestServeTLS(t *testing.T) {
	ca, srvCert, srvKey, cliCert, cliKey := servicetest.Certs(t, t.TempDir())
	stc, err := titles.ServerTLS(srvCert, srvKey, ca)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- titles.Serve(ctx, lis, titles.NewServer(&recorder{}), titles.WithTLS(stc), titles.WithGracePeriod(time.Second))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	call := func(creds credentials.TransportCredentials) error {
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(creds))
		if err != nil {
			return err
		}
		defer conn.Close()
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		_, err = titlesv1.NewTitlesClient(conn).CreateTitle(cctx, &titlesv1.CreateTitleRequest{Title: feature("Over TLS")})
		return err
	}
	ctc, err := titles.ClientTLS(ca, cliCert, cliKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := call(credentials.NewTLS(ctc)); err != nil {
		t.Fatalf("mTLS client: %v", err)
	}
	if err := call(insecure.NewCredentials()); err == nil {
		t.Fatal("a plaintext client was served")
	}
	noCert, err := titles.ClientTLS(ca, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := call(credentials.NewTLS(noCert)); err == nil {
		t.Fatal("a TLS client without a certificate was served")
	}
}

func TestServeRefusesPlaintextOnNetwork(t *testing.T) {
	lis, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	err = titles.Serve(context.Background(), lis, titles.NewServer(&recorder{}))
	if !errors.Is(err, titles.ErrInsecureListen) {
		t.Fatalf("Serve on %s without TLS = %v, want ErrInsecureListen", lis.Addr(), err)
	}
	if _, err := titles.ServerTLS("/nonexistent.crt", "/nonexistent.key", ""); err == nil {
		t.Fatal("ServerTLS with missing files succeeded")
	}
}
