package upstreamtest

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// FileServer is an HTTP server on 127.0.0.1 that serves registered content at fixed paths, with
// faults that tests switch on per path: failing the first requests, cutting responses short,
// ignoring Range, requiring basic auth. It counts requests and body bytes per path.
type FileServer struct {
	// URL is the server's base URL, http://127.0.0.1:PORT, without a trailing slash.
	URL string

	t   testing.TB
	srv *httptest.Server

	mu    sync.Mutex
	files map[string]*servedFile
	total int
	key   *SigningKey
}

// servedFile is one registered path and its faults and counters.
type servedFile struct {
	content  []byte
	modTime  time.Time
	etag     string
	validate bool // send ETag and Last-Modified

	failFirst   int
	failStatus  int
	truncateAt  int64
	truncateFor int
	noRange     bool
	user, pass  string

	requests int
	bytes    int64
	ranges   []string
}

// FileOption sets a fault or a property of one served path.
type FileOption func(*servedFile)

// FailFirst makes the first n requests for the path fail with 503 Service Unavailable.
func FailFirst(n int) FileOption {
	return func(f *servedFile) { f.failFirst, f.failStatus = n, http.StatusServiceUnavailable }
}

// FailFirstWith makes the first n requests for the path fail with the given status.
func FailFirstWith(n, status int) FileOption {
	return func(f *servedFile) { f.failFirst, f.failStatus = n, status }
}

// FailAlways makes every request for the path fail with 503.
func FailAlways() FileOption { return FailFirst(1 << 30) }

// TruncateAfter cuts the body of the next times responses after k bytes and closes the
// connection, while Content-Length still claims the full size.
func TruncateAfter(k int64, times int) FileOption {
	return func(f *servedFile) { f.truncateAt, f.truncateFor = k, times }
}

// IgnoreRange makes the server answer Range requests with the whole content (200).
func IgnoreRange() FileOption { return func(f *servedFile) { f.noRange = true } }

// NoValidators stops the server from sending ETag and Last-Modified, so clients cannot make
// conditional range requests.
func NoValidators() FileOption { return func(f *servedFile) { f.validate = false } }

// RequireBasicAuth makes the path answer 401 unless the request carries these credentials.
func RequireBasicAuth(user, pass string) FileOption {
	return func(f *servedFile) { f.user, f.pass = user, pass }
}

// NewFileServer starts a FileServer on 127.0.0.1; it stops when the test ends.
func NewFileServer(t testing.TB) *FileServer {
	t.Helper()
	s := &FileServer{t: t, files: map[string]*servedFile{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// Client is an HTTP client for the server.
func (s *FileServer) Client() *http.Client { return s.srv.Client() }

// Host is the server's host:port.
func (s *FileServer) Host() string { return strings.TrimPrefix(s.URL, "http://") }

// URLFor is the URL of path on the server.
func (s *FileServer) URLFor(path string) string { return s.URL + cleanServedPath(path) }

func cleanServedPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p
}

// Add serves content at path (replacing anything there, counters included) and returns its URL.
func (s *FileServer) Add(path string, content []byte, opts ...FileOption) string {
	path = cleanServedPath(path)
	sum := sha256.Sum256(content)
	f := &servedFile{
		content:  bytes.Clone(content),
		modTime:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		etag:     `"` + hex.EncodeToString(sum[:8]) + `"`,
		validate: true,
	}
	for _, o := range opts {
		o(f)
	}
	s.mu.Lock()
	s.files[path] = f
	s.mu.Unlock()
	return s.URL + path
}

// Set applies options to an already registered path.
func (s *FileServer) Set(path string, opts ...FileOption) {
	f := s.file(path)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range opts {
		o(f)
	}
}

// Replace serves different bytes at path from now on, keeping its options and counters (the
// ETag and Last-Modified change, as a real server's would).
func (s *FileServer) Replace(path string, content []byte) {
	f := s.file(path)
	sum := sha256.Sum256(content)
	s.mu.Lock()
	defer s.mu.Unlock()
	f.content = bytes.Clone(content)
	f.etag = `"` + hex.EncodeToString(sum[:8]) + `"`
	f.modTime = f.modTime.Add(time.Hour)
}

// Remove stops serving path (later requests get 404).
func (s *FileServer) Remove(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.files, cleanServedPath(path))
}

func (s *FileServer) file(path string) *servedFile {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.files[cleanServedPath(path)]
	if !ok {
		s.t.Fatalf("upstreamtest: file server has no path %s", path)
	}
	return f
}

// Requests is how many requests reached path, failed ones included.
func (s *FileServer) Requests(path string) int {
	f := s.file(path)
	s.mu.Lock()
	defer s.mu.Unlock()
	return f.requests
}

// BytesServed is how many body bytes the server wrote for path, over all requests.
func (s *FileServer) BytesServed(path string) int64 {
	f := s.file(path)
	s.mu.Lock()
	defer s.mu.Unlock()
	return f.bytes
}

// RangeHeaders lists the Range headers of the requests for path, in order ("" for none).
func (s *FileServer) RangeHeaders(path string) []string {
	f := s.file(path)
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), f.ranges...)
}

