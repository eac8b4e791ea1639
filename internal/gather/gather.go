// Package gather fetches everything a manifest lists into a content store: images, files and
// Helm charts, several at a time, each retried on its own. It leaves the store holding exactly
// the manifest's artifacts, ready to be bundled.
package gather

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
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/mmgap/mmgap/internal/fetch"
	"github.com/mmgap/mmgap/internal/fetch/chart"
	"github.com/mmgap/mmgap/internal/fetch/httpfile"
	"github.com/mmgap/mmgap/internal/fetch/image"
	"github.com/mmgap/mmgap/internal/manifest"
	"github.com/mmgap/mmgap/internal/pgp"
	"github.com/mmgap/mmgap/internal/store"
)

// Options configures Run.
type Options struct {
	// Store receives the artifacts. Required.
	Store *store.Store
	// Jobs is how many artifacts are fetched at once (default 4).
	Jobs int
	// BlobJobs is how many blobs of one image are fetched at once (default 4).
	BlobJobs int
	// Keychain finds registry credentials; nil means Docker's config.json.
	Keychain authn.Keychain
	// Auth, when set, is used for every registry instead of Keychain.
	Auth authn.Authenticator
	// Client makes HTTP requests for files and chart repositories; nil means a default client.
	Client *http.Client
	// Transport carries registry requests; nil means the default transport.
	Transport http.RoundTripper
	// Retry is the retry policy of each fetch; zero means fetch.DefaultRetry.
	Retry fetch.Retry
	// Progress receives byte counts; nil discards them.
	Progress fetch.Progress
	// Logger receives debug and warning records; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// AllowExpiredKeys lists the fingerprints of OpenPGP keys whose expiry the user has decided
	// to accept for file signatures made before the key expired (gather --allow-expired-key).
	// Each accepted use is recorded in the file's artifact manifest. Empty refuses every
	// expired key.
	AllowExpiredKeys []string
}

// Item is the outcome for one artifact of the manifest.
type Item struct {
	Kind   string  `json:"kind"`
	Name   string  `json:"name"`
	Source string  `json:"source"`
	Ref    string  `json:"ref,omitempty"`
	Digest v1.Hash `json:"digest,omitzero"`
	Size   int64   `json:"size,omitempty"`
	Error  string  `json:"error,omitempty"`
	err    error
}

// Err is the failure, or nil.
func (i Item) Err() error { return i.err }

// Report is the outcome of Run, in manifest order: images, files, charts.
type Report struct {
	Items   []Item   `json:"artifacts"`
	Failed  int      `json:"failed"`
	Dropped []string `json:"dropped,omitempty"` // store entries not in the manifest, left out of bundles
}

// PartialError reports that some artifacts could not be gathered. The others are in the store;
// running again fetches only what is missing.
type PartialError struct {
	Failed []Item
	Total  int
}

func (e *PartialError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d artifacts could not be gathered:", len(e.Failed), e.Total)
	for _, it := range e.Failed {
		fmt.Fprintf(&b, "\n  %s %s: %v", it.Kind, it.Name, it.err)
	}
	return b.String()
}

// Unwrap exposes the individual failures to errors.Is and errors.As.
func (e *PartialError) Unwrap() []error {
	out := make([]error, len(e.Failed))
	for i, it := range e.Failed {
		out[i] = it.err
	}
	return out
}

type job struct {
	item Item
	run  func(ctx context.Context) (v1.Descriptor, error)
}

