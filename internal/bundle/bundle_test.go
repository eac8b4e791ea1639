package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/klauspost/compress/zstd"

	"github.com/mmgap/mmgap/internal/pgp"
	"github.com/mmgap/mmgap/internal/store"
)

func TestRoundTrip(t *testing.T) {
	ts := newTestStore(t, 1)
	k := newTestKey(t, "signer")
	out := filepath.Join(t.TempDir(), "b.mmgap.tar.zst")
	inv, err := Create(context.Background(), ts.s, out, CreateOptions{Signer: k.signer, Created: testCreated, ToolVersion: "0.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out + ".partial"); !os.IsNotExist(err) {
		t.Fatalf("partial file left behind: %v", err)
	}
	blobs, err := ts.s.Blobs()
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Blobs) != len(blobs) {
		t.Fatalf("inventory has %d blobs, store %d", len(inv.Blobs), len(blobs))
	}
	if len(inv.Artifacts) != 4 {
		t.Fatalf("artifacts: %d", len(inv.Artifacts))
	}

	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := Verify(context.Background(), f, VerifyOptions{Keyring: k.kr})
	if err != nil {
		t.Fatal(err)
	}
	if rep.SignatureSkipped || rep.Signer == nil || rep.Signer.Fingerprint != k.fp || !rep.Signer.Created.Equal(testCreated) {
		t.Fatalf("signer: %+v", rep.Signer)
	}
	if rep.Blobs != int64(len(blobs)) || rep.Bytes != inv.TotalSize() {
		t.Fatalf("report: blobs %d bytes %d", rep.Blobs, rep.Bytes)
	}

	// Extract, then the extracted store is an OCI layout with every blob intact.
	dest := filepath.Join(t.TempDir(), "site")
	f.Seek(0, 0)
	if _, err := Extract(context.Background(), f, dest, VerifyOptions{Keyring: k.kr}); err != nil {
		t.Fatal(err)
	}
	ext, err := store.OpenExisting(filepath.Join(dest, "store"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ext.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"bundle.json", "bundle.json.asc", "sbom.cdx.json", "store/index.json"} {
		fi, err := os.Stat(filepath.Join(dest, p))
		if err != nil || fi.Mode().Perm() != 0o644 {
			t.Fatalf("%s: %v %v", p, fi.Mode(), err)
		}
	}
	fi, _ := os.Stat(dest)
	if fi.Mode().Perm() != 0o755 {
		t.Fatalf("dest mode %v", fi.Mode())
	}
	siblings, _ := os.ReadDir(filepath.Dir(dest))
	if len(siblings) != 1 {
		t.Fatalf("extract left %d entries beside dest", len(siblings))
	}
}

// fixedSigner returns the same signature for the same message, as a deterministic signer
// would: go-crypto salts its signatures, so two real signatures over the same bytes differ.
type fixedSigner struct {
	Signer
	sigs map[string][]byte
}

func (f *fixedSigner) SignDetached(r io.Reader) ([]byte, error) {
	msg, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if s, ok := f.sigs[string(msg)]; ok {
		return s, nil
	}
	s, err := f.Signer.SignDetached(bytes.NewReader(msg))
	f.sigs[string(msg)] = s
	return s, err
}

func TestDeterministic(t *testing.T) {
	ts := newTestStore(t, 2)
	k := newTestKey(t, "signer")
	sign := &fixedSigner{Signer: k.signer, sigs: map[string][]byte{}}
	mk := func() []byte {
		var buf bytes.Buffer
		if _, err := Write(context.Background(), &buf, ts.s, CreateOptions{Signer: sign, Created: testCreated, ToolVersion: "0.1.0"}); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	a, b := mk(), mk()
	if !bytes.Equal(a, b) {
		t.Fatal("two bundles of the same store and signature differ")
	}
	// The output does not depend on the number of cores.
	prev := runtime.GOMAXPROCS(1)
	c := mk()
	runtime.GOMAXPROCS(prev)
	if !bytes.Equal(a, c) {
		t.Fatal("bundle differs with GOMAXPROCS=1")
	}
	if u1, u2 := createBundle(t, ts.s, nil), createBundle(t, ts.s, nil); !bytes.Equal(u1, u2) {
		t.Fatal("two unsigned bundles of the same store differ")
	}
	// With real (salted) signatures, only bundle.json.asc differs.
	e1, e2 := readEntries(t, createBundle(t, ts.s, &k)), readEntries(t, createBundle(t, ts.s, &k))
	for i := range e1 {
		if e1[i].hdr.Name != NameSignature && !bytes.Equal(e1[i].data, e2[i].data) {
			t.Fatalf("%s differs", e1[i].hdr.Name)
		}
	}
	// Headers follow spec §1.
	for _, e := range readEntries(t, a) {
		h := e.hdr
		if h.Typeflag != tar.TypeReg || h.Mode != 0o644 || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || !h.ModTime.Equal(testCreated) {
			t.Fatalf("header %s: %+v", h.Name, h)
		}
	}
	// And the frames are what the fast path expects: the big random layer is stored raw.
	raw := bytes.Count(a, []byte{0x28, 0xb5, 0x2f, 0xfd, 0xa0})
	if raw < 2 {
		t.Fatalf("%d raw frames, want at least 2", raw)
	}
}

func TestEntryOrder(t *testing.T) {
	ts := newTestStore(t, 3)
	k := newTestKey(t, "signer")
	es := readEntries(t, createBundle(t, ts.s, &k))
	want := []string{NameInventory, NameSignature, NameSBOM, NameLayout, NameIndex}
	for i, n := range want {
		if es[i].hdr.Name != n {
			t.Fatalf("entry %d is %s, want %s", i, es[i].hdr.Name, n)
		}
	}
	prev := ""
	for _, e := range es[len(want):] {
		if !strings.HasPrefix(e.hdr.Name, blobPrefix) || e.hdr.Name <= prev {
			t.Fatalf("blob entry %s after %s", e.hdr.Name, prev)
		}
		sum := sha256.Sum256(e.data)
		if hex.EncodeToString(sum[:]) != strings.TrimPrefix(e.hdr.Name, blobPrefix) {
			t.Fatalf("%s: content does not match its name", e.hdr.Name)
		}
		prev = e.hdr.Name
	}
}

func mustRun(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestGPGAndTar checks the bundle with the tools an auditor has: GNU tar with zstd extracts it,
// gpg verifies the signature over the extracted bundle.json, sha256sum agrees with the names.
func TestGPGAndTar(t *testing.T) {
	for _, tool := range []string{"gpg", "zstd", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed: this test needs it", tool)
		}
	}
	ts := newTestStore(t, 4)
	k := newTestKey(t, "signer")
	dir := t.TempDir()
	out := filepath.Join(dir, "b.mmgap.tar.zst")
	if _, err := Create(context.Background(), ts.s, out, CreateOptions{Signer: k.signer, Created: testCreated}); err != nil {
		t.Fatal(err)
	}
	mustRun(t, dir, "zstd", "-q", "-t", out)
	x := filepath.Join(dir, "x")
	os.Mkdir(x, 0o755)
	mustRun(t, x, "tar", "--zstd", "-xf", out)
	home := filepath.Join(dir, "gnupg")
	os.Mkdir(home, 0o700)
	writeFile(t, filepath.Join(dir, "pub.asc"), k.pub)
	mustRun(t, dir, "gpg", "--batch", "--homedir", home, "--import", filepath.Join(dir, "pub.asc"))
	got := mustRun(t, x, "gpg", "--batch", "--homedir", home, "--status-fd", "1", "--verify", "bundle.json.asc", "bundle.json")
	if !strings.Contains(got, "[GNUPG:] VALIDSIG "+k.fp) {
		t.Fatalf("gpg did not report a valid signature by %s:\n%s", k.fp, got)
	}
	// A modified bundle.json fails gpg too.
	b, _ := os.ReadFile(filepath.Join(x, "bundle.json"))
	writeFile(t, filepath.Join(x, "bundle.json"), bytes.Replace(b, []byte(`"mmgap"`), []byte(`"mmgaq"`), 1))
	cmd := exec.Command("gpg", "--batch", "--homedir", home, "--verify", "bundle.json.asc", "bundle.json")
	cmd.Dir = x
	if err := cmd.Run(); err == nil {
		t.Fatal("gpg accepted a modified bundle.json")
	}
	sums := mustRun(t, filepath.Join(x, "store", "blobs", "sha256"), "sh", "-c", "sha256sum *")
	for _, line := range strings.Split(strings.TrimSpace(sums), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || f[0] != f[1] {
			t.Fatalf("sha256sum: %q", line)
		}
	}
	// GNU tar lists mode, owner and time as the spec says.
	list := mustRun(t, dir, "tar", "--zstd", "--numeric-owner", "--full-time", "-tvf", out)
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		if !strings.HasPrefix(line, "-rw-r--r-- 0/0") || !strings.Contains(line, "2026-11-20 10:00:00") {
			t.Fatalf("tar -tv: %q", line)
		}
	}
}

// TestForeignCompression reads bundles recompressed by other zstd writers (one big frame, the
// zstd CLI): the streaming fallback path.
func TestForeignCompression(t *testing.T) {
	ts := newTestStore(t, 5)
	k := newTestKey(t, "signer")
	b := createBundle(t, ts.s, &k)
	raw := decompress(t, b)
	if _, err := Verify(context.Background(), bytes.NewReader(compress(t, raw, false)), VerifyOptions{Keyring: k.kr}); err != nil {
		t.Fatalf("klauspost stream: %v", err)
	}
	// Best compression, so that frames carry compressed blocks only.
	var buf bytes.Buffer
	e, _ := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	e.Write(raw)
	e.Close()
	if _, err := Verify(context.Background(), &buf, VerifyOptions{Keyring: k.kr}); err != nil {
		t.Fatalf("best compression: %v", err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "b.tar"), raw)
	mustRun(t, dir, "zstd", "-q", "-19", "b.tar", "-o", "b.tar.zst")
	f, err := os.Open(filepath.Join(dir, "b.tar.zst"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Verify(context.Background(), f, VerifyOptions{Keyring: k.kr}); err != nil {
		t.Fatalf("zstd CLI: %v", err)
	}
	// Skippable frames and GNU tar's record padding are accepted.
	skip := []byte{0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'a', 'b', 'c'}
	padded := append(append([]byte(nil), raw...), make([]byte, 10240-len(raw)%10240)...)
	in := append(append(append([]byte(nil), skip...), compress(t, padded, true)...), skip...)
	if _, err := Verify(context.Background(), bytes.NewReader(in), VerifyOptions{Keyring: k.kr}); err != nil {
		t.Fatalf("skippable frames: %v", err)
	}
}

func TestUnsigned(t *testing.T) {
	ts := newTestStore(t, 6)
	if _, err := Write(context.Background(), &bytes.Buffer{}, ts.s, CreateOptions{Created: testCreated}); err == nil {
		t.Fatal("Write without signer and without Unsigned succeeded")
	}
	b := createBundle(t, ts.s, nil)
	k := newTestKey(t, "signer")
	_, err := Verify(context.Background(), bytes.NewReader(b), VerifyOptions{Keyring: k.kr})
	var se *SignatureError
	if !errors.As(err, &se) || !errors.Is(err, ErrUnsigned) {
		t.Fatalf("unsigned bundle: %v", err)
	}
	rep, err := Verify(context.Background(), bytes.NewReader(b), VerifyOptions{InsecureSkipSignature: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.SignatureSkipped || rep.Signer != nil {
		t.Fatalf("report: %+v", rep)
	}
	// Skipping also works on a signed bundle, and says so.
	rep, err = Verify(context.Background(), bytes.NewReader(createBundle(t, ts.s, &k)), VerifyOptions{InsecureSkipSignature: true})
	if err != nil || !rep.SignatureSkipped {
		t.Fatalf("skip on signed: %v %+v", err, rep)
	}
}

func TestInspect(t *testing.T) {
	ts := newTestStore(t, 7)
	k := newTestKey(t, "signer")
	other := newTestKey(t, "other")
	b := createBundle(t, ts.s, &k)
	// Only the head is needed: the rest of the bundle is never read.
	head := b[:4096]
	in, err := Inspect(bytes.NewReader(head), &k.kr)
	if err != nil {
		t.Fatal(err)
	}
	if !in.Signed || !in.SignatureVerified || in.Signer.Fingerprint != k.fp || in.SignatureError != nil {
		t.Fatalf("inspect with key: %+v", in)
	}
	if !in.Created.Equal(testCreated) || in.TotalSize != in.Inventory.TotalSize() || len(in.Inventory.Artifacts) != 4 {
		t.Fatalf("inspect: %+v", in)
	}
	in, err = Inspect(bytes.NewReader(head), nil)
	if err != nil {
		t.Fatal(err)
	}
	if in.SignatureVerified || in.Signer == nil || in.Signer.Fingerprint != k.fp || in.Signer.KeyID == "" {
		t.Fatalf("inspect without key: %+v", in)
	}
	in, err = Inspect(bytes.NewReader(head), &other.kr)
	if err != nil {
		t.Fatal(err)
	}
	if in.SignatureVerified || !errors.Is(in.SignatureError, pgp.ErrUnknownSigner) {
		t.Fatalf("inspect with other key: %+v", in)
	}
	in, err = Inspect(bytes.NewReader(createBundle(t, ts.s, nil)), &k.kr)
	if err != nil || in.Signed || in.SignatureVerified {
		t.Fatalf("inspect unsigned: %v %+v", err, in)
	}
}

func TestSBOM(t *testing.T) {
	ts := newTestStore(t, 8)
	inv, sbom, err := BuildInventory(ts.s, InventoryOptions{Created: testCreated, ToolVersion: "0.1.0", ManifestName: "mm"})
	if err != nil {
		t.Fatal(err)
	}
	_, sbom2, _ := BuildInventory(ts.s, InventoryOptions{Created: testCreated, ToolVersion: "0.1.0", ManifestName: "mm"})
	if !bytes.Equal(sbom, sbom2) {
		t.Fatal("SBOM not deterministic")
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(sbom), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatal(err)
	}
	if bom.SpecVersion != cdx.SpecVersion1_6 || !strings.HasPrefix(bom.SerialNumber, "urn:uuid:") || len(bom.SerialNumber) != 45 {
		t.Fatalf("bom header: %v %s", bom.SpecVersion, bom.SerialNumber)
	}
	if bom.SerialNumber[23] != '5' {
		t.Fatalf("serial %s is not a version 5 UUID", bom.SerialNumber)
	}
	if bom.Metadata.Timestamp != "2026-11-20T10:00:00Z" || (*bom.Metadata.Tools.Components)[0].Name != "mmgap" {
		t.Fatalf("metadata: %+v", bom.Metadata)
	}
	comps := *bom.Components
	if len(comps) != len(inv.Artifacts) {
		t.Fatalf("%d components", len(comps))
	}
	byRef := map[string]cdx.Component{}
	for _, c := range comps {
		byRef[c.BOMRef] = c
		if c.Hashes == nil || (*c.Hashes)[0].Algorithm != cdx.HashAlgoSHA256 || len((*c.Hashes)[0].Value) != 64 {
			t.Fatalf("%s: hashes %+v", c.BOMRef, c.Hashes)
		}
	}
	img := byRef[ts.imageRef]
	wantPURL := "pkg:oci/postgres@sha256%3A" + ts.manifest.Digest.Hex + "?repository_url=docker.io/library/postgres&tag=15-alpine"
	if img.Type != cdx.ComponentTypeContainer || img.PackageURL != wantPURL || (*img.Hashes)[0].Value != ts.manifest.Digest.Hex {
		t.Fatalf("image component: %s %s", img.Type, img.PackageURL)
	}
	file := byRef["mmgap.files/mattermost:11.4.0"]
	if file.Type != cdx.ComponentTypeFile || !strings.HasPrefix(file.PackageURL, "pkg:generic/mattermost@11.4.0?checksum=sha256:"+(*file.Hashes)[0].Value+"&download_url=https://releases.mattermost.com/") {
		t.Fatalf("file component: %s %s", file.Type, file.PackageURL)
	}
	chart := byRef["mmgap.charts/mattermost-operator:1.0.2"]
	if chart.Type != cdx.ComponentTypeApplication || !strings.HasPrefix(chart.PackageURL, "pkg:oci/mattermost-operator@sha256%3A") ||
		!strings.Contains(chart.PackageURL, "repository_url=registry.example.org/charts/mattermost-operator&tag=1.0.2") {
		t.Fatalf("chart component: %s %s", chart.Type, chart.PackageURL)
	}
	// The inventory covers the SBOM.
	if inv.Files[0].Path != NameSBOM || inv.Files[0].Digest != store.Digest(sbom) {
		t.Fatalf("files[0]: %+v", inv.Files[0])
	}
}

func TestCreateFailureLeavesNothing(t *testing.T) {
	ts := newTestStore(t, 9)
	k := newTestKey(t, "signer")
	// Corrupt a stored layer behind the store's back.
	p := ts.s.BlobPath(ts.layers[0].Digest)
	os.Chmod(p, 0o644)
	b, _ := os.ReadFile(p)
	b[100] ^= 1
	writeFile(t, p, b)
	dir := t.TempDir()
	out := filepath.Join(dir, "b.mmgap.tar.zst")
	_, err := Create(context.Background(), ts.s, out, CreateOptions{Signer: k.signer, Created: testCreated})
	var de *store.DigestError
	if !errors.As(err, &de) {
		t.Fatalf("want a DigestError, got %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("create left %v", ents)
	}
	// A cancelled context too.
	ts2 := newTestStore(t, 10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Create(ctx, ts2.s, out, CreateOptions{Signer: k.signer}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled create: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("create left %v", ents)
	}
}

func TestExtractDestination(t *testing.T) {
	ts := newTestStore(t, 11)
	k := newTestKey(t, "signer")
	b := createBundle(t, ts.s, &k)
	root := t.TempDir()
	full := filepath.Join(root, "full")
	os.Mkdir(full, 0o755)
	writeFile(t, filepath.Join(full, "x"), nil)
	if _, err := Extract(context.Background(), bytes.NewReader(b), full, VerifyOptions{Keyring: k.kr}); err == nil {
		t.Fatal("extract into a non-empty directory succeeded")
	}
	empty := filepath.Join(root, "empty")
	os.Mkdir(empty, 0o755)
	if _, err := Extract(context.Background(), bytes.NewReader(b), empty, VerifyOptions{Keyring: k.kr}); err != nil {
		t.Fatal(err)
	}
	got := treeOf(t, root)
	if len(got) < 5 || got[1] != "empty" || got[len(got)-2] != "full" {
		t.Fatalf("tree: %v", got)
	}
	// Cancellation removes the temporary directory.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Extract(ctx, bytes.NewReader(b), filepath.Join(root, "c"), VerifyOptions{Keyring: k.kr}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled extract: %v", err)
	}
	for _, p := range treeOf(t, root) {
		if strings.Contains(p, ".partial") || strings.HasPrefix(p, "c") {
			t.Fatalf("left behind: %s", p)
		}
	}
}

// TestLargeInventory reads a bundle.json spanning several frames (a large inventory, here
// padded with an unknown field, which version 1 readers ignore).
func TestLargeInventory(t *testing.T) {
	f := newFixture(t)
	es := f.resign(t, f.es, f.key, func(b []byte) []byte {
		pad := make([]byte, 6<<20)
		for i := range pad {
			pad[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[(i*7919+i/13)%36]
		}
		return append([]byte(`{"padding":"`+string(pad)+`",`), b[1:]...)
	})
	if len(es[0].data) < 6<<20 {
		t.Fatal("padding lost")
	}
	for _, framed := range []bool{true, false} {
		b := compress(t, tarBytes(t, es), framed)
		in, err := Inspect(bytes.NewReader(b), &f.key.kr)
		if err != nil || !in.SignatureVerified {
			t.Fatalf("inspect (framed=%v): %v %+v", framed, err, in)
		}
		if _, err := Verify(context.Background(), bytes.NewReader(b), VerifyOptions{Keyring: f.key.kr}); err != nil {
			t.Fatalf("verify (framed=%v): %v", framed, err)
		}
	}
}

type countProgress struct {
	mu           sync.Mutex
	total, added int64
	done         int
	err          error
}

func (p *countProgress) Start(id, name string, total int64) {
	p.mu.Lock()
	p.total = total
	p.mu.Unlock()
}
func (p *countProgress) Grow(string, int64) {}
func (p *countProgress) Add(id string, n int64, _ bool) {
	p.mu.Lock()
	p.added += n
	p.mu.Unlock()
}
func (p *countProgress) Done(id string, err error) { p.mu.Lock(); p.done++; p.err = err; p.mu.Unlock() }

func TestProgress(t *testing.T) {
	ts := newTestStore(t, 12)
	k := newTestKey(t, "signer")
	var buf bytes.Buffer
	cp := &countProgress{}
	inv, err := Write(context.Background(), &buf, ts.s, CreateOptions{Signer: k.signer, Created: testCreated, Progress: cp})
	if err != nil {
		t.Fatal(err)
	}
	if cp.done != 1 || cp.err != nil || cp.added != cp.total || cp.total < inv.TotalSize() {
		t.Fatalf("create progress: %+v", cp)
	}
	vp := &countProgress{}
	if _, err := Verify(context.Background(), bytes.NewReader(buf.Bytes()), VerifyOptions{Keyring: k.kr, Progress: vp}); err != nil {
		t.Fatal(err)
	}
	if vp.done != 1 || vp.err != nil || vp.added != vp.total || vp.total != inv.TotalSize() {
		t.Fatalf("verify progress: %+v", vp)
	}
	bad := bytes.Clone(buf.Bytes())
	bad = bad[:len(bad)-100]
	vp = &countProgress{}
	if _, err := Verify(context.Background(), bytes.NewReader(bad), VerifyOptions{Keyring: k.kr, Progress: vp}); err == nil || vp.done != 1 || vp.err == nil {
		t.Fatalf("failed verify progress: %v %+v", err, vp)
	}
}
