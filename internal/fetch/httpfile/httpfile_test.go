package httpfile_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/mmgap/mmgap/internal/fetch"
	"github.com/mmgap/mmgap/internal/fetch/httpfile"
	"github.com/mmgap/mmgap/internal/pgp"
	"github.com/mmgap/mmgap/internal/store"
	"github.com/mmgap/mmgap/internal/upstreamtest"
)

var fastRetry = fetch.Retry{Attempts: 3, Initial: time.Millisecond, Max: 5 * time.Millisecond}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func keyring(t testing.TB, keys ...*upstreamtest.SigningKey) *pgp.Keyring {
	t.Helper()
	var kr pgp.Keyring
	for _, k := range keys {
		one, err := pgp.ParseKeyring(k.PublicArmored)
		if err != nil {
			t.Fatal(err)
		}
		kr = kr.Merge(one)
	}
	return &kr
}

type env struct {
	t     *testing.T
	st    *store.Store
	srv   *upstreamtest.FileServer
	logs  *bytes.Buffer
	prog  *recProgress
	opts  httpfile.Options
	fetch *httpfile.Fetcher
}

func newEnv(t *testing.T, mod ...func(*httpfile.Options)) *env {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, srv: upstreamtest.NewFileServer(t), logs: &bytes.Buffer{}, prog: &recProgress{}}
	e.opts = httpfile.Options{Store: st, HTTPOptions: fetch.HTTPOptions{
		Retry:    fastRetry,
		Progress: e.prog,
		Logger:   slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:      func() time.Time { return time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC) },
	}}
	for _, m := range mod {
		m(&e.opts)
	}
	e.fetch = e.newFetcher()
	return e
}

