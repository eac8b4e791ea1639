// Package httpfile fetches the `files:` entries of an mmgap manifest over HTTP(S) into the
// content store, as OCI artifacts (docs/spec/bundle-v1.md §2.3).
//
// A file is checked before it enters the store: against its pinned sha256, against a detached
// OpenPGP signature by a trusted key, or both. Content whose digest is known up front streams
// straight into the store's partial file for that digest; content known only by its signature
// streams into a partial file of its own under blobs/.partial/http and moves into the store once
// the signature checks out. Either partial survives an interruption, and the next attempt (or
// the next run) resumes it with a Range request guarded by If-Range, so the server either sends
// the rest of the same content or, with 200, the whole new content. A pinned file already in the
// store is never fetched again.
//
// URLs in errors and logs are redacted (RedactURL): no user information, no query string.
package httpfile

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/mmgap/mmgap/internal/fetch"
	"github.com/mmgap/mmgap/internal/pgp"
	"github.com/mmgap/mmgap/internal/store"
)

// ErrChecksum reports content whose SHA-256 differs from the pinned one. Nothing was stored.
var ErrChecksum = errors.New("sha256 mismatch")

// ErrUnverified reports a request with neither a sha256 nor a signature: mmgap does not gather
// content it cannot check.
var ErrUnverified = errors.New("none of sha256, signature and checksum given")

// Options configures a Fetcher.
type Options struct {
	// Store receives the files. Required.
	Store *store.Store
	fetch.HTTPOptions
}

// Request is one file to fetch.
type Request struct {
	// ID identifies the artifact to Progress; empty means the store reference name.
	ID string
	// Name is the file's short name (letters, digits, '.', '_', '-'); empty means the last
	// element of the URL path.
	Name string
	// Version is the content's version; empty is recorded as "latest" in the reference name.
	Version string
	// URL is where the file is, http or https. User information in it is sent as basic auth.
	URL string
	// SHA256 pins the content: 64 hex digits, optionally prefixed "sha256:". May be empty when
	// a signature is given.
	SHA256 string
	// SignatureURL is where a detached OpenPGP signature over the file is; empty for none.
	SignatureURL string
	// ChecksumURL is where a published checksum file for the file is (ParseChecksumFile): it
	// pins the content like SHA256. With SHA256 as well, the two must agree. Empty for none.
	ChecksumURL string
	// Keyring holds the keys trusted to sign this file; required with SignatureURL.
	Keyring *pgp.Keyring
	// AllowExpiredKey accepts a signature whose key has expired since, provided the key was
	// valid when the signature was made (pgp.VerifyOptions.AllowExpiredKey). When
	// AllowExpiredKeys is non-empty, only the keys it lists (primary-key fingerprints, as
	// pgp.ParseFingerprint returns them) are accepted that way. An accepted expired key is
	// recorded in the artifact manifest's annotations (store.AnnotationOverrideExpiredKey and
	// store.AnnotationOverrideExpiredKeyAt), so bundles show the decision.
	AllowExpiredKey bool
	// AllowExpiredKeys narrows AllowExpiredKey to these fingerprints; non-empty implies it.
	AllowExpiredKeys []string
}

// verified is the outcome of a good signature check.
type verified struct {
	signer  string    // the signer's primary-key fingerprint
	expired time.Time // when the key expired, if accepted only by the expired-key override
}

// Fetcher downloads files into a store. It is safe for concurrent use.
type Fetcher struct {
	opts   Options
	store  *store.Store
	client *http.Client
	log    *slog.Logger
}

// New makes a Fetcher.
func New(opts Options) (*Fetcher, error) {
	if opts.Store == nil {
		return nil, errors.New("httpfile: no store")
	}
	opts.HTTPOptions = opts.HTTPOptions.WithDefaults()
	return &Fetcher{opts: opts, store: opts.Store, client: opts.Client, log: opts.Logger}, nil
}

