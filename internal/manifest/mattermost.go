package manifest

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Methods, editions and the other closed sets of the mattermost section.
var (
	MattermostMethods       = []string{"tarball", "docker", "kubernetes"}
	MattermostEditions      = []string{"enterprise", "team"}
	MattermostArchitectures = []string{"amd64", "arm64"}
	FileStorageKinds        = []string{"local", "minio"}
	SearchEngines           = []string{"none", "elasticsearch", "opensearch"}
	ReadinessCheckModes     = []string{"external", "builtin"}
)

// Mattermost describes a Mattermost deployment. The catalog
// (internal/catalog) expands it into the images, files, charts and
// packages it needs.
type Mattermost struct {
	// Version is the exact Mattermost server version, X.Y.Z without a leading v, e.g. 11.1.0.
	Version string `yaml:"version" json:"version" jsonschema:"required"`
	// Edition is enterprise (the default) or team.
	Edition string `yaml:"edition,omitempty" json:"edition,omitempty"`
	// Method is how Mattermost will be deployed on the isolated side: tarball, docker or kubernetes.
	Method string `yaml:"method" json:"method" jsonschema:"required"`
	// Architectures are the CPU architectures to gather for: amd64 (the default) and/or arm64.
	Architectures []string `yaml:"architectures,omitempty" json:"architectures,omitempty"`
	// Components are the services that run next to Mattermost.
	Components Components `yaml:"components,omitempty" json:"components,omitempty"`
	// Plugins are extra plugin bundles to gather, by id and exact version.
	Plugins []Plugin `yaml:"plugins,omitempty" json:"plugins,omitempty"`
	// PrepackagedPlugins gathers the plugin bundles Mattermost prepackages (the linux-arm64 tarball ships without them).
	PrepackagedPlugins bool `yaml:"prepackagedPlugins,omitempty" json:"prepackagedPlugins,omitempty"`
	// ReadinessCheck is the Mattermost Operator's database readiness check (kubernetes only): external (the operator's default, pulls postgres:13) or builtin (mattermost db ping, no extra image).
	ReadinessCheck string `yaml:"readinessCheck,omitempty" json:"readinessCheck,omitempty"`
	// ReleaseKey is an OpenPGP public key file, relative to the manifest, that replaces mmgap's built-in copy of Mattermost's release key (fingerprint A1B31D46F0F3A10B02CF2D44F8F2C31744774B28).
	ReleaseKey string `yaml:"releaseKey,omitempty" json:"releaseKey,omitempty"`
	// PluginKey is a file holding Mattermost's plugin signing public key (fingerprint C55881B80F69E863B85AD5D1D1B54B47A5CEFEC4), relative to the manifest; default: the copy built into mmgap.
	PluginKey string `yaml:"pluginKey,omitempty" json:"pluginKey,omitempty"`
	// Images pins catalog images by their catalog name, e.g. postgres: registry.example.com/postgres:17-alpine.
	Images map[string]string `yaml:"images,omitempty" json:"images,omitempty"`
	// Charts pins catalog Helm chart versions by chart name, e.g. mattermost-operator: 1.0.5.
	Charts map[string]string `yaml:"charts,omitempty" json:"charts,omitempty"`
	// Tools pins the versions of the client binaries the catalog gathers (kubernetes only) by tool name, without a leading v, e.g. kubectl: 1.34.2, helm: 3.19.2.
	Tools map[string]string `yaml:"tools,omitempty" json:"tools,omitempty"`

	// ReleaseKeyPath and PluginKeyPath are ReleaseKey and PluginKey
	// resolved against the manifest's directory; empty when not set. Not
	// part of the file format.
	ReleaseKeyPath string `yaml:"-" json:"-"`
	PluginKeyPath  string `yaml:"-" json:"-"`
}

// Components are the services that run next to Mattermost.
type Components struct {
	// Postgres is the PostgreSQL database; enabled by default.
	Postgres *Postgres `yaml:"postgres,omitempty" json:"postgres,omitempty"`
	// FileStorage is local (the default) or minio (an S3-compatible object store).
	FileStorage string `yaml:"fileStorage,omitempty" json:"fileStorage,omitempty"`
	// Nginx adds nginx as the TLS-terminating reverse proxy.
	Nginx bool `yaml:"nginx,omitempty" json:"nginx,omitempty"`
	// Monitoring adds Prometheus, node-exporter and Grafana.
	Monitoring bool `yaml:"monitoring,omitempty" json:"monitoring,omitempty"`
	// Search is the search engine: none (the default, database search), elasticsearch or opensearch.
	Search string `yaml:"search,omitempty" json:"search,omitempty"`
	// SMTP adds an SMTP relay for email notifications.
	SMTP bool `yaml:"smtp,omitempty" json:"smtp,omitempty"`
	// LDAP adds an OpenLDAP directory server.
	LDAP bool `yaml:"ldap,omitempty" json:"ldap,omitempty"`
	// Calls adds the Calls services.
	Calls *Calls `yaml:"calls,omitempty" json:"calls,omitempty"`
}

