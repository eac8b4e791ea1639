package httpfile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/mmgap/mmgap/internal/fetch"
	"github.com/mmgap/mmgap/internal/store"
)

// sink receives a download. *store.BlobWriter is one; tempFile is the other.
type sink interface {
	io.Writer
	Offset() int64
	Reset() error
}

var _ sink = (*store.BlobWriter)(nil)

// tempFile is a download whose digest is not known up front. It lives under the store's
// blobs/.partial directory, is locked against other writers, and survives interruption.
type tempFile struct {
	path string
	f    *os.File
	h    hash.Hash
	n    int64
}

func openTempFile(path string) (*tempFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	t := &tempFile{path: path, f: f, h: sha256.New()}
	// Hash what an interrupted download left so that writing resumes at its end.
	n, err := io.Copy(t.h, f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("resume %s: %w", path, err)
	}
	t.n = n
	return t, nil
}

func (t *tempFile) Write(p []byte) (int, error) {
	n, err := t.f.Write(p)
	t.h.Write(p[:n])
	t.n += int64(n)
	return n, err
}

func (t *tempFile) Offset() int64 { return t.n }

func (t *tempFile) Reset() error {
	if err := t.f.Truncate(0); err != nil {
		return err
	}
	if _, err := t.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	t.h.Reset()
	t.n = 0
	return nil
}

func (t *tempFile) digest() v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(t.h.Sum(nil))}
}

// reader reads the whole content from the start, independently of the write position.
func (t *tempFile) reader() io.Reader { return io.NewSectionReader(t.f, 0, t.n) }

// close releases the lock, keeping the content for a later resume.
func (t *tempFile) close() { t.f.Close() }

// remove deletes the content and its resume state, and releases the lock.
func (t *tempFile) remove() {
	os.Remove(t.path)
	os.Remove(t.path + ".json")
	t.f.Close()
}

// resumeState is what a later attempt, or a later run, needs to resume safely: the validators the
// server sent with the response whose body the partial content holds.
type resumeState struct {
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"lastModified,omitempty"`
	Size         int64  `json:"size"`
}

// validator is the If-Range value: a strong ETag, else Last-Modified, else "".
func (r resumeState) validator() string {
	if r.ETag != "" && !strings.HasPrefix(r.ETag, "W/") {
		return r.ETag
	}
	return r.LastModified
}

func readResumeState(path string) resumeState {
	var r resumeState
	b, err := os.ReadFile(path)
	if err != nil || len(b) > 4096 || json.Unmarshal(b, &r) != nil {
		return resumeState{Size: -1}
	}
	return r
}

func writeResumeState(path string, r resumeState) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return store.WriteFileAtomic(path, b, 0o600)
}

// transfer is one download: a URL streamed into a sink over as many attempts as it takes.
type transfer struct {
	f     *Fetcher
	url   string // what is fetched (after mirror rewrite)
	shown string // redacted, for errors and logs
	sink  sink

	statePath string      // where resumeState is kept
	state     resumeState // validators of the content the sink holds
	// blindResume allows a Range request without a validator: only when the result is checked
	// against a pinned sha256 anyway.
	blindResume bool

	prog    *progress
	resumed bool  // some content came from a 206 answer
	size    int64 // total size once complete
}

// restart drops the partial content, telling progress that the bytes must come again.
func (t *transfer) restart() error {
	if n := t.sink.Offset(); n > 0 {
		t.prog.grow(n)
	}
	t.resumed = false
	t.state = resumeState{Size: -1}
	os.Remove(t.statePath)
	return t.sink.Reset()
}

func (t *transfer) attempt(ctx context.Context) error {
	off := t.sink.Offset()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return fetch.Permanent(fmt.Errorf("GET %s: %w", t.shown, err))
	}
	// The exact bytes, never a transparently decompressed body.
	req.Header.Set("Accept-Encoding", "identity")
	if off > 0 {
		switch v := t.state.validator(); {
		case v != "":
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
			req.Header.Set("If-Range", v)
		case t.blindResume:
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
		default:
			if err := t.restart(); err != nil {
				return err
			}
			off = 0
		}
	}
	resp, err := t.f.client.Do(req)
	if err != nil {
		return redactErr(err)
	}
	defer resp.Body.Close()

	total := int64(-1)
	switch {
	case resp.StatusCode == http.StatusOK:
		if off > 0 {
			// The server ignored the range or the content changed: start again.
			if err := t.restart(); err != nil {
				return err
			}
			off = 0
		}
		total = resp.ContentLength
	case resp.StatusCode == http.StatusPartialContent && off > 0:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != off {
			if err := t.restart(); err != nil {
				return err
			}
			return fmt.Errorf("GET %s: range request for offset %d answered with Content-Range %q; restarting", t.shown, off, resp.Header.Get("Content-Range"))
		}
		total = size
		t.resumed = true
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && off > 0:
		if err := t.restart(); err != nil {
			return err
		}
		return fmt.Errorf("GET %s: range from offset %d not satisfiable; restarting", t.shown, off)
	default:
		return fetch.Classify(&fetch.StatusError{URL: t.shown, StatusCode: resp.StatusCode, Status: resp.Status})
	}

	st := resumeState{ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"), Size: total}
	if off == 0 || st.validator() != "" {
		t.state = st
	}
	if err := writeResumeState(t.statePath, t.state); err != nil {
		return fmt.Errorf("record download state: %w", err)
	}
	t.prog.start(total, off)

	n, err := io.Copy(t.sink, progressReader{r: resp.Body, p: t.prog})
	got := off + n
	if err != nil {
		var de *store.DigestError
		if errors.As(err, &de) {
			return fetch.Permanent(err)
		}
		if total >= 0 {
			return fmt.Errorf("GET %s: download interrupted after %d of %d bytes: %w", t.shown, got, total, redactErr(err))
		}
		return fmt.Errorf("GET %s: download interrupted after %d bytes: %w", t.shown, got, redactErr(err))
	}
	if total >= 0 && got != total {
		return fmt.Errorf("GET %s: download truncated: got %d of %d bytes", t.shown, got, total)
	}
	t.size = got
	return nil
}

// parseContentRange reads "bytes START-END/SIZE". size is -1 for "*".
func parseContentRange(s string) (start, size int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, sz, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	a, b, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, false
	}
	if sz == "*" {
		return start, -1, true
	}
	size, err := strconv.ParseInt(sz, 10, 64)
	if err != nil || size <= end {
		return 0, 0, false
	}
	if end != size-1 {
		// We asked for everything from start on; a shorter range would need another request.
		return 0, 0, false
	}
	return start, size, true
}

// progress reports one artifact to a fetch.Progress, starting it lazily.
type progress struct {
	p       fetch.Progress
	id      string
	name    string
	started bool
}

func (p *progress) start(total, already int64) {
	if p.started {
		return
	}
	p.started = true
	p.p.Start(p.id, p.name, total)
	if already > 0 {
		p.p.Add(p.id, already, true)
	}
}

func (p *progress) grow(n int64) {
	if p.started {
		p.p.Grow(p.id, n)
	}
}

func (p *progress) add(n int64, skipped bool) {
	p.start(-1, 0)
	p.p.Add(p.id, n, skipped)
}

func (p *progress) done(err error) {
	p.start(-1, 0)
	p.p.Done(p.id, err)
}

type progressReader struct {
	r io.Reader
	p *progress
}

func (r progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	if n > 0 {
		r.p.p.Add(r.p.id, int64(n), false)
	}
	return n, err
}