// RefName is the store reference name of a file (spec §2.1).
func RefName(name, version string) string {
	if version == "" {
		version = "latest"
	}
	return "mmgap.files/" + name + ":" + version
}

var (
	nameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	versionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)
)

// resolved is a validated Request.
type resolved struct {
	Request
	id, ref     string
	title       string // file name: last element of the URL path
	source      string // URL as written, less credentials and query
	shown       string // redacted URL for errors and logs
	fetchURL    string // after mirror rewrite
	fetchShown  string // redacted fetchURL
	sigFetchURL string
	sigShown    string
	sigGetShown string   // redacted sigFetchURL
	sumFetchURL string   // checksum file URL after mirror rewrite
	sumShown    string   // redacted ChecksumURL
	sumGetShown string   // redacted sumFetchURL
	want        *v1.Hash // pinned digest
}

func (f *Fetcher) resolve(req Request) (*resolved, error) {
	r := &resolved{Request: req}
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("file %q: URL %s: want an absolute http or https URL", req.Name, RedactURL(req.URL))
	}
	r.title = path.Base(u.Path)
	if r.title == "/" || r.title == "." || r.title == "" {
		r.title = ""
	}
	if r.Name == "" {
		r.Name = r.title
	}
	if r.title == "" {
		r.title = r.Name
	}
	if !nameRE.MatchString(r.Name) {
		return nil, fmt.Errorf("file %q: name must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", r.Name)
	}
	if r.Version != "" && !versionRE.MatchString(r.Version) {
		return nil, fmt.Errorf("file %q: version %q: want letters, digits, '.', '_', '+' or '-'", r.Name, r.Version)
	}
	r.ref = RefName(r.Name, r.Version)
	r.id = req.ID
	if r.id == "" {
		r.id = r.ref
	}
	r.source = SourceURL(req.URL)
	r.shown = RedactURL(req.URL)
	if req.SHA256 != "" {
		h := v1.Hash{Algorithm: "sha256", Hex: strings.ToLower(strings.TrimPrefix(req.SHA256, "sha256:"))}
		if store.CheckDigest(h) != nil {
			return nil, fmt.Errorf("file %q: sha256 %q: want 64 hex digits", r.Name, req.SHA256)
		}
		r.want = &h
	}
	if req.SignatureURL != "" {
		su, err := url.Parse(req.SignatureURL)
		if err != nil || (su.Scheme != "http" && su.Scheme != "https") || su.Host == "" {
			return nil, fmt.Errorf("file %q: signature URL %s: want an absolute http or https URL", r.Name, RedactURL(req.SignatureURL))
		}
		if req.Keyring == nil || req.Keyring.Len() == 0 {
			return nil, fmt.Errorf("file %q: a signature URL is given but no trusted key to check it with", r.Name)
		}
		r.sigShown = RedactURL(req.SignatureURL)
	}
	if req.ChecksumURL != "" {
		cu, err := url.Parse(req.ChecksumURL)
		if err != nil || (cu.Scheme != "http" && cu.Scheme != "https") || cu.Host == "" {
			return nil, fmt.Errorf("file %q: checksum URL %s: want an absolute http or https URL", r.Name, RedactURL(req.ChecksumURL))
		}
		r.sumShown = RedactURL(req.ChecksumURL)
		if r.sumFetchURL, err = f.rewrite(req.ChecksumURL); err != nil {
			return nil, fmt.Errorf("file %q: mirror for %s: %w", r.Name, r.sumShown, err)
		}
		r.sumGetShown = RedactURL(r.sumFetchURL)
	}
	if r.want == nil && req.SignatureURL == "" && req.ChecksumURL == "" {
		return nil, fmt.Errorf("file %q (%s): %w: refusing to gather content that cannot be checked", r.Name, r.shown, ErrUnverified)
	}
	if r.fetchURL, err = f.rewrite(req.URL); err != nil {
		return nil, fmt.Errorf("file %q: mirror for %s: %w", r.Name, r.shown, err)
	}
	r.fetchShown = RedactURL(r.fetchURL)
	if req.SignatureURL != "" {
		if r.sigFetchURL, err = f.rewrite(req.SignatureURL); err != nil {
			return nil, fmt.Errorf("file %q: mirror for %s: %w", r.Name, r.sigShown, err)
		}
		r.sigGetShown = RedactURL(r.sigFetchURL)
	}
	return r, nil
}

