package bundle

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/mmgap/mmgap/internal/pgp"
	"github.com/mmgap/mmgap/internal/store"
)

// smallStore is a store small enough to fuzz with: one image, one shared-nothing file.
func smallStore(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 7))
	l := put(t, s, string(types.OCILayer), randBytes(r, 600))
	c := putJSON(t, s, string(types.OCIConfigJSON), map[string]any{"os": "linux"})
	m := putJSON(t, s, string(types.OCIManifestSchema1), map[string]any{"schemaVersion": 2, "mediaType": types.OCIManifestSchema1, "config": c, "layers": []v1.Descriptor{l}})
	m.Annotations = map[string]string{store.AnnotationRefName: "docker.io/library/x:1", store.AnnotationKind: store.KindImage, store.AnnotationName: "x"}
	if err := s.SetRef(m); err != nil {
		t.Fatal(err)
	}
	return s
}

func fuzzSeeds(f *testing.F) (pgp.Keyring, [][]byte) {
	k := newTestKey(f, "fuzz")
	s := smallStore(f)
	signed := createBundle(f, s, &k)
	unsigned := createBundle(f, s, nil)
	raw := decompress(f, signed)
	return k.kr, [][]byte{
		signed,
		unsigned,
		compress(f, raw, false),
		compress(f, decompress(f, unsigned), false),
		signed[:len(signed)/2],
		append(bytes.Clone(signed), 0x28, 0xb5, 0x2f, 0xfd),
		raw,
		{0x28, 0xb5, 0x2f, 0xfd, 0xa0, 4, 0, 0, 0, 0x21, 0, 0, 'a', 'b', 'c', 'd'},
		{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x48, 0x01, 0, 0},
		{0x50, 0x2a, 0x4d, 0x18, 0, 0, 0, 0},
	}
}

func FuzzParseInventory(f *testing.F) {
	good := validInventory(f)
	f.Add(good)
	f.Add([]byte(`{"formatVersion":1}`))
	f.Add([]byte(`{"formatVersion":2}`))
	f.Add([]byte(`{"formatVersion":1,"created":"2026-01-01T00:00:00Z","files":[{"path":"sbom.cdx.json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":1}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := ParseInventory(data)
		if err != nil {
			return
		}
		enc, err := inv.Encode()
		if err != nil {
			t.Fatalf("encode a parsed inventory: %v", err)
		}
		inv2, err := ParseInventory(enc)
		if err != nil {
			t.Fatalf("re-parse an encoded inventory: %v\n%s", err, enc)
		}
		enc2, _ := inv2.Encode()
		if !bytes.Equal(enc, enc2) {
			t.Fatal("encode/parse not stable")
		}
		for _, b := range inv.Blobs {
			if store.CheckDigest(b.Digest) != nil || b.Size < 0 || b.Size > MaxSize {
				t.Fatalf("accepted blob %+v", b)
			}
		}
		for _, fl := range inv.Files {
			if checkName(fl.Path) != "" {
				t.Fatalf("accepted file path %q", fl.Path)
			}
		}
	})
}

// checkVerifyErr insists that every failure has one of the documented shapes.
func checkVerifyErr(t *testing.T, err error) {
	t.Helper()
	var ie *IntegrityError
	var se *SignatureError
	var ve *VersionError
	if errors.As(err, &ie) || errors.As(err, &se) || errors.As(err, &ve) || errors.Is(err, ErrNotBundle) {
		return
	}
	t.Fatalf("undocumented error %T: %v", err, err)
}

func FuzzVerify(f *testing.F) {
	kr, seeds := fuzzSeeds(f)
	for _, s := range seeds {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, skip bool) {
		rep, err := Verify(context.Background(), bytes.NewReader(data), VerifyOptions{Keyring: kr, InsecureSkipSignature: skip})
		if err != nil {
			checkVerifyErr(t, err)
			return
		}
		if rep.Inventory == nil || rep.SignatureSkipped != skip || (!skip && rep.Signer == nil) {
			t.Fatalf("bad report %+v", rep)
		}
		if _, err := Inspect(bytes.NewReader(data), &kr); err != nil {
			t.Fatalf("Verify accepted what Inspect refuses: %v", err)
		}
	})
}

func FuzzExtract(f *testing.F) {
	kr, seeds := fuzzSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		parent := filepath.Join(root, "p")
		os.Mkdir(parent, 0o755)
		dest := filepath.Join(parent, "out")
		_, err := Extract(context.Background(), bytes.NewReader(data), dest, VerifyOptions{Keyring: kr, InsecureSkipSignature: true})
		tree := treeOf(t, root)
		if err != nil {
			checkVerifyErr(t, err)
			if !slices.Equal(tree, []string{".", "p"}) {
				t.Fatalf("failed extract left %v", tree)
			}
			return
		}
		for _, p := range tree {
			if p != "." && p != "p" && p != "p/out" && !strings.HasPrefix(p, "p/out/") {
				t.Fatalf("extract wrote %s", p)
			}
		}
		if _, err := Verify(context.Background(), bytes.NewReader(data), VerifyOptions{InsecureSkipSignature: true}); err != nil {
			t.Fatalf("Extract accepted what Verify refuses: %v", err)
		}
	})
}

// rawFrames wraps b in raw zstd frames, as the writer does for incompressible data, so that the
// fuzzer's mutations reach the tar and inventory checks.
func rawFrames(b []byte) []byte {
	var out []byte
	for first := true; first || len(b) > 0; first = false {
		n := min(len(b), bufSize)
		out = appendRawFrame(out, b[:n])
		b = b[n:]
	}
	return out
}

func FuzzVerifyTar(f *testing.F) {
	k := newTestKey(f, "fuzz")
	s := smallStore(f)
	f.Add(decompress(f, createBundle(f, s, &k)))
	f.Add(decompress(f, createBundle(f, s, nil)))
	f.Fuzz(func(t *testing.T, tarStream []byte) {
		in := rawFrames(tarStream)
		rep, err := Verify(context.Background(), bytes.NewReader(in), VerifyOptions{InsecureSkipSignature: true})
		if err != nil {
			checkVerifyErr(t, err)
			return
		}
		if !rep.SignatureSkipped || rep.Inventory == nil {
			t.Fatalf("bad report %+v", rep)
		}
		// What Verify accepts is a real bundle: every blob it declares has its digest.
		for _, e := range readEntries(t, in) {
			if hexd, ok := strings.CutPrefix(e.hdr.Name, blobPrefix); ok && store.Digest(e.data).Hex != hexd {
				t.Fatalf("accepted %s with content hashing to %s", e.hdr.Name, store.Digest(e.data))
			}
		}
	})
}