func (e *env) newFetcher() *httpfile.Fetcher {
	f, err := httpfile.New(e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

// blobs lists the files under blobs/sha256.
func (e *env) blobs() []string {
	e.t.Helper()
	ents, err := os.ReadDir(filepath.Join(e.st.Dir(), "blobs", "sha256"))
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, x := range ents {
		out = append(out, x.Name())
	}
	return out
}

func (e *env) partials() []string {
	var out []string
	filepath.WalkDir(filepath.Join(e.st.Dir(), "blobs", ".partial"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func (e *env) refs() []string {
	e.t.Helper()
	im, err := e.st.Index()
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, m := range im.Manifests {
		out = append(out, m.Annotations[store.AnnotationRefName])
	}
	return out
}

func (e *env) manifest(d v1.Descriptor) v1.Manifest {
	e.t.Helper()
	raw, err := e.st.ReadBlob(d.Digest, store.MaxManifestSize)
	if err != nil {
		e.t.Fatal(err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *env) blob(d v1.Hash) []byte {
	e.t.Helper()
	b, err := e.st.ReadBlob(d, 1<<30)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// assertNothingStored checks that a refused file left no blob, no index entry and no partial.
func (e *env) assertNothingStored() {
	e.t.Helper()
	if b := e.blobs(); len(b) != 0 {
		e.t.Errorf("blobs/sha256 holds %v after a refused file", b)
	}
	if r := e.refs(); len(r) != 0 {
		e.t.Errorf("index.json lists %v after a refused file", r)
	}
	if p := e.partials(); len(p) != 0 {
		e.t.Errorf("partial files left after a refused file: %v", p)
	}
}

func mustContain(t *testing.T, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one containing %q", subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

// recProgress records progress calls.
type recProgress struct {
	mu      sync.Mutex
	starts  map[string]int
	totals  map[string]int64
	added   map[string]int64
	skipped map[string]int64
	grown   map[string]int64
	done    map[string]int
	errs    map[string]error
}

func (p *recProgress) init() {
	if p.starts == nil {
		p.starts, p.totals, p.added, p.skipped, p.grown = map[string]int{}, map[string]int64{}, map[string]int64{}, map[string]int64{}, map[string]int64{}
		p.done, p.errs = map[string]int{}, map[string]error{}
	}
}
func (p *recProgress) Start(id, name string, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init()
	p.starts[id]++
	p.totals[id] = total
}
func (p *recProgress) Grow(id string, d int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init()
	p.grown[id] += d
}
func (p *recProgress) Add(id string, n int64, skipped bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init()
	if skipped {
		p.skipped[id] += n
	} else {
		p.added[id] += n
	}
}
func (p *recProgress) Done(id string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init()
	p.done[id]++
	p.errs[id] = err
}

func TestSHA256OK(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(t, 200_000)
	u := e.srv.Add("/releases/mattermost-11.4.0-linux-amd64.tar.gz", data)

	desc, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "mattermost", Version: "11.4.0", URL: u, SHA256: sha(data)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		store.AnnotationRefName: "mmgap.files/mattermost:11.4.0",
		store.AnnotationKind:    "file",
		store.AnnotationName:    "mattermost",
		store.AnnotationVersion: "11.4.0",
		store.AnnotationSource:  u,
		store.AnnotationCreated: "2026-11-27T10:00:00Z",
	}
	for k, v := range want {
		if desc.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, desc.Annotations[k], v)
		}
	}
	if desc.MediaType != types.OCIManifestSchema1 || desc.ArtifactType != store.ArtifactTypeFile {
		t.Errorf("descriptor media type %q artifactType %q", desc.MediaType, desc.ArtifactType)
	}
	m := e.manifest(desc)
	if m.ArtifactType != store.ArtifactTypeFile || m.Config.MediaType != store.MediaTypeEmpty || m.Config.Digest != store.Digest([]byte("{}")) {
		t.Errorf("manifest: artifactType %q config %+v", m.ArtifactType, m.Config)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != store.MediaTypeOctetStream || m.Layers[0].Digest.Hex != sha(data) ||
		m.Layers[0].Annotations[store.AnnotationTitle] != "mattermost-11.4.0-linux-amd64.tar.gz" {
		t.Errorf("layers: %+v", m.Layers)
	}
	if _, ok := m.Annotations[store.AnnotationSigner]; ok {
		t.Error("signer annotation on a file checked by sha256 only")
	}
	if !bytes.Equal(e.blob(m.Layers[0].Digest), data) {
		t.Error("stored content differs")
	}
	if got, ok, _ := e.st.Lookup("mmgap.files/mattermost:11.4.0"); !ok || got.Digest != desc.Digest {
		t.Errorf("index.json entry %v %v", got, ok)
	}
	if err := e.st.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if p := e.partials(); len(p) != 0 {
		t.Errorf("partials left: %v", p)
	}
	id := "mmgap.files/mattermost:11.4.0"
	if e.prog.starts[id] != 1 || e.prog.done[id] != 1 || e.prog.added[id] != int64(len(data)) || e.prog.totals[id] != int64(len(data)) || e.prog.errs[id] != nil {
		t.Errorf("progress: starts %d done %d added %d total %d err %v", e.prog.starts[id], e.prog.done[id], e.prog.added[id], e.prog.totals[id], e.prog.errs[id])
	}
}

func TestNameAndVersionDefaults(t *testing.T) {
	e := newEnv(t)
	data := []byte("plugin bytes")
	u := e.srv.Add("/plugins/com.mattermost.calls-1.0.0.tar.gz", data)
	desc, err := e.fetch.Fetch(context.Background(), httpfile.Request{URL: u, SHA256: "sha256:" + strings.ToUpper(sha(data))})
	if err != nil {
		t.Fatal(err)
	}
	if got := desc.Annotations[store.AnnotationRefName]; got != "mmgap.files/com.mattermost.calls-1.0.0.tar.gz:latest" {
		t.Errorf("ref name %q", got)
	}
	if desc.Annotations[store.AnnotationVersion] != "" {
		t.Errorf("version annotation %q, want empty", desc.Annotations[store.AnnotationVersion])
	}
}

func TestRefusesUnverifiable(t *testing.T) {
	e := newEnv(t)
	u := e.srv.Add("/x.bin", []byte("x"))
	_, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "x", URL: u})
	if !errors.Is(err, httpfile.ErrUnverified) {
		t.Fatalf("err = %v, want ErrUnverified", err)
	}
	if e.srv.TotalRequests() != 0 {
		t.Error("an unverifiable file was requested")
	}
	for _, bad := range []httpfile.Request{
		{Name: "x", URL: "ftp://127.0.0.1/x", SHA256: sha(nil)},
		{Name: "x", URL: u, SHA256: "abc"},
		{Name: "../x", URL: u, SHA256: sha(nil)},
		{Name: "x", Version: "1:2", URL: u, SHA256: sha(nil)},
		{Name: "x", URL: u, SignatureURL: u + ".asc"}, // no keyring
		{Name: "x", URL: u, ChecksumURL: "file:///x.sha256"},
	} {
		if _, err := e.fetch.Fetch(context.Background(), bad); err == nil {
			t.Errorf("request %+v accepted", bad)
		}
	}
}

func TestSHA256Mismatch(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(t, 50_000)
	other := randomBytes(t, 50_000)
	u := e.srv.Add("/f.tar.gz", other) // the server serves different bytes than pinned

	_, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "f", Version: "1", URL: u, SHA256: sha(data)})
	if !errors.Is(err, httpfile.ErrChecksum) {
		t.Fatalf("err = %v, want ErrChecksum", err)
	}
	mustContain(t, err, `"f"`, "sha256:"+sha(data), "sha256:"+sha(other))
	if fetch.IsPermanent(err) {
		t.Error("returned error still wrapped as Permanent")
	}
	if n := e.srv.Requests("/f.tar.gz"); n != 1 {
		t.Errorf("a checksum mismatch was retried: %d requests", n)
	}
	e.assertNothingStored()
}

func TestSHA256MismatchWithSignature(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(t, 10_000)
	u, su := e.srv.AddSigned("/f.bin", data, nil)
	wrong := sha([]byte("something else"))
	_, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "f", URL: u, SHA256: wrong, SignatureURL: su, Keyring: keyring(t, e.srv.Key())})
	if !errors.Is(err, httpfile.ErrChecksum) {
		t.Fatalf("err = %v, want ErrChecksum", err)
	}
	e.assertNothingStored()
}

func TestSignatureOK(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(t, 100_000)
	u, su := e.srv.AddSigned("/mattermost-11.4.0.tar.gz", data, nil)

	desc, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "mattermost", Version: "11.4.0", URL: u, SignatureURL: su, Keyring: keyring(t, e.srv.Key())})
	if err != nil {
		t.Fatal(err)
	}
	m := e.manifest(desc)
	if got := m.Annotations[store.AnnotationSigner]; got != e.srv.Key().Fingerprint {
		t.Errorf("signer %q, want %q", got, e.srv.Key().Fingerprint)
	}
	if len(m.Layers) != 2 {
		t.Fatalf("layers: %+v", m.Layers)
	}
	if l := m.Layers[1]; l.MediaType != store.MediaTypePGPSignature || l.Annotations[store.AnnotationTitle] != "mattermost-11.4.0.tar.gz.sig" {
		t.Errorf("signature layer %+v", l)
	}
	if !bytes.Equal(e.blob(m.Layers[0].Digest), data) {
		t.Error("stored content differs")
	}
	sigBytes := e.blob(m.Layers[1].Digest)
	if _, err := pgp.Verify(*keyring(t, e.srv.Key()), bytes.NewReader(data), sigBytes, pgp.VerifyOptions{}); err != nil {
		t.Errorf("stored signature does not verify: %v", err)
	}
	if p := e.partials(); len(p) != 0 {
		t.Errorf("partials left: %v", p)
	}
	if err := e.st.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

