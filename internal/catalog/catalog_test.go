package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mmgap/mmgap/internal/manifest"
	"github.com/mmgap/mmgap/internal/pgp"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const header = "apiVersion: mmgap.io/v1alpha1\nkind: Manifest\nmetadata:\n  name: test\n"

const allComponents = `  architectures: [amd64, arm64]
  components:
    nginx: true
    monitoring: true
    fileStorage: minio
    search: opensearch
    smtp: true
    ldap: true
    calls: {rtcd: true, offloader: true}
  plugins:
    - {id: com.mattermost.calls, version: 1.11.0}
    - {id: my.plugin, version: 0.1.0, package: my-plugin}
`

// goldenCases: every method x edition, with every component, and each
// method with nothing but defaults.
var goldenCases = []struct{ name, body string }{
	{"tarball-enterprise", "mattermost:\n  version: 11.1.0\n  method: tarball\n  edition: enterprise\n" + allComponents},
	{"tarball-team", "mattermost:\n  version: 11.1.0\n  method: tarball\n  edition: team\n" + allComponents},
	{"docker-enterprise", "mattermost:\n  version: 11.1.0\n  method: docker\n  edition: enterprise\n" + allComponents},
	{"docker-team", "mattermost:\n  version: 11.1.0\n  method: docker\n  edition: team\n" + allComponents},
	{"kubernetes-enterprise", "mattermost:\n  version: 11.1.0\n  method: kubernetes\n  edition: enterprise\n" + allComponents},
	{"kubernetes-team", "mattermost:\n  version: 11.1.0\n  method: kubernetes\n  edition: team\n" + allComponents},
	{"tarball-defaults", "mattermost:\n  version: 11.10.0\n  method: tarball\n"},
	{"docker-defaults", "mattermost:\n  version: 11.1.0\n  method: docker\n"},
	{"kubernetes-defaults", "mattermost:\n  version: 11.1.0\n  method: kubernetes\n"},
	{"kubernetes-builtin-pinned", "mattermost:\n  version: 10.5.2\n  method: kubernetes\n  readinessCheck: builtin\n" +
		"  components: {postgres: {enabled: false}}\n  images: {mattermost: 'registry.example/mm/ee:10.5.2', curl: 'registry.example/curl:8.0.0'}\n" +
		"  charts: {mattermost-enterprise-edition: 2.6.90}\n  tools: {kubectl: 1.33.5, helm: v3.18.6}\n"},
	{"tarball-prepackaged-arm64", "mattermost:\n  version: 11.1.0\n  method: tarball\n  edition: team\n  architectures: [arm64]\n  prepackagedPlugins: true\n" +
		"  releaseKey: keys/current.asc\n  pluginKey: keys/plugins.asc\n  plugins:\n    - {id: jira, version: 4.5.0}\n"},
}

func parse(t *testing.T, body string) *manifest.Manifest {
	t.Helper()
	m, err := manifest.Parse(filepath.Join(t.TempDir(), "mmgap.yaml"), []byte(header+body))
	if err != nil {
		t.Fatalf("parse:\n%v", err)
	}
	return m
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Expand(parse(t, tc.body))
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(p, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			file := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/catalog -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("plan differs from %s (run go test ./internal/catalog -update and review the diff):\n%s", file, got)
			}
			// Deterministic: a second expansion is identical.
			p2, _ := Expand(parse(t, tc.body))
			again, _ := json.MarshalIndent(p2, "", "  ")
			if !bytes.Equal(append(again, '\n'), got) {
				t.Errorf("two expansions differ")
			}
		})
	}
}