// publishedIn names the checksum file the expected digest came from, for errors.
func (r *resolved) publishedIn() string {
	if r.sumShown == "" {
		return ""
	}
	return " (published in " + r.sumShown + ")"
}

func (f *Fetcher) rewrite(u string) (string, error) {
	if f.opts.RewriteURL == nil {
		return u, nil
	}
	return f.opts.RewriteURL(u)
}

// existing is what the store already holds under a file's reference name.
type existing struct {
	desc   v1.Descriptor
	file   v1.Descriptor
	sig    *v1.Descriptor
	signer string
}

func (f *Fetcher) lookup(ref string) *existing {
	desc, ok, err := f.store.Lookup(ref)
	if err != nil || !ok || desc.MediaType != types.OCIManifestSchema1 {
		return nil
	}
	raw, err := f.store.ReadBlob(desc.Digest, store.MaxManifestSize)
	if err != nil {
		return nil
	}
	var m v1.Manifest
	if json.Unmarshal(raw, &m) != nil || m.ArtifactType != store.ArtifactTypeFile || len(m.Layers) == 0 || len(m.Layers) > 2 {
		return nil
	}
	e := &existing{desc: desc, file: m.Layers[0], signer: m.Annotations[store.AnnotationSigner]}
	if len(m.Layers) == 2 && m.Layers[1].MediaType == store.MediaTypePGPSignature {
		e.sig = &m.Layers[1]
	}
	if !f.store.Has(e.file.Digest, e.file.Size) {
		return nil
	}
	return e
}

// content is the file's bytes: a blob in the store, or a verified-pending temp file.
type content struct {
	d    v1.Hash
	size int64
	tmp  *tempFile // nil when stored
}

func (f *Fetcher) open(c *content) (io.ReadCloser, error) {
	if c.tmp != nil {
		return io.NopCloser(c.tmp.reader()), nil
	}
	return f.store.Open(c.d)
}

