// Package fetch holds what every upstream source shares: progress reporting, retries with
// backoff, and the host rewrites of the manifest's mirrors section. The sources themselves live
// in the subpackages image, httpfile and chart.
package fetch

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"time"
)

// Progress receives byte counts as artifacts are fetched. Implementations must be safe for
// concurrent use. id is unique per artifact within one run; name is for people.
type Progress interface {
	// Start announces an artifact and its expected size in bytes (-1 when unknown).
	Start(id, name string, total int64)
	// Grow raises an artifact's expected size when more content is discovered.
	Grow(id string, delta int64)
	// Add reports n bytes done, fetched or found already stored (skipped).
	Add(id string, n int64, skipped bool)
	// Done closes an artifact; err is nil on success.
	Done(id string, err error)
}

// NopProgress discards progress.
type NopProgress struct{}

func (NopProgress) Start(string, string, int64) {}
func (NopProgress) Grow(string, int64)          {}
func (NopProgress) Add(string, int64, bool)     {}
func (NopProgress) Done(string, error)          {}

// Retry is a retry policy with exponential backoff and jitter.
type Retry struct {
	Attempts int           // total attempts, at least 1
	Initial  time.Duration // first wait
	Max      time.Duration // longest wait
}

// DefaultRetry is what gather uses unless told otherwise.
var DefaultRetry = Retry{Attempts: 5, Initial: 500 * time.Millisecond, Max: 15 * time.Second}

type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying (a 404, a digest mismatch, a bad signature).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// Do runs op until it succeeds, returns a permanent error, the context ends, or attempts run out.
// The last error is returned, unwrapped from Permanent.
func (r Retry) Do(ctx context.Context, op func(attempt int) error) error {
	attempts := max(r.Attempts, 1)
	wait := r.Initial
	var err error
	for i := 1; ; i++ {
		err = op(i)
		if err == nil {
			return nil
		}
		var p permanent
		if errors.As(err, &p) {
			return p.err
		}
		if ctx.Err() != nil || i >= attempts {
			return err
		}
		d := wait/2 + rand.N(wait/2+1)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(wait*2, max(r.Max, r.Initial))
	}
}

// StatusError is an HTTP response that was not a success.
type StatusError struct {
	URL        string // redacted
	StatusCode int
	Status     string
}

func (e *StatusError) Error() string { return "GET " + e.URL + ": " + e.Status }

// Temporary reports whether a retry may help (server errors, throttling, timeouts).
func (e *StatusError) Temporary() bool {
	return e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusRequestTimeout
}

// Classify marks errors that retrying cannot fix as Permanent: HTTP 4xx other than 408/429, and
// unknown hosts. Network and 5xx errors stay retryable.
func Classify(err error) error {
	if err == nil {
		return nil
	}
	var se *StatusError
	if errors.As(err, &se) && !se.Temporary() {
		return Permanent(err)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return Permanent(err)
	}
	return err
}

// HTTPOptions are the options the HTTP fetchers (files, chart repositories) share.
type HTTPOptions struct {
	// Client makes the requests; nil means http.DefaultClient.
	Client *http.Client
	// RewriteURL maps an upstream URL to the URL to fetch instead (the manifest's mirrors);
	// nil fetches every URL as written. An artifact's source stays the URL as written.
	RewriteURL func(string) (string, error)
	// Retry is the retry policy; the zero value means DefaultRetry.
	Retry Retry
	// Progress receives byte counts; nil discards them.
	Progress Progress
	// Logger receives debug and warning records; nil discards them.
	Logger *slog.Logger
	// Now is the clock for `created` annotations and signature checks; nil means time.Now.
	Now func() time.Time
}

// WithDefaults returns o with every unset field given its default.
func (o HTTPOptions) WithDefaults() HTTPOptions {
	if o.Client == nil {
		o.Client = http.DefaultClient
	}
	if o.Retry.Attempts == 0 {
		o.Retry = DefaultRetry
	}
	if o.Progress == nil {
		o.Progress = NopProgress{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}
