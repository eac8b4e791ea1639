package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/mmgap/mmgap/internal/fetch"
	"github.com/mmgap/mmgap/internal/fetch/chart"
	"github.com/mmgap/mmgap/internal/fetch/httpfile"
	"github.com/mmgap/mmgap/internal/manifest"
	"github.com/mmgap/mmgap/internal/store"
)

// file sizes a file: HEAD for Content-Length, else a GET of byte 0 for Content-Range.
func (s *sizer) file(ctx context.Context, f manifest.File) Item {
	it := Item{Kind: store.KindFile, Name: f.DisplayName(), Source: httpfile.SourceURL(f.URL), Size: -1, Download: -1}
	u, err := s.mirrors.RewriteURL(f.URL)
	if err != nil {
		it.err = wrap(it.Kind, it.Name, err)
		return it
	}
	it.Resolved = httpfile.SourceURL(u)
	n, err := s.contentLength(ctx, u)
	if err != nil {
		it.err = wrap(it.Kind, it.Name, err)
		return it
	}
	it.Size = n
	if f.SHA256 != "" {
		it.Digest = "sha256:" + f.SHA256
		if n >= 0 {
			it.blobs = map[v1.Hash]int64{{Algorithm: "sha256", Hex: f.SHA256}: n}
		}
	} else if d, ok := s.storedFile(f, it.Source, n); ok {
		// gather reuses a signature-checked file it stored from the same source.
		it.Digest = d.String()
		it.blobs = map[v1.Hash]int64{d: n}
	} else {
		it.temp = true // verified by signature only: downloaded to a temporary file first
	}
	return it
}

// storedFile finds a file the store holds under the ref name gather gives f, fetched from
// source, of size n.
func (s *sizer) storedFile(f manifest.File, source string, n int64) (v1.Hash, bool) {
	st := s.opts.Store
	if st == nil || n < 0 {
		return v1.Hash{}, false
	}
	desc, ok, err := st.Lookup(httpfile.RefName(f.DisplayName(), f.Version))
	if err != nil || !ok || desc.Annotations[store.AnnotationSource] != source {
		return v1.Hash{}, false
	}
	raw, err := st.ReadBlob(desc.Digest, store.MaxManifestSize)
	if err != nil {
		return v1.Hash{}, false
	}
	var m v1.Manifest
	if json.Unmarshal(raw, &m) != nil || len(m.Layers) == 0 || m.Layers[0].Size != n {
		return v1.Hash{}, false
	}
	return m.Layers[0].Digest, true
}

// chart sizes a chart: from an HTTP repository, the index entry (for the URL and digest) and a
// HEAD of the archive; from an OCI registry, its manifest's config and layers.
func (s *sizer) chart(ctx context.Context, c manifest.Chart) Item {
	it := Item{Kind: store.KindChart, Name: c.DisplayName(), Size: -1, Download: -1}
	if c.IsOCI() {
		it.Source = c.OCI
		if err := s.ociChart(ctx, c, &it); err != nil {
			it.err = wrap(it.Kind, it.Name, err)
		}
		return it
	}
	it.Source = httpfile.SourceURL(strings.TrimSuffix(c.Repo, "/") + "/" + c.Chart)
	if err := s.repoChart(ctx, c, &it); err != nil {
		it.err = wrap(it.Kind, it.Name, err)
	}
	return it
}

func (s *sizer) repoChart(ctx context.Context, c manifest.Chart, it *Item) error {
	base, err := url.Parse(c.Repo)
	if err != nil {
		return errors.New("repo is not a URL")
	}
	indexURL, err := s.mirrors.RewriteURL(base.JoinPath("index.yaml").String())
	if err != nil {
		return err
	}
	raw, err := s.get(ctx, indexURL, chart.MaxIndexSize)
	if err != nil {
		return fmt.Errorf("fetch repository index: %w", err)
	}
	idx, err := chart.ParseIndex(raw)
	if err != nil {
		return err
	}
	e, err := idx.Lookup(c.Chart, c.Version)
	if err != nil {
		return err
	}
	if len(e.URLs) == 0 {
		return fmt.Errorf("repository lists no URL for %s %s", c.Chart, c.Version)
	}
	archive, err := chart.ResolveChartURL(c.Repo, e.URLs[0])
	if err != nil {
		return fmt.Errorf("chart URL %q: %w", e.URLs[0], err)
	}
	pull, err := s.mirrors.RewriteURL(archive)
	if err != nil {
		return err
	}
	it.Resolved = httpfile.SourceURL(pull)
	n, err := s.contentLength(ctx, pull)
	if err != nil {
		return err
	}
	it.Size = n
	if d := strings.ToLower(strings.TrimPrefix(e.Digest, "sha256:")); d != "" {
		h := v1.Hash{Algorithm: "sha256", Hex: d}
		if store.CheckDigest(h) == nil {
			it.Digest = h.String()
			if n >= 0 {
				it.blobs = map[v1.Hash]int64{h: n}
			}
		}
	}
	return nil
}

