package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
)

// MinRSABits is the smallest RSA modulus accepted (NIST SP 800-131A).
const MinRSABits = 2048

// MinHMACSecretLen is the smallest HMAC secret accepted, in bytes: RFC 7518
// section 3.2 requires a key at least as long as the hash output (HS256).
const MinHMACSecretLen = 32

// Keys are the keys tokens may be signed with. Each algorithm in
// Config.Algorithms only ever tries keys of its own type (HS* the HMAC
// secrets, RS*/PS* RSA keys, ES* ECDSA keys on the matching curve, EdDSA
// Ed25519 keys).
type Keys struct {
	// HMACSecrets are shared secrets for HS256/HS384/HS512, each at least
	// MinHMACSecretLen bytes.
	HMACSecrets [][]byte
	// PublicKeys are *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	// values, for instance from LoadPEMFile. They are tried for every token
	// of a matching algorithm whose kid is not found in JWKS.
	PublicKeys []crypto.PublicKey
	// JWKS is a key set from LoadJWKSFile or ParseJWKS. A token with a kid
	// uses the JWKS key of that kid; a token without one tries every JWKS
	// key of the matching type.
	JWKS *JWKS
}

// JWKS is a parsed JSON Web Key Set (RFC 7517) of public keys: a fixed set
// from ParseJWKS or LoadJWKSFile, or one FetchJWKS keeps fetching from an
// identity provider.
type JWKS struct {
	kf   keyfunc.Keyfunc
	keys []crypto.PublicKey // every key of a fixed set, for tokens without kid
	// remote is set for a set fetched over HTTPS; its keys change.
	remote *remoteJWKS
}

// Len returns the number of keys in the set (for a fetched set, in the
// last good document).
func (s *JWKS) Len() int { return len(s.all()) }

// all returns every key of the set, for tokens that carry no kid.
func (s *JWKS) all() []crypto.PublicKey {
	if s.remote != nil {
		return s.remote.keys()
	}
	return s.keys
}

// ParseJWKS parses a JSON Web Key Set document ({"keys":[...]}). Keys marked
// "use":"enc" are left out. Symmetric ("oct") keys are refused: a JWKS is
// meant to be public, and a published HMAC secret would let anyone mint
// tokens; put secrets in Keys.HMACSecrets. A key whose "alg" does not fit
// its type (an RSA key marked ES256) is refused too.
func ParseJWKS(data []byte) (*JWKS, error) {
	filtered, pubs, err := parseJWKSDoc(data, false)
	if err != nil {
		return nil, err
	}
	kf, err := keyfunc.NewJWKSetJSON(filtered)
	if err != nil {
		return nil, &ConfigError{Field: "JWKS", Problem: "unusable key set", Err: err}
	}
	return &JWKS{kf: kf, keys: pubs}, nil
}

