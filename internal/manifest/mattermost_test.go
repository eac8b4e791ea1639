package manifest

import (
	"path/filepath"
	"reflect"
	"testing"
)

func init() { errorCases = append(errorCases, mattermostErrorCases...) }

// mattermostErrorCases cover every class of problem in the mattermost section.
var mattermostErrorCases = []errorCase{
	{name: "mattermost missing version", doc: header + "mattermost:\n  method: docker\n", want: []string{
		"m.yaml:6:3: missing required field \"version\" in mattermost"}, schema: true},
	{name: "mattermost missing method", doc: header + "mattermost:\n  version: 11.1.0\n", want: []string{
		"m.yaml:6:3: missing required field \"method\" in mattermost"}, schema: true},
	{name: "mattermost version with v", doc: header + "mattermost:\n  version: v11.1.0\n  method: docker\n", want: []string{
		"m.yaml:6:12: mattermost.version: write the version without the leading v: 11.1.0"}, schema: true},
	{name: "mattermost version range", doc: header + "mattermost:\n  version: 11.x\n  method: docker\n", want: []string{
		"m.yaml:6:12: mattermost.version: \"11.x\" is a version range; give one exact version, e.g. 11.1.0"}, schema: true},
	{name: "mattermost version short", doc: header + "mattermost:\n  version: '11.1'\n  method: docker\n", want: []string{
		"m.yaml:6:12: mattermost.version: \"11.1\" is not an exact version X.Y.Z such as 11.1.0"}, schema: true},
	{name: "mattermost unknown method with suggestion", doc: header + "mattermost:\n  version: 11.1.0\n  method: dokcer\n", want: []string{
		"m.yaml:7:11: mattermost.method: \"dokcer\" is not one of tarball, docker, kubernetes; did you mean \"docker\"?"}, schema: true},
	{name: "mattermost unknown edition", doc: header + "mattermost:\n  version: 11.1.0\n  method: docker\n  edition: free\n", want: []string{
		"m.yaml:8:12: mattermost.edition: \"free\" is not one of enterprise, team"}, schema: true},
	{name: "mattermost edition suggestion", doc: header + "mattermost:\n  version: 11.1.0\n  method: docker\n  edition: Team\n", want: []string{
		"m.yaml:8:12: mattermost.edition: \"Team\" is not one of enterprise, team; did you mean \"team\"?"}, schema: true},
	{name: "mattermost unknown architecture", doc: header + "mattermost:\n  version: 11.1.0\n  method: docker\n  architectures: [x86_64]\n", want: []string{
		"m.yaml:8:19: mattermost.architectures[0]: \"x86_64\" is not one of amd64, arm64"}, schema: true},
	{name: "mattermost duplicate architecture", doc: header + "mattermost:\n  version: 11.1.0\n  method: docker\n  architectures: [amd64, arm64, amd64]\n", want: []string{
		"m.yaml:8:33: mattermost.architectures[2]: \"amd64\" is already listed at mattermost.architectures[0]"}, schema: true},
	{name: "mattermost unknown mattermost field", doc: header + "mattermost:\n  version: 11.1.0\n  method: docker\n  plugin: []\n", want: []string{
		"m.yaml:8:3: unknown field \"plugin\" in mattermost; did you mean \"plugins\"? (known fields: version, edition, method, architectures, components, plugins, prepackagedPlugins, readinessCheck, releaseKey, pluginKey, images, charts, tools)"}, schema: true},
	{name: "mattermost unknown component", doc: header + "mattermost:\n  version: 11.1.0\n  method: docker\n  components:\n    ngnix: true\n", want: []string{
		"m.yaml:9:5: unknown field \"ngnix\" in mattermost.components; did you mean \"nginx\"? (known fields: postgres, fileStorage, nginx, monitoring, search, smtp, ldap, calls)"}, schema: true},
	{name: "mattermost component wrong type", doc: header + "mattermost:\n  version: 11.1.0\n  method: docker\n  components:\n    nginx: yes please\n", want: []string{
		"m.yaml:9:12: mattermost.components.nginx: expected a boolean (true or false), got a string (\"yes please\")"}, schema: true},
	{name: "mattermost file storage", doc: header + "mattermost:\n  version: 11.1.0\n  method: docker\n  components: {fileStorage: s3}\n", want: []string{
		"m.yaml:8:29: mattermost.components.fileStorage: \"s3\" is not one of local, minio"}, schema: true},
	{name: "mattermost search", doc: header + "mattermost:\n  version: 11.1.0\n  method: docker\n  components: {search: elastic}\n", want: []string{
		"m.yaml:8:24: mattermost.components.search: \"elastic\" is not one of none, elasticsearch, opensearch; did you mean \"elasticsearch\"?"}, schema: true},
	{name: "mattermost postgres too old for v11", doc: header + "mattermost:\n  version: 11.1.0\n  method: docker\n  components:\n    postgres: {version: 13}\n", want: []string{
		"m.yaml:9:25: mattermost.components.postgres.version: Mattermost 11.1.0 needs PostgreSQL 14 or later, got 13; use 17"}, schema: false},
	{name: "mattermost postgres not a major", doc: header + "mattermost:\n  version: 10.5.0\n  method: docker\n  components:\n    postgres: {version: 170}\n", want: []string{
		"m.yaml:9:25: mattermost.components.postgres.version: 170 is not a PostgreSQL major version such as 17"}, schema: false},
	{name: "mattermost postgres version not integer", doc: header + "mattermost:\n  version: 10.5.0\n  method: docker\n  components:\n    postgres: {version: '16.2'}\n", want: []string{
		"m.yaml:9:25: mattermost.components.postgres.version: expected an integer, got a string (\"16.2\")"}, schema: true},
	{name: "mattermost readiness check not kubernetes", doc: header + "mattermost:\n  version: 11.1.0\n  method: docker\n  readinessCheck: builtin\n", want: []string{
		"m.yaml:8:19: mattermost.readinessCheck: readinessCheck applies to method kubernetes only (the Mattermost Operator), not docker"}, schema: false},
	{name: "mattermost readiness check unknown", doc: header + "mattermost:\n  version: 11.1.0\n  method: kubernetes\n  readinessCheck: none\n", want: []string{
		"m.yaml:8:19: mattermost.readinessCheck: \"none\" is not one of external, builtin"}, schema: true},
	{name: "mattermost plugin missing version", doc: header + "mattermost:\n  version: 11.1.0\n  method: docker\n  plugins:\n    - id: com.mattermost.calls\n", want: []string{
		"m.yaml:9:7: missing required field \"version\" in mattermost.plugins[0]"}, schema: true},
	{name: "mattermost plugin bad version", doc: header + "mattermost:\n  version: 11.1.0\n  method: docker\n  plugins:\n    - {id: jira, version: v4.4.1}\n", want: []string{
		"m.yaml:9:27: mattermost.plugins[0].version: write the version without the leading v: 4.4.1"}, schema: true},
	{name: "mattermost plugin duplicate", doc: header + "mattermost:\n  version: 11.1.0\n  method: docker\n  plugins:\n    - {id: jira, version: 4.4.1}\n    - {id: jira, version: 4.4.2}\n", want: []string{
		"m.yaml:10:12: mattermost.plugins[1].id: plugin \"jira\" is already listed at mattermost.plugins[0]"}, schema: false},
	{name: "mattermost plugin bad id", doc: header + "mattermost:\n  version: 11.1.0\n  method: docker\n  plugins:\n    - {id: 'a/b', version: 1.0.0}\n", want: []string{
		"m.yaml:9:12: mattermost.plugins[0].id: \"a/b\" may hold only letters, digits, '.', '_' and '-'"}, schema: true},
	{name: "mattermost image pin bad", doc: header + "mattermost:\n  version: 11.1.0\n  method: docker\n  images:\n    postgres: postgres\n", want: []string{
		"m.yaml:9:15: mattermost.images[\"postgres\"]: image reference \"postgres\" names neither a tag nor a digest; add one, e.g. postgres:<tag> (mmgap never assumes :latest)"}, schema: true},
	{name: "mattermost chart pin range", doc: header + "mattermost:\n  version: 11.1.0\n  method: kubernetes\n  charts:\n    mattermost-operator: ^1.0.0\n", want: []string{
		"m.yaml:9:26: mattermost.charts[\"mattermost-operator\"]: \"^1.0.0\" is a version range; give one exact version, e.g. 2.6.0"}, schema: true},
	{name: "mattermost tool pin range", doc: header + "mattermost:\n  version: 11.1.0\n  method: kubernetes\n  tools:\n    kubectl: 1.34.x\n", want: []string{
		"m.yaml:9:14: mattermost.tools[\"kubectl\"]: \"1.34.x\" is a version range; give one exact version, e.g. 2.6.0"}, schema: true},
	{name: "mattermost release key url", doc: header + "mattermost:\n  version: 11.1.0\n  method: tarball\n  releaseKey: https://h/key.asc\n", want: []string{
		"m.yaml:8:15: mattermost.releaseKey: key is a local file (an OpenPGP public key) relative to the manifest, not a URL; download it and keep it next to the manifest"}, schema: false},
}

