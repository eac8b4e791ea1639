package bundle

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

const blockLen = 512

// maxPAXSize bounds an extended header: a v1 writer needs one only for sizes of 8 GiB and more.
const maxPAXSize = 64 << 10

// errEndOfArchive is returned by nextHeader at the end-of-archive marker.
var errEndOfArchive = errors.New("end of archive")

// tarError is a malformed or forbidden tar header.
type tarError struct {
	name   string // entry name when known
	reason string
	header bool // the header itself is not valid tar
}

func (e *tarError) Error() string { return e.reason }

// tarStream frames tar entries over decompressed chunks. Headers are validated by archive/tar;
// entry content is handed out as chunks pointing into the decompressed buffers, never copied.
type tarStream struct {
	z   *zreader
	cur chunk
	pos int64
}

func (t *tarStream) close() {
	t.cur.release()
	t.cur = chunk{}
}

func (t *tarStream) ensure() error {
	for len(t.cur.b) == 0 {
		t.cur.release()
		t.cur = chunk{}
		c, err := t.z.next()
		if err != nil {
			return err
		}
		t.cur = c
	}
	return nil
}

// eofIsTruncation maps the clean end of the compressed stream inside the tar stream.
func eofIsTruncation(err error) error {
	if err == io.EOF {
		return &streamError{truncated: true, cleanEnd: true, msg: "the tar stream is incomplete"}
	}
	return err
}

// read copies exactly len(p) bytes.
func (t *tarStream) read(p []byte) error {
	for len(p) > 0 {
		if err := t.ensure(); err != nil {
			return eofIsTruncation(err)
		}
		n := copy(p, t.cur.b)
		t.cur.b = t.cur.b[n:]
		p = p[n:]
		t.pos += int64(n)
	}
	return nil
}

// take returns up to n bytes (n > 0) without copying; the caller owns the chunk.
func (t *tarStream) take(n int64) (chunk, error) {
	if err := t.ensure(); err != nil {
		return chunk{}, eofIsTruncation(err)
	}
	m := int(min(n, int64(len(t.cur.b))))
	c := chunk{b: t.cur.b[:m], buf: t.cur.buf}
	if c.buf != nil {
		c.buf.retain()
	}
	t.cur.b = t.cur.b[m:]
	t.pos += int64(m)
	return c, nil
}

func (t *tarStream) skip(n int64) error {
	for n > 0 {
		if err := t.ensure(); err != nil {
			return eofIsTruncation(err)
		}
		m := int(min(n, int64(len(t.cur.b))))
		t.cur.b = t.cur.b[m:]
		t.pos += int64(m)
		n -= int64(m)
	}
	return nil
}

// readAll reads an n-byte entry body into memory, with its padding. Memory grows with the data
// actually read, not with the size a header claims.
func (t *tarStream) readAll(n int64) ([]byte, error) {
	b := make([]byte, 0, min(n, bufSize))
	for rest := n; rest > 0; {
		c, err := t.take(rest)
		if err != nil {
			return nil, err
		}
		b = append(b, c.b...)
		rest -= int64(len(c.b))
		c.release()
	}
	return b, t.skip(padding(n))
}

func padding(n int64) int64 { return -n & (blockLen - 1) }

