package pgp

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/fixture")

// The fixture is the public half of a test-only Ed25519 key (created at t0,
// no expiry; the secret half was thrown away) and its signature over message
// made at t0+1m. It lives in files so that every fuzz worker and every saved
// crasher sees the same key.
const fixtureDir = "testdata/fixture"

func fuzzFixture(t testing.TB) (testKey, []byte) {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(fixtureDir, name))
		if err != nil {
			t.Fatalf("%v (run go test -run TestFixture -update)", err)
		}
		return b
	}
	k := testKey{pub: read("public.asc")}
	var err error
	if k.kr, err = ParseKeyring(k.pub); err != nil {
		t.Fatal(err)
	}
	k.fp = k.kr.Keys()[0].Fingerprint
	return k, read("message.asc")
}

// TestFixture checks the fuzz fixture (and rewrites it with -update).
func TestFixture(t *testing.T) {
	if *update {
		k := newKey(t, KeyOptions{Name: "mmgap fuzz fixture", Comment: "test only", Now: fixedClock(t0)})
		k.signer.Now = fixedClock(t0.Add(time.Minute))
		if err := os.MkdirAll(fixtureDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string][]byte{
			"public.asc":  k.pub,
			"message.asc": mustSign(t, k.signer, message),
		} {
			if err := os.WriteFile(filepath.Join(fixtureDir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	k, sig := fuzzFixture(t)
	res, err := Verify(k.kr, bytes.NewReader(message), sig, VerifyOptions{Now: t0.Add(time.Hour)})
	if err != nil {
		t.Fatalf("fixture signature: %v", err)
	}
	if !res.Created.Equal(t0.Add(time.Minute)) {
		t.Errorf("fixture signature made at %v", res.Created)
	}
}

// FuzzVerify feeds arbitrary signatures and messages to Verify. It must
// never panic, every failure must carry a sentinel, and success must mean
// the message and signature really are the fixture's.
func FuzzVerify(f *testing.F) {
	k, sig := fuzzFixture(f)
	bin := dearmor(f, sig)
	f.Add(sig, message)
	f.Add(bin, message)
	f.Add(bin[:len(bin)-3], message)
	f.Add(k.pub, message)
	f.Add(dearmor(f, k.pub), []byte{})
	f.Add([]byte("-----BEGIN PGP SIGNATURE-----\n\n=AAAA\n-----END PGP SIGNATURE-----\n"), []byte("x"))
	f.Add(append(bytes.Clone(bin), bin...), message)
	f.Fuzz(func(t *testing.T, signature, msg []byte) {
		res, err := Verify(k.kr, bytes.NewReader(msg), signature, VerifyOptions{Now: t0.Add(time.Hour)})
		if err != nil {
			if res != nil {
				t.Fatalf("result %+v with error %v", res, err)
			}
			known := false
			for _, s := range []error{ErrMalformed, ErrUnknownSigner, ErrBadSignature, ErrKeyExpired, ErrKeyRevoked, ErrWeakHash, ErrNotYetValid} {
				if errors.Is(err, s) {
					known = true
				}
			}
			if !known {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if res.Fingerprint != k.fp {
			t.Fatalf("verified with unexpected signer %s", res.Fingerprint)
		}
		if !bytes.Equal(msg, message) {
			t.Fatalf("a signature verified over a different message %q", msg)
		}
	})
}

// FuzzParseKeyring feeds arbitrary bytes to ParseKeyring, and what parses
// on to Verify and Pin. Nothing may panic.
func FuzzParseKeyring(f *testing.F) {
	k, sig := fuzzFixture(f)
	f.Add(k.pub)
	f.Add(dearmor(f, k.pub))
	sec := newKey(f, KeyOptions{}).sec
	f.Add(sec)
	f.Add(dearmor(f, sec))
	f.Add(append(dearmor(f, k.pub), dearmor(f, k.pub)...))
	f.Add([]byte(string(k.pub) + "\n" + string(k.pub)))
	f.Add(sig)
	f.Add([]byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n-----END PGP PUBLIC KEY BLOCK-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kr, err := ParseKeyring(data)
		if err != nil {
			if kr.Len() != 0 {
				t.Fatalf("keys returned with error %v", err)
			}
			return
		}
		if kr.Len() == 0 {
			t.Fatal("no error and no keys")
		}
		for _, ki := range kr.Keys() {
			if _, err := kr.Pin(ki.Fingerprint); err != nil {
				t.Fatalf("Pin(%s) of a listed key: %v", ki.Fingerprint, err)
			}
		}
		for _, e := range kr.entities {
			if e.PrivateKey != nil {
				t.Fatal("secret key material kept in a keyring")
			}
		}
		_, _ = Verify(kr, bytes.NewReader(message), sig, VerifyOptions{Now: t0.Add(time.Hour)})
		_, _ = kr.PublicKeysArmored()
	})
}

// FuzzReadSecretKey: secret key files are local, but a corrupt one must
// still fail cleanly.
func FuzzReadSecretKey(f *testing.F) {
	k := newKey(f, KeyOptions{Passphrase: []byte("pw")})
	f.Add(k.sec, []byte(nil))
	f.Add(dearmor(f, k.sec), []byte("pw"))
	f.Add(k.pub, []byte(nil))
	f.Fuzz(func(t *testing.T, data, pass []byte) {
		s, err := ReadSecretKey(bytes.NewReader(data), pass)
		if err != nil {
			return
		}
		sig, err := s.SignDetached(bytes.NewReader(message))
		if err != nil {
			return
		}
		_ = sig
	})
}
