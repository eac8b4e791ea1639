package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("keys/armored.asc", []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxsBNBF...\n-----END PGP PUBLIC KEY BLOCK-----\n"))
	write("keys/binary-old.gpg", []byte{0x99, 0x01, 0x0d, 0x04})
	write("keys/binary-new.gpg", []byte{0xc6, 0x33, 0x04})
	write("keys/private.asc", []byte("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nx\n-----END PGP PRIVATE KEY BLOCK-----\n"))
	write("keys/secret.gpg", []byte{0x95, 0x01})
	write("keys/message.asc", []byte("-----BEGIN PGP SIGNATURE-----\n\nx\n-----END PGP SIGNATURE-----\n"))
	write("keys/text.txt", []byte("hello\n"))
	write("keys/empty.asc", nil)
	write("keys/big.asc", make([]byte, maxKeySize+1))
	if err := os.Mkdir(filepath.Join(dir, "keys/dir.asc"), 0o755); err != nil {
		t.Fatal(err)
	}

	keys := []string{
		"keys/armored.asc", "keys/binary-old.gpg", "keys/binary-new.gpg", // fine
		"keys/private.asc", "keys/secret.gpg", "keys/message.asc", "keys/text.txt",
		"keys/empty.asc", "keys/big.asc", "keys/dir.asc", "keys/missing.asc",
	}
	var b strings.Builder
	b.WriteString(header + "files:\n")
	for i, k := range keys {
		b.WriteString("  - url: https://h/f" + string(rune('a'+i)) + "\n    signature:\n      url: https://h/f.sig\n      key: " + k + "\n")
	}
	write("mmgap.yaml", []byte(b.String()))
	m, err := Load(filepath.Join(dir, "mmgap.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	err = m.Check()
	if err == nil {
		t.Fatal("Check passed")
	}
	file := filepath.Join(dir, "mmgap.yaml")
	abs := func(k string) string { return filepath.Join(dir, filepath.FromSlash(k)) }
	want := []string{
		file + `:21:12: files[3].signature.key: key file "keys/private.asc" holds a PRIVATE key; give only the public key (gpg --armor --export), and keep the private key off this machine`,
		file + `:25:12: files[4].signature.key: key file "keys/secret.gpg" holds a PRIVATE key; give only the public key (gpg --export), and keep the private key off this machine`,
		file + `:29:12: files[5].signature.key: key file "keys/message.asc" is armored OpenPGP data but not a public key block`,
		file + `:33:12: files[6].signature.key: key file "keys/text.txt" is not an OpenPGP public key (neither armored nor binary OpenPGP)`,
		file + `:37:12: files[7].signature.key: key file "keys/empty.asc" is empty (` + abs("keys/empty.asc") + `)`,
		file + `:41:12: files[8].signature.key: key file "keys/big.asc" is larger than 1048576 bytes; it is not a public key (` + abs("keys/big.asc") + `)`,
		file + `:45:12: files[9].signature.key: key file "keys/dir.asc" is not a regular file (` + abs("keys/dir.asc") + `)`,
		file + `:49:12: files[10].signature.key: key file "keys/missing.asc" does not exist (looked for ` + abs("keys/missing.asc") + `); put the OpenPGP public key there or fix the path`,
	}
	if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Check:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}

func TestCheckNoFiles(t *testing.T) {
	m, err := Parse("m.yaml", []byte(header+"images:\n  - ref: postgres:15\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
}
