package pgp

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// VerifyOptions configures Verify.
type VerifyOptions struct {
	// Now is the verification time; zero means time.Now().
	Now time.Time
	// AllowExpiredKey accepts a signature whose key (or the signature
	// itself) has expired by Now, provided the key was valid when the
	// signature was made. The result then has KeyExpired set. Revoked keys
	// are never accepted.
	AllowExpiredKey bool
}

// Signature describes a good signature.
type Signature struct {
	// KeyID of the key that made the signature (a subkey or the primary),
	// 16 uppercase hex digits.
	KeyID string
	// Fingerprint of the signer's primary key: the one to pin and show.
	Fingerprint string
	// SigningKeyFingerprint is the fingerprint of the key that made the
	// signature; it equals Fingerprint unless a subkey signed.
	SigningKeyFingerprint string
	// UserID is the signer's primary user ID, or "".
	UserID string
	// Created is the signature creation time claimed by the signer.
	Created time.Time
	// Hash names the digest algorithm, e.g. "SHA-512".
	Hash string
	// KeyExpired is true when the signature was accepted only because
	// VerifyOptions.AllowExpiredKey was set.
	KeyExpired bool
	// KeyExpires is when the signing key expires (or expired); zero means
	// never.
	KeyExpires time.Time
}

// acceptedHashes are the digests Verify accepts. MD5, SHA-1 and RIPEMD-160
// are refused with ErrWeakHash.
var acceptedHashes = map[crypto.Hash]bool{
	crypto.SHA224:   true,
	crypto.SHA256:   true,
	crypto.SHA384:   true,
	crypto.SHA512:   true,
	crypto.SHA3_256: true,
	crypto.SHA3_512: true,
}

