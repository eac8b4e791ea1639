package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/mmgap/mmgap/internal/store"
)

// FormatVersion is the bundle format this package writes (docs/spec/bundle-v1.md).
const FormatVersion = 1

// MaxInventorySize bounds bundle.json (spec §3).
const MaxInventorySize = 64 << 20

// maxJSONSize is the largest JSON document (SBOM, index.json) read back whole.
const maxJSONSize = 64 << 20

// MaxSize is the largest size the inventory may declare: 2^53-1 (spec §3).
const MaxSize = 1<<53 - 1

// Entry names of a bundle (spec §1).
const (
	NameInventory = "bundle.json"
	NameSignature = "bundle.json.asc"
	NameSBOM      = "sbom.cdx.json"
	NameLayout    = "store/oci-layout"
	NameIndex     = "store/index.json"
	blobPrefix    = "store/blobs/sha256/"
)

// Inventory is bundle.json (spec §3). Field order is the JSON order.
type Inventory struct {
	FormatVersion int          `json:"formatVersion"`
	Created       time.Time    `json:"created"`
	Tool          Tool         `json:"tool"`
	Manifest      ManifestInfo `json:"manifest"`
	Artifacts     []Artifact   `json:"artifacts"`
	Files         []File       `json:"files"`
	Blobs         []Blob       `json:"blobs"`
	// Overrides records the checks the user explicitly relaxed while gathering (spec §3);
	// absent when none was.
	Overrides []Override `json:"overrides,omitempty"`
}

// Override kinds.
const (
	// OverrideExpiredKey: a file's signature was made by a key that has since expired, and the
	// user accepted that key by fingerprint (gather --allow-expired-key).
	OverrideExpiredKey = "expired-key"
)

// Override is one relaxed check (spec §3).
type Override struct {
	Kind string `json:"kind"`
	// Artifact is the ref of the artifact the override concerns.
	Artifact string `json:"artifact"`
	// Fingerprint is the expired key's primary-key fingerprint (expired-key).
	Fingerprint string `json:"fingerprint,omitempty"`
	// Expired is when the key expired (expired-key).
	Expired time.Time `json:"expired,omitzero"`
}

// Tool names the program that wrote the bundle.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// ManifestInfo names the mmgap.yaml the bundle was gathered from.
type ManifestInfo struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

// Artifact is one descriptor of store/index.json with its mmgap annotations.
type Artifact struct {
	Kind           string   `json:"kind"`
	Name           string   `json:"name"`
	Version        string   `json:"version"`
	Ref            string   `json:"ref"`
	Source         string   `json:"source"`
	MediaType      string   `json:"mediaType"`
	Digest         v1.Hash  `json:"digest"`
	UpstreamDigest *v1.Hash `json:"upstreamDigest,omitempty"`
	Size           int64    `json:"size"`
	Platforms      []string `json:"platforms,omitempty"`
	TotalSize      int64    `json:"totalSize"`
}

// File is a non-blob tar entry covered by the inventory.
type File struct {
	Path   string  `json:"path"`
	Digest v1.Hash `json:"digest"`
	Size   int64   `json:"size"`
}

// Blob is one blob of the store.
type Blob struct {
	Digest v1.Hash `json:"digest"`
	Size   int64   `json:"size"`
	// UsedBy lists the ref names of the artifacts that reach the blob, so a reader can name
	// the artifact a damaged blob belongs to before it has seen the manifests.
	UsedBy []string `json:"usedBy,omitempty"`
}

// TotalSize is the number of content bytes the inventory covers (files and blobs).
func (inv *Inventory) TotalSize() int64 {
	var n int64
	for _, f := range inv.Files {
		n += f.Size
	}
	for _, b := range inv.Blobs {
		n += b.Size
	}
	return n
}

