package pgp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// Keyring is a set of trusted public keys. The zero value is empty and
// trusts nothing.
type Keyring struct {
	entities openpgp.EntityList
}

// KeyInfo describes one key of a Keyring.
type KeyInfo struct {
	// Fingerprint of the primary key, uppercase hex without spaces.
	Fingerprint string
	// KeyID of the primary key, 16 uppercase hex digits.
	KeyID string
	// UserID is the primary user ID, or "".
	UserID string
	// Created is the primary key's creation time.
	Created time.Time
	// Expires is when the primary key expires; zero means never.
	Expires time.Time
}

// ReadKeyring reads trusted keys from files. Each file may hold one or many
// keys, ASCII-armored (several blocks allowed) or binary (as in
// /usr/share/keyrings/*.gpg). Secret key files are accepted and only their
// public part is kept. Errors name the file.
func ReadKeyring(paths ...string) (Keyring, error) {
	if len(paths) == 0 {
		return Keyring{}, errors.New("read keyring: no key files given")
	}
	var kr Keyring
	for _, p := range paths {
		data, err := readFileLimited(p, MaxKeyringSize)
		if err != nil {
			return Keyring{}, fmt.Errorf("read keyring %s: %w", p, err)
		}
		k, err := ParseKeyring(data)
		if err != nil {
			return Keyring{}, fmt.Errorf("read keyring %s: %w", p, err)
		}
		kr.entities = append(kr.entities, k.entities...)
	}
	return kr, nil
}

func readFileLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, limit)
	}
	return data, nil
}

// ParseKeyring parses keys from data as ReadKeyring does for one file.
// Input that holds no usable key fails with ErrMalformed.
func ParseKeyring(data []byte) (Keyring, error) {
	if len(data) > MaxKeyringSize {
		return Keyring{}, fmt.Errorf("%w: keyring larger than %d bytes", ErrMalformed, MaxKeyringSize)
	}
	var bins [][]byte
	if isBinary(data) {
		bins = [][]byte{data}
	} else {
		if isKeybox(data) {
			return Keyring{}, keyboxError()
		}
		blocks, err := decodeArmor(data, MaxKeyringSize)
		if err != nil {
			return Keyring{}, err
		}
		for _, b := range blocks {
			if b.Type != blockPublicKey && b.Type != blockPrivateKey {
				return Keyring{}, fmt.Errorf("%w: armored %q block where a key was expected", ErrMalformed, clip(b.Type))
			}
			bins = append(bins, b.Body)
		}
	}
	var kr Keyring
	for _, bin := range bins {
		el, err := readEntities(bin)
		if err != nil {
			return Keyring{}, err
		}
		for _, e := range el {
			kr.entities = append(kr.entities, publicOnly(e))
		}
	}
	return kr, nil
}

// readEntities parses binary transferable keys. Keys go-crypto cannot use
// (unknown algorithms, broken self-signatures) are skipped as long as one
// usable key remains.
func readEntities(bin []byte) (el openpgp.EntityList, err error) {
	if isKeybox(bin) {
		return nil, keyboxError()
	}
	defer func() {
		// go-crypto parses hostile input; never let a parser bug take the
		// whole process down.
		if r := recover(); r != nil {
			el, err = nil, fmt.Errorf("%w: key parser failed on this input", ErrMalformed)
		}
	}()
	el, err = openpgp.ReadKeyRing(bytes.NewReader(bin))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(el) == 0 {
		return nil, fmt.Errorf("%w: no OpenPGP key found", ErrMalformed)
	}
	return el, nil
}

// isKeybox recognises GnuPG's pubring.kbx format, which is not OpenPGP.
func isKeybox(data []byte) bool {
	return len(data) >= 12 && string(data[8:12]) == "KBXf"
}

func keyboxError() error {
	return fmt.Errorf("%w: this is a GnuPG keybox (pubring.kbx), not an OpenPGP keyring; export keys with `gpg --export`", ErrMalformed)
}

// publicOnly drops every secret key part of e.
func publicOnly(e *openpgp.Entity) *openpgp.Entity {
	c := *e
	c.PrivateKey = nil
	c.Subkeys = make([]openpgp.Subkey, len(e.Subkeys))
	for i, sk := range e.Subkeys {
		sk.PrivateKey = nil
		c.Subkeys[i] = sk
	}
	return &c
}

// Len is the number of keys in the keyring.
func (k Keyring) Len() int { return len(k.entities) }

// Keys describes the keys of the keyring, in the order they were read.
func (k Keyring) Keys() []KeyInfo {
	out := make([]KeyInfo, 0, len(k.entities))
	for _, e := range k.entities {
		selfSig, _ := e.PrimarySelfSignature()
		out = append(out, KeyInfo{
			Fingerprint: hexUpper(e.PrimaryKey.Fingerprint),
			KeyID:       keyIDString(e.PrimaryKey.KeyId),
			UserID:      primaryUserID(e),
			Created:     e.PrimaryKey.CreationTime,
			Expires:     keyExpiry(e.PrimaryKey, selfSig),
		})
	}
	return out
}

// Merge returns a keyring holding the keys of k and then those of o.
func (k Keyring) Merge(o Keyring) Keyring {
	el := make(openpgp.EntityList, 0, len(k.entities)+len(o.entities))
	el = append(el, k.entities...)
	el = append(el, o.entities...)
	return Keyring{entities: el}
}

// Pin returns a keyring holding only the key whose primary fingerprint is
// fp (any spacing or case, see ParseFingerprint). It fails with
// ErrKeyNotFound when no such key is present.
func (k Keyring) Pin(fp string) (Keyring, error) {
	want, err := ParseFingerprint(fp)
	if err != nil {
		return Keyring{}, err
	}
	var el openpgp.EntityList
	for _, e := range k.entities {
		if hexUpper(e.PrimaryKey.Fingerprint) == want {
			el = append(el, e)
		}
	}
	if len(el) == 0 {
		return Keyring{}, fmt.Errorf("pin key %s: %w", FormatFingerprint(want), ErrKeyNotFound)
	}
	return Keyring{entities: el}, nil
}

// PublicKeysArmored returns every key of the keyring as one ASCII-armored
// public key block.
func (k Keyring) PublicKeysArmored() ([]byte, error) {
	var buf bytes.Buffer
	err := armorWrite(&buf, blockPublicKey, func(w io.Writer) error {
		for _, e := range k.entities {
			if err := e.Serialize(w); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("encode keyring: %w", err)
	}
	return buf.Bytes(), nil
}