// Fetch downloads, checks and stores one file, records it in the store's index.json and returns
// its index descriptor. Errors name the file; integrity failures wrap ErrChecksum or one of
// pgp's sentinel errors and leave nothing new in the store.
func (f *Fetcher) Fetch(ctx context.Context, req Request) (desc v1.Descriptor, err error) {
	r, err := f.resolve(req)
	if err != nil {
		return v1.Descriptor{}, err
	}
	prog := &progress{p: f.opts.Progress, id: r.id, name: r.Name}
	defer func() { prog.done(err) }()
	if r.ChecksumURL != "" {
		d, err := f.fetchChecksum(ctx, r)
		if err != nil {
			return v1.Descriptor{}, err
		}
		h := v1.Hash{Algorithm: "sha256", Hex: d}
		if r.want != nil && *r.want != h {
			return v1.Descriptor{}, fmt.Errorf("file %q (%s): %w: the manifest pins sha256 %s but checksum file %s publishes %s; nothing was downloaded",
				r.Name, r.shown, ErrChecksum, r.want.Hex, r.sumShown, h.Hex)
		}
		r.want = &h
	}
	old := f.lookup(r.ref)

	var c *content
	if r.want != nil {
		if n, ok := f.store.Stat(*r.want); ok {
			c = &content{d: *r.want, size: n}
			f.log.Debug("file already in store", "file", r.Name, "digest", r.want.String())
		}
	}

	var sig []byte
	var signer *verified
	if r.SignatureURL != "" {
		// A stored signature over the same pinned content needs no network; it is checked again
		// below against today's keyring, and fetched afresh if that fails.
		if c != nil && old != nil && old.file.Digest == c.d && old.sig != nil {
			if b, err := f.store.ReadBlob(old.sig.Digest, pgp.MaxSignatureSize); err == nil {
				if v, err := f.verify(r, c, b); err == nil {
					sig, signer = b, v
				}
			}
		}
		if sig == nil {
			if sig, err = f.fetchSignature(ctx, r); err != nil {
				return v1.Descriptor{}, err
			}
			// An unpinned file whose signature is byte-for-byte the one stored with it last time
			// is the same content: the signature covers a digest of it.
			if c == nil && r.want == nil && old != nil && old.sig != nil && old.desc.Annotations[store.AnnotationSource] == r.source {
				if b, err := f.store.ReadBlob(old.sig.Digest, pgp.MaxSignatureSize); err == nil && bytes.Equal(b, sig) {
					c = &content{d: old.file.Digest, size: old.file.Size}
					f.log.Debug("file unchanged upstream (same signature)", "file", r.Name, "digest", c.d.String())
				}
			}
		}
	}

	if c != nil {
		prog.start(c.size, 0)
		prog.add(c.size, true)
	} else if r.want != nil && r.SignatureURL == "" {
		if c, err = f.downloadToStore(ctx, r, prog); err != nil {
			return v1.Descriptor{}, err
		}
	} else {
		if c, err = f.downloadToTemp(ctx, r, prog); err != nil {
			return v1.Descriptor{}, err
		}
		defer func() {
			if err != nil {
				c.tmp.remove()
			}
		}()
	}

	if r.SignatureURL != "" && signer == nil {
		if signer, err = f.verify(r, c, sig); err != nil {
			return v1.Descriptor{}, err
		}
	}

	if c.tmp != nil {
		if _, err := f.store.Put(ctx, c.d, c.size, c.tmp.reader()); err != nil {
			return v1.Descriptor{}, fmt.Errorf("file %q: store: %w", r.Name, err)
		}
		c.tmp.remove()
	}

	desc, err = f.record(r, c, sig, signer, old)
	if err != nil {
		return v1.Descriptor{}, err
	}
	var signerFP string
	if signer != nil {
		signerFP = signer.signer
		if !signer.expired.IsZero() {
			f.log.Warn("accepted a signature by an expired key (override)", "file", r.Name, "signer", signerFP,
				"expired", signer.expired.UTC().Format(time.RFC3339))
		}
	}
	f.log.Info("gathered file", "file", r.Name, "version", r.Version, "url", r.shown, "digest", c.d.String(), "size", c.size, "signer", signerFP)
	return desc, nil
}

func (f *Fetcher) partialDir() string {
	return filepath.Join(f.store.Dir(), "blobs", ".partial", "http")
}

// downloadToStore streams a pinned file straight into the store's partial file for its digest.
func (f *Fetcher) downloadToStore(ctx context.Context, r *resolved, prog *progress) (*content, error) {
	statePath := filepath.Join(f.partialDir(), "sha256-"+r.want.Hex+".json")
	if err := os.MkdirAll(f.partialDir(), 0o755); err != nil {
		return nil, err
	}
	for try := 0; ; try++ {
		w, err := f.store.Writer(*r.want, -1)
		if errors.Is(err, store.ErrExists) {
			n, _ := f.store.Stat(*r.want)
			prog.add(n, true)
			return &content{d: *r.want, size: n}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("file %q: %w", r.Name, err)
		}
		t := &transfer{f: f, url: r.fetchURL, shown: r.fetchShown, sink: w, statePath: statePath, blindResume: true, prog: prog}
		if err := f.runTransfer(ctx, r, t); err != nil {
			if w.Offset() == 0 {
				w.Discard()
				os.Remove(statePath)
			} else {
				w.Close() // keep the partial content for a resume
			}
			return nil, err
		}
		err = w.Commit()
		var de *store.DigestError
		if errors.As(err, &de) {
			os.Remove(statePath)
			if t.resumed && try == 0 {
				// The resumed part may belong to other content; one fresh download decides.
				f.log.Warn("resumed download does not match its sha256; downloading again from the start", "file", r.Name, "url", r.shown)
				prog.grow(t.size)
				continue
			}
			return nil, fmt.Errorf("file %q (%s): %w: expected %s%s, downloaded content is %s (%d bytes); nothing was stored",
				r.Name, r.shown, ErrChecksum, r.want, r.publishedIn(), de.Got, de.GotSize)
		}
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("file %q: store: %w", r.Name, err)
		}
		os.Remove(statePath)
		return &content{d: *r.want, size: t.size}, nil
	}
}

