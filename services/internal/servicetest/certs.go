package servicetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Certs writes a CA and a server certificate (for 127.0.0.1) and a client
// certificate it signed to dir, and returns their paths.
func Certs(t *testing.T, dir string) (ca, srvCert, srvKey, cliCert, cliKey string) {
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

// TLSFuncs are a service's ServerTLS and ClientTLS.
type TLSFuncs struct {
	Server func(certFile, keyFile, clientCAFile string) (*tls.Config, error)
	Client func(caFile, certFile, keyFile string) (*tls.Config, error)
}

// CheckMTLS runs serve with the server configuration of tf requiring
// client certificates, and checks that a client with a certificate is
// served while a plaintext client and a TLS client without a certificate
// are refused. call makes one call on conn.
func CheckMTLS(t *testing.T, tf TLSFuncs, serve func(ctx context.Context, lis net.Listener, c *tls.Config) error, call func(ctx context.Context, conn *grpc.ClientConn) error) {
	t.Helper()
	ca, srvCert, srvKey, cliCert, cliKey := Certs(t, t.TempDir())
	stc, err := tf.Server(srvCert, srvKey, ca)
	if err != nil {
		t.Fatal(err)
	}
	addr := Run(t, func(ctx context.Context, lis net.Listener) error { return serve(ctx, lis, stc) })
	callWith := func(creds credentials.TransportCredentials) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return call(ctx, Dial(t, addr, creds))
	}
	ctc, err := tf.Client(ca, cliCert, cliKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := callWith(credentials.NewTLS(ctc)); err != nil {
		t.Fatalf("mTLS client: %v", err)
	}
	if err := callWith(insecure.NewCredentials()); err == nil {
		t.Fatal("a plaintext client was served")
	}
	noCert, err := tf.Client(ca, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := callWith(credentials.NewTLS(noCert)); err == nil {
		t.Fatal("a TLS client without a certificate was served")
	}
	if _, err := tf.Server("/nonexistent.crt", "/nonexistent.key", ""); err == nil {
		t.Fatal("ServerTLS with missing files succeeded")
	}
}
