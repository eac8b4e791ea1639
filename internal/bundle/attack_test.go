package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mmgap/mmgap/internal/pgp"
	"github.com/mmgap/mmgap/internal/store"
)

type wantErr struct {
	kind   string // integrity, signature, version, notbundle
	entry  string // IntegrityError.Entry, when checked
	is     error  // errors.Is target, when checked
	reason string // substring of the message
}

func (w wantErr) check(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want %s error", w.kind)
	}
	switch w.kind {
	case "integrity":
		var ie *IntegrityError
		if !errors.As(err, &ie) {
			t.Fatalf("want *IntegrityError, got %T: %v", err, err)
		}
		if w.entry != "" && ie.Entry != w.entry {
			t.Fatalf("entry %q, want %q (%v)", ie.Entry, w.entry, err)
		}
	case "signature":
		var se *SignatureError
		if !errors.As(err, &se) {
			t.Fatalf("want *SignatureError, got %T: %v", err, err)
		}
	case "version":
		var ve *VersionError
		if !errors.As(err, &ve) {
			t.Fatalf("want *VersionError, got %T: %v", err, err)
		}
	case "notbundle":
		if !errors.Is(err, ErrNotBundle) {
			t.Fatalf("want ErrNotBundle, got %T: %v", err, err)
		}
	default:
		t.Fatalf("bad kind %s", w.kind)
	}
	if w.is != nil && !errors.Is(err, w.is) {
		t.Fatalf("want errors.Is %v, got %v", w.is, err)
	}
	if w.reason != "" && !strings.Contains(err.Error(), w.reason) {
		t.Fatalf("message %q lacks %q", err, w.reason)
	}
}

// expectRefused runs Verify and Extract on b; both must fail as w says, and Extract must leave
// the directory tree exactly as it was: no temporary directory, nothing outside destDir.
func expectRefused(t *testing.T, b []byte, kr pgp.Keyring, w wantErr) {
	t.Helper()
	_, err := Verify(context.Background(), bytes.NewReader(b), VerifyOptions{Keyring: kr})
	w.check(t, err)
	root := t.TempDir()
	parent := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	before := treeOf(t, root)
	_, err = Extract(context.Background(), bytes.NewReader(b), filepath.Join(parent, "out"), VerifyOptions{Keyring: kr})
	w.check(t, err)
	if after := treeOf(t, root); !slices.Equal(before, after) {
		t.Fatalf("extract changed the tree: %v -> %v", before, after)
	}
}

type fixture struct {
	ts    *testStore
	key   testKey
	other testKey
	raw   []byte // a good signed bundle
	es    []tarEntry
	root  string
}

func newFixture(t *testing.T) *fixture {
	ts := newTestStore(t, 42)
	k := newTestKey(t, "signer")
	raw := createBundle(t, ts.s, &k)
	return &fixture{ts: ts, key: k, other: newTestKey(t, "intruder"), raw: raw, es: readEntries(t, raw)}
}

// resign replaces bundle.json with edit(bundle.json) signed by k.
func (f *fixture) resign(t *testing.T, es []tarEntry, k testKey, edit func([]byte) []byte) []tarEntry {
	es = cloneEntries(es)
	es[0].data = edit(es[0].data)
	sig, err := k.signer.SignDetached(bytes.NewReader(es[0].data))
	if err != nil {
		t.Fatal(err)
	}
	es[1].data = sig
	return es
}

func flipBit(es []tarEntry, i, at int) []tarEntry {
	es = cloneEntries(es)
	es[i].data[at%len(es[i].data)] ^= 0x10
	return es
}

