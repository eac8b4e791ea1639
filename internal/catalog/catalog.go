package catalog

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mmgap/mmgap/internal/manifest"
)

// Plan is what a manifest's mattermost section expands to: the concrete
// artifacts to gather, the Debian packages the components need, the keys
// that verify them, and warnings for the operator.
type Plan struct {
	// Images, Files and Charts are gathered by the existing fetchers
	// (merge them into the manifest with Apply).
	Images []manifest.Image `json:"images,omitempty"`
	Files  []manifest.File  `json:"files,omitempty"`
	Charts []manifest.Chart `json:"charts,omitempty"`
	// Packages are Debian packages for a package-mirror fetcher; data only.
	Packages []Package `json:"packages,omitempty"`
	// Keys are the OpenPGP keys the files' signatures are checked with.
	Keys []Key `json:"keys,omitempty"`
	// Warnings are version-aware notes: stale defaults, missing pieces.
	Warnings []Warning `json:"warnings,omitempty"`
}

// Package is a Debian package a component needs.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"` // "" means the suite's version
	Arch    string `json:"arch"`
	Why     string `json:"why"`
}

// Warning is a note about the plan, with a stable code for tools.
type Warning struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Key is an OpenPGP public key that verifies some of the plan's files.
type Key struct {
	// File is the key's file name as the files' signature.key show it.
	File string `json:"file"`
	// Fingerprint is the fingerprint the key must have, uppercase hex.
	Fingerprint string `json:"fingerprint"`
	// Purpose says what the key verifies.
	Purpose string `json:"purpose"`
	// Embedded says mmgap carries the key; WriteKeys writes it. Keys that
	// are not embedded are supplied by the user next to the manifest.
	Embedded bool `json:"embedded"`
	// Path is where the key file is (for embedded keys: once WriteKeys
	// has run). Not in JSON: it is machine-specific.
	Path string `json:"-"`
}

// Warning codes.
const (
	WarnReleaseKeyExpired   = "release-key-expired"
	WarnNoPublishedChecksum = "no-published-checksum"
	WarnArm64Prepackaged    = "arm64-no-prepackaged-plugins"
	WarnPrepackagedVersions = "prepackaged-plugin-versions"
	WarnComposePostgres     = "compose-postgres-default"
	WarnOperatorReadiness   = "operator-readiness-postgres13"
	WarnOperatorVersion     = "operator-default-version"
	WarnChartAppVersion     = "chart-app-version"
	WarnTeamChartMySQL      = "team-chart-mysql"
	WarnExternalDatabase    = "external-database"
	WarnMutableTag          = "mutable-tag"
	WarnNotInDebian         = "not-in-debian"
	WarnOffloaderImages     = "calls-offloader-runtime-images"
	WarnTeamPlaybooks       = "team-edition-playbooks"
	WarnOldVersion          = "version-not-covered"
	WarnArchitecture        = "image-architecture"
)

// Expand turns the manifest's mattermost section into a Plan. A manifest
// without one expands to an empty plan. Problems that only the catalog can
// see (an unknown name in mattermost.images or mattermost.charts, a
// PostgreSQL too old for the Mattermost version) come back as
// *manifest.Errors positioned in the manifest (and only then is the
// error a *manifest.Errors). Expand touches no network
// and no file.
func Expand(m *manifest.Manifest) (*Plan, error) {
	if m == nil {
		return nil, errors.New("expand: no manifest")
	}
	p := &Plan{}
	if m.Mattermost == nil {
		return p, nil
	}
	if err := checkPins(m); err != nil {
		return nil, err
	}
	e := &expander{m: m, mm: m.Mattermost.WithDefaults(), p: p}
	if err := e.run(); err != nil {
		return nil, &manifest.Errors{List: []*manifest.Error{err}}
	}
	return p, nil
}

// checkPins reports names in mattermost.images and mattermost.charts that
// the catalog does not know.
func checkPins(m *manifest.Manifest) error {
	var errs manifest.Errors
	for _, sec := range []struct {
		field string
		pins  map[string]string
		known []string
	}{{"images", m.Mattermost.Images, ImageNames}, {"charts", m.Mattermost.Charts, ChartNames}, {"tools", m.Mattermost.Tools, ToolNames}} {
		keys := make([]string, 0, len(sec.pins))
		for k := range sec.pins {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if slices.Contains(sec.known, k) {
				continue
			}
			p := fmt.Sprintf("mattermost.%s[%s]", sec.field, strconv.Quote(k))
			errs.List = append(errs.List, m.ErrorAt(p, "%s: unknown catalog %s name %q (known: %s)",
				p, strings.TrimSuffix(sec.field, "s"), k, strings.Join(sec.known, ", ")))
		}
	}
	if len(errs.List) > 0 {
		return &errs
	}
	return nil
}

