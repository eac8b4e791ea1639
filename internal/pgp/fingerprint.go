package pgp

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// ParseFingerprint normalises a fingerprint as people write it: spaces, tabs
// and colons are dropped, an optional "0x" prefix is removed and letters are
// upper-cased. The result is 40 hex digits (v4 keys) or 64 (v6 keys).
// Short and long key IDs (8 or 16 hex digits) are refused: they are not
// safe to pin.
func ParseFingerprint(s string) (string, error) {
	var b strings.Builder
	for _, r := range strings.TrimSpace(s) {
		switch r {
		case ' ', '\t', ':', '\u00a0':
			continue
		}
		b.WriteRune(r)
	}
	fp := strings.ToUpper(b.String())
	fp = strings.TrimPrefix(fp, "0X")
	if _, err := hex.DecodeString(fp); err != nil {
		return "", fmt.Errorf("%w: %q is not hexadecimal", ErrInvalidFingerprint, clip(s))
	}
	switch len(fp) {
	case 40, 64:
		return fp, nil
	case 8, 16:
		return "", fmt.Errorf("%w: %q is a key ID, not a fingerprint; give the full fingerprint", ErrInvalidFingerprint, clip(s))
	default:
		return "", fmt.Errorf("%w: %q has %d hex digits, want 40 (v4) or 64 (v6)", ErrInvalidFingerprint, clip(s), len(fp))
	}
}

// FormatFingerprint writes a fingerprint gpg-style in groups of four:
// "A1B3 1D46 F0F3 A10B 02CF 2D44 F8F2 C317 4477 4B28". Input that is not a
// fingerprint is returned unchanged.
func FormatFingerprint(fp string) string {
	n, err := ParseFingerprint(fp)
	if err != nil {
		return fp
	}
	var b strings.Builder
	for i := 0; i < len(n); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(n[i : i+4])
	}
	return b.String()
}

// clip bounds user-supplied text quoted in an error.
func clip(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

func hexUpper(b []byte) string {
	return strings.ToUpper(hex.EncodeToString(b))
}

func keyIDString(id uint64) string {
	return fmt.Sprintf("%016X", id)
}
