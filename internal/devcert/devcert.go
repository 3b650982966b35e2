// Package devcert writes a throwaway certificate authority and the server
// and client certificates it signs, for `slate up --secure` and the tests.
// The certificates are for 127.0.0.1, ::1 and localhost only and expire
// after a week: they are for a local demo, never for production.
package devcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Validity is how long the certificates are valid.
const Validity = 7 * 24 * time.Hour

// Files are the paths of what [Write] wrote, all PEM.
type Files struct {
	CA                    string // the CA certificate: trust it
	ServerCert, ServerKey string // for 127.0.0.1, ::1 and localhost
	ClientCert, ClientKey string // a client certificate (mutual TLS)
}

// Write creates dir (mode 0700) and writes a new CA, a server certificate
// and a client certificate into it, keys mode 0600.
func Write(dir string) (Files, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Files{}, fmt.Errorf("devcert: %w", err)
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Files{}, fmt.Errorf("devcert: CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "slate local demo CA"},
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage:  x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(Validity),
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return Files{}, fmt.Errorf("devcert: CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return Files{}, fmt.Errorf("devcert: CA: %w", err)
	}
	f := Files{CA: filepath.Join(dir, "ca.crt")}
	if err := writePEM(f.CA, "CERTIFICATE", caDER, 0o644); err != nil {
		return Files{}, err
	}
	if f.ServerCert, f.ServerKey, err = leaf(dir, "server", ca, caKey, x509.ExtKeyUsageServerAuth); err != nil {
		return Files{}, err
	}
	if f.ClientCert, f.ClientKey, err = leaf(dir, "client", ca, caKey, x509.ExtKeyUsageClientAuth); err != nil {
		return Files{}, err
	}
	return f, nil
}

func leaf(dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, usage x509.ExtKeyUsage) (cert, key string, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("devcert: %s key: %w", name, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "slate " + name},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(Validity),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
	if err != nil {
		return "", "", fmt.Errorf("devcert: %s certificate: %w", name, err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", "", fmt.Errorf("devcert: %s key: %w", name, err)
	}
	cert, key = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := writePEM(cert, "CERTIFICATE", der, 0o644); err != nil {
		return "", "", err
	}
	if err := writePEM(key, "PRIVATE KEY", kb, 0o600); err != nil {
		return "", "", err
	}
	return cert, key, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		return fmt.Errorf("devcert: %w", err)
	}
	return nil
}