func TestBadSignature(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(t, 30_000)
	u, su := e.srv.AddSigned("/f.tar.gz", data, nil)
	e.srv.Replace("/f.tar.gz", append([]byte("evil"), data...))

	_, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "f", URL: u, SignatureURL: su, Keyring: keyring(t, e.srv.Key())})
	if !errors.Is(err, pgp.ErrBadSignature) {
		t.Fatalf("err = %v, want pgp.ErrBadSignature", err)
	}
	mustContain(t, err, `"f"`, pgp.FormatFingerprint(e.srv.Key().Fingerprint))
	e.assertNothingStored()
}

func TestUntrustedSigner(t *testing.T) {
	e := newEnv(t)
	stranger := upstreamtest.NewSigningKey(t, "Stranger")
	data := randomBytes(t, 30_000)
	u, su := e.srv.AddSigned("/f.tar.gz", data, stranger)

	_, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "f", URL: u, SignatureURL: su, Keyring: keyring(t, e.srv.Key())})
	if !errors.Is(err, pgp.ErrUnknownSigner) {
		t.Fatalf("err = %v, want pgp.ErrUnknownSigner", err)
	}
	mustContain(t, err, `"f"`, pgp.FormatFingerprint(stranger.Fingerprint), "add that key")
	e.assertNothingStored()

	// Trusting the stranger's key too makes the same file acceptable.
	desc, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "f", URL: u, SignatureURL: su, Keyring: keyring(t, e.srv.Key(), stranger)})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.manifest(desc).Annotations[store.AnnotationSigner]; got != stranger.Fingerprint {
		t.Errorf("signer %q", got)
	}
}

