package pgp

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/ProtonMail/go-crypto/openpgp/s2k"
)

// Algorithm names a key algorithm GenerateKey can make.
type Algorithm string

const (
	// AlgorithmEd25519 is an EdDSA (Ed25519) v4 key, the default: small,
	// fast, and read by GnuPG 2.1+ and go-crypto. golang.org/x/crypto/openpgp
	// (what Mattermost server uses to check plugin signatures) cannot read
	// it: use an RSA key for plugin signing.
	AlgorithmEd25519 Algorithm = "ed25519"
	// AlgorithmRSA3072 is an RSA 3072-bit v4 key.
	AlgorithmRSA3072 Algorithm = "rsa3072"
	// AlgorithmRSA4096 is an RSA 4096-bit v4 key: readable by every OpenPGP
	// implementation in use, including golang.org/x/crypto/openpgp.
	AlgorithmRSA4096 Algorithm = "rsa4096"
)

// signingHash is the digest for every signature this package makes.
const signingHash = crypto.SHA512

// KeyOptions configures GenerateKey.
type KeyOptions struct {
	// Name, Email and Comment make the user ID "Name (Comment) <Email>".
	// At least Name or Email is required; none may contain ()<> or NUL.
	Name, Email, Comment string
	// Passphrase protects the secret key (iterated+salted SHA-256 S2K,
	// AES-256). Empty leaves the secret key unencrypted.
	Passphrase []byte
	// Lifetime is how long the key stays valid; 0 means it never expires.
	Lifetime time.Duration
	// Algorithm defaults to AlgorithmEd25519.
	Algorithm Algorithm
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// GenerateKey makes a new sign-only OpenPGP v4 key (a primary key with the
// sign and certify flags, no encryption subkey) and returns its secret and
// public halves ASCII-armored, and its fingerprint (40 uppercase hex digits).
// The caller writes the secret key with mode 0600.
func GenerateKey(opts KeyOptions) (secretArmored, publicArmored []byte, fingerprint string, err error) {
	if opts.Name == "" && opts.Email == "" {
		return nil, nil, "", errors.New("generate key: a name or an email is required")
	}
	for _, f := range []string{opts.Name, opts.Email, opts.Comment} {
		if strings.ContainsAny(f, "()<>\x00") {
			return nil, nil, "", fmt.Errorf("generate key: user ID field %q must not contain ()<> or NUL", clip(f))
		}
	}
	if opts.Lifetime < 0 {
		return nil, nil, "", errors.New("generate key: lifetime must not be negative")
	}
	lifetime := uint32(0)
	if opts.Lifetime > 0 {
		secs := opts.Lifetime / time.Second
		if secs < 1 || secs > math.MaxUint32 {
			return nil, nil, "", fmt.Errorf("generate key: lifetime %s out of range (1s to about 136 years)", opts.Lifetime)
		}
		lifetime = uint32(secs)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	// Key creation time has one-second resolution; fix it once so every
	// self-signature agrees with it.
	created := now().Truncate(time.Second)

	cfg := &packet.Config{
		DefaultHash:     signingHash,
		DefaultCipher:   packet.CipherAES256,
		Time:            func() time.Time { return created },
		KeyLifetimeSecs: lifetime,
		S2KConfig: &s2k.Config{
			// GnuPG 2.2 cannot read Argon2 or AEAD-protected keys.
			S2KMode:  s2k.IteratedSaltedS2K,
			Hash:     crypto.SHA256,
			S2KCount: 65011712,
		},
	}
	switch opts.Algorithm {
	case "", AlgorithmEd25519:
		// Legacy EdDSA (algorithm 22) is the Ed25519 encoding GnuPG 2.2
		// understands; RFC 9580's algorithm 27 needs GnuPG 2.5.
		cfg.Algorithm = packet.PubKeyAlgoEdDSA
		cfg.Curve = packet.Curve25519
	case AlgorithmRSA3072:
		cfg.Algorithm = packet.PubKeyAlgoRSA
		cfg.RSABits = 3072
	case AlgorithmRSA4096:
		cfg.Algorithm = packet.PubKeyAlgoRSA
		cfg.RSABits = 4096
	default:
		return nil, nil, "", fmt.Errorf("generate key: unknown algorithm %q (want %s, %s or %s)",
			clip(string(opts.Algorithm)), AlgorithmEd25519, AlgorithmRSA3072, AlgorithmRSA4096)
	}

	e, err := openpgp.NewEntity(opts.Name, opts.Comment, opts.Email, cfg)
	if err != nil {
		return nil, nil, "", fmt.Errorf("generate key: %w", err)
	}
	// NewEntity always adds an encryption subkey; a signing key needs none.
	e.Subkeys = nil

	if len(opts.Passphrase) > 0 {
		if err := e.EncryptPrivateKeys(opts.Passphrase, cfg); err != nil {
			return nil, nil, "", fmt.Errorf("generate key: protect secret key: %w", err)
		}
	}

	var sec bytes.Buffer
	if err := armorWrite(&sec, blockPrivateKey, func(w io.Writer) error {
		// The self-signatures were made by NewEntity; re-signing would
		// need the (now encrypted) secret key.
		return e.SerializePrivateWithoutSigning(w, cfg)
	}); err != nil {
		return nil, nil, "", fmt.Errorf("generate key: encode secret key: %w", err)
	}
	pub, err := armoredPublic(e)
	if err != nil {
		return nil, nil, "", fmt.Errorf("generate key: %w", err)
	}
	return sec.Bytes(), pub, hexUpper(e.PrimaryKey.Fingerprint), nil
}

func armorWrite(w io.Writer, blockType string, body func(io.Writer) error) error {
	aw, err := armor.Encode(w, blockType, nil)
	if err != nil {
		return err
	}
	if err := body(aw); err != nil {
		return err
	}
	if err := aw.Close(); err != nil {
		return err
	}
	_, err = io.WriteString(w, "\n")
	return err
}

func armoredPublic(e *openpgp.Entity) ([]byte, error) {
	var buf bytes.Buffer
	if err := armorWrite(&buf, blockPublicKey, e.Serialize); err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	return buf.Bytes(), nil
}

// Signer makes detached signatures with one decrypted secret key.
type Signer struct {
	entity *openpgp.Entity

	// Now is the clock used for signature creation times and key validity;
	// nil means time.Now.
	Now func() time.Time
}

// ReadSecretKey reads one secret key (ASCII-armored or binary, as written by
// GenerateKey or `gpg --export-secret-keys`) and unlocks it with passphrase.
// It fails with ErrPassphrase when the key is protected and the passphrase
// is empty or wrong, and with ErrNoSecretKey for a public key or a gpg stub
// without secret signing material. A passphrase given for an unprotected
// key is ignored.
func ReadSecretKey(r io.Reader, passphrase []byte) (*Signer, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxKeyringSize+1))
	if err != nil {
		return nil, fmt.Errorf("read secret key: %w", err)
	}
	if len(data) > MaxKeyringSize {
		return nil, fmt.Errorf("read secret key: %w: larger than %d bytes", ErrMalformed, MaxKeyringSize)
	}
	if !isBinary(data) {
		blocks, err := decodeArmor(data, MaxKeyringSize)
		if err != nil {
			return nil, fmt.Errorf("read secret key: %w", err)
		}
		var bin []byte
		for _, b := range blocks {
			switch b.Type {
			case blockPrivateKey:
				bin = append(bin, b.Body...)
			case blockPublicKey:
				return nil, fmt.Errorf("read secret key: %w: got a public key block", ErrNoSecretKey)
			default:
				return nil, fmt.Errorf("read secret key: %w: unexpected armored %q block", ErrMalformed, clip(b.Type))
			}
		}
		data = bin
	}
	el, err := readEntities(data)
	if err != nil {
		return nil, fmt.Errorf("read secret key: %w", err)
	}
	if len(el) != 1 {
		return nil, fmt.Errorf("read secret key: found %d keys, want exactly one", len(el))
	}
	e := el[0]
	if !hasSecret(e) {
		return nil, fmt.Errorf("read secret key %s: %w", FormatFingerprint(hexUpper(e.PrimaryKey.Fingerprint)), ErrNoSecretKey)
	}
	if isEncrypted(e) {
		if len(passphrase) == 0 {
			return nil, fmt.Errorf("read secret key %s: %w: the key is passphrase-protected and no passphrase was given",
				FormatFingerprint(hexUpper(e.PrimaryKey.Fingerprint)), ErrPassphrase)
		}
		if err := e.DecryptPrivateKeys(passphrase); err != nil {
			var unsup pgperrors.UnsupportedError
			if errors.As(err, &unsup) {
				return nil, fmt.Errorf("read secret key: unlock: %w", err)
			}
			// Checksum and AEAD failures: the passphrase did not fit. The
			// underlying error says nothing useful and is not kept.
			return nil, fmt.Errorf("read secret key %s: %w: the passphrase does not unlock the key",
				FormatFingerprint(hexUpper(e.PrimaryKey.Fingerprint)), ErrPassphrase)
		}
	}
	return &Signer{entity: e}, nil
}