// Encode renders the inventory as bundle.json: two-space indentation, fields in declaration
// order, a trailing newline. The same inventory always gives the same bytes.
func (inv *Inventory) Encode() ([]byte, error) {
	c := *inv
	c.Created = c.Created.UTC()
	if c.Artifacts == nil {
		c.Artifacts = []Artifact{}
	}
	if c.Files == nil {
		c.Files = []File{}
	}
	if c.Blobs == nil {
		c.Blobs = []Blob{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("encode bundle.json: %w", err)
	}
	return buf.Bytes(), nil
}

// InventoryOptions configures BuildInventory.
type InventoryOptions struct {
	// Created is the bundle's creation time, truncated to seconds; zero means now.
	Created time.Time
	// ToolVersion is mmgap's version.
	ToolVersion string
	// ManifestName and ManifestDigest identify the mmgap.yaml gathered ("" when unknown).
	ManifestName   string
	ManifestDigest string
}

// snapshot is what a bundle is made of, read once from the store so the inventory, the SBOM and
// the tar stream agree even if the store changes meanwhile.
type snapshot struct {
	inv     *Inventory
	invJSON []byte
	sbom    []byte
	layout  []byte
	index   []byte
	blobs   []v1.Descriptor
}

// BuildInventory describes the store s as bundle.json (spec §3) and returns it with the SBOM
// (sbom.cdx.json, spec §4) it covers. It reads index.json, the oci-layout marker and every
// manifest, but no layer.
func BuildInventory(s *store.Store, opts InventoryOptions) (*Inventory, []byte, error) {
	snap, err := buildSnapshot(s, opts)
	if err != nil {
		return nil, nil, err
	}
	return snap.inv, snap.sbom, nil
}

func buildSnapshot(s *store.Store, opts InventoryOptions) (*snapshot, error) {
	created := opts.Created
	if created.IsZero() {
		created = time.Now()
	}
	created = created.UTC().Truncate(time.Second)
	if opts.ManifestDigest != "" {
		if _, err := parseDigest(opts.ManifestDigest); err != nil {
			return nil, fmt.Errorf("build inventory: manifest digest: %w", err)
		}
	}
	layout, err := readSmall(filepath.Join(s.Dir(), "oci-layout"), 1<<20)
	if err != nil {
		return nil, fmt.Errorf("build inventory: %w", err)
	}
	index, err := readSmall(filepath.Join(s.Dir(), "index.json"), maxJSONSize)
	if err != nil {
		return nil, fmt.Errorf("build inventory: %w", err)
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(index, &im); err != nil {
		return nil, fmt.Errorf("build inventory: store index.json: %w", err)
	}

	inv := &Inventory{
		FormatVersion: FormatVersion,
		Created:       created,
		Tool:          Tool{Name: "mmgap", Version: opts.ToolVersion},
		Manifest:      ManifestInfo{Name: opts.ManifestName, Digest: opts.ManifestDigest},
		Artifacts:     []Artifact{},
	}
	all := map[v1.Hash]v1.Descriptor{}
	contents := make([]*v1.Hash, len(im.Manifests)) // file and chart content digests, for the SBOM
	refs := map[string]bool{}
	usedBy := map[v1.Hash][]string{}
	for i, d := range im.Manifests {
		ref := d.Annotations[store.AnnotationRefName]
		if ref == "" {
			return nil, fmt.Errorf("build inventory: index.json descriptor %s has no %s annotation", d.Digest, store.AnnotationRefName)
		}
		if refs[ref] {
			return nil, fmt.Errorf("build inventory: index.json lists %s twice", ref)
		}
		refs[ref] = true
		if err := store.CheckDigest(d.Digest); err != nil {
			return nil, fmt.Errorf("build inventory: %s: %w", ref, err)
		}
		reach, err := s.Reachable(d)
		if err != nil {
			return nil, fmt.Errorf("build inventory: %s: %w", ref, err)
		}
		var total int64
		for _, r := range reach {
			total += r.Size
			all[r.Digest] = r
			usedBy[r.Digest] = append(usedBy[r.Digest], ref)
		}
		a := Artifact{
			Kind:      d.Annotations[store.AnnotationKind],
			Name:      d.Annotations[store.AnnotationName],
			Version:   d.Annotations[store.AnnotationVersion],
			Ref:       ref,
			Source:    d.Annotations[store.AnnotationSource],
			MediaType: string(d.MediaType),
			Digest:    d.Digest,
			Size:      d.Size,
			TotalSize: total,
		}
		if a.Kind == store.KindImage {
			if u := d.Annotations[store.AnnotationUpstreamDigest]; u != "" {
				h, err := parseDigest(u)
				if err != nil {
					return nil, fmt.Errorf("build inventory: %s: %s: %w", ref, store.AnnotationUpstreamDigest, err)
				}
				a.UpstreamDigest = &h
			}
			for _, p := range strings.Split(d.Annotations[store.AnnotationPlatforms], ",") {
				if p = strings.TrimSpace(p); p != "" {
					a.Platforms = append(a.Platforms, p)
				}
			}
		}
		if a.Kind == store.KindFile || a.Kind == store.KindChart {
			contents[i] = firstLayer(s, d)
		}
		if a.Kind == store.KindFile {
			o, err := overridesOf(s, d, ref)
			if err != nil {
				return nil, fmt.Errorf("build inventory: %s: %w", ref, err)
			}
			inv.Overrides = append(inv.Overrides, o...)
		}
		inv.Artifacts = append(inv.Artifacts, a)
	}
	blobs := make([]v1.Descriptor, 0, len(all))
	for _, d := range all {
		blobs = append(blobs, d)
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].Digest.Hex < blobs[j].Digest.Hex })
	inv.Blobs = make([]Blob, len(blobs))
	for i, d := range blobs {
		inv.Blobs[i] = Blob{Digest: d.Digest, Size: d.Size, UsedBy: usedBy[d.Digest]}
	}

	fileLayout := File{Path: NameLayout, Digest: store.Digest(layout), Size: int64(len(layout))}
	fileIndex := File{Path: NameIndex, Digest: store.Digest(index), Size: int64(len(index))}
	// The SBOM's serial number derives from the inventory without the SBOM's own entry.
	inv.Files = []File{fileLayout, fileIndex}
	pre, err := inv.Encode()
	if err != nil {
		return nil, err
	}
	sbom, err := buildSBOM(inv, contents, store.Digest(pre))
	if err != nil {
		return nil, fmt.Errorf("build inventory: sbom: %w", err)
	}
	inv.Files = []File{{Path: NameSBOM, Digest: store.Digest(sbom), Size: int64(len(sbom))}, fileLayout, fileIndex}
	invJSON, err := inv.Encode()
	if err != nil {
		return nil, err
	}
	if len(invJSON) > MaxInventorySize {
		return nil, fmt.Errorf("build inventory: bundle.json would be %d bytes, more than the %d the format allows", len(invJSON), MaxInventorySize)
	}
	return &snapshot{inv: inv, invJSON: invJSON, sbom: sbom, layout: layout, index: index, blobs: blobs}, nil
}