// Postgres is the PostgreSQL database component.
type Postgres struct {
	// Version is the PostgreSQL major version, e.g. 17; the default depends on the Mattermost version.
	Version int `yaml:"version,omitempty" json:"version,omitempty"`
	// Enabled gathers PostgreSQL; default true. Set false when an existing database server is used.
	Enabled *bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
}

// Calls are the Calls plugin's optional services.
type Calls struct {
	// RTCD adds the rtcd service (mattermost/rtcd) that offloads media from the Mattermost server.
	RTCD bool `yaml:"rtcd,omitempty" json:"rtcd,omitempty"`
	// Offloader adds calls-offloader (mattermost/calls-offloader) for recordings and transcriptions.
	Offloader bool `yaml:"offloader,omitempty" json:"offloader,omitempty"`
}

// Plugin is a plugin bundle from Mattermost's plugin release site.
type Plugin struct {
	// ID is the plugin id, e.g. com.mattermost.calls.
	ID string `yaml:"id" json:"id" jsonschema:"required"`
	// Version is the exact plugin version, X.Y.Z without a leading v.
	Version string `yaml:"version" json:"version" jsonschema:"required"`
	// Package is the bundle's release name, e.g. mattermost-plugin-calls; known ids default to theirs, others to the id.
	Package string `yaml:"package,omitempty" json:"package,omitempty"`
}

// Patterns shared by the validator and the schema.
const (
	exactVersionPattern = `^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`
	pluginIDPattern     = `^[a-zA-Z0-9][a-zA-Z0-9._-]*$`
	// MinPostgresV11 is the oldest PostgreSQL major Mattermost v11 supports.
	MinPostgresV11 = 14
	// DefaultPostgres is the PostgreSQL major gathered when none is given.
	DefaultPostgres = 17
)

var (
	exactVersionRE = regexp.MustCompile(exactVersionPattern)
	pluginIDRE     = regexp.MustCompile(pluginIDPattern)
)

// Major is the major version of Version, or 0 when it does not parse.
func (mm *Mattermost) Major() int {
	maj, _, _ := strings.Cut(mm.Version, ".")
	n, err := strconv.Atoi(maj)
	if err != nil {
		return 0
	}
	return n
}

// MinPostgres is the oldest PostgreSQL major that Mattermost major mmMajor
// supports, as far as mmgap knows (0: no known minimum).
func MinPostgres(mmMajor int) int {
	if mmMajor >= 11 {
		return MinPostgresV11
	}
	return 0
}

// WithDefaults returns a copy with every default filled in: edition
// enterprise, architectures [amd64], postgres enabled at DefaultPostgres,
// file storage local, search none, and for kubernetes readinessCheck
// external. Slices and maps are shared with mm.
func (mm Mattermost) WithDefaults() Mattermost {
	if mm.Edition == "" {
		mm.Edition = "enterprise"
	}
	if len(mm.Architectures) == 0 {
		mm.Architectures = []string{"amd64"}
	}
	pg := Postgres{}
	if mm.Components.Postgres != nil {
		pg = *mm.Components.Postgres
	}
	if pg.Version == 0 {
		pg.Version = DefaultPostgres
	}
	if pg.Enabled == nil {
		t := true
		pg.Enabled = &t
	}
	mm.Components.Postgres = &pg
	if mm.Components.Calls != nil {
		c := *mm.Components.Calls
		mm.Components.Calls = &c
	} else {
		mm.Components.Calls = &Calls{}
	}
	if mm.Components.FileStorage == "" {
		mm.Components.FileStorage = "local"
	}
	if mm.Components.Search == "" {
		mm.Components.Search = "none"
	}
	if mm.Method == "kubernetes" && mm.ReadinessCheck == "" {
		mm.ReadinessCheck = "external"
	}
	return mm
}

// oneOf reports what is wrong when s is not one of the allowed values.
func oneOf(s string, allowed []string) string {
	for _, a := range allowed {
		if s == a {
			return ""
		}
	}
	msg := fmt.Sprintf("%q is not one of %s", shorten(s), strings.Join(allowed, ", "))
	if g := suggest(s, allowed); g != "" {
		msg += fmt.Sprintf("; did you mean %q?", g)
	}
	return msg
}

