package kmsfake

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// AWS is a fake AWS KMS endpoint speaking awsJson1_1 (POST / with
// X-Amz-Target TrentService.<Operation>). It answers DescribeKey,
// GetPublicKey and Sign for the keys added with AddKey, refers to them by
// key ID, key ARN, alias name or alias ARN, and refuses requests that do not
// carry a SigV4 Authorization for AccessKeyID in Region.
type AWS struct {
	server
	// Region, AccountID and the credentials are what Env hands the SDK.
	Region, AccountID            string
	AccessKeyID, SecretAccessKey string

	keys    map[string]*awsKey // by key ID
	aliases map[string]string  // alias/<name> -> key ID
	calls   []AWSCall
}

// AWSCall is one request the fake answered, as the client sent it.
type AWSCall struct {
	// Operation is DescribeKey, GetPublicKey or Sign.
	Operation string
	KeyID     string
	// Sign only.
	Message          []byte
	MessageType      string
	SigningAlgorithm string
}

type awsKey struct {
	id      string
	priv    crypto.Signer
	spec    string
	algs    []string
	created time.Time
}

const awsContentType = "application/x-amz-json-1.1"

// NewAWS starts a fake AWS KMS. Close it when done.
func NewAWS() *AWS {
	f := &AWS{
		Region: "us-east-1", AccountID: "111122223333",
		AccessKeyID: "AKIAKMSFAKE000000001", SecretAccessKey: "kmsfake/secret/access/key/0000000000000",
		keys: map[string]*awsKey{}, aliases: map[string]string{},
	}
	f.start(http.HandlerFunc(f.serve))
	return f
}

// AddKey adds a signing key (KeyUsage SIGN_VERIFY) with optional aliases
// ("alias/name") and returns its key ID. ECDSA P-256 and P-384, RSA and
// Ed25519 keys are accepted, with the key specs and signing algorithms AWS
// gives them.
func (f *AWS) AddKey(priv crypto.Signer, aliases ...string) (string, error) {
	k := &awsKey{id: newUUID(), priv: priv, created: time.Now()}
	switch pk := priv.Public().(type) {
	case *ecdsa.PublicKey:
		switch pk.Curve {
		case elliptic.P256():
			k.spec, k.algs = "ECC_NIST_P256", []string{"ECDSA_SHA_256"}
		case elliptic.P384():
			k.spec, k.algs = "ECC_NIST_P384", []string{"ECDSA_SHA_384"}
		default:
			return "", fmt.Errorf("kmsfake: curve %s", pk.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		k.spec = fmt.Sprintf("RSA_%d", pk.N.BitLen())
		k.algs = []string{"RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512",
			"RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512"}
	case ed25519.PublicKey:
		k.spec, k.algs = "ECC_NIST_EDWARDS25519", []string{"ED25519_SHA_512", "ED25519_PH_SHA_512"}
	default:
		return "", fmt.Errorf("kmsfake: key type %T", pk)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[k.id] = k
	for _, a := range aliases {
		if !strings.HasPrefix(a, "alias/") {
			return "", fmt.Errorf("kmsfake: alias %q does not start with alias/", a)
		}
		f.aliases[a] = k.id
	}
	return k.id, nil
}

// URI is the awskms:// reference of a key ID or alias served by this fake.
func (f *AWS) URI(keyIDOrAlias string) string {
	u, _ := url.Parse(f.URL())
	return "awskms://" + u.Host + "/" + keyIDOrAlias
}

// Env writes the server's certificate to dir and returns the environment
// that points the AWS SDK at this fake: the CA bundle, static credentials,
// the region, one attempt per call (the SDK's retries would otherwise wait
// in real time) and no shared config files or instance metadata.
func (f *AWS) Env(dir string) (map[string]string, error) {
	ca, err := f.writeCA(dir, "aws-ca.pem")
	if err != nil {
		return nil, err
	}
	return map[string]string{
		"AWS_CA_BUNDLE":               ca,
		"AWS_ACCESS_KEY_ID":           f.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY":       f.SecretAccessKey,
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  f.Region,
		"AWS_MAX_ATTEMPTS":            "1",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             dir + "/no-aws-config",
		"AWS_SHARED_CREDENTIALS_FILE": dir + "/no-aws-credentials",
		"AWS_PROFILE":                 "",
	}, nil
}

// Calls returns the requests answered so far.
func (f *AWS) Calls() []AWSCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *AWS) arn(id string) string {
	return fmt.Sprintf("arn:aws:kms:%s:%s:key/%s", f.Region, f.AccountID, id)
}

// resolve finds a key by ID, key ARN, alias name or alias ARN.
func (f *AWS) resolve(ref string) *awsKey {
	if i := strings.Index(ref, ":alias/"); strings.HasPrefix(ref, "arn:") && i >= 0 {
		ref = ref[i+1:]
	} else if i := strings.Index(ref, ":key/"); strings.HasPrefix(ref, "arn:") && i >= 0 {
		ref = ref[i+len(":key/"):]
	}
	if id, ok := f.aliases[ref]; ok {
		ref = id
	}
	return f.keys[ref]
}

type awsRequest struct {
	KeyID            string `json:"KeyId"`
	Message          []byte `json:"Message"`
	MessageType      string `json:"MessageType"`
	SigningAlgorithm string `json:"SigningAlgorithm"`
}

func awsError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("X-Amzn-ErrorType", typ)
	writeJSON(w, awsContentType, status, map[string]string{"__type": typ, "message": msg})
}

func (f *AWS) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != awsContentType {
		awsError(w, http.StatusBadRequest, "SerializationException", "content type "+ct)
		return
	}
	scope := "/" + f.Region + "/kms/aws4_request"
	if auth := r.Header.Get("Authorization"); !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential="+f.AccessKeyID+"/") || !strings.Contains(auth, scope) {
		awsError(w, http.StatusBadRequest, "UnrecognizedClientException", "The security token included in the request is invalid.")
		return
	}
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
	if !ok {
		awsError(w, http.StatusBadRequest, "UnknownOperationException", "")
		return
	}
	var req awsRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		awsError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, AWSCall{Operation: op, KeyID: req.KeyID, Message: req.Message, MessageType: req.MessageType, SigningAlgorithm: req.SigningAlgorithm})
	k := f.resolve(req.KeyID)
	if k == nil {
		awsError(w, http.StatusBadRequest, "NotFoundException", fmt.Sprintf("Key '%s' does not exist", req.KeyID))
		return
	}
	switch op {
	case "DescribeKey":
		writeJSON(w, awsContentType, http.StatusOK, map[string]any{"KeyMetadata": map[string]any{
			"AWSAccountId": f.AccountID, "KeyId": k.id, "Arn": f.arn(k.id),
			"CreationDate": float64(k.created.Unix()), "Enabled": true, "Description": "",
			"KeyUsage": "SIGN_VERIFY", "KeyState": "Enabled", "Origin": "AWS_KMS", "KeyManager": "CUSTOMER",
			"CustomerMasterKeySpec": k.spec, "KeySpec": k.spec, "SigningAlgorithms": k.algs, "MultiRegion": false,
		}})
	case "GetPublicKey":
		der, err := x509.MarshalPKIXPublicKey(k.priv.Public())
		if err != nil {
			awsError(w, http.StatusInternalServerError, "KMSInternalException", err.Error())
			return
		}
		writeJSON(w, awsContentType, http.StatusOK, map[string]any{
			"KeyId": f.arn(k.id), "PublicKey": der, "KeySpec": k.spec, "CustomerMasterKeySpec": k.spec,
			"KeyUsage": "SIGN_VERIFY", "SigningAlgorithms": k.algs,
		})
	case "Sign":
		sig, err := k.sign(req)
		if err != nil {
			awsError(w, http.StatusBadRequest, "ValidationException", err.Error())
			return
		}
		writeJSON(w, awsContentType, http.StatusOK, map[string]any{"KeyId": f.arn(k.id), "Signature": sig, "SigningAlgorithm": req.SigningAlgorithm})
	default:
		awsError(w, http.StatusBadRequest, "UnknownOperationException", op)
	}
}

