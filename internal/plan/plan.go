// Package plan works out, before anything is fetched, what gather will fetch for a manifest:
// every artifact with its source, where it will really come from after mirrors, its size where
// the upstream says it, what the content store already holds, and the disk space the store and
// the bundle will need. It downloads no layer or file: images cost one manifest GET each (plus
// child manifests of an index), files one HEAD (or a ranged GET of one byte), charts the
// repository index and one HEAD.
package plan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/mmgap/mmgap/internal/fetch"
	"github.com/mmgap/mmgap/internal/fetch/httpfile"
	"github.com/mmgap/mmgap/internal/fetch/image"
	"github.com/mmgap/mmgap/internal/manifest"
	"github.com/mmgap/mmgap/internal/store"
)

// Options configures Run. Every field is optional.
type Options struct {
	// Store is the content store gather will fill; blobs it already holds count as stored, not
	// as download. nil means an empty store.
	Store *store.Store
	// Keychain finds registry credentials; nil means Docker's config.json.
	Keychain authn.Keychain
	// Auth, when set, is used for every registry instead of Keychain.
	Auth authn.Authenticator
	// Transport carries registry requests; nil means image.DefaultTransport().
	Transport http.RoundTripper
	// Client makes HTTP requests for files and chart repositories; nil means a client over
	// Transport.
	Client *http.Client
	// FreeSpace reports the bytes available to an unprivileged writer on the filesystem holding
	// path (an existing directory); nil means statfs(2).
	FreeSpace func(path string) (uint64, error)
	// StoreDir is where the store lives or will be created; "" skips its disk check.
	StoreDir string
	// BundlePath is the bundle file gather will write; "" skips its disk check.
	BundlePath string
	// Retry is the retry policy of each HTTP request for files and charts; zero means three
	// quick attempts (a plan should not wait as long as a gather).
	Retry fetch.Retry
	// Jobs is how many artifacts are sized at once (default 8).
	Jobs int
	// Logger receives debug records; nil discards them.
	Logger *slog.Logger
}

// Status of an artifact in a plan.
const (
	StatusDownload = "download" // nothing of it is stored yet
	StatusPartial  = "partial"  // some of its blobs are stored
	StatusStored   = "stored"   // everything is stored; gather fetches nothing
	StatusUnknown  = "unknown"  // sized, but whether it is stored cannot be told (no digest known)
	StatusError    = "error"    // could not be resolved or sized
)

// Item is one artifact of the plan.
type Item struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Source string `json:"source"` // as written in the manifest (credentials and query removed)
	// Resolved is where gather will fetch it from after mirrors: an image reference, or the URL
	// of a file or chart archive.
	Resolved string `json:"resolved,omitempty"`
	// Digest is the manifest digest of an image or OCI chart, or the content digest of a file
	// or chart archive when the manifest or repository index gives one.
	Digest string `json:"digest,omitempty"`
	// Platforms are the image platforms that will be kept.
	Platforms []string `json:"platforms,omitempty"`
	// Size is the content size in bytes: config and layers of an image (every kept platform),
	// the file, or the chart archive (plus config and provenance for OCI charts). -1 when
	// unknown.
	Size int64 `json:"size"`
	// Download is how many of Size's bytes are not in the store yet; -1 when unknown.
	Download int64 `json:"download"`
	// Stored is how many of Size's bytes are already in the store.
	Stored int64  `json:"stored"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`

	err   error
	blobs map[v1.Hash]int64 // content blobs (configs, layers, archives); nil when the digest is unknown
	meta  map[v1.Hash]int64 // manifests and indexes the artifact reaches
	temp  bool              // gather downloads it to a temporary file first (no sha256 known)
}

// Err is why the artifact could not be sized, or nil.
func (i Item) Err() error { return i.err }

// Totals sums a plan. Blobs shared by several artifacts count once.
type Totals struct {
	Artifacts int   `json:"artifacts"`
	Failed    int   `json:"failed"`   // artifacts that could not be sized
	Unsized   int   `json:"unsized"`  // artifacts sized as unknown (counted as 0)
	Download  int64 `json:"download"` // bytes gather will download
	Stored    int64 `json:"stored"`   // bytes already in the store
	// Store is the size of the plan's content in the store after gather.
	Store int64 `json:"store"`
	// Bundle estimates the bundle file: every unique blob once plus tar headers and the
	// inventory. Layers are compressed already, so zstd barely shrinks them.
	Bundle int64 `json:"bundle"`
}

// Disk is the space check of one filesystem.
type Disk struct {
	Path string   `json:"path"` // the directory checked
	Uses []string `json:"uses"` // "store", "bundle" or both when they share a filesystem
	Need uint64   `json:"need"` // bytes that will be written there
	Free uint64   `json:"free"` // bytes available
	OK   bool     `json:"ok"`
	Err  string   `json:"error,omitempty"` // free space could not be read
}

// Verdicts.
const (
	VerdictOK      = "ok"       // everything sized and the disks have room
	VerdictPartial = "partial"  // some artifacts could not be sized; the numbers are lower bounds
	VerdictNoSpace = "no-space" // a disk lacks room
)