type expander struct {
	m  *manifest.Manifest
	mm manifest.Mattermost // with defaults
	p  *Plan
}

func (e *expander) warn(code, format string, args ...any) {
	e.p.Warnings = append(e.p.Warnings, Warning{Code: code, Message: fmt.Sprintf(format, args...)})
}

func (e *expander) enterprise() bool { return e.mm.Edition == "enterprise" }

func (e *expander) platforms() []string {
	out := make([]string, len(e.mm.Architectures))
	for i, a := range e.mm.Architectures {
		out[i] = "linux/" + a
	}
	return out
}

// image adds a catalog image, honouring mattermost.images pins.
func (e *expander) image(name, ref string) {
	if pin, ok := e.mm.Images[name]; ok {
		ref = pin
	}
	e.p.Images = append(e.p.Images, manifest.Image{Name: name, Ref: ref, Platforms: e.platforms()})
}

func (e *expander) chart(name string) {
	v := defaultCharts[name]
	if pin, ok := e.mm.Charts[name]; ok {
		v = pin
	}
	e.p.Charts = append(e.p.Charts, manifest.Chart{Name: name, Repo: HelmRepoURL, Chart: name, Version: v})
}

func (e *expander) pkg(name, why string) {
	for _, a := range e.mm.Architectures {
		e.p.Packages = append(e.p.Packages, Package{Name: name, Arch: a, Why: why})
	}
}

func (e *expander) mattermostImage() string {
	repo := "docker.io/mattermost/mattermost-enterprise-edition"
	if !e.enterprise() {
		repo = "docker.io/mattermost/mattermost-team-edition"
	}
	return repo + ":" + e.mm.Version
}

func (e *expander) run() *manifest.Error {
	mm := e.mm
	major := mm.Major()
	pg := mm.Components.Postgres
	if minPG := manifest.MinPostgres(major); *pg.Enabled && pg.Version < minPG {
		return e.m.ErrorAt("mattermost.components.postgres.version",
			"mattermost.components.postgres.version: Mattermost %s needs PostgreSQL %d or later, got %d", mm.Version, minPG, pg.Version)
	}
	if major < 10 {
		e.warn(WarnOldVersion, "Mattermost %s is older than the releases mmgap's catalog was checked against (v10, v11); check image names, URLs and component versions yourself", mm.Version)
	}
	if !*pg.Enabled {
		msg := "components.postgres.enabled is false: the deployment needs an existing PostgreSQL server"
		if minPG := manifest.MinPostgres(major); minPG > 0 {
			msg += fmt.Sprintf(" of version %d or later (Mattermost v%d no longer supports MySQL)", minPG, major)
		}
		e.warn(WarnExternalDatabase, "%s", msg)
	}
	switch mm.Method {
	case "tarball":
		e.tarball()
	case "docker":
		e.docker()
	case "kubernetes":
		e.kubernetes()
	default:
		return e.m.ErrorAt("mattermost.method", "mattermost.method: unknown method %q", mm.Method)
	}
	e.plugins()
	e.keys()
	e.archWarning()
	return nil
}

