package pgp

import (
	"bytes"
	"fmt"
	"io"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
)

const (
	// MaxKeyringSize bounds a key or keyring file. Debian's whole archive
	// keyring is well under 1 MiB.
	MaxKeyringSize = 64 << 20
	// MaxSignatureSize bounds a detached signature. A signature is a few
	// hundred bytes; a few kilobytes with many signers.
	MaxSignatureSize = 1 << 20

	blockSignature  = "PGP SIGNATURE"
	blockPublicKey  = "PGP PUBLIC KEY BLOCK"
	blockPrivateKey = "PGP PRIVATE KEY BLOCK"
)

var (
	armorBegin = []byte("-----BEGIN PGP ")
	armorEnd   = []byte("-----END PGP ")
)

// isBinary reports whether data starts like binary OpenPGP: every packet
// header has bit 7 set, which no ASCII text has.
func isBinary(data []byte) bool {
	return len(data) > 0 && data[0]&0x80 != 0
}

type armoredBlock struct {
	Type string
	Body []byte
}

// decodeArmor decodes every ASCII-armored block in data, in order. Text
// around the blocks is ignored, as gpg does. limit bounds each decoded body.
func decodeArmor(data []byte, limit int64) ([]armoredBlock, error) {
	var blocks []armoredBlock
	rest := data
	for {
		i := bytes.Index(rest, armorBegin)
		if i < 0 {
			break
		}
		rest = rest[i:]
		end := bytes.Index(rest, armorEnd)
		if end < 0 {
			return nil, fmt.Errorf("%w: armored block has no END line", ErrMalformed)
		}
		// Decode only up to the end of this block's END line, so that
		// armor.Decode cannot wander into the next block.
		stop := end + len(armorEnd)
		if nl := bytes.IndexByte(rest[stop:], '\n'); nl >= 0 {
			stop += nl + 1
		} else {
			stop = len(rest)
		}
		blk, err := armor.Decode(bytes.NewReader(rest[:stop]))
		if err != nil {
			return nil, fmt.Errorf("%w: bad armor: %v", ErrMalformed, err)
		}
		body, err := io.ReadAll(io.LimitReader(blk.Body, limit+1))
		if err != nil {
			return nil, fmt.Errorf("%w: bad armor body: %v", ErrMalformed, err)
		}
		if int64(len(body)) > limit {
			return nil, fmt.Errorf("%w: armored %s larger than %d bytes", ErrMalformed, clip(blk.Type), limit)
		}
		blocks = append(blocks, armoredBlock{Type: blk.Type, Body: body})
		rest = rest[stop:]
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("%w: neither binary OpenPGP nor an ASCII-armored block", ErrMalformed)
	}
	return blocks, nil
}
