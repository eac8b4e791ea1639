package pgp

import (
	"bytes"
	"crypto"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

type testKey struct {
	sec, pub []byte
	fp       string
	signer   *Signer
	kr       Keyring
}

// newKey generates a key and loads both halves back through the public API.
func newKey(t testing.TB, opts KeyOptions) testKey {
	t.Helper()
	if opts.Name == "" && opts.Email == "" {
		opts.Name, opts.Email = "mmgap test", "test@example.invalid"
	}
	sec, pub, fp, err := GenerateKey(opts)
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	s, err := ReadSecretKey(bytes.NewReader(sec), opts.Passphrase)
	if err != nil {
		t.Fatalf("ReadSecretKey: %v", err)
	}
	kr, err := ParseKeyring(pub)
	if err != nil {
		t.Fatalf("ParseKeyring(public key): %v", err)
	}
	return testKey{sec: sec, pub: pub, fp: fp, signer: s, kr: kr}
}

func mustSign(t testing.TB, s *Signer, msg []byte) []byte {
	t.Helper()
	sig, err := s.SignDetached(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("SignDetached: %v", err)
	}
	return sig
}

// dearmor returns the binary body of a single armored block.
func dearmor(t testing.TB, armored []byte) []byte {
	t.Helper()
	blk, err := armor.Decode(bytes.NewReader(armored))
	if err != nil {
		t.Fatalf("armor.Decode: %v", err)
	}
	b, err := io.ReadAll(blk.Body)
	if err != nil {
		t.Fatalf("read armor body: %v", err)
	}
	return b
}

// rawSign makes a binary detached signature with full control over the
// creation time and digest, bypassing every policy check, to forge the
// signatures a hostile or careless signer could produce.
func rawSign(t testing.TB, e *openpgp.Entity, msg []byte, created time.Time, h crypto.Hash) []byte {
	t.Helper()
	priv := e.PrivateKey
	pub := e.PrimaryKey
	sig := &packet.Signature{
		Version:           pub.Version,
		SigType:           packet.SigTypeBinary,
		PubKeyAlgo:        pub.PubKeyAlgo,
		Hash:              h,
		CreationTime:      created,
		IssuerKeyId:       &pub.KeyId,
		IssuerFingerprint: pub.Fingerprint,
	}
	cfg := &packet.Config{DefaultHash: h, Time: fixedClock(created), NonDeterministicSignaturesViaNotation: packet.BoolPointer(false)}
	hh, err := sig.PrepareSign(cfg)
	if err != nil {
		t.Fatalf("PrepareSign: %v", err)
	}
	hh.Write(msg)
	if err := sig.Sign(hh, priv, cfg); err != nil {
		t.Fatalf("Sign: %v", err)
	}
	var buf bytes.Buffer
	if err := sig.Serialize(&buf); err != nil {
		t.Fatalf("Serialize: %v", err)
	}
	return buf.Bytes()
}

func errContains(t testing.TB, err error, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}
