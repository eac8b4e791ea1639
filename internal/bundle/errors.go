package bundle

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNotBundle reports input that is not a zstd-compressed tar stream starting with bundle.json:
// the wrong file, not a damaged bundle. Test with errors.Is.
var ErrNotBundle = errors.New("not an mmgap bundle")

// ErrTruncated is wrapped by the *IntegrityError reported when the bundle ends early.
var ErrTruncated = errors.New("bundle is truncated")

// ErrUnsigned is wrapped by the *SignatureError reported for a bundle without bundle.json.asc.
var ErrUnsigned = errors.New("bundle is not signed")

// ErrUnsupportedVersion is wrapped by *VersionError.
var ErrUnsupportedVersion = errors.New("unsupported bundle formatVersion")

// SupportedVersions lists the formatVersion values this package reads.
var SupportedVersions = []int{FormatVersion}

// IntegrityError reports a bundle whose content does not match its signed inventory or breaks
// the format's rules (docs/spec/bundle-v1.md §1, §6): a digest or size mismatch, a forbidden or
// unknown tar entry, a duplicate, entries out of order, a truncated stream, data after the end
// of the archive. Nothing is left on disk when it is returned. The CLI maps it to exit code 4.
type IntegrityError struct {
	// Entry is the tar entry concerned ("store/blobs/sha256/<hex>", "bundle.json", ...), or ""
	// when the failure concerns the stream as a whole.
	Entry string
	// Artifact names the artifacts (index.json ref names) that reach the entry, comma-separated,
	// when known; "" when the entry belongs to no known artifact.
	Artifact string
	// Reason says what is wrong, in words.
	Reason string
	// Err is an underlying cause (ErrTruncated, a decoder error), or nil.
	Err error
}

func (e *IntegrityError) Error() string {
	var b strings.Builder
	b.WriteString("bundle integrity: ")
	if e.Entry != "" {
		b.WriteString(quoteName(e.Entry))
		if e.Artifact != "" {
			b.WriteString(" (artifact ")
			b.WriteString(e.Artifact)
			b.WriteString(")")
		} else if strings.HasPrefix(e.Entry, blobPrefix) {
			b.WriteString(" (artifact unknown)")
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Reason)
	return b.String()
}

func (e *IntegrityError) Unwrap() error { return e.Err }

// SignatureError reports a bundle whose signature is missing, malformed, made by a key that is
// not trusted, expired, or does not verify over bundle.json. Err wraps the internal/pgp sentinel
// (pgp.ErrBadSignature, pgp.ErrUnknownSigner, pgp.ErrKeyExpired, pgp.ErrMalformed, ...) or
// ErrUnsigned. The CLI maps it to exit code 4.
type SignatureError struct {
	Reason string
	// KeyID and Fingerprint identify the key that made the signature, when known.
	KeyID       string
	Fingerprint string
	Err         error
}

func (e *SignatureError) Error() string {
	return "bundle signature: " + e.Reason
}

func (e *SignatureError) Unwrap() error { return e.Err }

// VersionError reports a bundle.json whose formatVersion this package does not implement.
type VersionError struct {
	// Found is the formatVersion value as written in bundle.json ("" when absent).
	Found     string
	Supported []int
}

func (e *VersionError) Error() string {
	sup := make([]string, len(e.Supported))
	for i, v := range e.Supported {
		sup[i] = strconv.Itoa(v)
	}
	if e.Found == "" {
		return fmt.Sprintf("bundle.json has no formatVersion; supported versions: %s", strings.Join(sup, ", "))
	}
	return fmt.Sprintf("bundle.json formatVersion %s is not supported; supported versions: %s (a newer mmgap may read it)",
		e.Found, strings.Join(sup, ", "))
}

func (e *VersionError) Unwrap() error { return ErrUnsupportedVersion }

// quoteName shows an entry name safely: names from hostile archives may hold control bytes.
func quoteName(s string) string {
	s = clip(s, 200)
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\\' || r == '"' || r == 0xfffd {
			return strconv.Quote(s)
		}
	}
	return s
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
