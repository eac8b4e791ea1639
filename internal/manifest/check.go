package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// maxKeySize bounds an OpenPGP public key file; real ones are a few KiB.
const maxKeySize = 1 << 20

// Check verifies what Parse leaves alone: the local files the manifest
// refers to. Every signature key file must exist, be a regular readable
// file of at most 1 MiB, and hold an OpenPGP public key (armored or
// binary; a private key is refused). It does not verify the key's
// cryptography; fetchers do that when they use it. Problems come back as
// *Errors positioned at the key's line in the manifest.
func (m *Manifest) Check() error {
	c := &collector{file: m.file}
	for i, f := range m.Files {
		s := f.Signature
		if s == nil {
			continue
		}
		p := fmt.Sprintf("files[%d].signature.key", i)
		if msg := checkKeyFile(s.KeyPath); msg != "" {
			pos, _ := m.Position(p)
			c.add(pos, p, "%s: key file %q %s", p, s.Key, msg)
		}
	}
	return c.err()
}

// checkKeyFile returns what is wrong with the key file at path, or "".
func checkKeyFile(path string) string {
	if path == "" {
		return "has no resolved path; load the manifest with Load or Parse"
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("does not exist (looked for %s); put the OpenPGP public key there or fix the path", path)
	case err != nil:
		return fmt.Sprintf("cannot be read: %v", err)
	case !fi.Mode().IsRegular():
		return fmt.Sprintf("is not a regular file (%s)", path)
	case fi.Size() == 0:
		return fmt.Sprintf("is empty (%s)", path)
	case fi.Size() > maxKeySize:
		return fmt.Sprintf("is larger than %d bytes; it is not a public key (%s)", maxKeySize, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("cannot be read: %v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeySize+1))
	if err != nil {
		return fmt.Sprintf("cannot be read: %v", err)
	}
	return sniffPublicKey(data)
}

// sniffPublicKey recognizes an OpenPGP public key, armored or binary,
// without parsing it.
func sniffPublicKey(data []byte) string {
	const (
		pubArmor  = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
		privArmor = "-----BEGIN PGP PRIVATE KEY BLOCK-----"
	)
	switch {
	case bytes.Contains(data, []byte(privArmor)):
		return "holds a PRIVATE key; give only the public key (gpg --armor --export), and keep the private key off this machine"
	case bytes.Contains(data, []byte(pubArmor)):
		return ""
	case bytes.Contains(data, []byte("-----BEGIN PGP")):
		return "is armored OpenPGP data but not a public key block"
	}
	// Binary OpenPGP: the first packet must be a public key (tag 6) or a
	// secret key (tag 5, refused).
	b := data[0]
	if b&0x80 == 0 {
		return "is not an OpenPGP public key (neither armored nor binary OpenPGP)"
	}
	tag := b & 0x3f
	if b&0x40 == 0 { // old packet format
		tag = (b >> 2) & 0x0f
	}
	switch tag {
	case 6:
		return ""
	case 5:
		return "holds a PRIVATE key; give only the public key (gpg --export), and keep the private key off this machine"
	}
	return "is not an OpenPGP public key (its first packet is not a public key)"
}
