package pgp

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gpgHome is a throwaway GnuPG home. Tests that use it need the real gpg
// binary; CI installs it, so a missing gpg is a failure, not a skip.
type gpgHome struct {
	t   *testing.T
	dir string
	env []string
}

func newGPG(t *testing.T) *gpgHome {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Fatalf("gpg not found (install the gnupg package): %v", err)
	}
	// Short path: gpg-agent's socket lives here and socket paths are
	// limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "mmgap-gpg-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	g := &gpgHome{t: t, dir: dir}
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "GNUPGHOME", "GPG_AGENT_INFO", "LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES":
			continue
		}
		g.env = append(g.env, kv)
	}
	g.env = append(g.env, "GNUPGHOME="+dir, "LC_ALL=C")
	t.Cleanup(func() {
		if p, err := exec.LookPath("gpgconf"); err == nil {
			cmd := exec.Command(p, "--kill", "all")
			cmd.Env = g.env
			_ = cmd.Run()
		}
		_ = os.RemoveAll(dir)
	})
	return g
}

// run runs gpg in batch mode and returns stdout; stderr is in the error.
func (g *gpgHome) run(stdin []byte, args ...string) ([]byte, error) {
	g.t.Helper()
	cmd := exec.Command("gpg", append([]string{"--batch", "--no-tty", "--yes"}, args...)...)
	cmd.Env = g.env
	cmd.Dir = g.dir
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &gpgError{args: args, err: err, stderr: stderr.String()}
	}
	return stdout.Bytes(), nil
}

func (g *gpgHome) must(stdin []byte, args ...string) []byte {
	g.t.Helper()
	out, err := g.run(stdin, args...)
	if err != nil {
		g.t.Fatal(err)
	}
	return out
}

func (g *gpgHome) write(name string, data []byte) string {
	g.t.Helper()
	p := filepath.Join(g.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		g.t.Fatal(err)
	}
	return p
}

func (g *gpgHome) read(name string) []byte {
	g.t.Helper()
	b, err := os.ReadFile(filepath.Join(g.dir, name))
	if err != nil {
		g.t.Fatal(err)
	}
	return b
}

// fingerprints lists the primary and subkey fingerprints gpg knows, in
// --with-colons order.
func (g *gpgHome) fingerprints(secret bool) []string {
	g.t.Helper()
	list := "--list-keys"
	if secret {
		list = "--list-secret-keys"
	}
	var fps []string
	for _, line := range strings.Split(string(g.must(nil, "--with-colons", list)), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 9 && f[0] == "fpr" {
			fps = append(fps, f[9])
		}
	}
	return fps
}

type gpgError struct {
	args   []string
	err    error
	stderr string
}

func (e *gpgError) Error() string {
	return "gpg " + strings.Join(e.args, " ") + ": " + e.err.Error() + "\n" + e.stderr
}

// TestGPGVerifiesOurSignatures: keys and signatures made here pass plain
// `gpg --verify`.
func TestGPGVerifiesOurSignatures(t *testing.T) {
	for _, alg := range []Algorithm{AlgorithmEd25519, AlgorithmRSA3072} {
		t.Run(string(alg), func(t *testing.T) {
			g := newGPG(t)
			k := newKey(t, KeyOptions{Algorithm: alg, Name: "mmgap test", Email: "test@example.invalid"})
			g.must(nil, "--import", g.write("pub.asc", k.pub))
			if fps := g.fingerprints(false); len(fps) != 1 || fps[0] != k.fp {
				t.Fatalf("gpg sees fingerprints %v, want [%s]", fps, k.fp)
			}

			msg := g.write("bundle.json", message)
			sig := g.write("bundle.json.asc", mustSign(t, k.signer, message))
			status := string(g.must(nil, "--status-fd", "1", "--verify", sig, msg))
			if !strings.Contains(status, "[GNUPG:] GOODSIG "+k.fp[24:]) {
				t.Errorf("no GOODSIG in gpg status:\n%s", status)
			}
			if !strings.Contains(status, "[GNUPG:] VALIDSIG "+k.fp+" ") {
				t.Errorf("no VALIDSIG %s in gpg status:\n%s", k.fp, status)
			}
			// SHA-512 is digest algo 10 in VALIDSIG's 8th field.
			for _, line := range strings.Split(status, "\n") {
				if f := strings.Fields(line); len(f) > 9 && f[1] == "VALIDSIG" && f[9] != "10" {
					t.Errorf("gpg reports digest algo %s, want 10 (SHA-512)", f[9])
				}
			}

			// Sanity: gpg does reject a tampered message, so the check above
			// means something.
			tampered := g.write("tampered.json", append(bytes.Clone(message), '!'))
			if out, err := g.run(nil, "--status-fd", "1", "--verify", sig, tampered); err == nil || !strings.Contains(string(out), "BADSIG") {
				t.Errorf("gpg accepted a tampered message: %v\n%s", err, out)
			}
		})
	}
}