// Verify checks a detached signature (ASCII-armored or binary, as made by
// `gpg --detach-sign`) over message, which is read to its end but never
// held in memory, against the keys of kr.
//
// Failures wrap exactly one of ErrMalformed, ErrUnknownSigner,
// ErrBadSignature, ErrWeakHash, ErrKeyExpired, ErrKeyRevoked or
// ErrNotYetValid; an error reading message is returned as is, wrapped.
func Verify(kr Keyring, message io.Reader, signature []byte, opts VerifyOptions) (*Signature, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	bin, err := signatureBinary(signature)
	if err != nil {
		return nil, err
	}
	sigs, err := parseSignatures(bin)
	if err != nil {
		return nil, err
	}

	// Pick the signature to check exactly as go-crypto will: the first one
	// whose issuer is a signing key in the keyring.
	var chosen *packet.Signature
	var keys []openpgp.Key
	for _, s := range sigs {
		if s.IssuerKeyId == nil {
			return nil, fmt.Errorf("%w: signature names no issuer key", ErrMalformed)
		}
		if ks := kr.entities.KeysByIdUsage(*s.IssuerKeyId, packet.KeyFlagSign); len(ks) > 0 {
			chosen, keys = s, ks
			break
		}
	}
	if chosen == nil {
		s := sigs[0]
		if ks := kr.entities.KeysById(*s.IssuerKeyId); len(ks) > 0 {
			return nil, fmt.Errorf("%w: key %s is trusted but not allowed to make signatures",
				ErrBadSignature, keyIDString(*s.IssuerKeyId))
		}
		ue := &UnknownSignerError{KeyID: keyIDString(*s.IssuerKeyId)}
		if len(s.IssuerFingerprint) > 0 {
			ue.Fingerprint = hexUpper(s.IssuerFingerprint)
		}
		return nil, ue
	}
	if chosen.SigType != packet.SigTypeBinary && chosen.SigType != packet.SigTypeText {
		return nil, fmt.Errorf("%w: signature type 0x%02x is not a document signature", ErrMalformed, uint8(chosen.SigType))
	}
	if !acceptedHashes[chosen.Hash] {
		return nil, fmt.Errorf("%w: signature by key %s uses %s", ErrWeakHash, keyIDString(*chosen.IssuerKeyId), hashName(chosen.Hash))
	}

	cfg := &packet.Config{Time: func() time.Time { return now }}
	msg := &readErr{r: message}
	vsig, signer, verr := verifyDetached(kr.entities, msg, bin, cfg)
	if msg.err != nil {
		return nil, fmt.Errorf("read message: %w", msg.err)
	}
	expired := false
	if verr != nil {
		switch {
		case errors.Is(verr, pgperrors.ErrKeyExpired), errors.Is(verr, pgperrors.ErrSignatureExpired):
			// go-crypto reports these only after the signature checked out
			// mathematically; they are about time.
			if vsig == nil || signer == nil {
				return nil, fmt.Errorf("%w: %v", ErrBadSignature, verr)
			}
			expired = true
		default:
			return nil, classify(verr)
		}
	}
	if vsig == nil || signer == nil {
		return nil, fmt.Errorf("%w: verifier returned no signer", ErrBadSignature)
	}
	// Defence in depth: the packet go-crypto checked must be the one we
	// vetted above.
	if !acceptedHashes[vsig.Hash] {
		return nil, fmt.Errorf("%w: signature uses %s", ErrWeakHash, hashName(vsig.Hash))
	}
	key, ok := keyOf(keys, signer)
	if !ok {
		return nil, fmt.Errorf("%w: signing key not found after verification", ErrBadSignature)
	}
	fp := hexUpper(signer.PrimaryKey.Fingerprint)
	if vsig.CreationTime.Before(key.PublicKey.CreationTime) {
		return nil, fmt.Errorf("%w: signature claims creation at %s, before key %s existed (%s)", ErrBadSignature,
			vsig.CreationTime.UTC().Format(time.RFC3339), FormatFingerprint(fp), key.PublicKey.CreationTime.UTC().Format(time.RFC3339))
	}

	res := &Signature{
		KeyID:                 keyIDString(key.PublicKey.KeyId),
		Fingerprint:           fp,
		SigningKeyFingerprint: hexUpper(key.PublicKey.Fingerprint),
		UserID:                primaryUserID(signer),
		Created:               vsig.CreationTime,
		Hash:                  hashName(vsig.Hash),
		KeyExpires:            signingKeyExpiry(key),
	}
	if !expired {
		return res, nil
	}

	if vsig.CreationTime.Unix() > now.Unix() {
		return nil, fmt.Errorf("%w: signature made at %s, after the verification time %s; check this machine's clock", ErrNotYetValid,
			vsig.CreationTime.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if c := key.PublicKey.CreationTime; c.Unix() > now.Unix() || signer.PrimaryKey.CreationTime.Unix() > now.Unix() {
		return nil, fmt.Errorf("%w: key %s was created after the verification time %s; check this machine's clock", ErrNotYetValid,
			FormatFingerprint(fp), now.UTC().Format(time.RFC3339))
	}
	when := expiredAt(key, vsig, now)
	if !opts.AllowExpiredKey {
		return nil, &KeyExpiredError{Fingerprint: fp, Expired: when, SignedAt: vsig.CreationTime}
	}
	// The override accepts only signatures made while the key was valid.
	if _, ok := signer.SigningKeyById(vsig.CreationTime, key.PublicKey.KeyId); !ok {
		return nil, &KeyExpiredError{Fingerprint: fp, Expired: when, SignedAt: vsig.CreationTime, AfterExpiry: true}
	}
	res.KeyExpired = true
	return res, nil
}

// verifyDetached runs go-crypto's verifier; a panic on hostile input becomes
// ErrMalformed.
func verifyDetached(el openpgp.EntityList, msg io.Reader, bin []byte, cfg *packet.Config) (sig *packet.Signature, signer *openpgp.Entity, err error) {
	defer func() {
		if r := recover(); r != nil {
			sig, signer, err = nil, nil, fmt.Errorf("%w: signature verifier failed on this input", ErrMalformed)
		}
	}()
	return openpgp.VerifyDetachedSignature(el, msg, bytes.NewReader(bin), cfg)
}

// classify maps a go-crypto verification error onto this package's errors.
func classify(err error) error {
	var (
		structural pgperrors.StructuralError
		unsupp     pgperrors.UnsupportedError
		sigErr     pgperrors.SignatureError
		argErr     pgperrors.InvalidArgumentError
	)
	switch {
	case errors.Is(err, ErrMalformed):
		return err
	case errors.Is(err, pgperrors.ErrKeyRevoked):
		return fmt.Errorf("%w: the signing key or its user ID has been revoked", ErrKeyRevoked)
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return fmt.Errorf("%w: %v", ErrUnknownSigner, err)
	case errors.As(err, &sigErr), errors.As(err, &argErr):
		return fmt.Errorf("%w: the signature does not match the message (%v)", ErrBadSignature, err)
	case errors.As(err, &structural), errors.As(err, &unsupp):
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	default:
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
}

// signatureBinary returns the binary packets of an armored or binary
// detached signature.
func signatureBinary(signature []byte) ([]byte, error) {
	if len(signature) == 0 {
		return nil, fmt.Errorf("%w: empty signature", ErrMalformed)
	}
	if len(signature) > MaxSignatureSize {
		return nil, fmt.Errorf("%w: signature larger than %d bytes", ErrMalformed, MaxSignatureSize)
	}
	if isBinary(signature) {
		return signature, nil
	}
	blocks, err := decodeArmor(signature, MaxSignatureSize)
	if err != nil {
		return nil, err
	}
	b := blocks[0]
	if b.Type != blockSignature {
		return nil, fmt.Errorf("%w: expected an armored %q block, got %q", ErrMalformed, blockSignature, clip(b.Type))
	}
	if len(b.Body) == 0 {
		return nil, fmt.Errorf("%w: empty signature block", ErrMalformed)
	}
	return b.Body, nil
}

// parseSignatures reads every packet of a detached signature; anything but
// signature packets is malformed.
func parseSignatures(bin []byte) (sigs []*packet.Signature, err error) {
	defer func() {
		if r := recover(); r != nil {
			sigs, err = nil, fmt.Errorf("%w: signature parser failed on this input", ErrMalformed)
		}
	}()
	const maxSigs = 64
	pr := packet.NewReader(bytes.NewReader(bin))
	for {
		p, err := pr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		s, ok := p.(*packet.Signature)
		if !ok {
			return nil, fmt.Errorf("%w: not a detached signature (found a %T packet)", ErrMalformed, p)
		}
		sigs = append(sigs, s)
		if len(sigs) > maxSigs {
			return nil, fmt.Errorf("%w: more than %d signatures", ErrMalformed, maxSigs)
		}
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("%w: no supported signature packet", ErrMalformed)
	}
	return sigs, nil
}

func keyOf(keys []openpgp.Key, signer *openpgp.Entity) (openpgp.Key, bool) {
	for _, k := range keys {
		if k.Entity == signer {
			return k, true
		}
	}
	return openpgp.Key{}, false
}

// signingKeyExpiry is the earliest expiry of the primary key and, when a
// subkey signed, of that subkey; zero means never.
func signingKeyExpiry(key openpgp.Key) time.Time {
	primarySig, _ := key.Entity.PrimarySelfSignature()
	exp := keyExpiry(key.Entity.PrimaryKey, primarySig)
	if key.PublicKey != key.Entity.PrimaryKey {
		exp = earliest(exp, keyExpiry(key.PublicKey, key.SelfSignature))
	}
	return exp
}

// expiredAt is the earliest expiry, at or before now, among the key, the
// signature and the self-signatures that vouch for the key.
func expiredAt(key openpgp.Key, sig *packet.Signature, now time.Time) time.Time {
	primarySig, _ := key.Entity.PrimarySelfSignature()
	cands := []time.Time{
		keyExpiry(key.Entity.PrimaryKey, primarySig),
		sigExpiry(sig),
		sigExpiry(primarySig),
	}
	if key.PublicKey != key.Entity.PrimaryKey {
		cands = append(cands, keyExpiry(key.PublicKey, key.SelfSignature), sigExpiry(key.SelfSignature))
		if key.SelfSignature != nil {
			cands = append(cands, sigExpiry(key.SelfSignature.EmbeddedSignature))
		}
	}
	var out time.Time
	for _, c := range cands {
		if !c.IsZero() && !c.After(now) {
			out = earliest(out, c)
		}
	}
	if out.IsZero() {
		return now
	}
	return out
}

func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	case b.Before(a):
		return b
	}
	return a
}

func hashName(h crypto.Hash) string {
	if h == 0 {
		return "an unknown digest"
	}
	return h.String()
}
