package pgp

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Errors returned by this package wrap at most one of them;
// test with errors.Is.
var (
	// ErrMalformed reports input that is not what it claims to be: not an
	// OpenPGP signature or key, corrupt armor, truncated packets, an
	// unsupported packet version.
	ErrMalformed = errors.New("malformed openpgp data")

	// ErrUnknownSigner reports a signature made by a key that is not in the
	// keyring. The concrete error is an *UnknownSignerError naming the key.
	ErrUnknownSigner = errors.New("signature made by a key that is not trusted")

	// ErrBadSignature reports a signature that does not match the message
	// (or is otherwise cryptographically invalid for the trusted key).
	ErrBadSignature = errors.New("bad signature")

	// ErrKeyExpired reports a signing key (or the signature itself) that has
	// expired at the verification time, or a secret key that has expired at
	// signing time. The concrete error is a *KeyExpiredError.
	ErrKeyExpired = errors.New("key expired")

	// ErrKeyRevoked reports a signing key that has been revoked.
	ErrKeyRevoked = errors.New("key revoked")

	// ErrWeakHash reports a signature whose digest algorithm is not accepted
	// (MD5, SHA-1, RIPEMD-160, ...). Only SHA-2 and SHA-3 digests are accepted.
	ErrWeakHash = errors.New("signature uses a weak digest algorithm")

	// ErrNotYetValid reports a signature or key whose creation time lies after
	// the verification time, typically because a clock is wrong.
	ErrNotYetValid = errors.New("signature or key is not yet valid")

	// ErrPassphrase reports a secret key that is passphrase-protected when the
	// passphrase is missing or wrong. The passphrase is never part of the error.
	ErrPassphrase = errors.New("missing or wrong passphrase")

	// ErrNoSecretKey reports key material without a usable secret signing
	// key (a public key, or a gpg stub whose secret part lives elsewhere).
	ErrNoSecretKey = errors.New("no usable secret signing key")

	// ErrKeyNotFound reports a fingerprint that is not in a keyring.
	ErrKeyNotFound = errors.New("key not in keyring")

	// ErrInvalidFingerprint reports a string that is not a full fingerprint.
	ErrInvalidFingerprint = errors.New("invalid fingerprint")
)

// UnknownSignerError is returned by Verify when no key in the keyring made
// the signature. errors.Is(err, ErrUnknownSigner) is true.
type UnknownSignerError struct {
	// KeyID is the 16-hex-digit issuer key ID from the signature.
	KeyID string
	// Fingerprint is the issuer fingerprint when the signature carries one
	// (GnuPG 2.2 and go-crypto always add it), else empty.
	Fingerprint string
}

func (e *UnknownSignerError) Error() string {
	if e.Fingerprint != "" {
		return fmt.Sprintf("signature made by key %s (%s), which is not in the trusted keyring", e.KeyID, FormatFingerprint(e.Fingerprint))
	}
	return fmt.Sprintf("signature made by key %s, which is not in the trusted keyring", e.KeyID)
}

// Unwrap makes errors.Is(err, ErrUnknownSigner) true.
func (e *UnknownSignerError) Unwrap() error { return ErrUnknownSigner }

// KeyExpiredError is returned when a key or signature has expired.
// errors.Is(err, ErrKeyExpired) is true.
type KeyExpiredError struct {
	// Fingerprint of the primary key concerned.
	Fingerprint string
	// Expired is when the key (or signature) stopped being valid.
	Expired time.Time
	// SignedAt is the signature creation time; zero when signing.
	SignedAt time.Time
	// AfterExpiry is true when the signature was made after the key expired,
	// so that AllowExpiredKey cannot accept it either.
	AfterExpiry bool
	// Signing is true when the error comes from signing, not verifying.
	Signing bool
}

func (e *KeyExpiredError) Error() string {
	fp := FormatFingerprint(e.Fingerprint)
	when := e.Expired.UTC().Format(time.RFC3339)
	switch {
	case e.Signing:
		return fmt.Sprintf("signing key %s expired at %s; extend its expiry or make a new key", fp, when)
	case e.AfterExpiry:
		return fmt.Sprintf("signature made at %s by key %s, which had already expired at %s; no override accepts it",
			e.SignedAt.UTC().Format(time.RFC3339), fp, when)
	default:
		return fmt.Sprintf("key %s (or its signature) expired at %s; the signature was made at %s, and an explicit expired-key override accepts signatures made before expiry",
			fp, when, e.SignedAt.UTC().Format(time.RFC3339))
	}
}

// Unwrap makes errors.Is(err, ErrKeyExpired) true.
func (e *KeyExpiredError) Unwrap() error { return ErrKeyExpired }
