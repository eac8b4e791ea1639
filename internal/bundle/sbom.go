package bundle

import (
	"bytes"
	"crypto/sha1"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/mmgap/mmgap/internal/store"
)

// sbomNamespace is the UUID namespace of mmgap SBOM serial numbers (a fixed random UUID).
var sbomNamespace = [16]byte{0x6d, 0x6d, 0x67, 0x61, 0x70, 0x2d, 0x4b, 0x0e, 0x9a, 0x51, 0x3c, 0x1e, 0x5b, 0x2f, 0x80, 0x01}

// uuidV5 is the RFC 9562 name-based (SHA-1) UUID of name in namespace ns. SHA-1 here only makes
// a stable identifier; it protects nothing.
func uuidV5(ns [16]byte, name string) string {
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	s := h.Sum(nil)
	s[6] = s[6]&0x0f | 0x50
	s[8] = s[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", s[0:4], s[4:6], s[6:8], s[8:10], s[10:16])
}

// buildSBOM renders the CycloneDX 1.6 document for inv (spec §4). contents[i] is the digest of
// artifact i's content (layers[0]) for files and charts, or nil. seed, the digest of the
// inventory without the SBOM's entry, fixes the serial number so the bundle stays reproducible.
func buildSBOM(inv *Inventory, contents []*v1.Hash, seed v1.Hash) ([]byte, error) {
	bom := cdx.NewBOM()
	bom.SerialNumber = "urn:uuid:" + uuidV5(sbomNamespace, seed.String())
	tool := cdx.Component{Type: cdx.ComponentTypeApplication, Name: inv.Tool.Name, Version: inv.Tool.Version}
	bom.Metadata = &cdx.Metadata{
		Timestamp: inv.Created.UTC().Format(time.RFC3339),
		Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{tool}},
	}
	if inv.Manifest.Name != "" {
		mc := cdx.Component{Type: cdx.ComponentTypeApplication, Name: inv.Manifest.Name, BOMRef: "mmgap-manifest"}
		if inv.Manifest.Digest != "" {
			if h, err := parseDigest(inv.Manifest.Digest); err == nil {
				mc.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: h.Hex}}
			}
		}
		bom.Metadata.Component = &mc
	}
	comps := make([]cdx.Component, 0, len(inv.Artifacts))
	for i, a := range inv.Artifacts {
		var content *v1.Hash
		if i < len(contents) {
			content = contents[i]
		}
		comps = append(comps, component(a, content))
	}
	bom.Components = &comps

	var buf bytes.Buffer
	enc := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	enc.SetEscapeHTML(false)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_6); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func component(a Artifact, content *v1.Hash) cdx.Component {
	c := cdx.Component{BOMRef: a.Ref, Name: a.Name, Version: a.Version}
	if c.Name == "" {
		c.Name = a.Ref
	}
	hash := a.Digest
	props := []cdx.Property{
		{Name: "mmgap:kind", Value: a.Kind},
		{Name: "mmgap:ref", Value: a.Ref},
		{Name: "mmgap:digest", Value: a.Digest.String()},
	}
	if a.Source != "" {
		props = append(props, cdx.Property{Name: "mmgap:source", Value: a.Source})
	}
	switch a.Kind {
	case store.KindImage:
		c.Type = cdx.ComponentTypeContainer
		repo, tag := splitRef(a.Ref)
		if c.Version == "" {
			c.Version = tag
		}
		c.PackageURL = ociPURL(repo, a.Digest, tag)
		if a.UpstreamDigest != nil {
			props = append(props, cdx.Property{Name: "mmgap:upstreamDigest", Value: a.UpstreamDigest.String()})
		}
		if len(a.Platforms) > 0 {
			props = append(props, cdx.Property{Name: "mmgap:platforms", Value: strings.Join(a.Platforms, ",")})
		}
	case store.KindChart:
		c.Type = cdx.ComponentTypeApplication
		repo, tag := splitRef(a.Ref)
		if s, ok := strings.CutPrefix(a.Source, "oci://"); ok {
			repo, _ = splitRef(s)
		}
		if c.Version == "" {
			c.Version = tag
		}
		c.PackageURL = ociPURL(repo, a.Digest, c.Version)
		if content != nil {
			hash = *content
		}
	case store.KindFile:
		c.Type = cdx.ComponentTypeFile
		if content != nil {
			hash = *content
		}
		c.PackageURL = genericPURL(c.Name, c.Version, hash, a.Source)
	default:
		c.Type = cdx.ComponentTypeData
		c.PackageURL = genericPURL(c.Name, c.Version, hash, a.Source)
	}
	c.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: hash.Hex}}
	c.Properties = &props
	return c
}

// splitRef splits "registry/repo:tag" or "registry/repo@sha256:..." into the repository and tag.
func splitRef(ref string) (repo, tag string) {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	slash := strings.LastIndex(ref, "/")
	if i := strings.LastIndex(ref, ":"); i > slash {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

// ociPURL is pkg:oci/<name>@<digest>?repository_url=<repo>&tag=<tag> (purl-spec oci type).
func ociPURL(repo string, d v1.Hash, tag string) string {
	name := repo
	if i := strings.LastIndex(repo, "/"); i >= 0 {
		name = repo[i+1:]
	}
	q := map[string]string{"repository_url": repo}
	if tag != "" {
		q["tag"] = tag
	}
	return "pkg:oci/" + purlEscape(strings.ToLower(name), false) + "@" + purlEscape(d.String(), false) + qualifiers(q)
}

// genericPURL is pkg:generic/<name>@<version>?checksum=sha256:<hex>&download_url=<url>.
func genericPURL(name, version string, d v1.Hash, source string) string {
	p := "pkg:generic/" + purlEscape(name, false)
	if version != "" {
		p += "@" + purlEscape(version, false)
	}
	q := map[string]string{"checksum": d.String()}
	if u, err := url.Parse(source); err == nil && (u.Scheme == "https" || u.Scheme == "http") {
		q["download_url"] = source
	}
	return p + qualifiers(q)
}

func qualifiers(q map[string]string) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(purlEscape(q[k], true))
	}
	return b.String()
}

// purlEscape percent-encodes everything but unreserved characters; qualifier values also keep
// ':' and '/' as purl-spec examples do.
func purlEscape(s string, value bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		case value && (c == ':' || c == '/'):
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
