package chart

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/mmgap/mmgap/internal/fetch"
	"github.com/mmgap/mmgap/internal/store"
)

// remoteOptions are the go-containerregistry options for one call: our client's transport, no
// retries of its own (Options.Retry is the one policy), then the caller's options.
func (f *Fetcher) remoteOptions(ctx context.Context) []remote.Option {
	rt := f.client.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(rt),
		remote.WithRetryBackoff(remote.Backoff{Steps: 1}),
	}
	return append(opts, f.opts.RemoteOptions...)
}

// classifyRemote marks registry answers that retrying cannot fix as permanent.
func classifyRemote(err error) error {
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode >= 400 && te.StatusCode < 500 &&
		te.StatusCode != http.StatusRequestTimeout && te.StatusCode != http.StatusTooManyRequests {
		return fetch.Permanent(err)
	}
	return fetch.Classify(err)
}

// retry runs op under the retry policy and reports how many attempts it took.
func (f *Fetcher) retry(ctx context.Context, op func() error) error {
	attempts := 0
	err := f.opts.Retry.Do(ctx, func(attempt int) error {
		attempts = attempt
		return classifyRemote(op())
	})
	if err != nil && attempts > 1 && !fetch.IsPermanent(err) && ctx.Err() == nil {
		return fmt.Errorf("%w (gave up after %d attempts)", err, attempts)
	}
	return err
}

