package pgp

import (
	"bytes"
	"crypto"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

var message = []byte("bundle.json: the inventory of an mmgap bundle\n")

func TestRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		opts KeyOptions
	}{
		{"ed25519", KeyOptions{}},
		{"ed25519-passphrase", KeyOptions{Passphrase: []byte("correct horse battery staple")}},
		{"rsa3072-passphrase", KeyOptions{Algorithm: AlgorithmRSA3072, Passphrase: []byte("pw")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			opts.Name, opts.Comment, opts.Email = "mmgap site", "test", "ops@example.invalid"
			k := newKey(t, opts)

			if len(k.fp) != 40 || strings.ToUpper(k.fp) != k.fp {
				t.Errorf("fingerprint %q: want 40 uppercase hex digits", k.fp)
			}
			if k.signer.Fingerprint() != k.fp {
				t.Errorf("Signer.Fingerprint = %q, GenerateKey said %q", k.signer.Fingerprint(), k.fp)
			}
			if got, want := k.signer.UserID(), "mmgap site (test) <ops@example.invalid>"; got != want {
				t.Errorf("UserID = %q, want %q", got, want)
			}
			if !bytes.HasPrefix(k.sec, []byte("-----BEGIN PGP PRIVATE KEY BLOCK-----")) {
				t.Errorf("secret key is not an armored private key block:\n%s", k.sec)
			}
			if !bytes.HasPrefix(k.pub, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
				t.Errorf("public key is not an armored public key block:\n%s", k.pub)
			}
			if bytes.Contains(k.pub, []byte("PRIVATE")) {
				t.Error("public key output mentions PRIVATE")
			}
			pub2, err := k.signer.PublicKeyArmored()
			if err != nil {
				t.Fatal(err)
			}
			kr2, err := ParseKeyring(pub2)
			if err != nil || kr2.Len() != 1 || kr2.Keys()[0].Fingerprint != k.fp {
				t.Fatalf("PublicKeyArmored does not round-trip: %v", err)
			}

			sig := mustSign(t, k.signer, message)
			if !bytes.HasPrefix(sig, []byte("-----BEGIN PGP SIGNATURE-----\n")) {
				t.Fatalf("signature is not armored:\n%s", sig)
			}
			res, err := Verify(k.kr, bytes.NewReader(message), sig, VerifyOptions{})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if res.Fingerprint != k.fp || res.SigningKeyFingerprint != k.fp {
				t.Errorf("result fingerprints %q/%q, want %q", res.Fingerprint, res.SigningKeyFingerprint, k.fp)
			}
			if res.KeyID != k.fp[24:] {
				t.Errorf("KeyID %q, want %q", res.KeyID, k.fp[24:])
			}
			if res.UserID != k.signer.UserID() || res.Hash != "SHA-512" || res.KeyExpired || !res.KeyExpires.IsZero() {
				t.Errorf("unexpected result %+v", res)
			}
			if d := time.Since(res.Created); d < 0 || d > time.Minute {
				t.Errorf("Created %v is not now", res.Created)
			}

			// The binary form verifies too.
			if _, err := Verify(k.kr, bytes.NewReader(message), dearmor(t, sig), VerifyOptions{}); err != nil {
				t.Errorf("Verify(binary signature): %v", err)
			}

			// One flipped bit in the message.
			bad := bytes.Clone(message)
			bad[3] ^= 0x01
			if _, err := Verify(k.kr, bytes.NewReader(bad), sig, VerifyOptions{}); !errors.Is(err, ErrBadSignature) {
				t.Errorf("flipped message: err = %v, want ErrBadSignature", err)
			}
			// A truncated and an extended message.
			if _, err := Verify(k.kr, bytes.NewReader(message[:len(message)-1]), sig, VerifyOptions{}); !errors.Is(err, ErrBadSignature) {
				t.Errorf("truncated message: err = %v, want ErrBadSignature", err)
			}
			if _, err := Verify(k.kr, io.MultiReader(bytes.NewReader(message), strings.NewReader("x")), sig, VerifyOptions{}); !errors.Is(err, ErrBadSignature) {
				t.Errorf("extended message: err = %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestFlippedSignatureByte(t *testing.T) {
	k := newKey(t, KeyOptions{})
	bin := dearmor(t, mustSign(t, k.signer, message))
	// Flip a byte of the EdDSA value at the end: still well-formed, wrong.
	bin[len(bin)-5] ^= 0x40
	_, err := Verify(k.kr, bytes.NewReader(message), bin, VerifyOptions{})
	if !errors.Is(err, ErrBadSignature) {
		t.Fatalf("err = %v, want ErrBadSignature", err)
	}
}

func TestUnknownSigner(t *testing.T) {
	a := newKey(t, KeyOptions{Name: "A"})
	b := newKey(t, KeyOptions{Name: "B"})
	sig := mustSign(t, b.signer, message)
	_, err := Verify(a.kr, bytes.NewReader(message), sig, VerifyOptions{})
	if !errors.Is(err, ErrUnknownSigner) {
		t.Fatalf("err = %v, want ErrUnknownSigner", err)
	}
	if errors.Is(err, ErrBadSignature) || errors.Is(err, ErrMalformed) {
		t.Errorf("err %v matches more than one sentinel", err)
	}
	var ue *UnknownSignerError
	if !errors.As(err, &ue) {
		t.Fatalf("err %T is not an *UnknownSignerError", err)
	}
	if ue.KeyID != b.fp[24:] || ue.Fingerprint != b.fp {
		t.Errorf("UnknownSignerError = %+v, want key %s", ue, b.fp)
	}
	errContains(t, err, b.fp[24:])

	// An empty keyring trusts nobody.
	if _, err := Verify(Keyring{}, bytes.NewReader(message), sig, VerifyOptions{}); !errors.Is(err, ErrUnknownSigner) {
		t.Errorf("empty keyring: err = %v, want ErrUnknownSigner", err)
	}
	// Both keys trusted: B's signature is fine.
	if _, err := Verify(a.kr.Merge(b.kr), bytes.NewReader(message), sig, VerifyOptions{}); err != nil {
		t.Errorf("merged keyring: %v", err)
	}
}

func TestMultipleSignatures(t *testing.T) {
	a := newKey(t, KeyOptions{Name: "A"})
	b := newKey(t, KeyOptions{Name: "B"})
	both := append(dearmor(t, mustSign(t, a.signer, message)), dearmor(t, mustSign(t, b.signer, message))...)
	res, err := Verify(b.kr, bytes.NewReader(message), both, VerifyOptions{})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.Fingerprint != b.fp {
		t.Errorf("signer %s, want %s", res.Fingerprint, b.fp)
	}
}

func TestMalformed(t *testing.T) {
	k := newKey(t, KeyOptions{})
	sig := mustSign(t, k.signer, message)
	bin := dearmor(t, sig)
	corrupt := bytes.Replace(sig, []byte("\n"), []byte("\n!!"), 3)
	cases := map[string][]byte{
		"empty":             nil,
		"text":              []byte("this is not a signature\n"),
		"nul":               make([]byte, 64),
		"binary garbage":    {0x88, 0xff, 0x01, 0x02, 0x03},
		"public key":        k.pub,
		"binary public key": dearmor(t, k.pub),
		"truncated":         bin[:len(bin)/2],
		"corrupt armor":     corrupt,
		"no end line":       sig[:bytes.Index(sig, []byte("-----END"))],
		"clearsigned": []byte("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nhi\n" +
			string(sig)),
		"signature then key": append(bytes.Clone(bin), dearmor(t, k.pub)...),
		"too large":          bytes.Repeat([]byte{0x88}, MaxSignatureSize+1),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Verify(k.kr, bytes.NewReader(message), in, VerifyOptions{})
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestNotADocumentSignature(t *testing.T) {
	// A key's self-signature is a signature by a trusted key, but over a
	// key, not a document.
	k := newKey(t, KeyOptions{})
	e := k.signer.entity
	var buf bytes.Buffer
	if err := e.PrimaryIdentity().SelfSignature.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	_, err := Verify(k.kr, bytes.NewReader(message), buf.Bytes(), VerifyOptions{})
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
}

func TestPassphrase(t *testing.T) {
	const pass = "s3cret-passphrase-do-not-leak"
	sec, pub, fp, err := GenerateKey(KeyOptions{Name: "P", Passphrase: []byte(pass)})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sec, []byte(pass)) {
		t.Fatal("secret key contains the passphrase")
	}
	for name, p := range map[string][]byte{"missing": nil, "empty": {}, "wrong": []byte("s3cret-passphrase-do-not-lea")} {
		t.Run(name, func(t *testing.T) {
			_, err := ReadSecretKey(bytes.NewReader(sec), p)
			if !errors.Is(err, ErrPassphrase) {
				t.Fatalf("err = %v, want ErrPassphrase", err)
			}
			if len(p) > 0 && strings.Contains(err.Error(), string(p)) {
				t.Errorf("error %q leaks the passphrase", err)
			}
			errContains(t, err, FormatFingerprint(fp))
		})
	}
	s, err := ReadSecretKey(bytes.NewReader(sec), []byte(pass))
	if err != nil {
		t.Fatalf("right passphrase: %v", err)
	}
	kr, _ := ParseKeyring(pub)
	if _, err := Verify(kr, bytes.NewReader(message), mustSign(t, s, message), VerifyOptions{}); err != nil {
		t.Fatal(err)
	}

	// An unprotected key ignores a passphrase.
	open, _, _, err := GenerateKey(KeyOptions{Name: "U"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecretKey(bytes.NewReader(open), []byte("whatever")); err != nil {
		t.Errorf("unprotected key with passphrase: %v", err)
	}
}

func TestReadSecretKeyRejects(t *testing.T) {
	k := newKey(t, KeyOptions{})
	if _, err := ReadSecretKey(bytes.NewReader(k.pub), nil); !errors.Is(err, ErrNoSecretKey) {
		t.Errorf("armored public key: err = %v, want ErrNoSecretKey", err)
	}
	if _, err := ReadSecretKey(bytes.NewReader(dearmor(t, k.pub)), nil); !errors.Is(err, ErrNoSecretKey) {
		t.Errorf("binary public key: err = %v, want ErrNoSecretKey", err)
	}
	if _, err := ReadSecretKey(strings.NewReader("garbage"), nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("garbage: err = %v, want ErrMalformed", err)
	}
	// Binary secret keys are fine.
	if _, err := ReadSecretKey(bytes.NewReader(dearmor(t, k.sec)), nil); err != nil {
		t.Errorf("binary secret key: %v", err)
	}
	// Two keys in one file are ambiguous.
	k2 := newKey(t, KeyOptions{})
	if _, err := ReadSecretKey(bytes.NewReader(append(bytes.Clone(k.sec), k2.sec...)), nil); err == nil {
		t.Error("two secret keys: no error")
	}
}

func TestExpiredKey(t *testing.T) {
	k := newKey(t, KeyOptions{Lifetime: time.Hour, Now: fixedClock(t0)})
	if exp := k.kr.Keys()[0].Expires; !exp.Equal(t0.Add(time.Hour)) {
		t.Fatalf("Keys()[0].Expires = %v, want %v", exp, t0.Add(time.Hour))
	}
	k.signer.Now = fixedClock(t0.Add(10 * time.Minute))
	sig := mustSign(t, k.signer, message)

	res, err := Verify(k.kr, bytes.NewReader(message), sig, VerifyOptions{Now: t0.Add(30 * time.Minute)})
	if err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	if res.KeyExpired || !res.KeyExpires.Equal(t0.Add(time.Hour)) || !res.Created.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("before expiry: %+v", res)
	}

	later := t0.Add(2 * time.Hour)
	_, err = Verify(k.kr, bytes.NewReader(message), sig, VerifyOptions{Now: later})
	if !errors.Is(err, ErrKeyExpired) {
		t.Fatalf("after expiry: err = %v, want ErrKeyExpired", err)
	}
	var ke *KeyExpiredError
	if !errors.As(err, &ke) || !ke.Expired.Equal(t0.Add(time.Hour)) || ke.AfterExpiry {
		t.Errorf("KeyExpiredError = %+v", ke)
	}
	errContains(t, err, "2025-03-04T06:06:07Z", "override")

	res, err = Verify(k.kr, bytes.NewReader(message), sig, VerifyOptions{Now: later, AllowExpiredKey: true})
	if err != nil {
		t.Fatalf("AllowExpiredKey: %v", err)
	}
	if !res.KeyExpired || res.Fingerprint != k.fp {
		t.Errorf("AllowExpiredKey result %+v, want KeyExpired", res)
	}
	// The override still checks the signature.
	bad := bytes.Clone(message)
	bad[0] ^= 1
	if _, err := Verify(k.kr, bytes.NewReader(bad), sig, VerifyOptions{Now: later, AllowExpiredKey: true}); !errors.Is(err, ErrBadSignature) {
		t.Errorf("AllowExpiredKey, bad message: err = %v, want ErrBadSignature", err)
	}

	// A signature made after the key expired is refused even with the override.
	after := rawSign(t, k.signer.entity, message, t0.Add(90*time.Minute), crypto.SHA512)
	_, err = Verify(k.kr, bytes.NewReader(message), after, VerifyOptions{Now: later, AllowExpiredKey: true})
	if !errors.As(err, &ke) || !ke.AfterExpiry {
		t.Fatalf("signature after expiry with override: err = %v, want KeyExpiredError{AfterExpiry}", err)
	}

	// Signing with the expired key is refused.
	k.signer.Now = fixedClock(later)
	if _, err := k.signer.SignDetached(bytes.NewReader(message)); !errors.Is(err, ErrKeyExpired) {
		t.Errorf("signing after expiry: err = %v, want ErrKeyExpired", err)
	}
}

func TestSignatureTimes(t *testing.T) {
	k := newKey(t, KeyOptions{Now: fixedClock(t0)})
	// Signed "in the future" relative to the verifier's clock.
	future := rawSign(t, k.signer.entity, message, t0.Add(time.Hour), crypto.SHA256)
	_, err := Verify(k.kr, bytes.NewReader(message), future, VerifyOptions{Now: t0.Add(time.Minute)})
	if !errors.Is(err, ErrNotYetValid) {
		t.Errorf("future signature: err = %v, want ErrNotYetValid", err)
	}
	if _, err := Verify(k.kr, bytes.NewReader(message), future, VerifyOptions{Now: t0.Add(2 * time.Hour)}); err != nil {
		t.Errorf("same signature later: %v", err)
	}
	// Claims to predate the key.
	old := rawSign(t, k.signer.entity, message, t0.Add(-time.Hour), crypto.SHA256)
	if _, err := Verify(k.kr, bytes.NewReader(message), old, VerifyOptions{Now: t0.Add(time.Hour)}); !errors.Is(err, ErrBadSignature) {
		t.Errorf("signature older than key: err = %v, want ErrBadSignature", err)
	}
}

func TestWeakHash(t *testing.T) {
	k := newKey(t, KeyOptions{Now: fixedClock(t0)})
	for _, h := range []crypto.Hash{crypto.SHA1} {
		sig := rawSign(t, k.signer.entity, message, t0.Add(time.Minute), h)
		_, err := Verify(k.kr, bytes.NewReader(message), sig, VerifyOptions{Now: t0.Add(time.Hour)})
		if !errors.Is(err, ErrWeakHash) {
			t.Errorf("%v: err = %v, want ErrWeakHash", h, err)
		}
	}
	// The same construction with SHA-256 is accepted, so the test above
	// fails for the right reason.
	sig := rawSign(t, k.signer.entity, message, t0.Add(time.Minute), crypto.SHA256)
	res, err := Verify(k.kr, bytes.NewReader(message), sig, VerifyOptions{Now: t0.Add(time.Hour)})
	if err != nil || res.Hash != "SHA-256" {
		t.Errorf("SHA-256: %+v, %v", res, err)
	}
}

func TestRevokedKey(t *testing.T) {
	k := newKey(t, KeyOptions{Now: fixedClock(t0)})
	k.signer.Now = fixedClock(t0.Add(time.Minute))
	sig := mustSign(t, k.signer, message)
	e := k.signer.entity
	if err := e.RevokeKey(packet.KeyCompromised, "test", &packet.Config{Time: fixedClock(t0.Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := e.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	kr, err := ParseKeyring(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for _, allow := range []bool{false, true} {
		_, err := Verify(kr, bytes.NewReader(message), sig, VerifyOptions{Now: t0.Add(2 * time.Hour), AllowExpiredKey: allow})
		if !errors.Is(err, ErrKeyRevoked) {
			t.Errorf("AllowExpiredKey=%v: err = %v, want ErrKeyRevoked", allow, err)
		}
	}
	k.signer.Now = fixedClock(t0.Add(2 * time.Hour))
	if _, err := k.signer.SignDetached(bytes.NewReader(message)); !errors.Is(err, ErrKeyRevoked) {
		t.Errorf("signing with revoked key: err = %v, want ErrKeyRevoked", err)
	}
}

type failingReader struct{ n int }

var errDisk = errors.New("disk on fire")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errDisk
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func TestMessageReadError(t *testing.T) {
	k := newKey(t, KeyOptions{})
	sig := mustSign(t, k.signer, message)
	_, err := Verify(k.kr, &failingReader{n: 10}, sig, VerifyOptions{})
	if !errors.Is(err, errDisk) || errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify: err = %v, want the read error and not ErrBadSignature", err)
	}
	if _, err := k.signer.SignDetached(&failingReader{n: 10}); !errors.Is(err, errDisk) {
		t.Errorf("SignDetached: err = %v, want the read error", err)
	}
}

func TestGenerateKeyOptions(t *testing.T) {
	bad := []KeyOptions{
		{},
		{Name: "a<b"},
		{Name: "ok", Comment: "(x)"},
		{Name: "ok", Lifetime: -time.Hour},
		{Name: "ok", Lifetime: time.Millisecond},
		{Name: "ok", Algorithm: "dsa1024"},
	}
	for _, o := range bad {
		if _, _, _, err := GenerateKey(o); err == nil {
			t.Errorf("GenerateKey(%+v): no error", o)
		}
	}
	// No encryption subkey: this is a signing key.
	k := newKey(t, KeyOptions{Email: "only@example.invalid"})
	if n := len(k.signer.entity.Subkeys); n != 0 {
		t.Errorf("generated key has %d subkeys, want 0", n)
	}
	if got := k.signer.UserID(); got != "<only@example.invalid>" {
		t.Errorf("UserID = %q", got)
	}
	if pk := k.signer.entity.PrimaryKey; pk.PubKeyAlgo != packet.PubKeyAlgoEdDSA || pk.Version != 4 {
		t.Errorf("primary key algo %v version %d, want legacy EdDSA v4", pk.PubKeyAlgo, pk.Version)
	}
}

func TestKeyring(t *testing.T) {
	a := newKey(t, KeyOptions{Name: "A"})
	b := newKey(t, KeyOptions{Name: "B", Passphrase: []byte("pw")})
	c := newKey(t, KeyOptions{Name: "C"})
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	twoArmored := write("two.asc", []byte("Keys for the site:\n\n"+string(a.pub)+"\n"+string(b.pub)))
	binary := write("c.gpg", append(dearmor(t, c.pub), dearmor(t, a.pub)...))
	secret := write("b-secret.asc", b.sec)

	kr, err := ReadKeyring(twoArmored, binary, secret)
	if err != nil {
		t.Fatalf("ReadKeyring: %v", err)
	}
	var fps []string
	for _, ki := range kr.Keys() {
		fps = append(fps, ki.Fingerprint)
	}
	want := []string{a.fp, b.fp, c.fp, a.fp, b.fp}
	if strings.Join(fps, ",") != strings.Join(want, ",") {
		t.Errorf("keys %v, want %v", fps, want)
	}
	for _, e := range kr.entities {
		if e.PrivateKey != nil {
			t.Errorf("key %X kept its secret part", e.PrimaryKey.Fingerprint)
		}
	}
	// Every trusted key verifies its signatures.
	for _, k := range []testKey{a, b, c} {
		if _, err := Verify(kr, bytes.NewReader(message), mustSign(t, k.signer, message), VerifyOptions{}); err != nil {
			t.Errorf("key %s: %v", k.fp, err)
		}
	}

	// Pinning.
	pinned, err := kr.Pin(strings.ToLower(FormatFingerprint(c.fp)))
	if err != nil {
		t.Fatalf("Pin: %v", err)
	}
	if pinned.Len() != 1 || pinned.Keys()[0].Fingerprint != c.fp || pinned.Keys()[0].UserID != "C" {
		t.Errorf("pinned keyring %+v", pinned.Keys())
	}
	if _, err := Verify(pinned, bytes.NewReader(message), mustSign(t, a.signer, message), VerifyOptions{}); !errors.Is(err, ErrUnknownSigner) {
		t.Errorf("pinned keyring accepted another key: %v", err)
	}
	other := newKey(t, KeyOptions{Name: "other"})
	if _, err := kr.Pin(other.fp); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("Pin(absent) err = %v, want ErrKeyNotFound", err)
	}
	if _, err := kr.Pin(c.fp[24:]); !errors.Is(err, ErrInvalidFingerprint) {
		t.Errorf("Pin(key ID) err = %v, want ErrInvalidFingerprint", err)
	}

	// Errors name the file.
	garbage := write("garbage.asc", []byte("not a key\n"))
	_, err = ReadKeyring(twoArmored, garbage)
	if !errors.Is(err, ErrMalformed) {
		t.Errorf("garbage file: err = %v, want ErrMalformed", err)
	}
	if err != nil {
		errContains(t, err, garbage)
	}
	missing := filepath.Join(dir, "missing.asc")
	_, err = ReadKeyring(missing)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want ErrNotExist", err)
	}
	if err != nil {
		errContains(t, err, missing)
	}
	if _, err := ReadKeyring(); err == nil {
		t.Error("ReadKeyring(): no error")
	}
	sigFile := write("x.sig", mustSign(t, a.signer, message))
	if _, err := ReadKeyring(sigFile); !errors.Is(err, ErrMalformed) {
		t.Errorf("signature as keyring: err = %v, want ErrMalformed", err)
	}
	kbx := write("pubring.kbx", append([]byte{0, 0, 0, 32, 1, 2, 0, 0, 'K', 'B', 'X', 'f'}, make([]byte, 20)...))
	if _, err := ReadKeyring(kbx); err == nil || !strings.Contains(err.Error(), "keybox") {
		t.Errorf("keybox: err = %v, want a keybox hint", err)
	}

	// Export round trip.
	out, err := kr.PublicKeysArmored()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("PRIVATE")) {
		t.Error("exported keyring mentions PRIVATE")
	}
	again, err := ParseKeyring(out)
	if err != nil || again.Len() != kr.Len() {
		t.Errorf("re-parse exported keyring: %d keys, %v", again.Len(), err)
	}
}

func TestSystemKeyring(t *testing.T) {
	// A real binary keyring with many keys (package debian-archive-keyring; .ci/run installs it).
	const p = "/usr/share/keyrings/debian-archive-keyring.gpg"
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not present: install debian-archive-keyring", p)
	}
	kr, err := ReadKeyring(p)
	if err != nil {
		t.Fatalf("ReadKeyring: %v", err)
	}
	if kr.Len() < 2 {
		t.Errorf("%d keys, want several", kr.Len())
	}
	for _, k := range kr.Keys() {
		if len(k.Fingerprint) != 40 || k.UserID == "" {
			t.Errorf("odd key %+v", k)
		}
	}
}

func TestFingerprint(t *testing.T) {
	const mm = "A1B3 1D46 F0F3 A10B 02CF 2D44 F8F2 C317 4477 4B28"
	const mmHex = "A1B31D46F0F3A10B02CF2D44F8F2C31744774B28"
	for _, in := range []string{mm, mmHex, strings.ToLower(mm), "0x" + strings.ToLower(mmHex), "  " + mm + "\n", "A1B3 1D46 F0F3 A10B 02CF  2D44 F8F2 C317 4477 4B28"} {
		got, err := ParseFingerprint(in)
		if err != nil || got != mmHex {
			t.Errorf("ParseFingerprint(%q) = %q, %v", in, got, err)
		}
		if f := FormatFingerprint(in); f != mm {
			t.Errorf("FormatFingerprint(%q) = %q, want %q", in, f, mm)
		}
	}
	for _, in := range []string{"", "4477 4B28", "F8F2C31744774B28", "A1B31D46F0F3A10B02CF2D44F8F2C31744774B2", "G1B31D46F0F3A10B02CF2D44F8F2C31744774B28"} {
		if _, err := ParseFingerprint(in); !errors.Is(err, ErrInvalidFingerprint) {
			t.Errorf("ParseFingerprint(%q) err = %v, want ErrInvalidFingerprint", in, err)
		}
	}
	v6 := strings.Repeat("ab", 32)
	if got, err := ParseFingerprint(v6); err != nil || got != strings.ToUpper(v6) {
		t.Errorf("v6 fingerprint: %q, %v", got, err)
	}
	if got := FormatFingerprint("not a fingerprint"); got != "not a fingerprint" {
		t.Errorf("FormatFingerprint(junk) = %q", got)
	}
}