// downloadToTemp streams a file into a partial file of its own, to be checked before it moves
// into the store.
func (f *Fetcher) downloadToTemp(ctx context.Context, r *resolved, prog *progress) (*content, error) {
	sum := sha256.Sum256([]byte(r.fetchURL))
	p := filepath.Join(f.partialDir(), "url-"+hex.EncodeToString(sum[:16]))
	tf, err := openTempFile(p)
	if err != nil {
		return nil, fmt.Errorf("file %q: %w", r.Name, err)
	}
	for try := 0; ; try++ {
		t := &transfer{f: f, url: r.fetchURL, shown: r.fetchShown, sink: tf, statePath: p + ".json", blindResume: r.want != nil, prog: prog}
		if err := f.runTransfer(ctx, r, t); err != nil {
			if tf.n == 0 {
				tf.remove()
			} else {
				tf.close() // keep the partial content for a resume
			}
			return nil, err
		}
		got := tf.digest()
		if r.want != nil && got != *r.want {
			if t.resumed && try == 0 {
				f.log.Warn("resumed download does not match its sha256; downloading again from the start", "file", r.Name, "url", r.shown)
				if err := t.restart(); err != nil {
					tf.close()
					return nil, err
				}
				continue
			}
			size := tf.n
			tf.remove()
			return nil, fmt.Errorf("file %q (%s): %w: expected %s%s, downloaded content is %s (%d bytes); nothing was stored",
				r.Name, r.shown, ErrChecksum, r.want, r.publishedIn(), got, size)
		}
		return &content{d: got, size: tf.n, tmp: tf}, nil
	}
}

// runTransfer runs t with retries and names the file in the error.
func (f *Fetcher) runTransfer(ctx context.Context, r *resolved, t *transfer) error {
	attempts := 0
	inner := t.f.opts.Retry
	err := inner.Do(ctx, func(attempt int) error {
		attempts = attempt
		if attempt == 1 {
			t.state = readResumeState(t.statePath)
		}
		err := t.attempt(ctx)
		if err != nil && ctx.Err() == nil && !fetch.IsPermanent(err) && attempt < max(inner.Attempts, 1) {
			f.log.Warn("download failed; will retry", "file", r.Name, "url", r.fetchShown, "attempt", attempt, "offset", t.sink.Offset(), "err", err)
		}
		return err
	})
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("fetch file %q: %w", r.Name, ctx.Err())
	}
	if fetch.IsPermanent(err) || attempts <= 1 {
		return fmt.Errorf("fetch file %q: %w", r.Name, err)
	}
	return fmt.Errorf("fetch file %q: %w (gave up after %d attempts)", r.Name, err, attempts)
}

// fetchSignature downloads the detached signature, bounded in size.
func (f *Fetcher) fetchSignature(ctx context.Context, r *resolved) ([]byte, error) {
	return f.fetchSmall(ctx, r, r.sigFetchURL, r.sigGetShown, "signature", pgp.MaxSignatureSize)
}