// sign signs as AWS KMS does: MessageType RAW (the default) hashes the
// message with the algorithm's hash, DIGEST takes it as the digest.
func (k *awsKey) sign(req awsRequest) ([]byte, error) {
	alg := req.SigningAlgorithm
	if !slices.Contains(k.algs, alg) {
		return nil, fmt.Errorf("signing algorithm %q is not valid for key spec %s", alg, k.spec)
	}
	if len(req.Message) == 0 || len(req.Message) > 4096 {
		return nil, fmt.Errorf("message length %d", len(req.Message))
	}
	hash := crypto.SHA512
	switch {
	case strings.HasSuffix(alg, "_SHA_256"):
		hash = crypto.SHA256
	case strings.HasSuffix(alg, "_SHA_384"):
		hash = crypto.SHA384
	}
	if alg == "ED25519_SHA_512" {
		if req.MessageType != "" && req.MessageType != "RAW" {
			return nil, fmt.Errorf("%s takes MessageType RAW", alg)
		}
		return ed25519.Sign(k.priv.(ed25519.PrivateKey), req.Message), nil
	}
	digest := req.Message
	switch req.MessageType {
	case "", "RAW":
		h := hash.New()
		h.Write(req.Message)
		digest = h.Sum(nil)
	case "DIGEST":
		if len(digest) != hash.Size() {
			return nil, fmt.Errorf("digest length %d does not match %s", len(digest), alg)
		}
	default:
		return nil, fmt.Errorf("message type %q", req.MessageType)
	}
	switch priv := k.priv.(type) {
	case *ecdsa.PrivateKey:
		return ecdsa.SignASN1(rand.Reader, priv, digest)
	case *rsa.PrivateKey:
		if strings.HasPrefix(alg, "RSASSA_PSS") {
			return rsa.SignPSS(rand.Reader, priv, hash, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.SignPKCS1v15(rand.Reader, priv, hash, digest)
	case ed25519.PrivateKey:
		return priv.Sign(rand.Reader, digest, &ed25519.Options{Hash: crypto.SHA512})
	}
	return nil, fmt.Errorf("key type %T", k.priv)
}

// newUUID returns a random version 4 UUID, the shape of an AWS KMS key ID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