func (e *expander) tarball() {
	mm := e.mm
	name := "mattermost-"
	if !e.enterprise() {
		name = "mattermost-team-"
	}
	key, keyPath := ReleaseKeyFile, ""
	if mm.ReleaseKey != "" {
		key, keyPath = mm.ReleaseKey, mm.ReleaseKeyPath
	}
	var unchecked []string
	for _, a := range mm.Architectures {
		u := fmt.Sprintf("%s/%s/%s%s-linux-%s.tar.gz", ReleaseBaseURL, mm.Version, name, mm.Version, a)
		sum := releaseSHA256[mm.Version+"/"+mm.Edition+"/"+a]
		if sum == "" {
			unchecked = append(unchecked, a)
		}
		e.p.Files = append(e.p.Files, manifest.File{
			Version:   mm.Version,
			URL:       u,
			SHA256:    sum,
			Signature: &manifest.Signature{URL: u + ".sig", Key: key, KeyPath: keyPath},
		})
	}
	if mm.ReleaseKey == "" {
		e.warn(WarnReleaseKeyExpired, "mmgap's built-in copy of Mattermost's release key (%s) carries a self-signature that expired on 2024-04-06, and gather refuses signatures from an expired key; export a current copy of the key, check its fingerprint with gpg --show-keys, and set mattermost.releaseKey to it (for a release signed before the key expired, gather --allow-expired-key %s accepts the old copy and records that in the bundle)", formatFP(ReleaseKeyFingerprint), ReleaseKeyFingerprint)
	}
	if len(unchecked) > 0 {
		e.warn(WarnNoPublishedChecksum, "mmgap does not know the published SHA-256 of the %s %s tarball for %s; it is verified by its signature alone (add the value from Mattermost's version archive as a files: entry with sha256 to check both)", mm.Edition, mm.Version, strings.Join(unchecked, ", "))
	}
	if slices.Contains(mm.Architectures, "arm64") && !mm.PrepackagedPlugins {
		e.warn(WarnArm64Prepackaged, "the linux-arm64 tarball ships without prepackaged_plugins/; set prepackagedPlugins: true or list the plugins you need")
	}

	// Debian packages for the components.
	c := mm.Components
	if *c.Postgres.Enabled {
		e.pkg(fmt.Sprintf("postgresql-%d", c.Postgres.Version), fmt.Sprintf("PostgreSQL %d database (components.postgres)", c.Postgres.Version))
	}
	if c.Nginx {
		e.pkg("nginx", "reverse proxy terminating TLS (components.nginx)")
	}
	var notDebian []string
	if c.Monitoring {
		e.pkg("prometheus", "metrics (components.monitoring)")
		e.pkg("prometheus-node-exporter", "host metrics (components.monitoring)")
		notDebian = append(notDebian, "grafana (Grafana's own APT repository)")
	}
	if c.FileStorage == "minio" {
		notDebian = append(notDebian, "minio (a single binary from MinIO)")
	}
	if c.Search != "none" {
		notDebian = append(notDebian, c.Search+" (its vendor's APT repository)")
	}
	if c.SMTP {
		e.pkg("postfix", "SMTP relay for email notifications (components.smtp)")
	}
	if c.LDAP {
		e.pkg("slapd", "OpenLDAP directory server (components.ldap)")
		e.pkg("ldap-utils", "OpenLDAP tools (components.ldap)")
	}
	if c.Calls.RTCD {
		notDebian = append(notDebian, "rtcd (a binary release from mattermost/rtcd)")
	}
	if c.Calls.Offloader {
		notDebian = append(notDebian, "calls-offloader (a binary release from mattermost/calls-offloader)")
		e.offloaderWarning()
	}
	if len(notDebian) > 0 {
		e.warn(WarnNotInDebian, "not in Debian, so not in the package list; gather them yourself (files: with sha256) or use method docker: %s", strings.Join(notDebian, "; "))
	}
}

func (e *expander) offloaderWarning() {
	e.warn(WarnOffloaderImages, "calls-offloader pulls its recorder and transcriber images at run time; add them under images: and point the offloader at your registry")
}

// components adds the component images shared by docker and kubernetes.
func (e *expander) components() {
	c := e.mm.Components
	if *c.Postgres.Enabled {
		e.image(ImgPostgres, fmt.Sprintf("docker.io/library/postgres:%d-alpine", c.Postgres.Version))
	}
	if c.Nginx {
		e.image(ImgNginx, defaultImages[ImgNginx])
	}
	if c.FileStorage == "minio" {
		e.image(ImgMinio, defaultImages[ImgMinio])
	}
	if c.Monitoring {
		e.image(ImgPrometheus, defaultImages[ImgPrometheus])
		e.image(ImgNodeExporter, defaultImages[ImgNodeExporter])
		e.image(ImgGrafana, defaultImages[ImgGrafana])
	}
	switch c.Search {
	case "elasticsearch":
		e.image(ImgElasticsearch, defaultImages[ImgElasticsearch])
	case "opensearch":
		e.image(ImgOpensearch, defaultImages[ImgOpensearch])
	}
	if c.SMTP {
		e.image(ImgSMTP, defaultImages[ImgSMTP])
	}
	if c.LDAP {
		e.image(ImgOpenLDAP, defaultImages[ImgOpenLDAP])
	}
	if c.Calls.RTCD {
		e.image(ImgRTCD, defaultImages[ImgRTCD])
	}
	if c.Calls.Offloader {
		e.image(ImgCallsOffloader, defaultImages[ImgCallsOffloader])
		e.offloaderWarning()
	}
}