func TestAttacks(t *testing.T) {
	f := newFixture(t)
	es := f.es
	blobs := blobEntries(es)
	first, last := blobs[0], blobs[len(blobs)-1]
	manifestName := blobPrefix + f.ts.manifest.Digest.Hex
	sbom, index := entryIndex(t, es, NameSBOM), entryIndex(t, es, NameIndex)
	insert := func(at int, e tarEntry) []tarEntry {
		return slices.Insert(cloneEntries(es), at, e)
	}
	reg := func(name string, data []byte) tarEntry {
		return tarEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, ModTime: testCreated}, data: data}
	}
	replace := func(i int, e tarEntry) []tarEntry {
		out := cloneEntries(es)
		out[i] = e
		return out
	}
	blobName := es[last].hdr.Name
	abs := filepath.Join(t.TempDir(), "abs-evil")

	cases := []struct {
		name string
		es   []tarEntry
		want wantErr
	}{
		{"flip first blob", flipBit(es, first, 7), wantErr{kind: "integrity", entry: es[first].hdr.Name, reason: "SHA-256 mismatch"}},
		{"flip last blob", flipBit(es, last, 1000), wantErr{kind: "integrity", entry: es[last].hdr.Name, reason: "SHA-256 mismatch"}},
		{"flip manifest", flipBit(es, entryIndex(t, es, manifestName), 30), wantErr{kind: "integrity", entry: manifestName, reason: f.ts.imageRef}},
		{"flip index.json", flipBit(es, index, 40), wantErr{kind: "integrity", entry: NameIndex}},
		{"flip sbom", flipBit(es, sbom, 55), wantErr{kind: "integrity", entry: NameSBOM}},
		{"flip oci-layout", flipBit(es, entryIndex(t, es, NameLayout), 3), wantErr{kind: "integrity", entry: NameLayout}},
		{"dotdot entry", insert(2, reg("../../evil", []byte("x"))), wantErr{kind: "integrity", reason: "'..'"}},
		{"dotdot inside", insert(2, reg("store/../../evil", []byte("x"))), wantErr{kind: "integrity", reason: "'..'"}},
		{"absolute path", insert(2, reg(abs, []byte("x"))), wantErr{kind: "integrity", reason: "absolute"}},
		{"backslash", insert(2, reg(`store\..\..\evil`, []byte("x"))), wantErr{kind: "integrity", reason: "backslash"}},
		{"symlink escaping", replace(last, tarEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: blobName, Linkname: "../../../../../../etc/passwd", ModTime: testCreated}}),
			wantErr{kind: "integrity", entry: blobName, reason: "symbolic link"}},
		{"symlink then file through it", insert(2, tarEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "store", Linkname: "/tmp", ModTime: testCreated}}),
			wantErr{kind: "integrity", reason: "symbolic link"}},
		{"hardlink", replace(sbom, tarEntry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: NameSBOM, Linkname: "/etc/shadow", ModTime: testCreated}}),
			wantErr{kind: "integrity", entry: NameSBOM, reason: "hard link"}},
		{"char device", replace(entryIndex(t, es, NameLayout), tarEntry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: NameLayout, Devmajor: 1, Devminor: 3, ModTime: testCreated}}),
			wantErr{kind: "integrity", entry: NameLayout, reason: "character device"}},
		{"block device", insert(2, tarEntry{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "store/blobs/sda", Devmajor: 8, ModTime: testCreated}}),
			wantErr{kind: "integrity", reason: "block device"}},
		{"fifo", insert(2, tarEntry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "store/fifo", ModTime: testCreated}}), wantErr{kind: "integrity", reason: "FIFO"}},
		{"directory", insert(2, tarEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "store/", Mode: 0o755, ModTime: testCreated}}), wantErr{kind: "integrity", reason: "directory"}},
		{"duplicate entry", insert(sbom+1, es[sbom]), wantErr{kind: "integrity", entry: NameSBOM, reason: "duplicate"}},
		{"duplicate blob", insert(last+1, es[last]), wantErr{kind: "integrity", entry: blobName, reason: "duplicate"}},
		{"duplicate signature", insert(2, es[1]), wantErr{kind: "integrity", entry: NameSignature, reason: "duplicate"}},
		{"unknown entry", insert(index+1, reg("README", []byte("hello"))), wantErr{kind: "integrity", entry: "README", reason: "unknown entry"}},
		{"blob not listed", append(cloneEntries(es), reg(blobPrefix+strings.Repeat("f", 64), []byte("x"))), wantErr{kind: "integrity", reason: "not listed"}},
		{"blob missing", slices.Delete(cloneEntries(es), last, last+1), wantErr{kind: "integrity", entry: blobName, reason: "missing"}},
		{"sbom missing", slices.Delete(cloneEntries(es), sbom, sbom+1), wantErr{kind: "integrity", entry: NameSBOM, reason: "missing"}},
		{"blobs out of order", func() []tarEntry { o := cloneEntries(es); o[first], o[first+1] = o[first+1], o[first]; return o }(), wantErr{kind: "integrity", reason: "out of order"}},
		{"files out of order", func() []tarEntry { o := cloneEntries(es); o[sbom], o[index] = o[index], o[sbom]; return o }(), wantErr{kind: "integrity", reason: "out of order"}},
		{"bundle.json not first", func() []tarEntry { o := cloneEntries(es); o[0], o[1] = o[1], o[0]; return o }(), wantErr{kind: "integrity", entry: NameSignature, reason: "first entry"}},
		{"size larger than declared", func() []tarEntry { o := cloneEntries(es); o[last].data = append(o[last].data, 0); return o }(), wantErr{kind: "integrity", entry: blobName, reason: "declares"}},
		{"size smaller than declared", func() []tarEntry { o := cloneEntries(es); o[sbom].data = o[sbom].data[:10]; return o }(), wantErr{kind: "integrity", entry: NameSBOM, reason: "declares"}},
		{"untrusted signer", f.resign(t, es, f.other, func(b []byte) []byte { return b }), wantErr{kind: "signature", is: pgp.ErrUnknownSigner}},
		{"missing signature", slices.Delete(cloneEntries(es), 1, 2), wantErr{kind: "signature", is: ErrUnsigned}},
		{"only bundle.json", cloneEntries(es)[:1], wantErr{kind: "signature", is: ErrUnsigned}},
		{"garbage signature", func() []tarEntry { o := cloneEntries(es); o[1].data = []byte("not a signature"); return o }(), wantErr{kind: "signature", is: pgp.ErrMalformed}},
		{"bundle.json modified after signing", func() []tarEntry {
			o := cloneEntries(es)
			o[0].data = bytes.Replace(o[0].data, []byte(`"0.1.0-test"`), []byte(`"0.1.1-test"`), 1)
			return o
		}(), wantErr{kind: "signature", is: pgp.ErrBadSignature}},
		{"blob swapped with inventory edited but old signature", func() []tarEntry {
			o := cloneEntries(es)
			o[last].data[0] ^= 1
			sum := store.Digest(o[last].data)
			old := strings.TrimPrefix(o[last].hdr.Name, blobPrefix)
			o[0].data = bytes.ReplaceAll(o[0].data, []byte(old), []byte(sum.Hex))
			o[last].hdr.Name = blobPrefix + sum.Hex
			return o
		}(), wantErr{kind: "signature", is: pgp.ErrBadSignature}},
		{"formatVersion 2, signed", f.resign(t, es, f.key, func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"formatVersion": 1`), []byte(`"formatVersion": 2`), 1)
		}), wantErr{kind: "version", is: ErrUnsupportedVersion, reason: "formatVersion 2 is not supported; supported versions: 1"}},
		{"formatVersion 2, unsigned", func() []tarEntry {
			o := slices.Delete(cloneEntries(es), 1, 2)
			o[0].data = bytes.Replace(o[0].data, []byte(`"formatVersion": 1`), []byte(`"formatVersion": 2, "newField": {}`), 1)
			return o
		}(), wantErr{kind: "version"}},
		{"extra unreachable blob, re-signed", func() []tarEntry {
			extra := []byte("unreachable")
			d := store.Digest(extra)
			o := f.resign(t, es, f.key, func(b []byte) []byte {
				var inv Inventory
				json.Unmarshal(b, &inv)
				inv.Blobs = append(inv.Blobs, Blob{Digest: d, Size: int64(len(extra))})
				slices.SortFunc(inv.Blobs, func(a, b Blob) int { return strings.Compare(a.Digest.Hex, b.Digest.Hex) })
				out, _ := inv.Encode()
				return out
			})
			o = append(o, reg(blobPrefix+d.Hex, extra))
			slices.SortStableFunc(o[index+1:], func(a, b tarEntry) int { return strings.Compare(a.hdr.Name, b.hdr.Name) })
			return o
		}(), wantErr{kind: "integrity", reason: "not reachable from index.json"}},
	}
	for _, c := range cases {
		for _, framed := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/framed=%v", c.name, framed), func(t *testing.T) {
				expectRefused(t, compress(t, tarBytes(t, c.es), framed), f.key.kr, c.want)
			})
		}
	}
	if _, err := os.Stat(abs); err == nil {
		t.Fatal("absolute path entry was written")
	}
}

// TestAttributionOfLayer checks that a damaged layer names its image once the manifest that
// reaches it has streamed by (blobs come in digest order).
func TestAttributionOfLayer(t *testing.T) {
	f := newFixture(t)
	for _, l := range f.ts.layers {
		if l.Digest.Hex < f.ts.manifest.Digest.Hex {
			continue
		}
		es := flipBit(f.es, entryIndex(t, f.es, blobPrefix+l.Digest.Hex), 5)
		_, err := Verify(context.Background(), bytes.NewReader(compress(t, tarBytes(t, es), true)), VerifyOptions{Keyring: f.key.kr})
		var ie *IntegrityError
		if !errors.As(err, &ie) || ie.Artifact != f.ts.imageRef {
			t.Fatalf("want attribution to %s, got %v", f.ts.imageRef, err)
		}
		return
	}
	t.Fatal("fixture has no layer after its manifest in digest order; change the seed")
}

// TestCompressedDamage flips bits and truncates the compressed file itself, as a damaged
// medium would.
func TestCompressedDamage(t *testing.T) {
	f := newFixture(t)
	b := f.raw
	// The big random layer is stored in raw frames: find a piece of it verbatim.
	layer := f.es[entryIndex(t, f.es, blobPrefix+f.ts.layers[0].Digest.Hex)]
	at := bytes.Index(b, layer.data[bufSize+1000:bufSize+1064])
	if at < 0 {
		t.Fatal("layer data not found verbatim in the bundle: not stored raw")
	}
	d := bytes.Clone(b)
	d[at+10] ^= 0x01
	expectRefused(t, d, f.key.kr, wantErr{kind: "integrity", entry: layer.hdr.Name, reason: "SHA-256 mismatch"})

	// A flipped bit in a frame header or block header.
	frames := frameOffsets(b)
	if len(frames) < 3 {
		t.Fatalf("only %d frames", len(frames))
	}
	for _, off := range []int{frames[1] + 2, frames[2] + 9} {
		d := bytes.Clone(b)
		d[off] ^= 0x40
		_, err := Verify(context.Background(), bytes.NewReader(d), VerifyOptions{Keyring: f.key.kr})
		var ie *IntegrityError
		if !errors.As(err, &ie) {
			t.Fatalf("header damage at %d: %T %v", off, err, err)
		}
	}

	// Truncation anywhere, in frames and in one stream.
	stream := compress(t, decompress(t, b), false)
	for _, in := range []struct {
		name string
		b    []byte
		cuts []int
	}{
		{"framed", b, []int{20, 200, frames[1], frames[2], frames[2] + 5, len(b) / 2, len(b) - 1, len(b) - 600}},
		{"stream", stream, []int{20, 200, len(stream) / 3, len(stream) / 2, len(stream) - 1}},
	} {
		for _, cut := range in.cuts {
			t.Run(fmt.Sprintf("truncate %s at %d", in.name, cut), func(t *testing.T) {
				expectRefused(t, in.b[:cut], f.key.kr, wantErr{kind: "integrity", is: ErrTruncated})
			})
		}
	}

	// Trailing garbage: after the tar end inside the stream, and after the last frame.
	raw := decompress(t, b)
	for name, in := range map[string][]byte{
		"in tar stream, framed":   compress(t, append(bytes.Clone(raw), []byte("garbage")...), true),
		"in tar stream, stream":   compress(t, append(bytes.Clone(raw), []byte("garbage")...), false),
		"after last frame":        append(bytes.Clone(b), []byte("garbage!")...),
		"zero bytes after frames": append(bytes.Clone(b), make([]byte, 16)...),
		"extra frame with data":   append(bytes.Clone(b), compress(t, []byte("more data"), true)...),
		"after stream":            append(bytes.Clone(stream), []byte("garbage!")...),
	} {
		t.Run("trailing "+name, func(t *testing.T) {
			expectRefused(t, in, f.key.kr, wantErr{kind: "integrity", reason: "end"})
		})
	}
}

// frameOffsets lists where the writer's frames start.
func frameOffsets(b []byte) []int {
	var out []int
	for i := 0; i+4 <= len(b); {
		j := bytes.Index(b[i:], []byte{0x28, 0xb5, 0x2f, 0xfd})
		if j < 0 {
			break
		}
		out = append(out, i+j)
		i += j + 4
	}
	return out
}

func TestNotABundle(t *testing.T) {
	f := newFixture(t)
	raw := decompress(t, f.raw)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	cases := map[string][]byte{
		"empty":            nil,
		"short":            []byte("ab"),
		"plain tar":        raw,
		"gzip tar":         gz.Bytes(),
		"text":             []byte("this is not a bundle at all, just text\n"),
		"zstd of text":     compress(t, bytes.Repeat([]byte("hello world\n"), 100), false),
		"zstd of nothing":  compress(t, nil, false),
		"zstd, other tar":  compress(t, tarBytes(t, []tarEntry{{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "README", Mode: 0o644}, data: []byte("hi")}}), true),
		"zstd, empty tar":  compress(t, make([]byte, 1024), true),
		"zstd, zero bytes": compress(t, make([]byte, 100), true),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			expectRefused(t, b, f.key.kr, wantErr{kind: "notbundle"})
			if _, err := Inspect(bytes.NewReader(b), nil); !errors.Is(err, ErrNotBundle) {
				t.Fatalf("Inspect: %v", err)
			}
		})
	}
}

// TestHeaderParsing feeds the tar framing headers Go writes for sizes USTAR cannot hold, and
// hostile extended headers.
func TestHeaderParsing(t *testing.T) {
	big := int64(9) << 30
	var buf bytes.Buffer
	if err := writeHeader(&buf, blobPrefix+strings.Repeat("a", 64), big, testCreated); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 3*blockLen {
		t.Fatalf("9 GiB header is %d bytes, want a PAX header (1536)", buf.Len())
	}
	pool := newBufPool(bufSize, 4)
	ts := &tarStream{z: newZreader(context.Background(), bytes.NewReader(compress(t, buf.Bytes(), true)), pool)}
	h, err := ts.nextHeader()
	if err != nil || h.size != big || h.name != blobPrefix+strings.Repeat("a", 64) {
		t.Fatalf("PAX header: %+v %v", h, err)
	}
	ts.close()
	ts.z.close()

	// A PAX header that gives the entry a long name is checked under that name.
	f := newFixture(t)
	es := slices.Insert(cloneEntries(f.es), 2, tarEntry{hdr: tar.Header{Typeflag: tar.TypeReg,
		Name: strings.Repeat("d/", 60) + "../../x", Mode: 0o644, Format: tar.FormatPAX}, data: []byte("x")})
	_, err = Verify(context.Background(), bytes.NewReader(compress(t, tarBytes(t, es), true)), VerifyOptions{Keyring: f.key.kr})
	var ie *IntegrityError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "'..'") {
		t.Fatalf("long name with ..: %v", err)
	}

	for _, c := range []struct{ name, reason string }{
		{"", "empty"}, {"a\x00b", "NUL"}, {`a\b`, "backslash"}, {"/x", "absolute"}, {"x/../y", "'..'"}, {"..", "'..'"},
		{"store/blobs/sha256/" + strings.Repeat("A", 64), "unknown"}, {"store/blobs/sha256/abc", "unknown"},
		{"store/blobs/sha512/" + strings.Repeat("a", 128), "unknown"}, {"./bundle.json", "unknown"},
	} {
		if r := checkName(c.name); !strings.Contains(r, c.reason) {
			t.Errorf("checkName(%q) = %q, want %q", c.name, r, c.reason)
		}
	}
	for _, n := range []string{NameInventory, NameSignature, NameSBOM, NameLayout, NameIndex, blobPrefix + strings.Repeat("0", 64)} {
		if r := checkName(n); r != "" {
			t.Errorf("checkName(%q) = %q", n, r)
		}
	}
}
