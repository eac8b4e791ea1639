package bench

// Bundle benchmarks: plain SHA-256 (the floor of any verification), bundle.Verify and
// bundle.Create side by side in one run over one generated store of incompressible blobs, and
// the peak memory of Verify and Create in a child process at several store sizes.
// See README-bundle.md.
//
//	go test ./bench -run '^$' -bench BenchmarkBundle -benchtime 3x

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/mmgap/mmgap/internal/bundle"
	"github.com/mmgap/mmgap/internal/pgp"
	"github.com/mmgap/mmgap/internal/store"
)

var (
	bundleMiB      = flag.Int("bundle-mib", 1024, "MiB of random blobs in the bundle benchmark store")
	bundleBlobMiB  = flag.Int("bundle-blob-mib", 32, "MiB per blob in the bundle benchmark stores")
	bundleMemMiB   = flag.String("bundle-mem-mib", "100,1024,2048", "store sizes in MiB for the peak-memory runs (empty: none)")
	bundleMixedMiB = flag.Int("bundle-mixed-mib", 512, "MiB of content in the store of BenchmarkBundleLevels")
)

const bundleChildEnv = "MMGAP_BUNDLE_BENCH_CHILD"

type bundleChildJob struct {
	Op     string `json:"op"` // verify or create
	Store  string `json:"store"`
	Bundle string `json:"bundle"`
	Key    string `json:"key"` // secret key (create) or public key (verify) file
}

type bundleChildResult struct {
	VmHWMkB int64   `json:"vmHWMkB"`
	Sys     uint64  `json:"sys"`
	Seconds float64 `json:"seconds"`
	Bytes   int64   `json:"bytes"`
}

// TestBundleBenchChild is the child process of the peak-memory runs: with MMGAP_BUNDLE_BENCH_CHILD
// set it runs one Verify or Create and prints its peak memory; without, it does nothing.
func TestBundleBenchChild(t *testing.T) {
	spec := os.Getenv(bundleChildEnv)
	if spec == "" {
		return
	}
	var job bundleChildJob
	if err := json.Unmarshal([]byte(spec), &job); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(job.Key)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var n int64
	switch job.Op {
	case "verify":
		kr, err := pgp.ParseKeyring(key)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(job.Bundle)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rep, err := bundle.Verify(context.Background(), f, bundle.VerifyOptions{Keyring: kr})
		if err != nil {
			t.Fatal(err)
		}
		n = rep.Bytes
	case "create":
		sg, err := pgp.ReadSecretKey(bytes.NewReader(key), nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := store.OpenExisting(job.Store)
		if err != nil {
			t.Fatal(err)
		}
		inv, err := bundle.Create(context.Background(), s, job.Bundle, bundle.CreateOptions{Signer: sg})
		if err != nil {
			t.Fatal(err)
		}
		n = inv.TotalSize()
	default:
		t.Fatalf("unknown op %q", job.Op)
	}
	secs := time.Since(start).Seconds()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	json.NewEncoder(os.Stdout).Encode(bundleChildResult{VmHWMkB: bundleVmHWM(), Sys: ms.Sys, Seconds: secs, Bytes: n})
}

func bundleVmHWM() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return -1
}

type bundleFixture struct {
	dir       string
	store     *store.Store
	bundle    string
	blobBytes int64 // bytes of random blobs (what SHA256 hashes)
	total     int64 // content bytes Verify checks (blobs, manifests, configs, files)
	blobs     []string
	signer    *pgp.Signer
	kr        pgp.Keyring
	secFile   string
	pubFile   string
}