type entryHeader struct {
	name string
	size int64
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// nextHeader reads the next entry header. It returns errEndOfArchive at the end-of-archive
// marker, a *tarError for an invalid or forbidden header, or a stream error.
func (t *tarStream) nextHeader() (*entryHeader, error) {
	var blk [blockLen]byte
	if err := t.read(blk[:]); err != nil {
		return nil, err
	}
	if allZero(blk[:]) {
		if err := t.read(blk[:]); err != nil {
			return nil, err
		}
		if !allZero(blk[:]) {
			return nil, &tarError{reason: "a single zero block inside the archive", header: true}
		}
		return nil, errEndOfArchive
	}
	raw := make([]byte, 0, 3*blockLen)
	if blk[156] == tar.TypeXHeader {
		n, err := parseOctal(blk[124:136])
		if err != nil || n > maxPAXSize {
			return nil, &tarError{reason: "invalid or oversized extended (PAX) header", header: true}
		}
		raw = append(raw, blk[:]...)
		data := make([]byte, n+padding(n))
		if err := t.read(data); err != nil {
			return nil, err
		}
		raw = append(raw, data...)
		if err := t.read(blk[:]); err != nil {
			return nil, err
		}
		if blk[156] == tar.TypeXHeader || allZero(blk[:]) {
			return nil, &tarError{reason: "extended (PAX) header not followed by an entry", header: true}
		}
	}
	raw = append(raw, blk[:]...)
	typ := blk[156]
	hdr, err := tar.NewReader(bytes.NewReader(raw)).Next()
	if err != nil {
		return nil, &tarError{name: rawName(blk[:]), reason: "invalid tar header (type " + typeName(typ) + "): " + err.Error(), header: true}
	}
	if typ != tar.TypeReg {
		return nil, &tarError{name: hdr.Name, reason: "entry of type " + typeName(typ) + " refused: only regular files are allowed"}
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return nil, &tarError{name: hdr.Name, reason: "sparse file entry refused: only regular files are allowed"}
		}
	}
	if hdr.Size < 0 {
		return nil, &tarError{name: hdr.Name, reason: "negative size", header: true}
	}
	return &entryHeader{name: hdr.Name, size: hdr.Size}, nil
}

func parseOctal(b []byte) (int64, error) {
	s := strings.Trim(string(b), " \x00")
	if s == "" {
		return 0, nil
	}
	return strconv.ParseInt(s, 8, 64)
}

func rawName(blk []byte) string {
	name := blk[0:100]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	if string(blk[257:262]) == "ustar" {
		prefix := blk[345:500]
		if i := bytes.IndexByte(prefix, 0); i >= 0 {
			prefix = prefix[:i]
		}
		if len(prefix) > 0 {
			return string(prefix) + "/" + string(name)
		}
	}
	return string(name)
}

func typeName(t byte) string {
	switch t {
	case tar.TypeLink:
		return "hard link"
	case tar.TypeSymlink:
		return "symbolic link"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeDir:
		return "directory"
	case tar.TypeFifo:
		return "FIFO"
	case tar.TypeCont:
		return "contiguous file"
	case tar.TypeRegA:
		return "old-style regular file ('\\x00')"
	case tar.TypeXGlobalHeader:
		return "global extended header"
	case tar.TypeGNULongName, tar.TypeGNULongLink:
		return "GNU long name"
	case tar.TypeGNUSparse:
		return "GNU sparse file"
	}
	return fmt.Sprintf("%q", rune(t))
}

// finish checks what follows the end-of-archive marker: zero padding only, up to the end of
// the compressed stream.
func (t *tarStream) finish() error {
	for {
		err := t.ensure()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if !allZero(t.cur.b) {
			return &tarError{reason: "data after the end-of-archive marker"}
		}
		t.pos += int64(len(t.cur.b))
		t.cur.b = nil
	}
}

// checkName applies the name rules of spec §1 and returns why name is refused, or "".
func checkName(name string) string {
	switch {
	case name == "":
		return "empty entry name"
	case strings.IndexByte(name, 0) >= 0:
		return "entry name contains a NUL byte"
	case strings.IndexByte(name, '\\') >= 0:
		return "entry name contains a backslash"
	case strings.HasPrefix(name, "/"):
		return "absolute entry name"
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return "entry name contains a '..' element"
		}
	}
	switch name {
	case NameInventory, NameSignature, NameSBOM, NameLayout, NameIndex:
		return ""
	}
	if hex, ok := strings.CutPrefix(name, blobPrefix); ok && isHex64(hex) {
		return ""
	}
	return "unknown entry: not part of the bundle format"
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