// overridesOf reads the override annotations of the file artifact manifest d.
func overridesOf(s *store.Store, d v1.Descriptor, ref string) ([]Override, error) {
	if !store.IsManifest(d.MediaType) {
		return nil, nil
	}
	raw, err := s.ReadBlob(d.Digest, store.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	var m struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	fp, ok := m.Annotations[store.AnnotationOverrideExpiredKey]
	if !ok {
		return nil, nil
	}
	at, err := time.Parse(time.RFC3339, m.Annotations[store.AnnotationOverrideExpiredKeyAt])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", store.AnnotationOverrideExpiredKeyAt, err)
	}
	o := Override{Kind: OverrideExpiredKey, Artifact: ref, Fingerprint: fp, Expired: at.UTC()}
	if err := o.check(); err != nil {
		return nil, err
	}
	return []Override{o}, nil
}

// check validates one override on its own.
func (o *Override) check() error {
	if o.Kind == "" {
		return errors.New("kind missing")
	}
	if o.Artifact == "" {
		return errors.New("artifact missing")
	}
	if o.Kind != OverrideExpiredKey {
		return nil // a later writer's kind: shown as is
	}
	if !isFingerprint(o.Fingerprint) {
		return fmt.Errorf("fingerprint %s: want 40 or 64 uppercase hex digits", quoteName(o.Fingerprint))
	}
	if o.Expired.IsZero() {
		return errors.New("expired: missing")
	}
	return nil
}

func isFingerprint(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'A' <= r && r <= 'F') {
			return false
		}
	}
	return true
}

// firstLayer returns the digest of layers[0] of the manifest d (the file of a file artifact, the
// archive of a chart), or nil.
func firstLayer(s *store.Store, d v1.Descriptor) *v1.Hash {
	if !store.IsManifest(d.MediaType) {
		return nil
	}
	raw, err := s.ReadBlob(d.Digest, store.MaxManifestSize)
	if err != nil {
		return nil
	}
	var m struct {
		Layers []v1.Descriptor `json:"layers"`
	}
	if json.Unmarshal(raw, &m) != nil || len(m.Layers) == 0 || store.CheckDigest(m.Layers[0].Digest) != nil {
		return nil
	}
	return &m.Layers[0].Digest
}

