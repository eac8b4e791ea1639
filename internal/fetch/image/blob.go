package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/mmgap/mmgap/internal/fetch"
	"github.com/mmgap/mmgap/internal/store"
)

// tally counts one artifact's bytes and forwards them to the progress reporter.
type tally struct {
	prog    fetch.Progress
	id      string
	fetched atomic.Int64 // bytes received over the network (blobs and manifests)
	skipped atomic.Int64 // bytes found in the store: whole blobs and resumed partials
}

// blobProgress keeps the progress of one blob monotonic across retries, resumes and restarts:
// only bytes beyond what was already reported in this run are reported again.
type blobProgress struct {
	t        *tally
	mu       sync.Mutex
	reported int64
	pos      int64
}

func (p *blobProgress) at(pos int64, skipped bool) {
	p.mu.Lock()
	p.pos = pos
	var n int64
	if pos > p.reported {
		n = pos - p.reported
		p.reported = pos
	}
	p.mu.Unlock()
	if n > 0 {
		if skipped {
			p.t.skipped.Add(n)
		}
		p.t.prog.Add(p.t.id, n, skipped)
	}
}

func (p *blobProgress) read(n int) {
	p.t.fetched.Add(int64(n))
	p.mu.Lock()
	pos := p.pos + int64(n)
	p.mu.Unlock()
	p.at(pos, false)
}

// progressReader counts what it reads and notices a stalled transfer.
type progressReader struct {
	r     io.Reader
	p     *blobProgress
	stall *time.Timer
	d     time.Duration
}

func (r *progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	if n > 0 {
		r.stall.Reset(r.d)
		r.p.read(n)
	}
	return n, err
}

var errStalled = errors.New("transfer stalled")

// fetchBlob downloads blob d into the store unless it is already there. It resumes a partial
// file left by an interrupted run with a Range request, and restarts from zero when the server
// ignores the range. Retries follow f.retry; a digest mismatch is permanent unless the content
// was resumed from an earlier partial (that partial is then discarded and the next attempt
// starts afresh).
func (f *Fetcher) fetchBlob(ctx context.Context, src *source, d v1.Descriptor, t *tally) error {
	p := &blobProgress{t: t}
	err := f.retry.Do(ctx, func(attempt int) error {
		w, err := f.opts.Store.Writer(d.Digest, d.Size)
		if errors.Is(err, store.ErrExists) {
			p.at(d.Size, true)
			return nil
		}
		if err != nil {
			return fetch.Permanent(err)
		}
		defer w.Close()
		off := w.Offset()
		resumed := off > 0
		if off == d.Size && d.Size > 0 {
			p.at(off, true)
			return commitErr(w.Commit(), resumed)
		}
		rctx, cancel := context.WithCancelCause(ctx)
		defer cancel(nil)
		stall := time.AfterFunc(f.stall, func() { cancel(errStalled) })
		defer stall.Stop()

		req, err := http.NewRequestWithContext(rctx, http.MethodGet, src.base+"/blobs/"+d.Digest.String(), nil)
		if err != nil {
			return fetch.Permanent(err)
		}
		if off > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, d.Size-1))
		}
		resp, err := src.client.Do(req)
		if err != nil {
			return stallCause(rctx, err)
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusPartialContent && off > 0:
			if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != off {
				if err := w.Reset(); err != nil {
					return fetch.Permanent(err)
				}
				return fmt.Errorf("asked for bytes from %d, server sent range %q", off, resp.Header.Get("Content-Range"))
			}
			p.at(off, true)
		case resp.StatusCode == http.StatusOK:
			if off > 0 {
				f.log.Debug("server ignored range request, restarting blob", "digest", d.Digest, "registry", src.label)
				if err := w.Reset(); err != nil {
					return fetch.Permanent(err)
				}
				resumed, off = false, 0
				p.mu.Lock()
				p.pos = 0
				p.mu.Unlock()
			}
		case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && off > 0:
			if err := w.Reset(); err != nil {
				return fetch.Permanent(err)
			}
			return errors.New("server refused to resume (416); restarting")
		default:
			return classify(statusError(req, resp))
		}
		if resp.ContentLength >= 0 && off+resp.ContentLength != d.Size {
			return fetch.Permanent(&store.DigestError{Want: d.Digest, WantSize: d.Size, GotSize: off + resp.ContentLength})
		}
		_, err = io.Copy(w, &progressReader{r: resp.Body, p: p, stall: stall, d: f.stall})
		if err != nil {
			var de *store.DigestError
			if errors.As(err, &de) {
				w.Discard()
				return fetch.Permanent(err)
			}
			return stallCause(rctx, err) // keep the partial: the next attempt resumes
		}
		return commitErr(w.Commit(), resumed)
	})
	if err != nil {
		return fmt.Errorf("blob %s from %s: %w", d.Digest, src.label, err)
	}
	return nil
}

func commitErr(err error, resumed bool) error {
	var de *store.DigestError
	if errors.As(err, &de) {
		if resumed {
			return fmt.Errorf("resumed content did not verify, starting again: %w", err)
		}
		return fetch.Permanent(err)
	}
	if err != nil {
		return fetch.Permanent(err)
	}
	return nil
}

func stallCause(ctx context.Context, err error) error {
	if c := context.Cause(ctx); errors.Is(c, errStalled) {
		return fmt.Errorf("%w: %w", errStalled, err)
	}
	return err
}

// rangeStart parses the first byte position of a Content-Range header ("bytes 100-199/200").
func rangeStart(h string) (int64, bool) {
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, false
	}
	a, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	return n, err == nil
}