func (e *expander) docker() {
	e.image(ImgMattermost, e.mattermostImage())
	e.components()
	e.pkg("docker.io", "Docker engine (method docker)")
	e.pkg("docker-compose", "Docker Compose (method docker)")
	if pg := e.mm.Components.Postgres; *pg.Enabled && manifest.MinPostgres(e.mm.Major()) > 13 {
		e.warn(WarnComposePostgres, "mattermost/docker's env.example sets POSTGRES_IMAGE_TAG=13-alpine, which Mattermost v%d does not support; set POSTGRES_IMAGE_TAG=%d-alpine", e.mm.Major(), pg.Version)
	}
}

func (e *expander) kubernetes() {
	mm := e.mm
	e.image(ImgMattermost, e.mattermostImage())
	e.components()
	if e.enterprise() {
		e.image(ImgOperator, defaultImages[ImgOperator])
		if mm.ReadinessCheck == "external" {
			e.image(ImgPostgresReadiness, defaultImages[ImgPostgresReadiness])
			e.warn(WarnOperatorReadiness, "the Mattermost Operator's default database readiness check runs postgres:13, which is gathered for it; set readinessCheck: builtin here and database.readinessCheck.mode: builtin in the Mattermost resource to use mattermost db ping instead and skip that image")
		}
		e.image(ImgCurl, defaultImages[ImgCurl])
		if mm.Components.FileStorage == "minio" {
			e.image(ImgMinioClient, defaultImages[ImgMinioClient])
		}
		e.chart(ChartOperator)
		e.chart(ChartEnterprise)
		e.warn(WarnOperatorVersion, "the Mattermost Operator runs mattermost-enterprise-edition:%s when the Mattermost resource sets no version; set spec.image and spec.version: %s", operatorDefaults, mm.Version)
	} else {
		e.image(ImgCurl, defaultImages[ImgCurl])
		e.chart(ChartTeam)
		msg := "the mattermost-team-edition chart enables its bundled MySQL by default (mysql.enabled: true); set mysql.enabled: false and configure externalDB with PostgreSQL"
		if mm.Major() >= 11 {
			msg += fmt.Sprintf(": Mattermost v%d does not support MySQL", mm.Major())
		}
		e.warn(WarnTeamChartMySQL, "%s", msg)
	}
	chart := ChartEnterprise
	if !e.enterprise() {
		chart = ChartTeam
	}
	if _, pinned := mm.Charts[chart]; !pinned && mm.Version != chartAppVersion {
		e.warn(WarnChartAppVersion, "chart %s %s defaults to Mattermost %s; set its image tag to %s in the chart's values", chart, defaultCharts[chart], chartAppVersion, mm.Version)
	}
	e.warn(WarnMutableTag, "appropriate/curl:latest is the charts' and operator's init-container image; gather pins it to the digest it finds, so record that digest")
	e.tools()
}

// tools adds kubectl and helm for every architecture, each checked against
// the checksum file its project publishes.
func (e *expander) tools() {
	kv := strings.TrimPrefix(e.toolVersion(ToolKubectl), "v")
	hv := strings.TrimPrefix(e.toolVersion(ToolHelm), "v")
	for _, a := range e.mm.Architectures {
		u := fmt.Sprintf("%s/v%s/bin/linux/%s/kubectl", KubectlBaseURL, kv, a)
		e.p.Files = append(e.p.Files, manifest.File{
			Name: "kubectl-linux-" + a, Version: kv, URL: u,
			Checksum: &manifest.Checksum{URL: u + ".sha256"},
		})
	}
	for _, a := range e.mm.Architectures {
		u := fmt.Sprintf("%s/helm-v%s-linux-%s.tar.gz", HelmBaseURL, hv, a)
		e.p.Files = append(e.p.Files, manifest.File{
			Name: "helm-linux-" + a, Version: hv, URL: u,
			Checksum: &manifest.Checksum{URL: u + ".sha256sum"},
		})
	}
}

// toolVersion is the pinned or default version of a catalog tool.
func (e *expander) toolVersion(name string) string {
	if v := e.mm.Tools[name]; v != "" {
		return v
	}
	return defaultTools[name]
}