// TestAppliedManifestIsValid writes every expansion back as YAML and parses
// it: every catalog reference, URL, name and version passes the
// manifest's own validation, and Check finds the keys.
func TestAppliedManifestIsValid(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			m := parse(t, tc.body)
			p, err := Expand(m)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := p.WriteKeys(filepath.Join(dir, "keys")); err != nil {
				t.Fatal(err)
			}
			a := p.Apply(m)
			if len(a.Images) != len(p.Images) || len(a.Files) != len(p.Files) || len(a.Charts) != len(p.Charts) {
				t.Fatalf("apply lost items: %d/%d images, %d/%d files, %d/%d charts",
					len(a.Images), len(p.Images), len(a.Files), len(p.Files), len(a.Charts), len(p.Charts))
			}
			data, err := yaml.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := manifest.Parse(filepath.Join(dir, "applied.yaml"), data); err != nil {
				t.Fatalf("applied manifest does not parse:\n%v\n%s", err, data)
			}
			// Supply the user's keys, then Check must pass.
			for _, k := range p.Keys {
				if k.Embedded {
					if k.Path == "" || !filepath.IsAbs(k.Path) {
						t.Errorf("embedded key %s has path %q after WriteKeys", k.File, k.Path)
					}
					continue
				}
				if err := a.Check(); err == nil {
					t.Errorf("Check passed with key %s missing", k.File)
				}
				if err := os.MkdirAll(filepath.Dir(k.Path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(k.Path, ReleaseKey(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := a.Check(); err != nil {
				t.Errorf("Check: %v", err)
			}
			for _, f := range a.Files {
				if f.Signature != nil && !filepath.IsAbs(f.Signature.KeyPath) {
					t.Errorf("%s: key path %q is not absolute", f.URL, f.Signature.KeyPath)
				}
			}
		})
	}
}

func TestEmbeddedKeys(t *testing.T) {
	for _, k := range []struct {
		data []byte
		fp   string
	}{{ReleaseKey(), ReleaseKeyFingerprint}, {PluginKey(), PluginKeyFingerprint}} {
		kr, err := pgp.ParseKeyring(k.data)
		if err != nil {
			t.Fatal(err)
		}
		keys := kr.Keys()
		if len(keys) != 1 || keys[0].Fingerprint != k.fp {
			t.Fatalf("embedded key: %+v, want fingerprint %s", keys, k.fp)
		}
	}
}

// Plugin bundles are checked against the built-in plugin key unless the manifest names one.
func TestPluginKeyEmbedded(t *testing.T) {
	m := parse(t, "mattermost:\n  version: 11.1.0\n  method: docker\n  plugins: [{id: jira, version: 4.4.1}]\n")
	dir := t.TempDir()
	am, p, err := Prepare(m, dir)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, f := range am.Files {
		if f.Signature == nil || !strings.Contains(f.URL, "jira") {
			continue
		}
		found = true
		if f.Signature.KeyPath != filepath.Join(dir, PluginKeyFile) {
			t.Errorf("plugin key path = %q", f.Signature.KeyPath)
		}
		kr, err := pgp.ReadKeyring(f.Signature.KeyPath)
		if err != nil || kr.Keys()[0].Fingerprint != PluginKeyFingerprint {
			t.Errorf("written plugin key: %v", err)
		}
	}
	if !found {
		t.Fatalf("no plugin file in %+v", am.Files)
	}
	for _, k := range p.Keys {
		if k.Fingerprint == PluginKeyFingerprint && !k.Embedded {
			t.Errorf("plugin key not marked embedded: %+v", k)
		}
	}
	if err := am.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

func TestNoMattermostSection(t *testing.T) {
	p, err := Expand(parse(t, "images:\n  - ref: postgres:15\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Images)+len(p.Files)+len(p.Charts)+len(p.Packages)+len(p.Warnings) != 0 {
		t.Errorf("plan is not empty: %+v", p)
	}
	if _, err := Expand(nil); err == nil {
		t.Error("Expand(nil) succeeded")
	}
}

func warningCodes(p *Plan) []string {
	var out []string
	for _, w := range p.Warnings {
		out = append(out, w.Code)
	}
	return out
}

func TestWarnings(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       []string // codes that must appear
		not        []string // codes that must not
		text       string   // in some message
	}{
		{"v11 team chart mysql", "mattermost:\n  version: 11.1.0\n  method: kubernetes\n  edition: team\n",
			[]string{WarnTeamChartMySQL}, []string{WarnOperatorReadiness}, "does not support MySQL"},
		{"v10 team chart mysql", "mattermost:\n  version: 10.5.2\n  method: kubernetes\n  edition: team\n",
			[]string{WarnTeamChartMySQL}, nil, "mysql.enabled: false"},
		{"operator readiness", "mattermost:\n  version: 11.1.0\n  method: kubernetes\n",
			[]string{WarnOperatorReadiness, WarnOperatorVersion, WarnChartAppVersion, WarnMutableTag}, nil, "readinessCheck: builtin"},
		{"builtin readiness", "mattermost:\n  version: 11.6.1\n  method: kubernetes\n  readinessCheck: builtin\n",
			nil, []string{WarnOperatorReadiness, WarnChartAppVersion}, ""},
		{"compose postgres v11", "mattermost:\n  version: 11.0.0\n  method: docker\n",
			[]string{WarnComposePostgres}, nil, "POSTGRES_IMAGE_TAG=17-alpine"},
		{"compose postgres v10", "mattermost:\n  version: 10.11.0\n  method: docker\n",
			nil, []string{WarnComposePostgres}, ""},
		{"external database v11", "mattermost:\n  version: 11.0.0\n  method: docker\n  components: {postgres: {enabled: false}}\n",
			[]string{WarnExternalDatabase}, []string{WarnComposePostgres}, "14 or later (Mattermost v11 no longer supports MySQL)"},
		{"release key", "mattermost:\n  version: 11.1.0\n  method: tarball\n",
			[]string{WarnReleaseKeyExpired, WarnNoPublishedChecksum}, []string{WarnArm64Prepackaged}, "2024-04-06"},
		{"known checksum", "mattermost:\n  version: 11.10.0\n  method: tarball\n  releaseKey: k.asc\n",
			nil, []string{WarnReleaseKeyExpired, WarnNoPublishedChecksum}, ""},
		{"arm64 tarball", "mattermost:\n  version: 11.1.0\n  method: tarball\n  architectures: [arm64]\n",
			[]string{WarnArm64Prepackaged}, nil, "prepackaged_plugins"},
		{"team playbooks", "mattermost:\n  version: 11.1.0\n  method: docker\n  edition: team\n  plugins: [{id: playbooks, version: 2.6.1}]\n",
			[]string{WarnTeamPlaybooks}, nil, "Team Edition"},
		{"old version", "mattermost:\n  version: 9.11.0\n  method: docker\n",
			[]string{WarnOldVersion}, nil, "9.11.0"},
		{"offloader", "mattermost:\n  version: 11.1.0\n  method: docker\n  components: {calls: {offloader: true}}\n",
			[]string{WarnOffloaderImages}, nil, "recorder"},
		{"arm64 single-arch images", "mattermost:\n  version: 11.1.0\n  method: kubernetes\n  architectures: [arm64]\n",
			[]string{WarnArchitecture}, nil, "appropriate/curl:latest may not offer linux/arm64"},
		{"arm64 pinned curl", "mattermost:\n  version: 11.1.0\n  method: kubernetes\n  architectures: [arm64]\n  images: {curl: 'registry.example/curl:8.0.0'}\n",
			nil, []string{WarnArchitecture}, ""},
		{"amd64 only", "mattermost:\n  version: 11.1.0\n  method: kubernetes\n  components: {ldap: true}\n",
			nil, []string{WarnArchitecture}, ""},
		{"not in debian", "mattermost:\n  version: 11.1.0\n  method: tarball\n  components: {monitoring: true, search: elasticsearch}\n",
			[]string{WarnNotInDebian}, nil, "grafana"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Expand(parse(t, tc.body))
			if err != nil {
				t.Fatal(err)
			}
			codes := warningCodes(p)
			for _, c := range tc.want {
				if !slices.Contains(codes, c) {
					t.Errorf("missing warning %s; got %v", c, codes)
				}
			}
			for _, c := range tc.not {
				if slices.Contains(codes, c) {
					t.Errorf("unexpected warning %s", c)
				}
			}
			if tc.text != "" && !slices.ContainsFunc(p.Warnings, func(w Warning) bool { return strings.Contains(w.Message, tc.text) }) {
				t.Errorf("no warning mentions %q: %+v", tc.text, p.Warnings)
			}
		})
	}
}

func TestExpandErrors(t *testing.T) {
	m := parse(t, "mattermost:\n  version: 11.1.0\n  method: docker\n  images:\n    postgress: 'postgres:17'\n  charts:\n    operator: 1.0.0\n  tools:\n    kubctl: 1.0.0\n")
	_, err := Expand(m)
	var errs *manifest.Errors
	if !errors.As(err, &errs) || len(errs.List) != 3 {
		t.Fatalf("err = %v, want three positioned errors", err)
	}
	got := err.Error()
	for _, want := range []string{
		`:11:15: mattermost.charts["operator"]: unknown catalog chart name "operator" (known: mattermost-operator, mattermost-enterprise-edition, mattermost-team-edition)`,
		`:9:16: mattermost.images["postgress"]: unknown catalog image name "postgress"`,
		`:13:13: mattermost.tools["kubctl"]: unknown catalog tool name "kubctl" (known: kubectl, helm)`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("error\n%s\ndoes not contain\n%s", got, want)
		}
	}

	// A manifest changed after Parse: PostgreSQL 13 for v11 is refused.
	m = parse(t, "mattermost:\n  version: 11.1.0\n  method: docker\n  components:\n    postgres: {version: 14}\n")
	m.Mattermost.Components.Postgres.Version = 13
	_, err = Expand(m)
	var one *manifest.Error
	if !errors.As(err, &errs) || !errors.As(err, &one) || !strings.Contains(err.Error(), "needs PostgreSQL 14 or later, got 13") || one.Line != 9 {
		t.Errorf("err = %v, want PostgreSQL refusal at line 9", err)
	}
}

func TestApplyMerges(t *testing.T) {
	m := parse(t, `images:
  - ref: docker.io/library/nginx:1.28.0-alpine
  - name: postgres
    ref: registry.example/pg:16
files:
  - url: https://releases.mattermost.com/11.1.0/mattermost-11.1.0-linux-amd64.tar.gz
    sha256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
charts:
  - repo: https://helm.mattermost.com
    chart: mattermost-operator
    version: 1.0.5
mattermost:
  version: 11.1.0
  method: docker
  components: {nginx: true}
`)
	p, err := Expand(m)
	if err != nil {
		t.Fatal(err)
	}
	a := p.Apply(m)
	var refs, names []string
	for _, i := range a.Images {
		refs = append(refs, i.Ref)
		names = append(names, i.DisplayName())
	}
	wantRefs := []string{"docker.io/library/nginx:1.28.0-alpine", "registry.example/pg:16",
		"docker.io/mattermost/mattermost-enterprise-edition:11.1.0", "docker.io/library/postgres:17-alpine"}
	if !slices.Equal(refs, wantRefs) {
		t.Errorf("refs = %v\nwant %v", refs, wantRefs)
	}
	if want := []string{"nginx", "postgres", "mattermost", "postgres-mattermost"}; !slices.Equal(names, want) {
		t.Errorf("names = %v, want %v", names, want)
	}
	if len(m.Images) != 2 {
		t.Errorf("Apply changed the input manifest")
	}
	if a.Filename() != m.Filename() {
		t.Errorf("Apply lost the file name")
	}

	// Kubernetes: the user's operator chart and tarball stay, the catalog's duplicates go.
	m.Mattermost.Method = "kubernetes"
	p, err = Expand(m)
	if err != nil {
		t.Fatal(err)
	}
	a = p.Apply(m)
	if len(a.Charts) != 2 || a.Charts[1].Chart != ChartEnterprise {
		t.Errorf("charts = %+v", a.Charts)
	}
	m.Mattermost.Method = "tarball"
	p, _ = Expand(m)
	a = p.Apply(m)
	if len(a.Files) != 1 || a.Files[0].Signature != nil {
		t.Errorf("files = %+v, want only the user's entry", a.Files)
	}
}

func TestPrepare(t *testing.T) {
	m := parse(t, "mattermost:\n  version: 11.1.0\n  method: tarball\n")
	dir := filepath.Join(t.TempDir(), "keys")
	a, p, err := Prepare(m, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Files) != 1 || a.Files[0].Signature.KeyPath != filepath.Join(dir, ReleaseKeyFile) {
		t.Fatalf("files = %+v", a.Files)
	}
	if got, err := os.ReadFile(filepath.Join(dir, ReleaseKeyFile)); err != nil || !bytes.Equal(got, ReleaseKey()) {
		t.Fatalf("written key: %v", err)
	}
	if err := a.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	if len(p.Keys) != 1 || !p.Keys[0].Embedded || p.Keys[0].Path == "" {
		t.Errorf("keys = %+v", p.Keys)
	}
	// No embedded key needed: nothing is written.
	m = parse(t, "mattermost:\n  version: 11.1.0\n  method: docker\n")
	empty := filepath.Join(t.TempDir(), "none")
	if _, _, err := Prepare(m, empty); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Errorf("Prepare created %s without a key to write", empty)
	}
	if _, _, err := Prepare(parse(t, "mattermost:\n  version: 11.1.0\n  method: docker\n  images: {nope: 'a:1'}\n"), empty); err == nil {
		t.Error("Prepare accepted an unknown image pin")
	}
}