// checkExactVersion wants X.Y.Z, no v, no range, no pre-release.
func checkExactVersion(s, example string) string {
	switch {
	case exactVersionRE.MatchString(s):
		return ""
	case exactVersionRE.MatchString(strings.TrimPrefix(strings.TrimPrefix(s, "v"), "V")):
		return fmt.Sprintf("write the version without the leading v: %s", s[1:])
	case strings.ContainsAny(s, "^~<>=*|, ") || versionHasWildcard(s):
		return fmt.Sprintf("%q is a version range; give one exact version, e.g. %s", shorten(s), example)
	}
	return fmt.Sprintf("%q is not an exact version X.Y.Z such as %s", shorten(s), example)
}

func (v *validator) mattermost() {
	mm := v.m.Mattermost
	if mm == nil {
		return
	}
	const p = "mattermost"
	if mm.Version != "" {
		v.problem(p+".version", checkExactVersion(mm.Version, "11.1.0"))
	}
	if mm.Edition != "" {
		v.problem(p+".edition", oneOf(mm.Edition, MattermostEditions))
	}
	if mm.Method != "" {
		v.problem(p+".method", oneOf(mm.Method, MattermostMethods))
	}
	seen := map[string]int{}
	for i, a := range mm.Architectures {
		ap := fmt.Sprintf("%s.architectures[%d]", p, i)
		if msg := oneOf(a, MattermostArchitectures); msg != "" {
			v.problem(ap, msg)
			continue
		}
		if k, dup := seen[a]; dup {
			v.errf(ap, "%s: %q is already listed at %s.architectures[%d]", ap, a, p, k)
			continue
		}
		seen[a] = i
	}
	c := mm.Components
	if c.FileStorage != "" {
		v.problem(p+".components.fileStorage", oneOf(c.FileStorage, FileStorageKinds))
	}
	if c.Search != "" {
		v.problem(p+".components.search", oneOf(c.Search, SearchEngines))
	}
	if pg := c.Postgres; pg != nil && pg.Version != 0 {
		pp := p + ".components.postgres.version"
		switch mn := MinPostgres(mm.Major()); {
		case pg.Version < 9 || pg.Version > 99:
			v.errf(pp, "%s: %d is not a PostgreSQL major version such as %d", pp, pg.Version, DefaultPostgres)
		case exactVersionRE.MatchString(mm.Version) && pg.Version < mn:
			v.errf(pp, "%s: Mattermost %s needs PostgreSQL %d or later, got %d; use %d", pp, mm.Version, mn, pg.Version, DefaultPostgres)
		}
	}
	if mm.ReadinessCheck != "" {
		rp := p + ".readinessCheck"
		if msg := oneOf(mm.ReadinessCheck, ReadinessCheckModes); msg != "" {
			v.problem(rp, msg)
		} else if mm.Method != "" && mm.Method != "kubernetes" {
			v.errf(rp, "%s: readinessCheck applies to method kubernetes only (the Mattermost Operator), not %s", rp, mm.Method)
		}
	}
	if mm.ReleaseKey != "" {
		v.problem(p+".releaseKey", checkKeyPath(mm.ReleaseKey))
	}
	if mm.PluginKey != "" {
		v.problem(p+".pluginKey", checkKeyPath(mm.PluginKey))
	}
	ids := map[string]int{}
	for i, pl := range mm.Plugins {
		pp := fmt.Sprintf("%s.plugins[%d]", p, i)
		if pl.ID != "" {
			if !pluginIDRE.MatchString(pl.ID) {
				v.errf(pp+".id", "%s.id: %q may hold only letters, digits, '.', '_' and '-'", pp, shorten(pl.ID))
			} else if k, dup := ids[pl.ID]; dup {
				v.errf(pp+".id", "%s.id: plugin %q is already listed at %s.plugins[%d]", pp, pl.ID, p, k)
			} else {
				ids[pl.ID] = i
			}
		}
		if pl.Version != "" {
			v.problem(pp+".version", checkExactVersion(pl.Version, "1.11.0"))
		}
		if pl.Package != "" {
			v.problem(pp+".package", checkName(pl.Package))
		}
	}
	v.pins(p+".images", "image reference", mm.Images, checkImageRef)
	v.pins(p+".charts", "chart version", mm.Charts, checkVersion)
	v.pins(p+".tools", "tool version", mm.Tools, checkVersion)
}

// pins checks a map of pins (name: value), in name order: values must be non-empty and pass check.
func (v *validator) pins(p, what string, m map[string]string, check func(string) string) {
	for _, k := range sortedKeys(m) {
		kp := fmt.Sprintf("%s[%s]", p, strconv.Quote(k))
		if val := m[k]; val == "" {
			v.errf(kp, "%s: empty %s", kp, what)
		} else {
			v.problem(kp, check(val))
		}
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