// newBundleFixture builds a store of mib MiB of random blobs (images of 8 layers) and its
// signed bundle under dir.
func newBundleFixture(tb testing.TB, dir string, mib int) *bundleFixture {
	tb.Helper()
	sec, pub, _, err := pgp.GenerateKey(pgp.KeyOptions{Name: "bench", Now: func() time.Time { return time.Now().Add(-time.Hour) }})
	if err != nil {
		tb.Fatal(err)
	}
	f := &bundleFixture{dir: dir, secFile: filepath.Join(dir, "key.sec"), pubFile: filepath.Join(dir, "key.pub")}
	os.WriteFile(f.secFile, sec, 0o600)
	os.WriteFile(f.pubFile, pub, 0o644)
	if f.signer, err = pgp.ReadSecretKey(bytes.NewReader(sec), nil); err != nil {
		tb.Fatal(err)
	}
	if f.kr, err = pgp.ParseKeyring(pub); err != nil {
		tb.Fatal(err)
	}
	if f.store, err = store.Open(filepath.Join(dir, "store")); err != nil {
		tb.Fatal(err)
	}
	blobSize := *bundleBlobMiB << 20
	n := max(1, (mib<<20+blobSize/2)/blobSize)
	rng := rand.NewChaCha8([32]byte{byte(mib), byte(mib >> 8)})
	buf := make([]byte, blobSize)
	var layers []v1.Descriptor
	flush := func(img int) {
		cfg, err := f.store.PutBytes(string(types.OCIConfigJSON), fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","image":%d}`, img))
		if err != nil {
			tb.Fatal(err)
		}
		raw, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": types.OCIManifestSchema1, "config": cfg, "layers": layers})
		m, err := f.store.PutBytes(string(types.OCIManifestSchema1), raw)
		if err != nil {
			tb.Fatal(err)
		}
		m.Annotations = map[string]string{
			store.AnnotationRefName: fmt.Sprintf("registry.example.org/bench/image%d:1", img),
			store.AnnotationKind:    store.KindImage,
			store.AnnotationName:    fmt.Sprintf("image%d", img),
			store.AnnotationVersion: "1",
		}
		if err := f.store.SetRef(m); err != nil {
			tb.Fatal(err)
		}
		layers = nil
	}
	for i := range n {
		rng.Read(buf)
		d, err := f.store.PutBytes(string(types.OCILayer), buf)
		if err != nil {
			tb.Fatal(err)
		}
		layers = append(layers, d)
		f.blobs = append(f.blobs, f.store.BlobPath(d.Digest))
		f.blobBytes += int64(blobSize)
		if len(layers) == 8 || i == n-1 {
			flush(i / 8)
		}
	}
	f.bundle = filepath.Join(dir, "bench.mmgap.tar.zst")
	inv, err := bundle.Create(context.Background(), f.store, f.bundle, bundle.CreateOptions{Signer: f.signer})
	if err != nil {
		tb.Fatal(err)
	}
	f.total = inv.TotalSize()
	return f
}

var (
	shaRate  float64 // MB/s, single core, from the SHA256 case of this run
	shaMu    sync.Mutex
	noResult = -1.0
)

func mbps(bytes int64, d time.Duration, n int) float64 {
	return float64(bytes) * float64(n) / d.Seconds() / 1e6
}

// BenchmarkBundle runs, side by side over one store: SHA256 (crypto/sha256 over the blob files,
// one core: the floor of any verification), SHA256Mem (the same, over memory), Verify, Create
// (to a file, fsynced), WriteDiscard (Create's CPU side: the same stream into io.Discard), and
// the peak-memory runs in child processes.
func BenchmarkBundle(b *testing.B) {
	f := newBundleFixture(b, b.TempDir(), *bundleMiB)
	fi, _ := os.Stat(f.bundle)
	b.Logf("store: %d blobs of random data, %d MiB; bundle %d bytes; %d cores", len(f.blobs), f.blobBytes>>20, fi.Size(), runtime.GOMAXPROCS(0))
	shaMu.Lock()
	shaRate = noResult
	shaMu.Unlock()

	b.Run("SHA256", func(b *testing.B) {
		b.SetBytes(f.blobBytes)
		buf := make([]byte, 1<<20)
		h := sha256.New()
		for b.Loop() {
			for _, p := range f.blobs {
				fh, err := os.Open(p)
				if err != nil {
					b.Fatal(err)
				}
				h.Reset()
				if _, err := io.CopyBuffer(h, fh, buf); err != nil {
					b.Fatal(err)
				}
				h.Sum(nil)
				fh.Close()
			}
		}
	})
	b.Run("SHA256Mem", func(b *testing.B) {
		mem := make([]byte, 64<<20)
		rand.NewChaCha8([32]byte{9}).Read(mem)
		b.SetBytes(f.blobBytes)
		h := sha256.New()
		for b.Loop() {
			h.Reset()
			for done := int64(0); done < f.blobBytes; done += int64(len(mem)) {
				h.Write(mem)
			}
			h.Sum(nil)
		}
		shaMu.Lock()
		shaRate = mbps(f.blobBytes, b.Elapsed(), b.N)
		shaMu.Unlock()
	})
	b.Run("Verify", func(b *testing.B) {
		b.SetBytes(f.total)
		for b.Loop() {
			fh, err := os.Open(f.bundle)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := bundle.Verify(context.Background(), fh, bundle.VerifyOptions{Keyring: f.kr}); err != nil {
				b.Fatal(err)
			}
			fh.Close()
		}
		shaMu.Lock()
		sr := shaRate
		shaMu.Unlock()
		if sr > 0 {
			cores := float64(runtime.GOMAXPROCS(0))
			b.ReportMetric(mbps(f.total, b.Elapsed(), b.N)/(sr*cores), "ratio-vs-sha256xcores")
		}
	})
	b.Run("Create", func(b *testing.B) {
		b.SetBytes(f.total)
		out := filepath.Join(f.dir, "create.mmgap.tar.zst")
		for b.Loop() {
			if _, err := bundle.Create(context.Background(), f.store, out, bundle.CreateOptions{Signer: f.signer}); err != nil {
				b.Fatal(err)
			}
		}
		os.Remove(out)
	})
	b.Run("WriteDiscard", func(b *testing.B) {
		b.SetBytes(f.total)
		for b.Loop() {
			if _, err := bundle.Write(context.Background(), io.Discard, f.store, bundle.CreateOptions{Signer: f.signer}); err != nil {
				b.Fatal(err)
			}
		}
	})
	if *bundleMemMiB == "" {
		return
	}
	os.Remove(f.bundle)
	os.RemoveAll(filepath.Join(f.dir, "store"))
	for _, s := range strings.Split(*bundleMemMiB, ",") {
		mib, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			b.Fatal(err)
		}
		dir := filepath.Join(b.TempDir(), fmt.Sprint(mib))
		os.Mkdir(dir, 0o755)
		mf := newBundleFixture(b, dir, mib)
		for _, op := range []string{"verify", "create"} {
			b.Run(fmt.Sprintf("PeakMem/%s-%dMiB", op, mib), func(b *testing.B) {
				var res bundleChildResult
				for b.Loop() {
					job := bundleChildJob{Op: op, Store: mf.store.Dir(), Bundle: mf.bundle, Key: mf.pubFile}
					if op == "create" {
						job.Bundle, job.Key = filepath.Join(dir, "child.mmgap.tar.zst"), mf.secFile
					}
					spec, _ := json.Marshal(job)
					cmd := exec.Command(os.Args[0], "-test.run=^TestBundleBenchChild$", "-test.count=1")
					cmd.Env = append(os.Environ(), bundleChildEnv+"="+string(spec))
					cmd.Stderr = os.Stderr
					out, err := cmd.Output()
					if err != nil {
						b.Fatalf("child: %v\n%s", err, out)
					}
					line := out
					if i := bytes.IndexByte(out, '\n'); i >= 0 {
						line = out[:i]
					}
					if err := json.Unmarshal(line, &res); err != nil {
						b.Fatalf("child output %q: %v", out, err)
					}
				}
				b.ReportMetric(float64(res.VmHWMkB)/1024, "peak-RSS-MiB")
				b.ReportMetric(float64(res.Sys)/(1<<20), "go-sys-MiB")
				b.ReportMetric(float64(res.Bytes)/res.Seconds/1e6, "MB/s")
			})
		}
		os.RemoveAll(dir)
	}
}