func readSmall(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, limit)
	}
	b := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

func parseDigest(s string) (v1.Hash, error) {
	if alg, hex, ok := strings.Cut(s, ":"); ok && alg == "sha256" && len(hex) == 64 && strings.ToLower(hex) != hex {
		return v1.Hash{}, fmt.Errorf("digest %s: not lowercase hex", clip(s, 100))
	}
	h, err := v1.NewHash(s)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("digest %q: %w", clip(s, 100), err)
	}
	if err := store.CheckDigest(h); err != nil {
		return v1.Hash{}, err
	}
	return h, nil
}

// knownFiles are the paths files may list in formatVersion 1, in tar order.
var knownFiles = []string{NameSBOM, NameLayout, NameIndex}

// ParseInventory parses and checks bundle.json. It checks formatVersion before anything else and
// returns a *VersionError for a version it does not implement; other problems are reported as
// plain errors naming the field. Unknown fields are ignored (spec §3).
func ParseInventory(data []byte) (*Inventory, error) {
	if len(data) > MaxInventorySize {
		return nil, fmt.Errorf("bundle.json: %d bytes, more than the %d allowed", len(data), MaxInventorySize)
	}
	if err := checkFormatVersion(data); err != nil {
		return nil, err
	}
	if err := checkDigestFields(data); err != nil {
		return nil, fmt.Errorf("bundle.json: %w", err)
	}
	var inv Inventory
	if err := json.Unmarshal(data, &inv); err != nil {
		return nil, fmt.Errorf("bundle.json: %w", err)
	}
	if err := inv.validate(); err != nil {
		return nil, fmt.Errorf("bundle.json: %w", err)
	}
	return &inv, nil
}

