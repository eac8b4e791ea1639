package bundle

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/mmgap/mmgap/internal/pgp"
)

// Inspection describes a bundle from its first two entries only.
type Inspection struct {
	Inventory *Inventory
	// Signed is true when the bundle carries bundle.json.asc.
	Signed bool
	// SignatureVerified is true when the signature was checked against a keyring and is good.
	// Nothing else in the bundle was checked: use Verify for that.
	SignatureVerified bool
	// Signer is the verified signer when SignatureVerified; otherwise, for a signed bundle, the
	// key the signature names (KeyID and, when the signature carries it, Fingerprint), which
	// proves nothing.
	Signer *SignerInfo
	// SignatureError says why the signature did not verify (nil when verified, unsigned, or no
	// keyring was given).
	SignatureError error
	// Created is the inventory's creation time.
	Created time.Time
	// TotalSize is the number of content bytes the inventory lists (files and blobs).
	TotalSize int64
}

// Inspect reads bundle.json and bundle.json.asc, the first two entries of the bundle read from r,
// and nothing more. With kr, the signature is verified over bundle.json; without, the signer is
// only named. Errors are those of Verify for the entries read.
func Inspect(r io.Reader, kr *pgp.Keyring) (*Inspection, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool := newBufPool(bufSize, 16)
	z := newZreader(ctx, r, pool)
	t := &tarStream{z: z}
	defer func() {
		t.close()
		z.close()
		pool.recycle()
	}()
	invData, sig, _, err := readHead(t)
	if err != nil {
		return nil, err
	}
	inv, err := ParseInventory(invData)
	if err != nil {
		var ve *VersionError
		if errors.As(err, &ve) {
			return nil, err
		}
		return nil, &IntegrityError{Entry: NameInventory, Reason: err.Error()}
	}
	in := &Inspection{Inventory: inv, Created: inv.Created, TotalSize: inv.TotalSize(), Signed: sig != nil}
	if sig == nil {
		return in, nil
	}
	keys := pgp.Keyring{}
	if kr != nil {
		keys = *kr
	}
	s, err := checkSignature(keys, invData, sig, VerifyOptions{})
	if err == nil {
		in.SignatureVerified = true
		in.Signer = s
		return in, nil
	}
	var se *SignatureError
	if errors.As(err, &se) && (se.KeyID != "" || se.Fingerprint != "") {
		in.Signer = &SignerInfo{KeyID: se.KeyID, Fingerprint: se.Fingerprint}
	}
	if kr != nil || !errors.Is(err, pgp.ErrUnknownSigner) {
		in.SignatureError = err
	}
	return in, nil
}
