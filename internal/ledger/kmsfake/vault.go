package kmsfake

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// Vault is a fake HashiCorp Vault serving the transit engine's key read
// (GET /v1/<mount>/keys/<name>) and sign (POST or PUT
// /v1/<mount>/sign/<name>[/<hash>]) for the keys added with AddKey, with
// key versions (RotateKey), checking X-Vault-Token.
//
// Signing follows Vault: Ed25519 signs the input itself unless prehashed
// (then only sha2-512, Ed25519ph); ECDSA hashes the input with
// hash_algorithm (default sha2-256) unless prehashed, and marshals as asn1
// (default) or jws; RSA signs with pss (default) or pkcs1v15.
type Vault struct {
	server
	// Mount is the transit engine's mount path, "transit" by default. Set
	// it before the first request.
	Mount string

	token  string
	quirks VaultQuirks
	keys   map[string]*vaultKey
	calls  []VaultCall
}

// VaultQuirks are deliberate misbehaviours, for testing clients.
type VaultQuirks struct {
	// Ed25519SignsDigest makes Ed25519 keys sign SHA-256 of the input
	// instead of the input: the signatures a client gets when it hashes
	// before sending, which verify with the key but not over the message.
	Ed25519SignsDigest bool
	// EchoToken makes error answers quote the request's token, as a
	// careless proxy might; clients must not pass it on.
	EchoToken bool
}

// VaultCall is one request the fake answered, as the client sent it.
type VaultCall struct {
	Method, Path string
	// Sign only: the decoded input and the other fields.
	Input               []byte
	Prehashed           bool
	HashAlgorithm       string
	SignatureAlgorithm  string
	MarshalingAlgorithm string
	KeyVersion          string
}

type vaultKey struct {
	typ           string
	versions      []crypto.Signer // version i+1
	created       []time.Time
	minEncryption int
}

// NewVault starts a fake Vault accepting token. Close it when done.
func NewVault(token string) *Vault {
	v := &Vault{token: token, Mount: "transit", keys: map[string]*vaultKey{}}
	v.start(http.HandlerFunc(v.serve))
	return v
}

// SetToken changes the token requests must carry.
func (v *Vault) SetToken(token string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.token = token
}

// SetQuirks turns misbehaviours on or off.
func (v *Vault) SetQuirks(q VaultQuirks) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.quirks = q
}

// vaultKeyType is the transit key type of priv: ed25519, ecdsa-p256,
// ecdsa-p384, rsa-<bits>.
func vaultKeyType(priv crypto.Signer) (string, error) {
	switch pk := priv.Public().(type) {
	case ed25519.PublicKey:
		return "ed25519", nil
	case *ecdsa.PublicKey:
		switch pk.Curve {
		case elliptic.P256():
			return "ecdsa-p256", nil
		case elliptic.P384():
			return "ecdsa-p384", nil
		}
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa-%d", pk.N.BitLen()), nil
	}
	return "", fmt.Errorf("kmsfake: key type %T", priv.Public())
}

// AddKey creates transit key name at version 1.
func (v *Vault) AddKey(name string, priv crypto.Signer) error {
	typ, err := vaultKeyType(priv)
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.keys[name] = &vaultKey{typ: typ, versions: []crypto.Signer{priv}, created: []time.Time{time.Now()}}
	return nil
}

// RotateKey adds a new latest version of transit key name (as `vault write
// -f transit/keys/<name>/rotate` does), of the same type. With retire, older
// versions can no longer sign (min_encryption_version is raised).
func (v *Vault) RotateKey(name string, priv crypto.Signer, retire bool) error {
	typ, err := vaultKeyType(priv)
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	k := v.keys[name]
	if k == nil || k.typ != typ {
		return fmt.Errorf("kmsfake: no %s key %q to rotate", typ, name)
	}
	k.versions = append(k.versions, priv)
	k.created = append(k.created, time.Now())
	if retire {
		k.minEncryption = len(k.versions)
	}
	return nil
}

// URI is the hashivault:// reference of transit key name.
func (v *Vault) URI(name string) string { return "hashivault://" + name }