func TestRetryAfter503(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(t, 20_000)
	u := e.srv.Add("/f.bin", data, upstreamtest.FailFirst(2))
	if _, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "f", URL: u, SHA256: sha(data)}); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.Requests("/f.bin"); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestPersistent503(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(t, 1000)
	u := e.srv.Add("/f.bin", data, upstreamtest.FailAlways())
	_, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "server-file", URL: u, SHA256: sha(data)})
	mustContain(t, err, `"server-file"`, "503", "after 3 attempts")
	if n := e.srv.Requests("/f.bin"); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
	id := "mmgap.files/server-file:latest"
	if e.prog.done[id] != 1 || e.prog.errs[id] == nil {
		t.Errorf("progress not closed with the error: %v %v", e.prog.done[id], e.prog.errs[id])
	}
	e.assertNothingStored()
}

func TestNotFoundIsNotRetried(t *testing.T) {
	e := newEnv(t)
	_, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "gone", URL: e.srv.URL + "/gone.bin", SHA256: sha(nil)})
	mustContain(t, err, `"gone"`, "404")
	if n := e.srv.TotalRequests(); n != 1 {
		t.Errorf("%d requests for a 404, want 1", n)
	}
}

func TestUnreachableHost(t *testing.T) {
	e := newEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = e.fetch.Fetch(context.Background(), httpfile.Request{Name: "offline", URL: "http://" + addr + "/f.bin", SHA256: sha(nil)})
	mustContain(t, err, `"offline"`, addr, "connection refused", "after 3 attempts")
}

func TestTruncatedDownloadResumes(t *testing.T) {
	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprintf("signed=%v", signed), func(t *testing.T) {
			e := newEnv(t)
			data := randomBytes(t, 1<<20)
			const cut = 300_000
			req := httpfile.Request{Name: "big", Version: "1"}
			if signed {
				req.URL, req.SignatureURL = e.srv.AddSigned("/big.bin", data, nil, upstreamtest.TruncateAfter(cut, 1))
				req.Keyring = keyring(t, e.srv.Key())
			} else {
				req.URL = e.srv.Add("/big.bin", data, upstreamtest.TruncateAfter(cut, 1))
				req.SHA256 = sha(data)
			}
			desc, err := e.fetch.Fetch(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(e.blob(e.manifest(desc).Layers[0].Digest), data) {
				t.Fatal("stored content differs")
			}
			ranges := e.srv.RangeHeaders("/big.bin")
			if len(ranges) != 2 || ranges[0] != "" || ranges[1] != fmt.Sprintf("bytes=%d-", cut) {
				t.Errorf("Range headers %q, want none then bytes=%d-", ranges, cut)
			}
			if n := e.srv.BytesServed("/big.bin"); n >= 2*int64(len(data)) || n != int64(len(data)) {
				t.Errorf("served %d bytes for a %d-byte file", n, len(data))
			}
			if p := e.partials(); len(p) != 0 {
				t.Errorf("partials left: %v", p)
			}
		})
	}
}