// Plan is the outcome of Run.
type Plan struct {
	Manifest string `json:"manifest,omitempty"`
	Items    []Item `json:"artifacts"`
	Totals   Totals `json:"totals"`
	Disks    []Disk `json:"disks,omitempty"`
	Verdict  string `json:"verdict"`
}

// Errors is every artifact that could not be sized.
func (p *Plan) Errors() []Item {
	var out []Item
	for _, it := range p.Items {
		if it.err != nil {
			out = append(out, it)
		}
	}
	return out
}

// Run plans the gathering of m's images, files and charts (expand a mattermost: section into
// them first). It fails only when the manifest cannot be planned at all; an artifact that cannot
// be resolved is reported on its Item and the plan's verdict is VerdictPartial. When a disk
// lacks room Run returns the plan and a *DiskError.
func Run(ctx context.Context, m *manifest.Manifest, opts Options) (*Plan, error) {
	if m == nil {
		return nil, errors.New("plan: no manifest")
	}
	if opts.Jobs <= 0 {
		opts.Jobs = 8
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Retry.Attempts == 0 {
		opts.Retry = fetch.Retry{Attempts: 3, Initial: 200 * time.Millisecond, Max: 2 * time.Second}
	}
	if opts.FreeSpace == nil {
		opts.FreeSpace = StatfsFree
	}
	if opts.Transport == nil {
		opts.Transport = image.DefaultTransport()
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Transport: opts.Transport}
	}
	keychain := opts.Keychain
	if keychain == nil {
		keychain = authn.DefaultKeychain
	}
	s := &sizer{opts: opts, mirrors: m.Mirrors, keychain: keychain}

	var jobs []func(context.Context) Item
	for _, im := range m.Images {
		jobs = append(jobs, func(ctx context.Context) Item { return s.image(ctx, im) })
	}
	for _, f := range m.Files {
		jobs = append(jobs, func(ctx context.Context) Item { return s.file(ctx, f) })
	}
	for _, c := range m.Charts {
		jobs = append(jobs, func(ctx context.Context) Item { return s.chart(ctx, c) })
	}

	p := &Plan{Manifest: m.Filename(), Items: make([]Item, len(jobs))}
	sem := make(chan struct{}, opts.Jobs)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			p.Items[i] = j(ctx)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	p.total(opts.Store)
	p.Verdict = VerdictOK
	if p.Totals.Failed > 0 {
		p.Verdict = VerdictPartial
	}
	disks, derr := checkDisks(p.Totals, p.Items, opts)
	p.Disks = disks
	if derr != nil {
		p.Verdict = VerdictNoSpace
		return p, derr
	}
	return p, nil
}

// perArtifactOverhead estimates what gather adds per artifact beyond upstream content (the OCI
// manifest and config of a file or chart, index.json growth) and the bundle's tar headers and
// inventory entry for it.
const perArtifactOverhead = 4 << 10

// total fills p.Totals and each item's Stored/Download/Status.
func (p *Plan) total(st *store.Store) {
	t := &p.Totals
	t.Artifacts = len(p.Items)
	seen := map[v1.Hash]bool{}
	for i := range p.Items {
		it := &p.Items[i]
		if it.err != nil {
			it.Error = it.err.Error()
			it.Status = StatusError
			it.Size, it.Download = -1, -1
			t.Failed++
			continue
		}
		if it.Size < 0 {
			t.Unsized++
		}
		if it.blobs == nil { // size known (or not), digest unknown
			it.Status = StatusUnknown
			it.Download = max(it.Size, -1)
			if it.Size > 0 {
				t.Download += it.Size
				t.Store += it.Size
				t.Bundle += it.Size
			}
			t.Store += perArtifactOverhead
			t.Bundle += perArtifactOverhead
			continue
		}
		var have, want int64
		for k, set := range []map[v1.Hash]int64{it.blobs, it.meta} {
			for d, n := range set {
				stored := st != nil && st.Has(d, n)
				if k == 0 { // content; manifests are small and fetched again anyway
					if stored {
						have += n
					} else {
						want += n
					}
				}
				if seen[d] {
					continue
				}
				seen[d] = true
				t.Store += n
				t.Bundle += n + 1024 // tar header and padding
				if stored {
					t.Stored += n
				} else {
					t.Download += n
				}
			}
		}
		t.Store += perArtifactOverhead
		t.Bundle += perArtifactOverhead
		it.Stored, it.Download = have, want
		switch {
		case want == 0:
			it.Status = StatusStored
		case have == 0:
			it.Status = StatusDownload
		default:
			it.Status = StatusPartial
		}
	}
}

// redactSource is how a source is shown: no credentials, no query.
func redactSource(s string) string {
	if strings.Contains(s, "://") && !strings.HasPrefix(s, "oci://") {
		return httpfile.SourceURL(s)
	}
	return s
}

// wrap names the artifact in an error.
func wrap(kind, name string, err error) error {
	return fmt.Errorf("%s %s: %w", kind, name, err)
}