// Run gathers every artifact of m into opts.Store. It returns a report and, when any artifact
// failed, a *PartialError. The manifest is checked first (key files readable); errors there stop
// Run before anything is fetched.
func Run(ctx context.Context, m *manifest.Manifest, opts Options) (*Report, error) {
	if opts.Store == nil {
		return nil, errors.New("gather: no store")
	}
	if err := m.Check(); err != nil {
		return nil, err
	}
	if opts.Jobs <= 0 {
		opts.Jobs = 4
	}
	if opts.Progress == nil {
		opts.Progress = fetch.NopProgress{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	allowExpired := make([]string, 0, len(opts.AllowExpiredKeys))
	for _, s := range opts.AllowExpiredKeys {
		fp, err := pgp.ParseFingerprint(s)
		if err != nil {
			return nil, fmt.Errorf("gather: expired-key override: %w", err)
		}
		allowExpired = append(allowExpired, fp)
	}
	client := opts.Client
	if client == nil {
		client = &http.Client{Transport: opts.Transport}
	}
	keychain := opts.Keychain
	if keychain == nil {
		keychain = authn.DefaultKeychain
	}
	if opts.Auth != nil {
		keychain = staticKeychain{opts.Auth}
	}
	mirrors := m.Mirrors

	images, err := image.New(image.Options{
		Store: opts.Store, Keychain: keychain, Transport: opts.Transport,
		RewriteRegistry: mirrors.RewriteRegistry, Retry: opts.Retry, Progress: opts.Progress,
		Jobs: opts.BlobJobs, Logger: opts.Logger, Now: opts.Now,
	})
	if err != nil {
		return nil, err
	}
	shared := fetch.HTTPOptions{Client: client, RewriteURL: mirrors.RewriteURL, Retry: opts.Retry,
		Progress: opts.Progress, Logger: opts.Logger, Now: opts.Now}
	files, err := httpfile.New(httpfile.Options{Store: opts.Store, HTTPOptions: shared})
	if err != nil {
		return nil, err
	}
	remoteOpts := []remote.Option{remote.WithAuthFromKeychain(keychain)}
	if opts.Transport != nil {
		remoteOpts = append(remoteOpts, remote.WithTransport(opts.Transport))
	}
	charts, err := chart.New(chart.Options{Store: opts.Store, HTTPOptions: shared,
		RewriteRepository: mirrors.RewriteReference, RemoteOptions: remoteOpts})
	if err != nil {
		return nil, err
	}

	var jobs []job
	for i, im := range m.Images {
		req := image.Request{ID: fmt.Sprintf("image/%d", i), Ref: im.Ref, Name: im.DisplayName(), Platforms: im.Platforms}
		jobs = append(jobs, job{item: Item{Kind: store.KindImage, Name: req.Name, Source: im.Ref},
			run: func(ctx context.Context) (v1.Descriptor, error) {
				res, err := images.Fetch(ctx, req)
				return res.Descriptor, err
			}})
	}
	keyrings := map[string]*pgp.Keyring{}
	for i, f := range m.Files {
		req := httpfile.Request{ID: fmt.Sprintf("file/%d", i), Name: f.DisplayName(), Version: f.Version, URL: f.URL, SHA256: f.SHA256}
		if f.Checksum != nil {
			req.ChecksumURL = f.Checksum.URL
		}
		if f.Signature != nil {
			kr, ok := keyrings[f.Signature.KeyPath]
			if !ok {
				k, err := pgp.ReadKeyring(f.Signature.KeyPath)
				if err != nil {
					return nil, m.ErrorAt(fmt.Sprintf("files[%d].signature.key", i), "%v", err)
				}
				kr = &k
				keyrings[f.Signature.KeyPath] = kr
			}
			req.SignatureURL, req.Keyring = f.Signature.URL, kr
			req.AllowExpiredKeys = allowExpired
		}
		jobs = append(jobs, job{item: Item{Kind: store.KindFile, Name: req.Name, Source: httpfile.SourceURL(f.URL)},
			run: func(ctx context.Context) (v1.Descriptor, error) { return files.Fetch(ctx, req) }})
	}
	for i, c := range m.Charts {
		req := chart.Request{ID: fmt.Sprintf("chart/%d", i), Name: c.DisplayName(), Repo: c.Repo, Chart: c.Chart, OCI: c.OCI, Version: c.Version}
		src := c.OCI
		if src == "" {
			src = httpfile.SourceURL(strings.TrimSuffix(c.Repo, "/") + "/" + c.Chart)
		}
		jobs = append(jobs, job{item: Item{Kind: store.KindChart, Name: req.Name, Source: src},
			run: func(ctx context.Context) (v1.Descriptor, error) { return charts.Fetch(ctx, req) }})
	}

	rep := &Report{Items: make([]Item, len(jobs))}
	sem := make(chan struct{}, opts.Jobs)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				it := j.item
				it.err = ctx.Err()
				rep.Items[i] = it
				return
			}
			defer func() { <-sem }()
			it := j.item
			desc, err := j.run(ctx)
			if err != nil {
				it.err = err
				opts.Logger.Warn("gather failed", "kind", it.Kind, "name", it.Name, "err", err)
			} else {
				it.Ref = desc.Annotations[store.AnnotationRefName]
				it.Digest = desc.Digest
				if blobs, err := opts.Store.Reachable(desc); err == nil {
					for _, b := range blobs {
						it.Size += b.Size
					}
				}
			}
			rep.Items[i] = it
		}()
	}
	wg.Wait()

	keep := map[string]bool{}
	var failed []Item
	for i := range rep.Items {
		it := &rep.Items[i]
		if it.err != nil {
			it.Error = it.err.Error()
			failed = append(failed, *it)
			continue
		}
		keep[it.Ref] = true
	}
	rep.Failed = len(failed)
	if len(failed) > 0 {
		return rep, &PartialError{Failed: failed, Total: len(jobs)}
	}
	dropped, err := opts.Store.Retain(keep)
	if err != nil {
		return rep, err
	}
	rep.Dropped = dropped
	return rep, nil
}

type staticKeychain struct{ a authn.Authenticator }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.a, nil }
