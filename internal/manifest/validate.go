package manifest

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Patterns shared by the validator and the JSON schema.
const (
	namePattern   = `^[a-z0-9][a-z0-9._-]*$`
	sha256Pattern = `^[0-9a-f]{64}$`
	// versionPattern is Semantic Versioning 2.0.0 with an optional "v".
	versionPattern = `^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)` +
		`(-((0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?` +
		`(\+([0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*))?$`
	maxNameLen = 128
)

var (
	nameRE    = regexp.MustCompile(namePattern)
	sha256RE  = regexp.MustCompile(sha256Pattern)
	versionRE = regexp.MustCompile(versionPattern)
	// repoComponentRE is one path element of an image repository, as the
	// distribution reference grammar has it.
	repoComponentRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$`)
)

type validator struct {
	m   *Manifest
	c   *collector
	bad map[string]bool // paths the decoder could not decode
}

// validate checks the meaning of decoded values. Missing required fields
// and type errors were reported by the decoder, so empty values are
// skipped here.
func validate(m *Manifest, c *collector, bad map[string]bool) {
	v := &validator{m: m, c: c, bad: bad}
	v.metadata()
	v.mattermost()
	v.images()
	v.files()
	v.charts()
	v.mirrors()
}

// errf reports a problem at path, unless the decoder already reported
// that path or an enclosing one as undecodable.
func (v *validator) errf(path, format string, args ...any) {
	for p := path; ; p = parentPath(p) {
		if v.bad[p] {
			return
		}
		if p == "" {
			break
		}
	}
	pos, _ := v.m.Position(path)
	v.c.add(pos, path, format, args...)
}

// problem reports msg about path when msg is not "".
func (v *validator) problem(path, msg string) {
	if msg != "" {
		v.errf(path, "%s: %s", path, msg)
	}
}

func (v *validator) metadata() {
	if n := v.m.Metadata.Name; n != "" {
		v.problem("metadata.name", checkName(n))
	}
}

// names tracks the names used in one section.
type names map[string]string // name -> path of its first use

// use records name for path, reporting a duplicate. derived says the name
// was not written but derived from another field.
func (v *validator) use(ns names, name, path string, derived bool) {
	if name == "" {
		return
	}
	first, ok := ns[name]
	if !ok {
		ns[name] = path
		return
	}
	line := ""
	if pos, ok := v.m.Position(first); ok && pos.Line > 0 {
		line = fmt.Sprintf(" (line %d)", pos.Line)
	}
	how := ""
	at := path + ".name"
	if derived {
		how = " (derived)"
		at = path
	}
	v.errf(at, "%s: name %q%s is already used by %s%s; give one of them a distinct name", path, name, how, first, line)
}

func (v *validator) images() {
	ns := names{}
	for i, img := range v.m.Images {
		if v.c.full() {
			return
		}
		p := fmt.Sprintf("images[%d]", i)
		if img.Name != "" {
			v.problem(p+".name", checkName(img.Name))
		}
		refOK := false
		if img.Ref != "" {
			msg := checkImageRef(img.Ref)
			v.problem(p+".ref", msg)
			refOK = msg == ""
		}
		seen := map[string]int{}
		for j, s := range img.Platforms {
			pp := fmt.Sprintf("%s.platforms[%d]", p, j)
			if s == "" {
				v.errf(pp, "%s: empty platform; write os/arch, e.g. linux/amd64", pp)
				continue
			}
			if _, err := ParsePlatform(s); err != nil {
				v.errf(pp, "%s: %v", pp, err)
				continue
			}
			if k, dup := seen[s]; dup {
				v.errf(pp, "%s: platform %q is already listed at %s.platforms[%d]", pp, s, p, k)
				continue
			}
			seen[s] = j
		}
		if img.Name != "" || refOK {
			v.use(ns, img.DisplayName(), p, img.Name == "")
		}
	}
}

func (v *validator) files() {
	ns := names{}
	for i, f := range v.m.Files {
		if v.c.full() {
			return
		}
		p := fmt.Sprintf("files[%d]", i)
		if f.Name != "" {
			v.problem(p+".name", checkName(f.Name))
		}
		urlOK := false
		if f.URL != "" {
			msg := checkHTTPURL(f.URL)
			v.problem(p+".url", msg)
			urlOK = msg == ""
		}
		if f.SHA256 != "" {
			v.problem(p+".sha256", checkSHA256(f.SHA256))
		}
		if s := f.Signature; s != nil {
			if s.URL != "" {
				v.problem(p+".signature.url", checkHTTPURL(s.URL))
			}
			if s.Key != "" {
				v.problem(p+".signature.key", checkKeyPath(s.Key))
			}
		}
		if c := f.Checksum; c != nil && c.URL != "" {
			v.problem(p+".checksum.url", checkHTTPURL(c.URL))
		}
		if f.SHA256 == "" && f.Signature == nil && f.Checksum == nil {
			v.errf(p, "%s: give sha256, signature or checksum (or several), so that the download can be verified", p)
		}
		switch {
		case f.Name != "":
			v.use(ns, f.Name, p, false)
		case urlOK && f.DisplayName() == "":
			v.errf(p+".url", "%s: cannot derive a name from url (its path has no last element); set name", p)
		case urlOK:
			v.use(ns, f.DisplayName(), p, true)
		}
	}
}

func (v *validator) charts() {
	ns := names{}
	for i, c := range v.m.Charts {
		if v.c.full() {
			return
		}
		p := fmt.Sprintf("charts[%d]", i)
		if c.Name != "" {
			v.problem(p+".name", checkName(c.Name))
		}
		hasRepo, hasOCI := c.Repo != "", c.OCI != ""
		switch {
		case hasRepo && hasOCI:
			v.errf(p+".oci", "%s: give either repo (an HTTP chart repository) or oci (an OCI registry), not both", p)
		case !hasRepo && !hasOCI:
			v.errf(p, "%s: missing chart source; give repo and chart for an HTTP chart repository, or oci for an OCI registry", p)
		}
		srcOK := false
		if hasRepo {
			msg := ""
			if strings.HasPrefix(c.Repo, "oci://") {
				msg = "an oci:// reference goes in oci, not repo"
			} else {
				msg = checkHTTPURL(c.Repo)
			}
			v.problem(p+".repo", msg)
			if c.Chart == "" {
				v.errf(p, "%s: chart is required with repo; give the chart's name in that repository", p)
			}
			srcOK = msg == "" && c.Chart != ""
		}
		if c.Chart != "" {
			if hasOCI && !hasRepo {
				v.errf(p+".chart", "%s.chart: chart is only used with repo; with oci the reference names the chart", p)
			} else {
				v.problem(p+".chart", checkName(c.Chart))
			}
		}
		if hasOCI {
			msg := checkOCIChart(c.OCI)
			v.problem(p+".oci", msg)
			srcOK = srcOK || (msg == "" && !hasRepo)
		}
		if c.Version != "" {
			v.problem(p+".version", checkVersion(c.Version))
		}
		if c.Name != "" || srcOK {
			v.use(ns, c.DisplayName(), p, c.Name == "")
		}
	}
}

func (v *validator) mirrors() {
	keys := make([]string, 0, len(v.m.Mirrors))
	for k := range v.m.Mirrors {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if v.c.full() {
			return
		}
		p := fmt.Sprintf("mirrors[%s]", strconv.Quote(k))
		if err := checkHost(k); err != nil {
			v.errf(p, "%s: key: %v (keys are upstream hosts, e.g. docker.io)", p, err)
			continue
		}
		val := v.m.Mirrors[k]
		if val == "" {
			v.errf(p, "%s: empty mirror; give host[:port] or a base URL", p)
			continue
		}
		if _, err := ParseMirror(val); err != nil {
			v.errf(p, "%s: %v", p, err)
		}
	}
}

func checkName(s string) string {
	switch {
	case len(s) > maxNameLen:
		return fmt.Sprintf("name is longer than %d characters", maxNameLen)
	case nameRE.MatchString(s):
		return ""
	case nameRE.MatchString(strings.ToLower(s)):
		return fmt.Sprintf("%q must be lowercase; write %q", s, strings.ToLower(s))
	}
	return fmt.Sprintf("%q may hold only lowercase letters, digits, '.', '_' and '-', and must start with a letter or digit", shorten(s))
}

func checkSHA256(s string) string {
	switch {
	case sha256RE.MatchString(s):
		return ""
	case strings.HasPrefix(strings.ToLower(s), "sha256:"):
		return "drop the \"sha256:\" prefix; give only the 64 hex digits"
	case sha256RE.MatchString(strings.ToLower(s)):
		return "must be lowercase hex; write " + strings.ToLower(s)
	}
	return fmt.Sprintf("must be 64 lowercase hex digits, got %d characters", len(s))
}

func checkKeyPath(s string) string {
	switch {
	case strings.Contains(s, "://"):
		return "key is a local file (an OpenPGP public key) relative to the manifest, not a URL; download it and keep it next to the manifest"
	case strings.ContainsRune(s, 0):
		return "key path must not contain NUL bytes"
	}
	return ""
}

// checkHTTPURL checks an http(s) download URL.
func checkHTTPURL(s string) string {
	if s != strings.TrimSpace(s) {
		return "url has leading or trailing spaces"
	}
	u, err := url.Parse(s)
	if err != nil {
		return "not a valid URL: " + urlErrorCause(err).Error()
	}
	switch {
	case u.Scheme == "":
		return "url has no scheme; write https://" + shorten(s)
	case u.Scheme == "oci":
		return "scheme \"oci\" is not supported here; charts from OCI registries go under charts: with oci:"
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("scheme %q is not supported; use https:// or http://", u.Scheme)
	case u.Opaque != "":
		return fmt.Sprintf("not a valid URL; write %s://host/path", u.Scheme)
	case u.User != nil:
		return "url must not contain credentials (user:password@); configure them outside the manifest"
	case u.Host == "":
		return "url has no host"
	}
	if err := checkHost(strings.ToLower(u.Host)); err != nil {
		return "url " + err.Error()
	}
	return ""
}

// checkImageRef checks an image reference: it must name a tag, a sha256
// digest, or both, and parse as a go-containerregistry reference.
func checkImageRef(ref string) string {
	if ref != strings.TrimSpace(ref) {
		return "image reference has leading or trailing spaces"
	}
	if strings.Contains(ref, "://") {
		return fmt.Sprintf("image reference %q must not contain a scheme; write registry/repository:tag", shorten(ref))
	}
	base, dig, hasDig := strings.Cut(ref, "@")
	if hasDig {
		hex, ok := strings.CutPrefix(dig, "sha256:")
		if !ok || !sha256RE.MatchString(hex) {
			return fmt.Sprintf("digest %q is not sha256:<64 lowercase hex digits>", shorten(dig))
		}
	}
	lastSlash := strings.LastIndexByte(base, '/')
	repo, tag, hasTag := strings.Cut(base[lastSlash+1:], ":")
	repo = base[:lastSlash+1] + repo
	if !hasTag && !hasDig {
		return fmt.Sprintf("image reference %q names neither a tag nor a digest; add one, e.g. %s:<tag> (mmgap never assumes :latest)", shorten(ref), shorten(ref))
	}
	if hasTag && tag == "" {
		return fmt.Sprintf("image reference %q has an empty tag after ':'", shorten(ref))
	}
	// Check the repository path the way registries do, with a clearer
	// message than the generic parser gives.
	parts := strings.Split(repo, "/")
	if len(parts) > 1 && (parts[0] == "localhost" || strings.ContainsAny(parts[0], ".:")) {
		if err := checkHost(parts[0]); err != nil {
			return "registry " + err.Error()
		}
		parts = parts[1:]
	}
	for _, p := range parts {
		if repoComponentRE.MatchString(p) {
			continue
		}
		if p == "" {
			return fmt.Sprintf("repository %q has an empty path element", shorten(repo))
		}
		if repoComponentRE.MatchString(strings.ToLower(p)) {
			return fmt.Sprintf("repository %q must be lowercase", shorten(repo))
		}
		return fmt.Sprintf("repository path element %q is not valid; use lowercase letters and digits separated by '.', '_', '__' or '-'", shorten(p))
	}
	var err error
	if hasDig {
		_, err = name.NewDigest(ref)
	} else {
		_, err = name.NewTag(ref)
	}
	if err == nil {
		_, err = name.ParseReference(ref)
	}
	if err != nil {
		return fmt.Sprintf("invalid image reference %q: %v", shorten(ref), err)
	}
	return ""
}

// checkOCIChart checks oci://registry/path/chart without tag or digest.
func checkOCIChart(s string) string {
	rest, ok := strings.CutPrefix(s, "oci://")
	if !ok {
		return fmt.Sprintf("%q must start with oci://, e.g. oci://registry.example.com/charts/name", shorten(s))
	}
	if strings.Contains(rest, "@") {
		return "pin the chart with version, not a digest in the oci reference"
	}
	if c := strings.LastIndexByte(rest, ':'); c > strings.LastIndexByte(rest, '/') {
		return "put the chart version in version, not as a tag in the oci reference"
	}
	host, path, ok := strings.Cut(rest, "/")
	if !ok || path == "" {
		return "oci reference must name a registry host and a repository, e.g. oci://registry.example.com/charts/name"
	}
	if err := checkHost(host); err != nil {
		return "oci registry " + err.Error()
	}
	for _, p := range strings.Split(path, "/") {
		if !repoComponentRE.MatchString(p) {
			return fmt.Sprintf("oci repository path element %q is not valid; use lowercase letters and digits separated by '.', '_', '__' or '-'", shorten(p))
		}
	}
	if _, err := name.NewRepository(rest); err != nil {
		return fmt.Sprintf("invalid oci reference: %v", err)
	}
	return ""
}

func checkVersion(s string) string {
	if versionRE.MatchString(s) {
		return ""
	}
	if strings.ContainsAny(s, "^~<>=*|, ") || versionHasWildcard(s) {
		return fmt.Sprintf("%q is a version range; give one exact version, e.g. 2.6.0", shorten(s))
	}
	return fmt.Sprintf("%q is not a semantic version such as 2.6.0", shorten(s))
}

func versionHasWildcard(s string) bool {
	for _, p := range strings.Split(strings.TrimPrefix(s, "v"), ".") {
		if p == "x" || p == "X" {
			return true
		}
	}
	return false
}