// fetchSmall downloads a small companion file of r (a signature, a checksum file) whole, at
// most limit bytes, with retries; what names it in errors.
func (f *Fetcher) fetchSmall(ctx context.Context, r *resolved, fetchURL, shown, what string, limit int64) ([]byte, error) {
	var body []byte
	attempts := 0
	err := f.opts.Retry.Do(ctx, func(attempt int) error {
		attempts = attempt
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fetchURL, nil)
		if err != nil {
			return fetch.Permanent(err)
		}
		req.Header.Set("Accept-Encoding", "identity")
		resp, err := f.client.Do(req)
		if err != nil {
			return redactErr(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fetch.Classify(&fetch.StatusError{URL: shown, StatusCode: resp.StatusCode, Status: resp.Status})
		}
		if resp.ContentLength > limit {
			return fetch.Permanent(fmt.Errorf("GET %s: %s of %d bytes is larger than %d", shown, what, resp.ContentLength, limit))
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		if err != nil {
			return fmt.Errorf("GET %s: %w", shown, redactErr(err))
		}
		if int64(len(b)) > limit {
			return fetch.Permanent(fmt.Errorf("GET %s: %s larger than %d bytes", shown, what, limit))
		}
		body = b
		return nil
	})
	if err != nil {
		if attempts > 1 && !fetch.IsPermanent(err) && ctx.Err() == nil {
			return nil, fmt.Errorf("fetch %s of file %q: %w (gave up after %d attempts)", what, r.Name, err, attempts)
		}
		return nil, fmt.Errorf("fetch %s of file %q: %w", what, r.Name, err)
	}
	return body, nil
}

// verify checks sig over the content against the request's keyring and returns the signer's
// fingerprint and, when the expired-key override accepted it, when the key expired.
func (f *Fetcher) verify(r *resolved, c *content, sig []byte) (*verified, error) {
	allow := r.AllowExpiredKey || len(r.AllowExpiredKeys) > 0
	s, err := f.verifyOnce(r, c, sig, allow)
	if err == nil && s.KeyExpired && len(r.AllowExpiredKeys) > 0 && !slices.Contains(r.AllowExpiredKeys, s.Fingerprint) {
		// The override names other keys: check again without it, for the plain refusal.
		s, err = f.verifyOnce(r, c, sig, false)
	}
	if err == nil {
		v := &verified{signer: s.Fingerprint}
		if s.KeyExpired {
			v.expired = s.KeyExpires
			if v.expired.IsZero() {
				v.expired = s.Created // the signature itself expired; never zero in the record
			}
		}
		f.log.Debug("signature verified", "file", r.Name, "signer", s.Fingerprint, "user", s.UserID, "keyExpired", s.KeyExpired)
		return v, nil
	}
	var oe *openError
	if errors.As(err, &oe) {
		return nil, fmt.Errorf("file %q: %w", r.Name, oe.err)
	}
	var ue *pgp.UnknownSignerError
	if errors.As(err, &ue) {
		who := ue.KeyID
		if ue.Fingerprint != "" {
			who = pgp.FormatFingerprint(ue.Fingerprint)
		}
		return nil, fmt.Errorf("file %q (%s): signature %s was made by key %s, which is not trusted for this file; if you trust it, add that key to the file's signature key: %w",
			r.Name, r.shown, r.sigShown, who, err)
	}
	if errors.Is(err, pgp.ErrKeyExpired) {
		return nil, fmt.Errorf("file %q (%s): signature %s is refused because its key has expired; nothing was stored: %w",
			r.Name, r.shown, r.sigShown, err)
	}
	return nil, fmt.Errorf("file %q (%s): signature %s by key %s does not verify; nothing was stored: %w",
		r.Name, r.shown, r.sigShown, signatureIssuer(sig), err)
}

// openError is a failure to open the content for a signature check.
type openError struct{ err error }

func (e *openError) Error() string { return e.err.Error() }

// verifyOnce reads the content once and checks sig over it.
func (f *Fetcher) verifyOnce(r *resolved, c *content, sig []byte, allowExpired bool) (*pgp.Signature, error) {
	rc, err := f.open(c)
	if err != nil {
		return nil, &openError{err}
	}
	defer rc.Close()
	return pgp.Verify(*r.Keyring, rc, sig, pgp.VerifyOptions{Now: f.opts.Now(), AllowExpiredKey: allowExpired})
}

// signatureIssuer names the key that claims to have made sig (best effort, for errors).
func signatureIssuer(sig []byte) (who string) {
	defer func() {
		if recover() != nil {
			who = "(unknown)"
		}
	}()
	var rd io.Reader = bytes.NewReader(sig)
	if len(sig) > 0 && sig[0]&0x80 == 0 {
		blk, err := armor.Decode(bytes.NewReader(sig))
		if err != nil {
			return "(unreadable)"
		}
		rd = io.LimitReader(blk.Body, pgp.MaxSignatureSize)
	}
	p, err := packet.NewReader(rd).Next()
	if err != nil {
		return "(unreadable)"
	}
	s, ok := p.(*packet.Signature)
	if !ok {
		return "(not a signature)"
	}
	switch {
	case len(s.IssuerFingerprint) > 0:
		return pgp.FormatFingerprint(strings.ToUpper(hex.EncodeToString(s.IssuerFingerprint)))
	case s.IssuerKeyId != nil:
		return fmt.Sprintf("%016X", *s.IssuerKeyId)
	}
	return "(unnamed)"
}

// record stores the artifact manifest (spec §2.3) and sets the file's reference in index.json.
func (f *Fetcher) record(r *resolved, c *content, sig []byte, signer *verified, old *existing) (v1.Descriptor, error) {
	cfg, err := f.store.PutBytes(store.MediaTypeEmpty, store.EmptyJSON)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("file %q: store: %w", r.Name, err)
	}
	cfg.Data = store.EmptyJSON
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  store.ArtifactTypeFile,
		Config:        cfg,
		Layers: []v1.Descriptor{{
			MediaType:   store.MediaTypeOctetStream,
			Digest:      c.d,
			Size:        c.size,
			Annotations: map[string]string{store.AnnotationTitle: r.title},
		}},
	}
	if sig != nil {
		sd, err := f.store.PutBytes(store.MediaTypePGPSignature, sig)
		if err != nil {
			return v1.Descriptor{}, fmt.Errorf("file %q: store signature: %w", r.Name, err)
		}
		sd.Annotations = map[string]string{store.AnnotationTitle: r.title + ".sig"}
		m.Layers = append(m.Layers, sd)
		m.Annotations = map[string]string{store.AnnotationSigner: signer.signer}
		if !signer.expired.IsZero() {
			m.Annotations[store.AnnotationOverrideExpiredKey] = signer.signer
			m.Annotations[store.AnnotationOverrideExpiredKeyAt] = signer.expired.UTC().Format(time.RFC3339)
		}
	}
	if r.ChecksumURL != "" {
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		m.Annotations[store.AnnotationChecksumSource] = SourceURL(r.ChecksumURL)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return v1.Descriptor{}, err
	}
	md, err := f.store.PutBytes(string(types.OCIManifestSchema1), raw)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("file %q: store manifest: %w", r.Name, err)
	}
	created := f.opts.Now().UTC().Format(time.RFC3339)
	if old != nil && old.desc.Digest == md.Digest && old.desc.Annotations[store.AnnotationCreated] != "" &&
		old.desc.Annotations[store.AnnotationSource] == r.source {
		created = old.desc.Annotations[store.AnnotationCreated]
	}
	md.ArtifactType = store.ArtifactTypeFile
	md.Annotations = map[string]string{
		store.AnnotationRefName: r.ref,
		store.AnnotationKind:    store.KindFile,
		store.AnnotationName:    r.Name,
		store.AnnotationVersion: r.Version,
		store.AnnotationSource:  r.source,
		store.AnnotationCreated: created,
	}
	if err := f.store.SetRef(md); err != nil {
		return v1.Descriptor{}, fmt.Errorf("file %q: %w", r.Name, err)
	}
	return md, nil
}
