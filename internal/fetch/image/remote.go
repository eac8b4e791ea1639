package image

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/mmgap/mmgap/internal/fetch"
	"github.com/mmgap/mmgap/internal/store"
)

// source is one repository at one registry, with an authenticated client.
type source struct {
	t      target
	client *http.Client
	base   string // scheme://host/v2/repo
	label  string // the registry as named in errors
}

type sourceEntry struct {
	mu  sync.Mutex
	src *source
}

// source returns the authenticated source for r, reusing one per registry and repository so
// concurrent fetches share the token and the connections.
func (f *Fetcher) source(ctx context.Context, r Ref) (*source, error) {
	t, err := f.resolveTarget(r)
	if err != nil {
		return nil, err
	}
	key := t.reg.Scheme() + "://" + t.host() + "/" + t.repo
	f.mu.Lock()
	e := f.sources[key]
	if e == nil {
		e = &sourceEntry{}
		f.sources[key] = e
	}
	f.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.src != nil {
		return e.src, nil
	}
	auth := f.opts.Auth
	if auth == nil {
		kc := f.opts.Keychain
		if kc == nil {
			kc = authn.DefaultKeychain
		}
		if auth, err = kc.Resolve(t.reg); err != nil {
			return nil, fmt.Errorf("credentials for %s: %w", t.host(), err)
		}
	}
	label := t.host()
	if t.mirrored {
		label = "mirror " + t.host() + " (for " + r.Registry + ")"
	}
	scope := t.reg.Repo(t.repo).Scope(transport.PullScope)
	var rt http.RoundTripper
	err = f.retry.Do(ctx, func(int) error {
		var err error
		rt, err = transport.NewWithContext(ctx, t.reg, auth, f.transport, []string{scope})
		return classify(err)
	})
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", label, err)
	}
	e.src = &source{
		t:      t,
		client: &http.Client{Transport: rt},
		base:   t.reg.Scheme() + "://" + t.host() + "/v2/" + t.repo,
		label:  label,
	}
	return e.src, nil
}

// classify is fetch.Classify that also knows go-containerregistry's transport errors and
// certificate failures.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode >= 400 && te.StatusCode < 500 &&
		te.StatusCode != http.StatusRequestTimeout && te.StatusCode != http.StatusTooManyRequests {
		return fetch.Permanent(err)
	}
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	var ce *tls.CertificateVerificationError
	if errors.As(err, &ue) || errors.As(err, &he) || errors.As(err, &ce) {
		return fetch.Permanent(err)
	}
	return fetch.Classify(err)
}

// redact drops credentials, query and fragment (pre-signed blob URLs carry signatures there).
func redact(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.ForceQuery = false
	c.Fragment = ""
	return c.String()
}

// statusError turns a non-success response into a *fetch.StatusError, with the registry's error
// code when it sent one.
func statusError(req *http.Request, resp *http.Response) error {
	status := resp.Status
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var re struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &re) == nil && len(re.Errors) > 0 && re.Errors[0].Code != "" {
		status += " (" + re.Errors[0].Code
		if m := re.Errors[0].Message; m != "" && len(m) < 200 {
			status += ": " + m
		}
		status += ")"
	}
	return &fetch.StatusError{URL: redact(req.URL), StatusCode: resp.StatusCode, Status: status}
}

var manifestAccept = strings.Join([]string{
	string(types.OCIImageIndex),
	string(types.OCIManifestSchema1),
	string(types.DockerManifestList),
	string(types.DockerManifestSchema2),
}, ", ")

// getManifest fetches a manifest or index by tag or digest. It returns the raw bytes, the
// Content-Type and the Docker-Content-Digest header (each empty when absent). Callers check the
// digest before they parse anything (manifestMediaType).
func (s *source) getManifest(ctx context.Context, ident string) ([]byte, string, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/manifests/"+ident, nil)
	if err != nil {
		return nil, "", "", fetch.Permanent(err)
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, "", "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", "", classify(statusError(req, resp))
	}
	if resp.ContentLength > store.MaxManifestSize {
		return nil, "", "", fetch.Permanent(fmt.Errorf("manifest %s: %d bytes, more than the %d allowed", ident, resp.ContentLength, store.MaxManifestSize))
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, store.MaxManifestSize+1))
	if err != nil {
		return nil, "", "", err
	}
	if len(raw) > store.MaxManifestSize {
		return nil, "", "", fetch.Permanent(fmt.Errorf("manifest %s: more than the %d bytes allowed", ident, store.MaxManifestSize))
	}
	return raw, resp.Header.Get("Content-Type"), resp.Header.Get("Docker-Content-Digest"), nil
}

// manifestMediaType is the manifest's own mediaType field, else the Content-Type the registry
// sent, else what its shape says.
func manifestMediaType(raw []byte, contentType string) (types.MediaType, error) {
	var m struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     string          `json:"mediaType"`
		Manifests     json.RawMessage `json:"manifests"`
		Config        json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", fmt.Errorf("not JSON: %w", err)
	}
	if m.SchemaVersion == 1 {
		return "", errors.New("Docker schema 1 manifests are not supported")
	}
	mt := types.MediaType(m.MediaType)
	if mt == "" {
		ct, _, _ := mime.ParseMediaType(contentType)
		mt = types.MediaType(ct)
	}
	switch {
	case store.IsIndex(mt) || store.IsManifest(mt):
		return mt, nil
	case len(m.Manifests) > 0:
		return types.OCIImageIndex, nil
	case len(m.Config) > 0:
		return types.OCIManifestSchema1, nil
	}
	return "", fmt.Errorf("unsupported media type %q", mt)
}