// TestGPGImportsOurSecretKey: a passphrase-protected secret key made here
// imports into gpg with its passphrase and signs there.
func TestGPGImportsOurSecretKey(t *testing.T) {
	g := newGPG(t)
	const pass = "a passphrase for gpg"
	k := newKey(t, KeyOptions{Passphrase: []byte(pass)})
	secPath := g.write("secret.asc", k.sec)

	packets := string(g.must(nil, "--list-packets", secPath))
	if !strings.Contains(packets, "iter+salt S2K, algo: 9,") {
		t.Errorf("secret key is not protected with iterated+salted S2K and AES-256:\n%s", packets)
	}

	g.must(nil, "--pinentry-mode", "loopback", "--passphrase", pass, "--import", secPath)
	if fps := g.fingerprints(true); len(fps) != 1 || fps[0] != k.fp {
		t.Fatalf("gpg secret keys %v, want [%s]", fps, k.fp)
	}
	// gpg can use it, with the same passphrase.
	msg := g.write("msg", message)
	g.must(nil, "--pinentry-mode", "loopback", "--passphrase", pass, "--local-user", k.fp,
		"--armor", "--detach-sign", "--output", "msg.asc", msg)
	res, err := Verify(k.kr, bytes.NewReader(message), g.read("msg.asc"), VerifyOptions{})
	if err != nil {
		t.Fatalf("Verify(gpg signature with imported key): %v", err)
	}
	if res.Fingerprint != k.fp {
		t.Errorf("signer %s, want %s", res.Fingerprint, k.fp)
	}

	// And a key exported by gpg (re-protected by gpg-agent) reads back here.
	exported := g.must(nil, "--pinentry-mode", "loopback", "--passphrase", pass, "--armor", "--export-secret-keys", k.fp)
	if _, err := ReadSecretKey(bytes.NewReader(exported), []byte("wrong")); !errors.Is(err, ErrPassphrase) {
		t.Errorf("gpg-exported key, wrong passphrase: err = %v, want ErrPassphrase", err)
	}
	s, err := ReadSecretKey(bytes.NewReader(exported), []byte(pass))
	if err != nil {
		t.Fatalf("ReadSecretKey(gpg export): %v", err)
	}
	if s.Fingerprint() != k.fp {
		t.Errorf("re-read fingerprint %s, want %s", s.Fingerprint(), k.fp)
	}
}