func (s *sizer) ociChart(ctx context.Context, c manifest.Chart, it *Item) error {
	repo := strings.TrimSuffix(strings.TrimPrefix(c.OCI, "oci://"), "/")
	pull, err := s.mirrors.RewriteReference(repo)
	if err != nil {
		return err
	}
	ref, err := name.NewTag(pull + ":" + strings.ReplaceAll(c.Version, "+", "_"))
	if err != nil {
		return err
	}
	it.Resolved = "oci://" + ref.String()
	desc, err := remote.Get(ref, s.remoteOptions(ctx)...)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", it.Resolved, err)
	}
	it.Digest = desc.Digest.String()
	it.blobs = map[v1.Hash]int64{}
	it.meta = map[v1.Hash]int64{desc.Digest: int64(len(desc.Manifest))}
	kids, err := store.Children(desc.MediaType, desc.Manifest)
	if err != nil {
		return err
	}
	it.Size = 0
	for _, k := range kids {
		it.blobs[k.Digest] = k.Size
		it.Size += k.Size
	}
	return nil
}

// contentLength asks for a URL's size: HEAD and Content-Length, else GET bytes=0-0 and the total
// of Content-Range (or the Content-Length of a server that ignores Range). -1 when the server
// says neither.
func (s *sizer) contentLength(ctx context.Context, u string) (int64, error) {
	var n int64
	err := s.opts.Retry.Do(ctx, func(int) error {
		var err error
		n, err = s.contentLengthOnce(ctx, u)
		return fetch.Classify(err)
	})
	return n, err
}

func (s *sizer) contentLengthOnce(ctx context.Context, u string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return -1, err
	}
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return -1, redactErr(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK && resp.ContentLength >= 0 && resp.Header.Get("Content-Length") != "" {
		return resp.ContentLength, nil
	}
	if resp.StatusCode >= 400 && resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusNotImplemented && resp.StatusCode != http.StatusForbidden {
		return -1, &fetch.StatusError{URL: httpfile.RedactURL(u), StatusCode: resp.StatusCode, Status: resp.Status}
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return -1, err
	}
	req.Header.Set("Range", "bytes=0-0")
	req.Header.Set("Accept-Encoding", "identity")
	resp, err = s.opts.Client.Do(req)
	if err != nil {
		return -1, redactErr(err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if _, total, ok := strings.Cut(resp.Header.Get("Content-Range"), "/"); ok {
			if n, err := strconv.ParseInt(total, 10, 64); err == nil && n >= 0 {
				return n, nil
			}
		}
		return -1, nil
	case http.StatusOK:
		if resp.ContentLength >= 0 {
			return resp.ContentLength, nil
		}
		return -1, nil
	}
	return -1, &fetch.StatusError{URL: httpfile.RedactURL(u), StatusCode: resp.StatusCode, Status: resp.Status}
}

// get fetches a small document whole.
func (s *sizer) get(ctx context.Context, u string, limit int64) ([]byte, error) {
	var b []byte
	err := s.opts.Retry.Do(ctx, func(int) error {
		var err error
		b, err = s.getOnce(ctx, u, limit)
		return fetch.Classify(err)
	})
	return b, err
}

func (s *sizer) getOnce(ctx context.Context, u string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.opts.Client.Do(req)
	if err != nil {
		return nil, redactErr(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &fetch.StatusError{URL: httpfile.RedactURL(u), StatusCode: resp.StatusCode, Status: resp.Status}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fetch.Permanent(fmt.Errorf("%s: larger than %d bytes", httpfile.RedactURL(u), limit))
	}
	return b, nil
}

// redactErr drops the URL (which may carry credentials or tokens) from a *url.Error.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, httpfile.RedactURL(ue.URL), ue.Err)
	}
	return err
}