// parseJWKSDoc checks a JWKS document and returns it re-encoded with only
// the signature keys, and those keys' public halves. With skipUnsupported,
// key types this package cannot use (Ed448, X25519...) are left out rather
// than refused: an identity provider may publish keys for other consumers.
func parseJWKSDoc(data []byte, skipUnsupported bool) ([]byte, []crypto.PublicKey, error) {
	var doc jwkset.JWKSMarshal
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, &ConfigError{Field: "JWKS", Problem: "not a JSON Web Key Set", Err: err}
	}
	// Keys meant for encryption ("use":"enc") never verify signatures.
	sigKeys := doc.Keys[:0:0]
	var pubs []crypto.PublicKey
	for i, k := range doc.Keys {
		if k.KTY == jwkset.KtyOct {
			return nil, nil, &ConfigError{Field: "JWKS", Problem: fmt.Sprintf("key %d (kid %q) is a symmetric secret; a JWKS must hold public keys only", i, k.KID)}
		}
		if k.USE == jwkset.UseEnc {
			continue
		}
		jwk, err := jwkset.NewJWKFromMarshal(k, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			if skipUnsupported && errors.Is(err, jwkset.ErrUnsupportedKey) {
				continue
			}
			return nil, nil, &ConfigError{Field: "JWKS", Problem: fmt.Sprintf("key %d (kid %q) is unusable", i, k.KID), Err: err}
		}
		pub, err := publicKey(jwk.Key())
		if err != nil {
			return nil, nil, &ConfigError{Field: "JWKS", Problem: fmt.Sprintf("key %d (kid %q)", i, k.KID), Err: err}
		}
		if alg := k.ALG.String(); alg != "" {
			if _, known := algorithms[alg]; !known {
				// Not a signature algorithm this package accepts (say an
				// encryption key without "use"): never a verification key.
				continue
			}
			if !fits(alg, pub) {
				return nil, nil, &ConfigError{Field: "JWKS", Problem: fmt.Sprintf("key %d (kid %q) is a %s key marked alg %q", i, k.KID, k.KTY, alg)}
			}
		}
		sigKeys = append(sigKeys, k)
		pubs = append(pubs, pub)
	}
	if len(sigKeys) == 0 {
		return nil, nil, &ConfigError{Field: "JWKS", Problem: "no signature keys"}
	}
	doc.Keys = sigKeys
	filtered, err := json.Marshal(doc)
	if err != nil {
		return nil, nil, &ConfigError{Field: "JWKS", Problem: "cannot re-encode the key set", Err: err}
	}
	return filtered, pubs, nil
}

// LoadJWKSFile reads and parses a JSON Web Key Set file; see ParseJWKS.
func LoadJWKSFile(path string) (*JWKS, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &ConfigError{Field: "JWKS file " + path, Problem: "cannot read", Err: err}
	}
	set, err := ParseJWKS(data)
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			ce.Field = "JWKS file " + path
		}
		return nil, err
	}
	return set, nil
}

// ParsePEM parses every PEM block of data into a public key. It accepts
// "PUBLIC KEY" (PKIX: RSA, ECDSA, Ed25519), "RSA PUBLIC KEY" (PKCS #1) and
// "CERTIFICATE" blocks (the certificate's key; the certificate itself is not
// validated). Private keys are refused: a verifier never needs one.
func ParsePEM(data []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var key any
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				key = cert.PublicKey
			}
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
			return nil, &ConfigError{Field: "PEM", Problem: fmt.Sprintf("block %d is a private key; give the public key (openssl pkey -pubout)", n)}
		default:
			return nil, &ConfigError{Field: "PEM", Problem: fmt.Sprintf("block %d has unsupported type %q", n, block.Type)}
		}
		if err != nil {
			return nil, &ConfigError{Field: "PEM", Problem: fmt.Sprintf("block %d (%s) is unreadable", n, block.Type), Err: err}
		}
		pub, err := publicKey(key)
		if err != nil {
			return nil, &ConfigError{Field: "PEM", Problem: fmt.Sprintf("block %d", n), Err: err}
		}
		keys = append(keys, pub)
	}
	if len(keys) == 0 {
		return nil, &ConfigError{Field: "PEM", Problem: "no PEM block found"}
	}
	return keys, nil
}

// LoadPEMFile reads a PEM file of one or more public keys or certificates;
// see ParsePEM.
func LoadPEMFile(path string) ([]crypto.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &ConfigError{Field: "PEM file " + path, Problem: "cannot read", Err: err}
	}
	keys, err := ParsePEM(data)
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			ce.Field = "PEM file " + path
		}
		return nil, err
	}
	return keys, nil
}

// publicKey returns the public half of a supported key and checks its
// strength.
func publicKey(key any) (crypto.PublicKey, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return publicKey(&k.PublicKey)
	case *ecdsa.PrivateKey:
		return publicKey(&k.PublicKey)
	case ed25519.PrivateKey:
		return k.Public(), nil
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("RSA key of %d bits is below the minimum of %d", k.N.BitLen(), MinRSABits)
		}
		return k, nil
	case *ecdsa.PublicKey, ed25519.PublicKey:
		return k, nil
	default:
		return nil, fmt.Errorf("unsupported key type %T (want RSA, ECDSA or Ed25519)", key)
	}
}
