// Package pgp is mmgap's OpenPGP layer: it generates signing keys, reads
// secret keys and trusted keyrings, makes detached signatures and verifies
// them.
//
// Everything here is built on github.com/ProtonMail/go-crypto/openpgp and
// stays interoperable with GnuPG 2.2: keys made by GenerateKey import into
// gpg, signatures made by a Signer pass `gpg --verify`, and signatures made by
// `gpg --detach-sign` pass Verify.
//
// Verify sorts every failure into one of a few sentinel errors (ErrMalformed,
// ErrUnknownSigner, ErrBadSignature, ErrKeyExpired, ErrKeyRevoked,
// ErrWeakHash, ErrNotYetValid) that callers test with errors.Is. Messages are
// streamed: neither signing nor verifying holds the message in memory.
//
// The package never prints, prompts, exits or reads the environment; it never
// writes files either. Secret key bytes and passphrases never appear in
// errors.
package pgp