// TotalRequests counts every request the server received, for any path, unknown ones included.
func (s *FileServer) TotalRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// ResetCounters zeroes every counter.
func (s *FileServer) ResetCounters() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total = 0
	for _, f := range s.files {
		f.requests, f.bytes, f.ranges = 0, 0, nil
	}
}

// errCut stops http.ServeContent when a truncation fault fires.
var errCut = errors.New("upstreamtest: response cut short")

// cutWriter counts body bytes and, with limit >= 0, stops writing after limit bytes.
type cutWriter struct {
	http.ResponseWriter
	limit   int64
	written int64
	cut     bool
	count   func(int64)
}

func (w *cutWriter) Write(p []byte) (int, error) {
	if w.limit >= 0 && w.written+int64(len(p)) > w.limit {
		p = p[:w.limit-w.written]
		w.cut = true
	}
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	w.count(int64(n))
	if err == nil && w.cut {
		// Put what was written on the wire before the connection is dropped.
		if fl, ok := w.ResponseWriter.(http.Flusher); ok {
			fl.Flush()
		}
		err = errCut
	}
	return n, err
}

func (s *FileServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.total++
	f, ok := s.files[r.URL.Path]
	if !ok {
		s.mu.Unlock()
		http.NotFound(w, r)
		return
	}
	f.requests++
	f.ranges = append(f.ranges, r.Header.Get("Range"))
	fail := f.requests <= f.failFirst
	status := f.failStatus
	user, pass := f.user, f.pass
	limit := int64(-1)
	if !fail && f.truncateFor > 0 {
		f.truncateFor--
		limit = f.truncateAt
	}
	content, etag, modTime, validate, noRange := f.content, f.etag, f.modTime, f.validate, f.noRange
	s.mu.Unlock()

	if fail {
		http.Error(w, http.StatusText(status), status)
		return
	}
	if user != "" || pass != "" {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="upstreamtest"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
	}
	if noRange {
		r.Header.Del("Range")
		r.Header.Del("If-Range")
	}
	if validate {
		w.Header().Set("ETag", etag)
	} else {
		modTime = time.Time{}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	cw := &cutWriter{ResponseWriter: w, limit: limit, count: func(n int64) {
		s.mu.Lock()
		f.bytes += n
		s.mu.Unlock()
	}}
	http.ServeContent(cw, r, "", modTime, bytes.NewReader(content))
	if cw.cut {
		// Close the connection without finishing the body: the client sees fewer bytes than
		// Content-Length announced.
		panic(http.ErrAbortHandler)
	}
}

// SigningKey is an OpenPGP test key that makes detached signatures.
type SigningKey struct {
	// PublicArmored is the ASCII-armored public key, for a trusted keyring file.
	PublicArmored []byte
	// Fingerprint is the primary key's fingerprint, 40 uppercase hex digits.
	Fingerprint string
	// KeyID is the primary key's long key ID, 16 uppercase hex digits.
	KeyID string

	entity *openpgp.Entity
	signAt time.Time // signature creation time; zero means now
}

// NewSigningKey makes a fresh Ed25519 signing key whose user ID is name.
func NewSigningKey(t testing.TB, name string) *SigningKey {
	t.Helper()
	return newSigningKey(t, name, time.Now().Add(-time.Hour).Truncate(time.Second), 0)
}

// Sign makes an ASCII-armored detached signature over content.
func (k *SigningKey) Sign(t testing.TB, content []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	cfg := &packet.Config{DefaultHash: crypto.SHA256}
	if !k.signAt.IsZero() {
		at := k.signAt
		cfg.Time = func() time.Time { return at }
	}
	if err := openpgp.ArmoredDetachSign(&buf, k.entity, bytes.NewReader(content), cfg); err != nil {
		t.Fatalf("upstreamtest: sign: %v", err)
	}
	return buf.Bytes()
}

// WritePublicKey writes the armored public key into dir and returns the file's path.
func (k *SigningKey) WritePublicKey(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(dir, k.KeyID+".asc")
	if err := os.WriteFile(p, k.PublicArmored, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Key is the server's own signing key, made on first use.
func (s *FileServer) Key() *SigningKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		s.key = NewSigningKey(s.t, "Upstream Release Signer")
	}
	return s.key
}

// AddSigned serves content at path and a detached signature by key (nil: the server's Key) at
// path + ".asc". It returns both URLs. Options apply to the content only.
func (s *FileServer) AddSigned(path string, content []byte, key *SigningKey, opts ...FileOption) (fileURL, sigURL string) {
	s.t.Helper()
	if key == nil {
		key = s.Key()
	}
	sig := key.Sign(s.t, content)
	fileURL = s.Add(path, content, opts...)
	sigURL = s.Add(cleanServedPath(path)+".asc", sig)
	return fileURL, sigURL
}