// fetchOCI copies a chart from an OCI registry: the manifest as served, its config and layers.
func (f *Fetcher) fetchOCI(ctx context.Context, r *resolved) (v1.Descriptor, error) {
	repo := strings.TrimSuffix(strings.TrimPrefix(r.OCI, "oci://"), "/")
	pull := repo
	if f.opts.RewriteRepository != nil {
		var err error
		if pull, err = f.opts.RewriteRepository(repo); err != nil {
			return v1.Descriptor{}, fmt.Errorf("chart %q: mirror for %s: %w", r.Name, r.source, err)
		}
	}
	// Helm writes '+' (semver build metadata) as '_' in OCI tags.
	ref, err := name.NewTag(pull + ":" + strings.ReplaceAll(r.Version, "+", "_"))
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("chart %q: %s:%s is not a valid OCI reference: %w", r.Name, clip(pull), clip(r.Version), err)
	}
	shown := "oci://" + ref.String()
	opts := f.remoteOptions(ctx)

	var rd *remote.Descriptor
	err = f.retry(ctx, func() error {
		var err error
		rd, err = remote.Get(ref, opts...)
		return err
	})
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("chart %q %s: fetch %s: %w", r.Name, r.Version, shown, err)
	}
	if rd.MediaType != types.OCIManifestSchema1 {
		return v1.Descriptor{}, fmt.Errorf("chart %q %s: %w: %s is a %s, not a Helm chart manifest", r.Name, r.Version, ErrNotChart, shown, clip(string(rd.MediaType)))
	}
	if len(rd.Manifest) > store.MaxManifestSize {
		return v1.Descriptor{}, fmt.Errorf("chart %q %s: %s: manifest larger than %d bytes", r.Name, r.Version, shown, store.MaxManifestSize)
	}
	var m v1.Manifest
	if err := json.Unmarshal(rd.Manifest, &m); err != nil {
		return v1.Descriptor{}, fmt.Errorf("chart %q %s: %s: manifest: %w", r.Name, r.Version, shown, err)
	}
	if m.Config.MediaType != store.MediaTypeHelmConfig {
		return v1.Descriptor{}, fmt.Errorf("chart %q %s: %w: %s has config media type %q, not %s", r.Name, r.Version, ErrNotChart, shown, clip(string(m.Config.MediaType)), store.MediaTypeHelmConfig)
	}
	var chartLayer *v1.Descriptor
	total := m.Config.Size
	for i, l := range m.Layers {
		switch l.MediaType {
		case store.MediaTypeHelmChart:
			if chartLayer != nil {
				return v1.Descriptor{}, fmt.Errorf("chart %q %s: %w: %s has more than one chart layer", r.Name, r.Version, ErrNotChart, shown)
			}
			chartLayer = &m.Layers[i]
		case MediaTypeProvenance:
		default:
			return v1.Descriptor{}, fmt.Errorf("chart %q %s: %w: %s has a layer of unexpected media type %q", r.Name, r.Version, ErrNotChart, shown, clip(string(l.MediaType)))
		}
		total += l.Size
	}
	if chartLayer == nil {
		return v1.Descriptor{}, fmt.Errorf("chart %q %s: %w: %s has no %s layer", r.Name, r.Version, ErrNotChart, shown, store.MediaTypeHelmChart)
	}
	r.prog.start(total)

	blobs := map[v1.Hash][]byte{}
	fetchBlob := func(d v1.Descriptor, limit int64) ([]byte, error) {
		if err := store.CheckDigest(d.Digest); err != nil {
			return nil, err
		}
		if d.Size < 0 || d.Size > limit {
			return nil, fmt.Errorf("blob %s: size %d outside 0..%d", d.Digest, d.Size, limit)
		}
		if b, ok := blobs[d.Digest]; ok {
			return b, nil
		}
		if f.store.Has(d.Digest, d.Size) {
			b, err := f.store.ReadBlob(d.Digest, limit)
			if err == nil {
				r.prog.add(d.Size, true)
				blobs[d.Digest] = b
				return b, nil
			}
		}
		var b []byte
		err := f.retry(ctx, func() error {
			l, err := remote.Layer(ref.Context().Digest(d.Digest.String()), opts...)
			if err != nil {
				return err
			}
			rc, err := l.Compressed()
			if err != nil {
				return err
			}
			defer rc.Close()
			b, err = readAllBounded(rc, limit)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
		}
		if int64(len(b)) != d.Size || store.Digest(b) != d.Digest {
			return nil, fmt.Errorf("blob %s: %w: registry sent %d bytes hashing to %s", d.Digest, ErrChecksum, len(b), store.Digest(b))
		}
		r.prog.add(d.Size, false)
		blobs[d.Digest] = b
		return b, nil
	}

	cfg, err := fetchBlob(m.Config, maxConfigSize)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("chart %q %s: %s: config: %w", r.Name, r.Version, shown, err)
	}
	var cmd Metadata
	if err := json.Unmarshal(cfg, &cmd); err != nil {
		return v1.Descriptor{}, fmt.Errorf("chart %q %s: %w: %s: config is not chart metadata: %v", r.Name, r.Version, ErrNotChart, shown, err)
	}
	if err := r.check(&cmd, "OCI config"); err != nil {
		return v1.Descriptor{}, err
	}
	tgz, err := fetchBlob(*chartLayer, MaxChartSize)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("chart %q %s: %s: chart layer: %w", r.Name, r.Version, shown, err)
	}
	md, _, err := ReadChartArchive(tgz)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("chart %q %s (%s): %w", r.Name, r.Version, shown, err)
	}
	if err := r.check(md, "Chart.yaml"); err != nil {
		return v1.Descriptor{}, err
	}
	for _, l := range m.Layers {
		if l.MediaType == MediaTypeProvenance {
			if _, err := fetchBlob(l, maxConfigSize); err != nil {
				return v1.Descriptor{}, fmt.Errorf("chart %q %s: %s: provenance layer: %w", r.Name, r.Version, shown, err)
			}
		}
	}

	// Everything is checked: store it.
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		if _, err := f.store.PutBytes(string(d.MediaType), blobs[d.Digest]); err != nil {
			return v1.Descriptor{}, fmt.Errorf("chart %q: store: %w", r.Name, err)
		}
	}
	if got := store.Digest(rd.Manifest); got != rd.Digest {
		return v1.Descriptor{}, fmt.Errorf("chart %q %s: %s: %w: manifest hashes to %s, registry says %s", r.Name, r.Version, shown, ErrChecksum, got, rd.Digest)
	}
	return f.record(r, string(rd.MediaType), rd.Manifest)
}