// Env writes the server's certificate to dir and returns the environment
// that points the Vault client at this fake: address, token, CA and no
// retries (the client's retries would otherwise wait in real time).
func (v *Vault) Env(dir string) (map[string]string, error) {
	ca, err := v.writeCA(dir, "vault-ca.pem")
	if err != nil {
		return nil, err
	}
	return map[string]string{
		"VAULT_ADDR":                 v.URL(),
		"VAULT_TOKEN":                v.token,
		"VAULT_CACERT":               ca,
		"VAULT_MAX_RETRIES":          "0",
		"VAULT_NAMESPACE":            "",
		"TRANSIT_SECRET_ENGINE_PATH": v.Mount,
	}, nil
}

// Calls returns the requests answered so far.
func (v *Vault) Calls() []VaultCall {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.calls)
}

func (v *Vault) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if v.quirks.EchoToken {
		msg += " (token " + r.Header.Get("X-Vault-Token") + ")"
	}
	writeJSON(w, "application/json", status, map[string]any{"errors": []string{msg}})
}

func (v *Vault) serve(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	defer v.mu.Unlock()
	p := path.Clean(r.URL.Path)
	rest, ok := strings.CutPrefix(p, "/v1/"+v.Mount+"/")
	if !ok {
		v.fail(w, r, http.StatusNotFound, "no handler for route "+p)
		return
	}
	if r.Header.Get("X-Vault-Token") != v.token {
		v.fail(w, r, http.StatusForbidden, "permission denied")
		return
	}
	call := VaultCall{Method: r.Method, Path: p}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 2 && parts[0] == "keys" && r.Method == http.MethodGet:
		v.calls = append(v.calls, call)
		v.readKey(w, r, parts[1])
	case (len(parts) == 2 || len(parts) == 3) && parts[0] == "sign" && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		var body struct {
			Input               string `json:"input"`
			Prehashed           bool   `json:"prehashed"`
			HashAlgorithm       string `json:"hash_algorithm"`
			SignatureAlgorithm  string `json:"signature_algorithm"`
			MarshalingAlgorithm string `json:"marshaling_algorithm"`
			KeyVersion          any    `json:"key_version"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			v.fail(w, r, http.StatusBadRequest, "invalid request body: "+err.Error())
			return
		}
		input, err := base64.StdEncoding.DecodeString(body.Input)
		if err != nil {
			v.fail(w, r, http.StatusBadRequest, "unable to decode input as base64")
			return
		}
		if len(parts) == 3 {
			body.HashAlgorithm = parts[2] // the URL's algorithm wins
		}
		call.Input, call.Prehashed, call.HashAlgorithm = input, body.Prehashed, body.HashAlgorithm
		call.SignatureAlgorithm, call.MarshalingAlgorithm = body.SignatureAlgorithm, body.MarshalingAlgorithm
		if body.KeyVersion != nil {
			call.KeyVersion = fmt.Sprint(body.KeyVersion)
		}
		v.calls = append(v.calls, call)
		v.sign(w, r, parts[1], call)
	default:
		v.fail(w, r, http.StatusMethodNotAllowed, "unsupported operation "+r.Method+" "+p)
	}
}

func (v *Vault) readKey(w http.ResponseWriter, r *http.Request, name string) {
	k := v.keys[name]
	if k == nil {
		// Vault answers a missing key with 404 and no errors.
		writeJSON(w, "application/json", http.StatusNotFound, map[string]any{"errors": []string{}})
		return
	}
	versions := map[string]any{}
	for i, priv := range k.versions {
		entry := map[string]any{"creation_time": k.created[i].Format(time.RFC3339Nano), "certificate_chain": ""}
		switch pk := priv.Public().(type) {
		case ed25519.PublicKey:
			entry["name"], entry["public_key"] = "ed25519", base64.StdEncoding.EncodeToString(pk)
		default:
			pemBytes, err := cryptoutils.MarshalPublicKeyToPEM(pk)
			if err != nil {
				v.fail(w, r, http.StatusInternalServerError, err.Error())
				return
			}
			entry["public_key"] = string(pemBytes)
			entry["name"] = k.typ
			if ec, ok := pk.(*ecdsa.PublicKey); ok {
				entry["name"] = ec.Curve.Params().Name // "P-256", as Vault reports it
			}
		}
		versions[strconv.Itoa(i+1)] = entry
	}
	writeJSON(w, "application/json", http.StatusOK, map[string]any{
		"request_id": "00000000-0000-0000-0000-000000000000", "lease_id": "", "renewable": false, "lease_duration": 0,
		"data": map[string]any{
			"name": name, "type": k.typ, "keys": versions, "latest_version": len(k.versions),
			"min_available_version": 0, "min_decryption_version": 1, "min_encryption_version": k.minEncryption,
			"supports_signing": true, "supports_encryption": false, "supports_decryption": false,
			"supports_derivation": false, "derived": false, "exportable": false, "deletion_allowed": false,
		},
	})
}

var vaultHashes = map[string]crypto.Hash{
	"sha2-224": crypto.SHA224, "sha2-256": crypto.SHA256, "sha2-384": crypto.SHA384, "sha2-512": crypto.SHA512,
}

func (v *Vault) sign(w http.ResponseWriter, r *http.Request, name string, c VaultCall) {
	k := v.keys[name]
	if k == nil {
		v.fail(w, r, http.StatusBadRequest, "signing key not found")
		return
	}
	version := len(k.versions)
	if c.KeyVersion != "" && c.KeyVersion != "0" {
		n, err := strconv.Atoi(c.KeyVersion)
		if err != nil || n < 1 || n > len(k.versions) {
			v.fail(w, r, http.StatusBadRequest, "invalid key version")
			return
		}
		version = n
	}
	if version < k.minEncryption {
		v.fail(w, r, http.StatusBadRequest, "requested version for signing is less than the minimum encryption key version")
		return
	}
	hashName := c.HashAlgorithm
	if hashName == "" {
		hashName = "sha2-256"
	}
	hash, ok := vaultHashes[hashName]
	if !ok {
		v.fail(w, r, http.StatusBadRequest, "unsupported hash algorithm "+hashName)
		return
	}
	sig, err := v.signWith(k.versions[version-1], c, hash)
	if err != nil {
		v.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	enc := base64.StdEncoding.EncodeToString(sig)
	if c.MarshalingAlgorithm == "jws" {
		enc = base64.RawURLEncoding.EncodeToString(sig)
	}
	writeJSON(w, "application/json", http.StatusOK, map[string]any{"data": map[string]any{
		"signature": fmt.Sprintf("vault:v%d:%s", version, enc), "key_version": version,
	}})
}

func (v *Vault) signWith(priv crypto.Signer, c VaultCall, hash crypto.Hash) ([]byte, error) {
	if ed, ok := priv.(ed25519.PrivateKey); ok {
		switch {
		case c.Prehashed && hash == crypto.SHA512 && len(c.Input) == hash.Size():
			return ed.Sign(rand.Reader, c.Input, &ed25519.Options{Hash: crypto.SHA512})
		case c.Prehashed:
			return nil, fmt.Errorf("ed25519 prehashed signing requires sha2-512")
		case v.quirks.Ed25519SignsDigest:
			sum := sha256.Sum256(c.Input)
			return ed25519.Sign(ed, sum[:]), nil
		}
		return ed25519.Sign(ed, c.Input), nil
	}
	digest := c.Input
	if c.Prehashed {
		if len(digest) != hash.Size() {
			return nil, fmt.Errorf("prehashed input of %d bytes does not match %v", len(digest), hash)
		}
	} else {
		h := hash.New()
		h.Write(c.Input)
		digest = h.Sum(nil)
	}
	switch p := priv.(type) {
	case *ecdsa.PrivateKey:
		switch c.MarshalingAlgorithm {
		case "", "asn1":
			return ecdsa.SignASN1(rand.Reader, p, digest)
		case "jws":
			r, s, err := ecdsa.Sign(rand.Reader, p, digest)
			if err != nil {
				return nil, err
			}
			size := (p.Curve.Params().BitSize + 7) / 8
			return append(fixed(r, size), fixed(s, size)...), nil
		}
		return nil, fmt.Errorf("unsupported marshaling algorithm %q", c.MarshalingAlgorithm)
	case *rsa.PrivateKey:
		switch c.SignatureAlgorithm {
		case "", "pss":
			return rsa.SignPSS(rand.Reader, p, hash, digest, nil)
		case "pkcs1v15":
			return rsa.SignPKCS1v15(rand.Reader, p, hash, digest)
		}
		return nil, fmt.Errorf("unsupported signature algorithm %q", c.SignatureAlgorithm)
	}
	return nil, fmt.Errorf("key type %T", priv)
}

func fixed(n *big.Int, size int) []byte {
	return n.FillBytes(make([]byte, size))
}