// TestWeVerifyGPGSignatures: signatures by a gpg-made key verify here, with
// the key from `gpg --export --armor`.
func TestWeVerifyGPGSignatures(t *testing.T) {
	g := newGPG(t)
	g.must(nil, "--passphrase", "", "--quick-gen-key", "Test <t@example.invalid>", "ed25519", "sign", "never")
	fps := g.fingerprints(false)
	if len(fps) != 1 {
		t.Fatalf("gpg made keys %v, want one", fps)
	}
	fp := fps[0]
	kr, err := ParseKeyring(g.must(nil, "--export", "--armor", fp))
	if err != nil {
		t.Fatalf("ParseKeyring(gpg --export --armor): %v", err)
	}
	if ks := kr.Keys(); len(ks) != 1 || ks[0].Fingerprint != fp || ks[0].UserID != "Test <t@example.invalid>" {
		t.Fatalf("keyring %+v, want %s", ks, fp)
	}
	// The binary export reads too.
	if kb, err := ParseKeyring(g.must(nil, "--export", fp)); err != nil || kb.Len() != 1 {
		t.Fatalf("ParseKeyring(gpg --export): %d keys, %v", kb.Len(), err)
	}

	msg := g.write("msg", message)
	g.must(nil, "--armor", "--detach-sign", "--output", "msg.asc", msg)
	g.must(nil, "--detach-sign", "--output", "msg.sig", msg)
	for _, name := range []string{"msg.asc", "msg.sig"} {
		sig := g.read(name)
		res, err := Verify(kr, bytes.NewReader(message), sig, VerifyOptions{})
		if err != nil {
			t.Fatalf("Verify(%s): %v", name, err)
		}
		if res.Fingerprint != fp || res.UserID != "Test <t@example.invalid>" {
			t.Errorf("%s: result %+v, want %s", name, res, fp)
		}
		bad := bytes.Clone(message)
		bad[len(bad)-2] ^= 0x20
		if _, err := Verify(kr, bytes.NewReader(bad), sig, VerifyOptions{}); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s over tampered message: err = %v, want ErrBadSignature", name, err)
		}
	}
	// Pinning by gpg's fingerprint, as printed by `gpg --fingerprint`.
	if _, err := kr.Pin(FormatFingerprint(fp)); err != nil {
		t.Errorf("Pin(%s): %v", FormatFingerprint(fp), err)
	}

	// gpg will still make SHA-1 signatures on request; they are refused.
	g.must(nil, "--digest-algo", "SHA1", "--detach-sign", "--output", "sha1.sig", msg)
	if _, err := Verify(kr, bytes.NewReader(message), g.read("sha1.sig"), VerifyOptions{}); !errors.Is(err, ErrWeakHash) {
		t.Errorf("gpg SHA-1 signature: err = %v, want ErrWeakHash", err)
	}

	// A text-mode signature (sigclass 0x01) verifies as well.
	g.must(nil, "--textmode", "--detach-sign", "--output", "text.sig", msg)
	if _, err := Verify(kr, bytes.NewReader(message), g.read("text.sig"), VerifyOptions{}); err != nil {
		t.Errorf("gpg --textmode signature: %v", err)
	}

	// A signing subkey: gpg signs with it, the result names both keys.
	g.must(nil, "--pinentry-mode", "loopback", "--passphrase", "", "--quick-add-key", fp, "ed25519", "sign", "never")
	all := g.fingerprints(false)
	if len(all) != 2 {
		t.Fatalf("after adding a subkey gpg lists %v", all)
	}
	sub := all[1]
	kr, err = ParseKeyring(g.must(nil, "--export", "--armor", fp))
	if err != nil {
		t.Fatal(err)
	}
	g.must(nil, "--armor", "--detach-sign", "--output", "sub.asc", msg)
	res, err := Verify(kr, bytes.NewReader(message), g.read("sub.asc"), VerifyOptions{})
	if err != nil {
		t.Fatalf("Verify(subkey signature): %v", err)
	}
	if res.Fingerprint != fp || res.SigningKeyFingerprint != sub || res.KeyID != sub[24:] {
		t.Errorf("subkey signature result %+v, want primary %s subkey %s", res, fp, sub)
	}

	// A gpg secret key export signs here, and gpg accepts the result.
	sec := g.must(nil, "--pinentry-mode", "loopback", "--passphrase", "", "--armor", "--export-secret-keys", fp)
	s, err := ReadSecretKey(bytes.NewReader(sec), nil)
	if err != nil {
		t.Fatalf("ReadSecretKey(gpg export): %v", err)
	}
	sig := g.write("ours.asc", mustSign(t, s, message))
	status := string(g.must(nil, "--status-fd", "1", "--verify", sig, msg))
	if !strings.Contains(status, "[GNUPG:] VALIDSIG "+sub+" ") {
		t.Errorf("gpg did not validate our subkey signature:\n%s", status)
	}
}