func hasSecret(e *openpgp.Entity) bool {
	if e.PrivateKey != nil && !e.PrivateKey.Dummy() {
		return true
	}
	for _, sk := range e.Subkeys {
		if sk.PrivateKey != nil && !sk.PrivateKey.Dummy() {
			return true
		}
	}
	return false
}

func isEncrypted(e *openpgp.Entity) bool {
	if e.PrivateKey != nil && !e.PrivateKey.Dummy() && e.PrivateKey.Encrypted {
		return true
	}
	for _, sk := range e.Subkeys {
		if sk.PrivateKey != nil && !sk.PrivateKey.Dummy() && sk.PrivateKey.Encrypted {
			return true
		}
	}
	return false
}

func (s *Signer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Fingerprint is the primary key's fingerprint, uppercase hex without spaces
// (40 digits for a v4 key).
func (s *Signer) Fingerprint() string { return hexUpper(s.entity.PrimaryKey.Fingerprint) }

// KeyID is the primary key's 16-hex-digit key ID.
func (s *Signer) KeyID() string { return keyIDString(s.entity.PrimaryKey.KeyId) }

// UserID is the primary user ID, e.g. "mmgap (site A) <ops@example.org>",
// or "" for a key without one.
func (s *Signer) UserID() string { return primaryUserID(s.entity) }

// PublicKeyArmored returns the public half of the key, ASCII-armored.
func (s *Signer) PublicKeyArmored() ([]byte, error) { return armoredPublic(s.entity) }

// SignDetached reads message to its end and returns an ASCII-armored binary
// detached signature over it (SHA-512), as `gpg --detach-sign --armor`
// would. The message is streamed, never held in memory. Signing with an
// expired or revoked key fails with ErrKeyExpired or ErrKeyRevoked.
func (s *Signer) SignDetached(message io.Reader) ([]byte, error) {
	now := s.now()
	key, ok := s.entity.SigningKey(now)
	if !ok {
		return nil, s.whyNoSigningKey(now)
	}
	if key.PrivateKey == nil || key.PrivateKey.Dummy() {
		return nil, fmt.Errorf("sign: %w: the signing key's secret part is not in this file", ErrNoSecretKey)
	}
	cfg := &packet.Config{
		DefaultHash:  signingHash,
		Time:         func() time.Time { return now },
		SigningKeyId: key.PublicKey.KeyId,
	}
	var buf bytes.Buffer
	rerr := &readErr{r: message}
	err := armorWrite(&buf, blockSignature, func(w io.Writer) error {
		return openpgp.DetachSign(w, s.entity, rerr, cfg)
	})
	if rerr.err != nil {
		return nil, fmt.Errorf("sign: read message: %w", rerr.err)
	}
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return buf.Bytes(), nil
}

func (s *Signer) whyNoSigningKey(now time.Time) error {
	e := s.entity
	fp := hexUpper(e.PrimaryKey.Fingerprint)
	if e.Revoked(now) {
		return fmt.Errorf("sign: key %s: %w", FormatFingerprint(fp), ErrKeyRevoked)
	}
	selfSig, _ := e.PrimarySelfSignature()
	if selfSig != nil && e.PrimaryKey.CreationTime.After(now) {
		return fmt.Errorf("sign: key %s: %w: created at %s, after the current time %s",
			FormatFingerprint(fp), ErrNotYetValid, e.PrimaryKey.CreationTime.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if selfSig != nil && e.PrimaryKey.KeyExpired(selfSig, now) {
		return &KeyExpiredError{Fingerprint: fp, Expired: keyExpiry(e.PrimaryKey, selfSig), Signing: true}
	}
	// Signing subkeys that all expired.
	var latest time.Time
	for _, sk := range e.Subkeys {
		if sk.Sig != nil && sk.Sig.FlagsValid && sk.Sig.FlagSign && sk.PublicKey.KeyExpired(sk.Sig, now) {
			if exp := keyExpiry(sk.PublicKey, sk.Sig); exp.After(latest) {
				latest = exp
			}
		}
	}
	if !latest.IsZero() {
		return &KeyExpiredError{Fingerprint: fp, Expired: latest, Signing: true}
	}
	return fmt.Errorf("sign: key %s: %w: no valid signing-capable key", FormatFingerprint(fp), ErrNoSecretKey)
}

// keyExpiry is when pk expires according to sig; zero means never.
func keyExpiry(pk *packet.PublicKey, sig *packet.Signature) time.Time {
	if sig == nil || sig.KeyLifetimeSecs == nil || *sig.KeyLifetimeSecs == 0 {
		return time.Time{}
	}
	return pk.CreationTime.Add(time.Duration(*sig.KeyLifetimeSecs) * time.Second)
}

// sigExpiry is when sig itself expires; zero means never.
func sigExpiry(sig *packet.Signature) time.Time {
	if sig == nil || sig.SigLifetimeSecs == nil || *sig.SigLifetimeSecs == 0 {
		return time.Time{}
	}
	return sig.CreationTime.Add(time.Duration(*sig.SigLifetimeSecs) * time.Second)
}

func primaryUserID(e *openpgp.Entity) string {
	if id := e.PrimaryIdentity(); id != nil {
		return id.Name
	}
	return ""
}

// readErr remembers the first error of the reader it wraps, so that a
// failing message reader is not mistaken for a bad signature.
type readErr struct {
	r   io.Reader
	err error
}

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}