// checkFormatVersion reads only formatVersion (spec §3: readers check it first).
func checkFormatVersion(data []byte) error {
	if len(data) >= 3 && data[0] == 0xef && data[1] == 0xbb && data[2] == 0xbf {
		return errors.New("bundle.json: starts with a byte-order mark")
	}
	var head struct {
		FormatVersion json.RawMessage `json:"formatVersion"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return fmt.Errorf("bundle.json: not a JSON object: %w", err)
	}
	v := string(bytes.TrimSpace(head.FormatVersion))
	if v == "" || v == "null" {
		return &VersionError{Supported: SupportedVersions}
	}
	if v != "1" {
		return &VersionError{Found: clip(v, 40), Supported: SupportedVersions}
	}
	return nil
}

// checkDigestFields checks every digest as a string first, so that errors name the field.
func checkDigestFields(data []byte) error {
	type digested struct {
		Digest         *string `json:"digest"`
		UpstreamDigest *string `json:"upstreamDigest"`
	}
	var w struct {
		Artifacts []digested `json:"artifacts"`
		Files     []digested `json:"files"`
		Blobs     []digested `json:"blobs"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	for _, l := range []struct {
		name string
		l    []digested
	}{{"artifacts", w.Artifacts}, {"files", w.Files}, {"blobs", w.Blobs}} {
		for i, d := range l.l {
			if d.Digest == nil {
				return fmt.Errorf("%s[%d]: digest missing", l.name, i)
			}
			if _, err := parseDigest(*d.Digest); err != nil {
				return fmt.Errorf("%s[%d]: %w", l.name, i, err)
			}
			if d.UpstreamDigest != nil {
				if _, err := parseDigest(*d.UpstreamDigest); err != nil {
					return fmt.Errorf("%s[%d].upstreamDigest: %w", l.name, i, err)
				}
			}
		}
	}
	return nil
}

func checkSize(what string, n int64) error {
	if n < 0 || n > MaxSize {
		return fmt.Errorf("%s: size %d out of range (0 to 2^53-1)", what, n)
	}
	return nil
}

func (inv *Inventory) validate() error {
	if inv.FormatVersion != FormatVersion {
		return &VersionError{Found: fmt.Sprint(inv.FormatVersion), Supported: SupportedVersions}
	}
	if inv.Created.IsZero() {
		return errors.New("created: missing")
	}
	if inv.Manifest.Digest != "" {
		if _, err := parseDigest(inv.Manifest.Digest); err != nil {
			return fmt.Errorf("manifest.digest: %w", err)
		}
	}
	blobs := make(map[v1.Hash]int64, len(inv.Blobs))
	for i, b := range inv.Blobs {

		if err := store.CheckDigest(b.Digest); err != nil {
			return fmt.Errorf("blobs[%d]: %w", i, err)
		}
		if err := checkSize(fmt.Sprintf("blobs[%d]", i), b.Size); err != nil {
			return err
		}
		if _, dup := blobs[b.Digest]; dup {
			return fmt.Errorf("blobs[%d]: %s listed twice", i, b.Digest)
		}
		if i > 0 && inv.Blobs[i-1].Digest.Hex > b.Digest.Hex {
			return fmt.Errorf("blobs[%d]: %s out of order (blobs must be sorted by digest)", i, b.Digest)
		}
		blobs[b.Digest] = b.Size
	}
	seen := map[string]bool{}
	for i, f := range inv.Files {
		if !isKnownFile(f.Path) {
			return fmt.Errorf("files[%d]: path %s is not a file of formatVersion 1", i, quoteName(f.Path))
		}
		if seen[f.Path] {
			return fmt.Errorf("files[%d]: path %s listed twice", i, f.Path)
		}
		seen[f.Path] = true
		if err := store.CheckDigest(f.Digest); err != nil {
			return fmt.Errorf("files[%d] %s: %w", i, f.Path, err)
		}
		if err := checkSize(fmt.Sprintf("files[%d] %s", i, f.Path), f.Size); err != nil {
			return err
		}
	}
	for _, p := range knownFiles {
		if !seen[p] {
			return fmt.Errorf("files: %s missing", p)
		}
	}
	refs := map[string]bool{}
	for i, a := range inv.Artifacts {
		if a.Ref == "" {
			return fmt.Errorf("artifacts[%d]: ref missing", i)
		}
		if refs[a.Ref] {
			return fmt.Errorf("artifacts[%d]: ref %s listed twice", i, quoteName(a.Ref))
		}
		refs[a.Ref] = true
		if a.Kind == "" {
			return fmt.Errorf("artifacts[%d] %s: kind missing", i, quoteName(a.Ref))
		}
		if err := store.CheckDigest(a.Digest); err != nil {
			return fmt.Errorf("artifacts[%d] %s: %w", i, quoteName(a.Ref), err)
		}
		if a.UpstreamDigest != nil {
			if err := store.CheckDigest(*a.UpstreamDigest); err != nil {
				return fmt.Errorf("artifacts[%d] %s: upstreamDigest: %w", i, quoteName(a.Ref), err)
			}
		}
		if err := checkSize(fmt.Sprintf("artifacts[%d] %s", i, quoteName(a.Ref)), a.Size); err != nil {
			return err
		}
		if err := checkSize(fmt.Sprintf("artifacts[%d] %s totalSize", i, quoteName(a.Ref)), a.TotalSize); err != nil {
			return err
		}
		n, ok := blobs[a.Digest]
		if !ok {
			return fmt.Errorf("artifacts[%d] %s: digest %s is not among the blobs", i, quoteName(a.Ref), a.Digest)
		}
		if n != a.Size {
			return fmt.Errorf("artifacts[%d] %s: size %d, but blob %s has %d", i, quoteName(a.Ref), a.Size, a.Digest, n)
		}
	}
	artifactRefs := make(map[string]bool, len(inv.Artifacts))
	for _, a := range inv.Artifacts {
		artifactRefs[a.Ref] = true
	}
	for i, b := range inv.Blobs {
		for _, r := range b.UsedBy {
			if !artifactRefs[r] {
				return fmt.Errorf("blobs[%d].usedBy: %s is not an artifact of this bundle", i, quoteName(r))
			}
		}
	}
	for i := range inv.Overrides {
		o := &inv.Overrides[i]
		if err := o.check(); err != nil {
			return fmt.Errorf("overrides[%d]: %w", i, err)
		}
		if !artifactRefs[o.Artifact] {
			return fmt.Errorf("overrides[%d]: artifact %s is not an artifact of this bundle", i, quoteName(o.Artifact))
		}
	}
	return nil
}

func isKnownFile(p string) bool {
	for _, k := range knownFiles {
		if p == k {
			return true
		}
	}
	return false
}

// isManifestType reports whether blobs of media type mt point at other blobs.
func isManifestType(mt string) bool {
	return store.IsIndex(types.MediaType(mt)) || store.IsManifest(types.MediaType(mt))
}