// newMixedStore builds a store shaped like a real gathering: gzip-compressed image layers of
// text-like content (most of the bytes), JSON configs and manifests, and one uncompressed text
// file artifact (about 5% of the bytes).
func newMixedStore(tb testing.TB, dir string, mib int) (*store.Store, int64) {
	tb.Helper()
	s, err := store.Open(dir)
	if err != nil {
		tb.Fatal(err)
	}
	words := strings.Fields("mattermost server plugin config channel team user post file upload " +
		"database postgres migration index query cache cluster node metrics push notification " +
		"image layer manifest digest registry bundle verify signature key ledger site import export")
	rng := rand.New(rand.NewPCG(uint64(mib), 3))
	text := func(n int) []byte {
		var b bytes.Buffer
		for b.Len() < n {
			b.WriteString(words[rng.IntN(len(words))])
			if rng.IntN(12) == 0 {
				b.WriteString(".\n")
			} else {
				b.WriteByte(' ')
			}
		}
		return b.Bytes()[:n]
	}
	var total int64
	img := 0
	for total < int64(mib)<<20*95/100 {
		var layers []v1.Descriptor
		for range 4 {
			var gz bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
			zw.Write(text(16 << 20))
			zw.Close()
			d, err := s.PutBytes(string(types.OCILayer), gz.Bytes())
			if err != nil {
				tb.Fatal(err)
			}
			layers = append(layers, d)
			total += d.Size
		}
		cfg, _ := s.PutBytes(string(types.OCIConfigJSON), fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/bin"],"Labels":{"image":"%d"}},"history":[{"created_by":"%s"}]}`, img, text(2000)))
		raw, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": types.OCIManifestSchema1, "config": cfg, "layers": layers})
		m, err := s.PutBytes(string(types.OCIManifestSchema1), raw)
		if err != nil {
			tb.Fatal(err)
		}
		m.Annotations = map[string]string{store.AnnotationRefName: fmt.Sprintf("registry.example.org/mixed/image%d:1", img), store.AnnotationKind: store.KindImage}
		if err := s.SetRef(m); err != nil {
			tb.Fatal(err)
		}
		img++
	}
	empty, _ := s.PutBytes(store.MediaTypeEmpty, store.EmptyJSON)
	file, _ := s.PutBytes(store.MediaTypeOctetStream, text(mib<<20/20))
	total += file.Size
	raw, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": types.OCIManifestSchema1, "artifactType": store.ArtifactTypeFile, "config": empty, "layers": []v1.Descriptor{file}})
	m, _ := s.PutBytes(string(types.OCIManifestSchema1), raw)
	m.Annotations = map[string]string{store.AnnotationRefName: "mmgap.files/changelog:1", store.AnnotationKind: store.KindFile}
	if err := s.SetRef(m); err != nil {
		tb.Fatal(err)
	}
	return s, total
}

// BenchmarkBundleLevels compares zstd levels for Create on a store shaped like a real one
// (-bundle-mixed-mib MiB), reporting the bundle size relative to the content.
func BenchmarkBundleLevels(b *testing.B) {
	s, total := newMixedStore(b, filepath.Join(b.TempDir(), "store"), *bundleMixedMiB)
	out := filepath.Join(b.TempDir(), "levels.mmgap.tar.zst")
	for _, l := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression, zstd.SpeedBestCompression} {
		b.Run(l.String(), func(b *testing.B) {
			b.SetBytes(total)
			var inv *bundle.Inventory
			for b.Loop() {
				var err error
				if inv, err = bundle.Create(context.Background(), s, out, bundle.CreateOptions{Unsigned: true, Level: l}); err != nil {
					b.Fatal(err)
				}
			}
			fi, _ := os.Stat(out)
			b.ReportMetric(float64(fi.Size())/float64(inv.TotalSize()), "size-ratio")
			fh, _ := os.Open(out)
			start := time.Now()
			if _, err := bundle.Verify(context.Background(), fh, bundle.VerifyOptions{InsecureSkipSignature: true}); err != nil {
				b.Fatal(err)
			}
			fh.Close()
			b.ReportMetric(float64(inv.TotalSize())/time.Since(start).Seconds()/1e6, "verify-MB/s")
		})
	}
}