func TestParseMattermost(t *testing.T) {
	doc := header + `mattermost:
  version: 11.1.0
  method: kubernetes
  edition: team
  architectures: [amd64, arm64]
  components:
    postgres: {version: 16}
    fileStorage: minio
    nginx: true
    monitoring: true
    search: opensearch
    smtp: true
    ldap: true
    calls: {rtcd: true, offloader: true}
  plugins:
    - {id: com.mattermost.calls, version: 1.11.0}
    - {id: my.plugin, version: 0.1.0, package: my-plugin}
  prepackagedPlugins: true
  readinessCheck: builtin
  releaseKey: keys/release.asc
  images: {postgres: 'registry.example/pg:16'}
  charts: {mattermost-operator: 1.0.6}
`
	m, err := Parse(filepath.Join("dir", "m.yaml"), []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	mm := m.Mattermost
	want := &Mattermost{
		Version: "11.1.0", Method: "kubernetes", Edition: "team", Architectures: []string{"amd64", "arm64"},
		Components: Components{Postgres: &Postgres{Version: 16}, FileStorage: "minio", Nginx: true, Monitoring: true,
			Search: "opensearch", SMTP: true, LDAP: true, Calls: &Calls{RTCD: true, Offloader: true}},
		Plugins:            []Plugin{{ID: "com.mattermost.calls", Version: "1.11.0"}, {ID: "my.plugin", Version: "0.1.0", Package: "my-plugin"}},
		PrepackagedPlugins: true, ReadinessCheck: "builtin", ReleaseKey: "keys/release.asc",
		Images: map[string]string{"postgres": "registry.example/pg:16"}, Charts: map[string]string{"mattermost-operator": "1.0.6"},
		ReleaseKeyPath: filepath.Join("dir", "keys", "release.asc"),
	}
	if !reflect.DeepEqual(mm, want) {
		t.Errorf("got  %+v\nwant %+v", mm, want)
	}
	if mm.Major() != 11 {
		t.Errorf("Major = %d", mm.Major())
	}
}

func TestMattermostDefaults(t *testing.T) {
	m, err := Parse("m.yaml", []byte(header+"mattermost:\n  version: 10.5.2\n  method: kubernetes\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := m.Mattermost.WithDefaults()
	if d.Edition != "enterprise" || !reflect.DeepEqual(d.Architectures, []string{"amd64"}) ||
		d.Components.Postgres.Version != DefaultPostgres || !*d.Components.Postgres.Enabled ||
		d.Components.FileStorage != "local" || d.Components.Search != "none" || d.ReadinessCheck != "external" ||
		d.Components.Calls == nil {
		t.Errorf("defaults: %+v", d)
	}
	if m.Mattermost.Components.Postgres != nil || m.Mattermost.Edition != "" {
		t.Errorf("WithDefaults changed the manifest: %+v", m.Mattermost)
	}
	if m.Mattermost.PluginKeyPath != "" || m.Mattermost.ReleaseKeyPath != "" {
		t.Errorf("key paths: %q %q", m.Mattermost.PluginKeyPath, m.Mattermost.ReleaseKeyPath)
	}
}