func TestTruncatedWithoutRangeSupport(t *testing.T) {
	for name, opt := range map[string]upstreamtest.FileOption{"ignore-range": upstreamtest.IgnoreRange(), "no-validators": upstreamtest.NoValidators()} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			data := randomBytes(t, 200_000)
			u, su := e.srv.AddSigned("/f.bin", data, nil, opt, upstreamtest.TruncateAfter(50_000, 1))
			desc, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "f", URL: u, SignatureURL: su, Keyring: keyring(t, e.srv.Key())})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(e.blob(e.manifest(desc).Layers[0].Digest), data) {
				t.Fatal("stored content differs")
			}
			if n := e.srv.BytesServed("/f.bin"); n != 250_000 {
				t.Errorf("served %d bytes, want a restart from zero (250000)", n)
			}
			id := "mmgap.files/f:latest"
			if e.prog.added[id]-e.prog.grown[id] != int64(len(data)) {
				t.Errorf("progress added %d grown %d for %d bytes", e.prog.added[id], e.prog.grown[id], len(data))
			}
		})
	}
}

func TestTruncatedEveryTimeFails(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(t, 100_000)
	u := e.srv.Add("/f.bin", data, upstreamtest.TruncateAfter(10, 100), upstreamtest.IgnoreRange())
	_, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "f", URL: u, SHA256: sha(data)})
	mustContain(t, err, `"f"`, "after 3 attempts")
	if b := e.blobs(); len(b) != 0 {
		t.Errorf("truncated content stored: %v", b)
	}
}

func TestResumeAcrossRuns(t *testing.T) {
	for _, signed := range []bool{false, true} {
		t.Run(fmt.Sprintf("signed=%v", signed), func(t *testing.T) {
			e := newEnv(t, func(o *httpfile.Options) { o.Retry = fetch.Retry{Attempts: 1} })
			data := randomBytes(t, 500_000)
			req := httpfile.Request{Name: "f"}
			if signed {
				req.URL, req.SignatureURL = e.srv.AddSigned("/f.bin", data, nil, upstreamtest.TruncateAfter(123_456, 1))
				req.Keyring = keyring(t, e.srv.Key())
			} else {
				req.URL = e.srv.Add("/f.bin", data, upstreamtest.TruncateAfter(123_456, 1))
				req.SHA256 = sha(data)
			}
			if _, err := e.fetch.Fetch(context.Background(), req); err == nil {
				t.Fatal("truncated download with one attempt succeeded")
			}
			if len(e.partials()) == 0 {
				t.Fatal("no partial file kept for resume")
			}
			// A new run (a new Fetcher) picks up where the first stopped.
			if _, err := e.newFetcher().Fetch(context.Background(), req); err != nil {
				t.Fatal(err)
			}
			if r := e.srv.RangeHeaders("/f.bin"); len(r) != 2 || r[1] != "bytes=123456-" {
				t.Errorf("Range headers %q", r)
			}
			if n := e.srv.BytesServed("/f.bin"); n != int64(len(data)) {
				t.Errorf("served %d bytes for a %d-byte file", n, len(data))
			}
		})
	}
}

func TestResumeOfChangedContentRestarts(t *testing.T) {
	e := newEnv(t, func(o *httpfile.Options) { o.Retry = fetch.Retry{Attempts: 1} })
	old := randomBytes(t, 100_000)
	data := randomBytes(t, 100_000)
	u, su := e.srv.AddSigned("/f.bin", old, nil, upstreamtest.TruncateAfter(40_000, 1))
	req := httpfile.Request{Name: "f", URL: u, SignatureURL: su, Keyring: keyring(t, e.srv.Key())}
	if _, err := e.fetch.Fetch(context.Background(), req); err == nil {
		t.Fatal("truncated download succeeded")
	}
	// Upstream publishes new content (and signature) before the next run: If-Range must make
	// the server send the whole new file, not the tail of it after the old head.
	e.srv.AddSigned("/f.bin", data, nil)
	desc, err := e.newFetcher().Fetch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(e.blob(e.manifest(desc).Layers[0].Digest), data) {
		t.Fatal("stored content is not the new file")
	}
}