// pluginPackage is the release name of a plugin id.
func pluginPackage(pl manifest.Plugin) string {
	switch {
	case pl.Package != "":
		return pl.Package
	case pluginPackages[pl.ID] != "":
		return pluginPackages[pl.ID]
	}
	return pl.ID
}

func (e *expander) plugins() {
	mm := e.mm
	list := slices.Clone(mm.Plugins)
	if mm.PrepackagedPlugins {
		for _, pp := range prepackaged {
			if slices.ContainsFunc(list, func(p manifest.Plugin) bool { return p.ID == pp.id }) {
				continue
			}
			if pp.id == "playbooks" && !e.enterprise() && mm.Major() >= 11 {
				continue // removed from Team Edition in v11
			}
			list = append(list, manifest.Plugin{ID: pp.id, Version: pp.version})
		}
		e.warn(WarnPrepackagedVersions, "prepackagedPlugins uses the versions Mattermost prepackaged at about v11.2; pin others under plugins:")
	}
	if len(list) == 0 {
		return
	}
	for _, pl := range list {
		if pl.ID == "playbooks" && !e.enterprise() && mm.Major() >= 11 {
			e.warn(WarnTeamPlaybooks, "Playbooks was removed from Team Edition in v11; the plugin is gathered but the team edition may not run it")
		}
		for _, a := range mm.Architectures {
			u := fmt.Sprintf("%s/%s-v%s-linux-%s.tar.gz", PluginBaseURL, pluginPackage(pl), pl.Version, a)
			e.p.Files = append(e.p.Files, manifest.File{
				Version:   pl.Version,
				URL:       u,
				Signature: &manifest.Signature{URL: u + ".sig", Key: e.pluginKey(), KeyPath: mm.PluginKeyPath},
			})
		}
	}
}

func (e *expander) pluginKey() string {
	if e.mm.PluginKey != "" {
		return e.mm.PluginKey
	}
	return PluginKeyFile
}

// keys lists the keys the plan's files use.
func (e *expander) keys() {
	seen := map[string]bool{}
	for _, f := range e.p.Files {
		s := f.Signature
		if s == nil || seen[s.Key] {
			continue
		}
		seen[s.Key] = true
		switch {
		case s.Key == ReleaseKeyFile && e.mm.ReleaseKey == "":
			e.p.Keys = append(e.p.Keys, Key{File: s.Key, Fingerprint: ReleaseKeyFingerprint, Purpose: "Mattermost release tarballs", Embedded: true})
		case s.Key == PluginKeyFile && e.mm.PluginKey == "":
			e.p.Keys = append(e.p.Keys, Key{File: s.Key, Fingerprint: PluginKeyFingerprint, Purpose: "Mattermost plugin bundles", Embedded: true})
		case e.mm.ReleaseKey != "" && s.Key == e.mm.ReleaseKey:
			e.p.Keys = append(e.p.Keys, Key{File: s.Key, Fingerprint: ReleaseKeyFingerprint, Purpose: "Mattermost release tarballs", Path: s.KeyPath})
		default:
			e.p.Keys = append(e.p.Keys, Key{File: s.Key, Fingerprint: PluginKeyFingerprint, Purpose: "Mattermost plugin bundles", Path: s.KeyPath})
		}
	}
}

// formatFP groups a fingerprint in fours, as gpg prints it.
func formatFP(fp string) string {
	var b strings.Builder
	for i := 0; i < len(fp); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(fp[i:min(i+4, len(fp))])
	}
	return b.String()
}

// singleArch are catalog images that may not offer linux/arm64.
var singleArch = []string{ImgCurl, ImgOpenLDAP}

// archWarning names catalog images that may lack an arm64 build; gather
// refuses an image that lacks a requested platform.
func (e *expander) archWarning() {
	if !slices.Contains(e.mm.Architectures, "arm64") {
		return
	}
	var names []string
	for _, img := range e.p.Images {
		if _, pinned := e.mm.Images[img.Name]; !pinned && slices.Contains(singleArch, img.Name) {
			names = append(names, img.Ref)
		}
	}
	if len(names) > 0 {
		e.warn(WarnArchitecture, "%s may not offer linux/arm64, and gather refuses an image that lacks a requested platform; pin a multi-architecture image under mattermost.images if it fails", strings.Join(names, ", "))
	}
}
