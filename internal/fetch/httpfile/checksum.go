package httpfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
)

// MaxChecksumFileSize is the largest checksum file Fetch reads (a SHA256SUMS listing many files
// fits easily).
const MaxChecksumFileSize = 1 << 20

// ErrChecksumFile reports a published checksum file that cannot be read or that does not list
// the file.
var ErrChecksumFile = errors.New("bad checksum file")

// ParseChecksumFile finds the SHA-256 of the file called name in a published checksum file and
// returns it as 64 lowercase hex digits. Two formats are accepted:
//
//   - a single digest: one line of 64 hex digits and nothing else (kubectl's .sha256);
//   - sha256sum output: lines "<64 hex>  <name>" (text mode) or "<64 hex> *<name>" (binary
//     mode), as in helm's .sha256sum or a SHA256SUMS listing. The line whose name equals name
//     (after dropping a leading "./") is used. A file with exactly one such line of any name is
//     not enough: the name must match.
//
// Blank lines and lines starting with '#' are ignored; a leading BOM and CRLF line ends are
// tolerated. Any other line is an error, as are name absent, or listed twice with different
// digests.
func ParseChecksumFile(data []byte, name string) (string, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var bare []string
	var found string
	listed := 0
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimRight(line, "\r")
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if len(t) == 64 && isHex(t) {
			bare = append(bare, strings.ToLower(t))
			continue
		}
		if len(t) < 66 || !isHex(t[:64]) || t[64] != ' ' {
			return "", fmt.Errorf("%w: line %d is neither a sha256 digest nor \"<sha256>  <name>\"", ErrChecksumFile, i+1)
		}
		rest := t[65:]
		switch {
		case strings.HasPrefix(rest, " "), strings.HasPrefix(rest, "*"):
			rest = rest[1:]
		default:
			return "", fmt.Errorf("%w: line %d: want two spaces or \" *\" between digest and name", ErrChecksumFile, i+1)
		}
		if rest == "" {
			return "", fmt.Errorf("%w: line %d has no file name", ErrChecksumFile, i+1)
		}
		listed++
		if strings.TrimPrefix(rest, "./") != name {
			continue
		}
		d := strings.ToLower(t[:64])
		if found != "" && found != d {
			return "", fmt.Errorf("%w: %q is listed more than once with different digests", ErrChecksumFile, name)
		}
		found = d
	}
	switch {
	case len(bare) > 0 && listed > 0:
		return "", fmt.Errorf("%w: mixes bare digests with \"<sha256>  <name>\" lines", ErrChecksumFile)
	case len(bare) > 1:
		return "", fmt.Errorf("%w: %d bare digests; want one, or \"<sha256>  <name>\" lines", ErrChecksumFile, len(bare))
	case len(bare) == 1:
		return bare[0], nil
	case found != "":
		return found, nil
	case listed > 0:
		return "", fmt.Errorf("%w: %q is not listed", ErrChecksumFile, name)
	}
	return "", fmt.Errorf("%w: no sha256 digest in it", ErrChecksumFile)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// fetchChecksum downloads the published checksum file, bounded in size, with retries, and
// returns the digest it gives for the file.
func (f *Fetcher) fetchChecksum(ctx context.Context, r *resolved) (string, error) {
	body, err := f.fetchSmall(ctx, r, r.sumFetchURL, r.sumGetShown, "checksum file", MaxChecksumFileSize)
	if err != nil {
		return "", err
	}
	d, err := ParseChecksumFile(body, r.title)
	if err != nil {
		return "", fmt.Errorf("file %q: checksum file %s: %w", r.Name, r.sumShown, err)
	}
	return d, nil
}