func TestRerunFetchesNothing(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(t, 64_000)
	signed := randomBytes(t, 64_000)
	u := e.srv.Add("/pinned.bin", data)
	su, ssu := e.srv.AddSigned("/signed.bin", signed, nil)
	kr := keyring(t, e.srv.Key())
	reqs := []httpfile.Request{
		{Name: "pinned", Version: "1", URL: u, SHA256: sha(data)},
		{Name: "both", Version: "1", URL: su, SHA256: sha(signed), SignatureURL: ssu, Keyring: kr},
		{Name: "signed", Version: "1", URL: su, SignatureURL: ssu, Keyring: kr},
	}
	var first []v1.Descriptor
	for _, r := range reqs {
		d, err := e.fetch.Fetch(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		first = append(first, d)
	}
	index1, _ := os.ReadFile(filepath.Join(e.st.Dir(), "index.json"))
	e.srv.ResetCounters()

	later := e.opts
	later.Now = func() time.Time { return time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC) }
	f2, err := httpfile.New(later)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range reqs {
		d, err := f2.Fetch(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		if d.Digest != first[i].Digest || d.Annotations[store.AnnotationCreated] != first[i].Annotations[store.AnnotationCreated] {
			t.Errorf("%s: re-run changed the descriptor: %v -> %v", r.Name, first[i], d)
		}
	}
	// Pinned files need no request at all; a signature-only file needs its signature only.
	if n := e.srv.Requests("/pinned.bin"); n != 0 {
		t.Errorf("pinned file requested %d times on re-run", n)
	}
	if n := e.srv.Requests("/signed.bin"); n != 0 {
		t.Errorf("signed file requested %d times on re-run", n)
	}
	if n := e.srv.Requests("/signed.bin.asc"); n != 1 {
		t.Errorf("signature requested %d times on re-run, want 1 (for the unpinned entry)", n)
	}
	index2, _ := os.ReadFile(filepath.Join(e.st.Dir(), "index.json"))
	if !bytes.Equal(index1, index2) {
		t.Errorf("index.json changed on re-run:\n%s\n%s", index1, index2)
	}
}

func TestUnpinnedFileChangedUpstream(t *testing.T) {
	e := newEnv(t)
	kr := keyring(t, e.srv.Key())
	u, su := e.srv.AddSigned("/f.bin", []byte("version one"), nil)
	req := httpfile.Request{Name: "f", URL: u, SignatureURL: su, Keyring: kr}
	if _, err := e.fetch.Fetch(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	e.srv.AddSigned("/f.bin", []byte("version two"), nil)
	desc, err := e.fetch.Fetch(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.blob(e.manifest(desc).Layers[0].Digest); string(got) != "version two" {
		t.Errorf("stored %q", got)
	}
}

func TestMirrorRewrite(t *testing.T) {
	origin := upstreamtest.NewFileServer(t)
	mirror := upstreamtest.NewFileServer(t)
	data := randomBytes(t, 10_000)
	u := origin.Add("/dist/f.tar.gz", data)
	_, su := origin.AddSigned("/dist/f.tar.gz", data, nil)
	mirror.Add("/mm/dist/f.tar.gz", data)
	mirror.Add("/mm/dist/f.tar.gz.asc", origin.Key().Sign(t, data))

	e := newEnv(t, func(o *httpfile.Options) {
		o.RewriteURL = func(s string) (string, error) {
			if rest, ok := strings.CutPrefix(s, origin.URL); ok {
				return mirror.URL + "/mm" + rest, nil
			}
			return "", fmt.Errorf("no mirror for %s", s)
		}
	})
	desc, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "f", Version: "2", URL: u, SHA256: sha(data), SignatureURL: su, Keyring: keyring(t, origin.Key())})
	if err != nil {
		t.Fatal(err)
	}
	if n := origin.TotalRequests(); n != 0 {
		t.Errorf("origin received %d requests", n)
	}
	if mirror.Requests("/mm/dist/f.tar.gz") != 1 || mirror.Requests("/mm/dist/f.tar.gz.asc") != 1 {
		t.Errorf("mirror requests: %d %d", mirror.Requests("/mm/dist/f.tar.gz"), mirror.Requests("/mm/dist/f.tar.gz.asc"))
	}
	if got := desc.Annotations[store.AnnotationSource]; got != u {
		t.Errorf("source %q, want the original %q", got, u)
	}

	// A rewrite that fails names the file and does not fall back to the origin.
	_, err = e.fetch.Fetch(context.Background(), httpfile.Request{Name: "g", URL: "http://127.0.0.2:1/g", SHA256: sha(data)})
	mustContain(t, err, `"g"`, "no mirror")
}

func TestCredentialsRedacted(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(t, 5000)
	e.srv.Add("/private/f.bin", data, upstreamtest.RequireBasicAuth("robot", "s3cret-pass"))
	host := e.srv.Host()
	good := "http://robot:s3cret-pass@" + host + "/private/f.bin?token=t0ken-value"

	desc, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "f", URL: good, SHA256: sha(data)})
	if err != nil {
		t.Fatal(err)
	}
	if got := desc.Annotations[store.AnnotationSource]; got != "http://"+host+"/private/f.bin" {
		t.Errorf("source annotation %q carries more than the plain URL", got)
	}
	bad := "http://robot:wrong-pass@" + host + "/private/f.bin?token=t0ken-value"
	_, err = e.fetch.Fetch(context.Background(), httpfile.Request{Name: "g", URL: bad, SHA256: sha([]byte("other"))})
	mustContain(t, err, `"g"`, "401")
	_, err2 := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "h", URL: "http://robot:wrong-pass@127.0.0.1:1/x?token=t0ken-value", SHA256: sha([]byte("other"))})
	mustContain(t, err2, `"h"`)
	index, _ := os.ReadFile(filepath.Join(e.st.Dir(), "index.json"))
	for _, secret := range []string{"s3cret-pass", "wrong-pass", "t0ken-value"} {
		for what, text := range map[string]string{"error": err.Error(), "dial error": err2.Error(), "log": e.logs.String(), "index.json": string(index)} {
			if strings.Contains(text, secret) {
				t.Errorf("%s contains %q: %s", what, secret, text)
			}
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://example.invalid/a/b.tar.gz":             "https://example.invalid/a/b.tar.gz",
		"https://u:p@example.invalid/a?sig=x&exp=1#frag": "https://xxxxx@example.invalid/a?xxxxx",
		"https://u@example.invalid/a":                    "https://xxxxx@example.invalid/a",
		"http://[::1]:8080/a%20b":                        "http://[::1]:8080/a%20b",
		"://bad@x?y":                                     "<unparseable URL>",
	} {
		if got := httpfile.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
	if got := httpfile.SourceURL("https://u:p@example.invalid/a?sig=x#f"); got != "https://example.invalid/a" {
		t.Errorf("SourceURL = %q", got)
	}
}

func TestConcurrentFetchesOfOneFile(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(t, 300_000)
	u, su := e.srv.AddSigned("/f.bin", data, nil)
	kr := keyring(t, e.srv.Key())
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := httpfile.Request{Name: "f", Version: "1", URL: u, SignatureURL: su, Keyring: kr}
			if i%2 == 0 {
				req.SHA256 = sha(data)
			}
			_, errs[i] = e.fetch.Fetch(context.Background(), req)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if err := e.st.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

func TestSkopeoReadsStoredFile(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Fatal("skopeo not found; install it (Debian package skopeo): the interoperability check needs it")
	}
	e := newEnv(t)
	data := randomBytes(t, 4096)
	u, su := e.srv.AddSigned("/mattermost-11.4.0-linux-amd64.tar.gz", data, nil)
	desc, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "mattermost", Version: "11.4.0", URL: u, SHA256: sha(data), SignatureURL: su, Keyring: keyring(t, e.srv.Key())})
	if err != nil {
		t.Fatal(err)
	}
	want := e.blob(desc.Digest)
	cmd := exec.Command(skopeo, "inspect", "--raw", "oci:"+e.st.Dir()+":mmgap.files/mattermost:11.4.0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, stderr.String())
	}
	if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
		t.Errorf("skopeo returned\n%s\nwant our manifest\n%s", got, want)
	}
}

