// Package kmsfake serves in-process fakes of the two key services the
// ledger signs through: AWS KMS (the awsJson1_1 protocol of DescribeKey,
// GetPublicKey and Sign) and HashiCorp Vault's transit engine (read key,
// sign). Both are TLS servers holding real private keys, so signatures made
// through them verify with the public key alone. Tests point the sigstore
// providers at them through the providers' own environment variables; see
// AWS.Env and Vault.Env.
package kmsfake

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
)

// server is what both fakes share: a TLS test server that can be taken
// down (every connection dropped without an answer) and brought back.
type server struct {
	srv *httptest.Server

	mu   sync.Mutex
	down bool
}

func (s *server) start(h http.Handler) {
	s.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		down := s.down
		s.mu.Unlock()
		if down {
			dropConnection(w)
			return
		}
		h.ServeHTTP(w, r)
	}))
}

// dropConnection closes the client's connection without an answer, as a
// network failure would.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// SetDown makes the server drop every request (down) or answer again.
func (s *server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Close shuts the server down.
func (s *server) Close() { s.srv.Close() }

// URL is the server's base URL (https://127.0.0.1:port).
func (s *server) URL() string { return s.srv.URL }

// Client returns an HTTP client that trusts the server's certificate.
func (s *server) Client() *http.Client { return s.srv.Client() }

// CertPEM is the server's self-signed certificate, to trust as a CA.
func (s *server) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// writeCA writes CertPEM to dir/name and returns the path.
func (s *server) writeCA(dir, name string) (string, error) {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, s.CertPEM(), 0o600); err != nil {
		return "", err
	}
	return path, nil
}

// NewKey generates a private key of one of the types the fakes serve:
// "ed25519", "ecdsa-p256", "ecdsa-p384", "rsa-2048".
func NewKey(keyType string) (crypto.Signer, error) {
	switch keyType {
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case "ecdsa-p256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ecdsa-p384":
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "rsa-2048":
		return rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("kmsfake: unknown key type %q", keyType)
	}
}

func writeJSON(w http.ResponseWriter, contentType string, status int, v any) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
