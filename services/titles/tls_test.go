package titles_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/slatehq/slate/services/titles"
)

// certs writes a CA and a server and a client certificate it signed to
// dir, and returns their paths.
func certs(t *testing.T, dir string) (ca, srvCert, srvKey, cliCert, cliKey string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caParsed, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caParsed, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(k)
		return write(name+".crt", "CERTIFICATE", der), write(name+".key", "EC PRIVATE KEY", kb)
	}
	ca = write("ca.crt", "CERTIFICATE", caDER)
	srvCert, srvKey = leaf("server", 2, x509.ExtKeyUsageServerAuth)
	cliCert, cliKey = leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return
}

// The service over mTLS answers a client with a certificate and refuses
// plaintext clients and TLS clients without one.
func TestServeTLS(t *testing.T) {
	ca, srvCert, srvKey, cliCert, cliKey := certs(t, t.TempDir())
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