func TestBlindResumeOfChangedContent(t *testing.T) {
	e := newEnv(t, func(o *httpfile.Options) { o.Retry = fetch.Retry{Attempts: 1} })
	old := randomBytes(t, 100_000)
	data := randomBytes(t, 100_000)
	u := e.srv.Add("/f.bin", old, upstreamtest.NoValidators(), upstreamtest.TruncateAfter(30_000, 1))
	req := httpfile.Request{Name: "f", URL: u, SHA256: sha(data)}
	if _, err := e.fetch.Fetch(context.Background(), req); err == nil {
		t.Fatal("truncated download succeeded")
	}
	// Without validators the resume cannot be guarded; the pinned digest catches the mix and
	// one fresh download fixes it.
	e.srv.Replace("/f.bin", data)
	if _, err := e.newFetcher().Fetch(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if r := e.srv.RangeHeaders("/f.bin"); len(r) != 3 || r[1] != "bytes=30000-" || r[2] != "" {
		t.Errorf("Range headers %q, want none, bytes=30000-, none", r)
	}
}

func TestExpiredKey(t *testing.T) {
	e := newEnv(t, func(o *httpfile.Options) { o.Now = time.Now })
	key, expires := upstreamtest.NewExpiredSigningKey(t, "Expired Release Key")
	data := upstreamtest.ReleaseTarball(t, "11.4.0", "enterprise")
	u, su := e.srv.AddSigned("/mattermost-11.4.0-linux-amd64.tar.gz", data, key)
	req := httpfile.Request{Name: "mattermost", Version: "11.4.0", URL: u, SignatureURL: su, Keyring: keyring(t, key, e.srv.Key())}

	// Refused by default, naming the key and when it expired.
	_, err := e.fetch.Fetch(context.Background(), req)
	var ke *pgp.KeyExpiredError
	if !errors.As(err, &ke) || ke.AfterExpiry || ke.Fingerprint != key.Fingerprint || !ke.Expired.Equal(expires) {
		t.Fatalf("err = %v (%+v), want a *pgp.KeyExpiredError for %s expired at %s", err, ke, key.Fingerprint, expires)
	}
	mustContain(t, err, `"mattermost"`, pgp.FormatFingerprint(key.Fingerprint), expires.UTC().Format(time.RFC3339))
	e.assertNothingStored()

	// An override for another key does not cover this one.
	other := req
	other.AllowExpiredKeys = []string{e.srv.Key().Fingerprint}
	if _, err := e.fetch.Fetch(context.Background(), other); !errors.Is(err, pgp.ErrKeyExpired) {
		t.Fatalf("override for another key: err = %v, want pgp.ErrKeyExpired", err)
	}
	e.assertNothingStored()

	// Named by fingerprint, it is accepted and the decision recorded on the artifact.
	named := req
	named.AllowExpiredKeys = []string{key.Fingerprint}
	desc, err := e.fetch.Fetch(context.Background(), named)
	if err != nil {
		t.Fatal(err)
	}
	a := e.manifest(desc).Annotations
	if a[store.AnnotationSigner] != key.Fingerprint || a[store.AnnotationOverrideExpiredKey] != key.Fingerprint ||
		a[store.AnnotationOverrideExpiredKeyAt] != expires.UTC().Format(time.RFC3339) {
		t.Errorf("annotations %v", a)
	}

	// The stored file does not let a later run without the override through.
	if _, err := e.fetch.Fetch(context.Background(), req); !errors.Is(err, pgp.ErrKeyExpired) {
		t.Fatalf("rerun without override: err = %v, want pgp.ErrKeyExpired", err)
	}

	// A signature dated after the key expired is refused even when the key is named.
	u3, su3 := e.srv.Add("/late.tar.gz", data), e.srv.Add("/late.tar.gz.sig", key.SignAt(t, data, time.Now().Add(-30*time.Minute)))
	_, err = e.fetch.Fetch(context.Background(), httpfile.Request{Name: "late", URL: u3, SignatureURL: su3,
		Keyring: keyring(t, key), AllowExpiredKeys: []string{key.Fingerprint}})
	if !errors.As(err, &ke) || !ke.AfterExpiry {
		t.Fatalf("signature after expiry with override: err = %v, want KeyExpiredError{AfterExpiry}", err)
	}
	mustContain(t, err, `"late"`, "no override accepts it")

	// A good key's signature carries no override annotation even when overrides are given.
	u2, su2 := e.srv.AddSigned("/good.tar.gz", data, nil)
	desc, err = e.fetch.Fetch(context.Background(), httpfile.Request{Name: "good", URL: u2, SignatureURL: su2,
		Keyring: keyring(t, e.srv.Key()), AllowExpiredKeys: []string{key.Fingerprint}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.manifest(desc).Annotations[store.AnnotationOverrideExpiredKey]; ok {
		t.Error("override recorded for a key that has not expired")
	}
}
