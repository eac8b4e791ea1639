package catalog

// The facts the catalog expands from. Sources: mattermost-kb §D–E (the
// Mattermost server, docs, mattermost/docker, mattermost-helm and
// mattermost-operator repositories at the commits listed there). Every
// image can be pinned per manifest with mattermost.images, every chart
// version with mattermost.charts, and every host redirected with mirrors.

const (
	// ReleaseBaseURL serves the release tarballs and their .sig files:
	// <base>/X.Y.Z/mattermost-X.Y.Z-linux-<arch>.tar.gz (enterprise) and
	// <base>/X.Y.Z/mattermost-team-X.Y.Z-linux-<arch>.tar.gz (team).
	ReleaseBaseURL = "https://releases.mattermost.com"
	// PluginBaseURL serves plugin bundles and their .sig files:
	// <base>/<package>-v<version>-linux-<arch>.tar.gz.
	PluginBaseURL = "https://plugins.releases.mattermost.com/release"
	// HelmRepoURL is Mattermost's Helm chart repository.
	HelmRepoURL = "https://helm.mattermost.com"

	// ReleaseKeyFingerprint is the key Mattermost signs release tarballs
	// with: "Mattermost Build <dev-ops@mattermost.com>", rsa2048, 2017-03-27.
	ReleaseKeyFingerprint = "A1B31D46F0F3A10B02CF2D44F8F2C31744774B28"
	// ReleaseKeyFile is the file name the built-in release key is written as.
	ReleaseKeyFile = "mattermost-release.asc"
	// PluginKeyFingerprint is the key Mattermost signs plugin bundles with, the key its
	// server checks plugin signatures against; mmgap carries a copy (PluginKey), and
	// mattermost.pluginKey names another file instead.
	PluginKeyFingerprint = "C55881B80F69E863B85AD5D1D1B54B47A5CEFEC4"
	// PluginKeyFile is the file name the built-in plugin key is written as.
	PluginKeyFile = "mattermost-plugin.asc"
)

// Catalog image names, the keys of mattermost.images.
const (
	ImgMattermost        = "mattermost"
	ImgPostgres          = "postgres"
	ImgNginx             = "nginx"
	ImgMinio             = "minio"
	ImgMinioClient       = "minio-mc"
	ImgPrometheus        = "prometheus"
	ImgNodeExporter      = "node-exporter"
	ImgGrafana           = "grafana"
	ImgElasticsearch     = "elasticsearch"
	ImgOpensearch        = "opensearch"
	ImgOpenLDAP          = "openldap"
	ImgSMTP              = "smtp-relay"
	ImgRTCD              = "rtcd"
	ImgCallsOffloader    = "calls-offloader"
	ImgOperator          = "mattermost-operator"
	ImgPostgresReadiness = "postgres-readiness"
	ImgCurl              = "curl"
)

// defaultImages are the pinned image references, without the ones that
// depend on the manifest (mattermost, postgres). Tags are pinned; gather
// pins each to a digest.
var defaultImages = map[string]string{
	ImgNginx:             "docker.io/library/nginx:1.28.0-alpine",
	ImgMinio:             "docker.io/minio/minio:RELEASE.2025-04-22T22-12-26Z",
	ImgMinioClient:       "docker.io/minio/mc:RELEASE.2025-04-16T18-13-26Z",
	ImgPrometheus:        "docker.io/prom/prometheus:v3.4.0",
	ImgNodeExporter:      "docker.io/prom/node-exporter:v1.9.1",
	ImgGrafana:           "docker.io/grafana/grafana:12.0.1",
	ImgElasticsearch:     "docker.elastic.co/elasticsearch/elasticsearch:8.18.1",
	ImgOpensearch:        "docker.io/opensearchproject/opensearch:2.19.2",
	ImgOpenLDAP:          "docker.io/osixia/openldap:1.5.0",
	ImgSMTP:              "docker.io/boky/postfix:v4.4.0",
	ImgRTCD:              "docker.io/mattermost/rtcd:v1.1.3",
	ImgCallsOffloader:    "docker.io/mattermost/calls-offloader:v0.9.3",
	ImgOperator:          "docker.io/mattermost/mattermost-operator:v1.25.4",
	ImgPostgresReadiness: "docker.io/library/postgres:13",
	ImgCurl:              "docker.io/appropriate/curl:latest",
}

// ImageNames lists every catalog image name, for mattermost.images.
var ImageNames = []string{
	ImgMattermost, ImgPostgres, ImgNginx, ImgMinio, ImgMinioClient, ImgPrometheus, ImgNodeExporter,
	ImgGrafana, ImgElasticsearch, ImgOpensearch, ImgOpenLDAP, ImgSMTP, ImgRTCD, ImgCallsOffloader,
	ImgOperator, ImgPostgresReadiness, ImgCurl,
}

// Chart names (the keys of mattermost.charts) and pinned versions.
const (
	ChartOperator    = "mattermost-operator"
	ChartEnterprise  = "mattermost-enterprise-edition"
	ChartTeam        = "mattermost-team-edition"
	chartAppVersion  = "11.6.1" // the Mattermost version both edition charts default to
	operatorDefaults = "10.8.1" // the Mattermost image the operator runs when spec.version is unset
)

var defaultCharts = map[string]string{
	ChartOperator:   "1.0.5",
	ChartEnterprise: "2.6.93",
	ChartTeam:       "6.6.96",
}

// ChartNames lists every catalog chart name, for mattermost.charts.
var ChartNames = []string{ChartOperator, ChartEnterprise, ChartTeam}

// Client tools the kubernetes method gathers (the keys of mattermost.tools)
// and their pinned default versions, without the leading v. Each binary is
// checked against the checksum file its project publishes next to it.
const (
	ToolKubectl = "kubectl"
	ToolHelm    = "helm"
)

var defaultTools = map[string]string{
	ToolKubectl: "1.34.1",
	ToolHelm:    "3.19.0",
}

// ToolNames lists every catalog tool name, for mattermost.tools.
var ToolNames = []string{ToolKubectl, ToolHelm}

const (
	// KubectlBaseURL serves kubectl and its bare-hex .sha256:
	// <base>/v<ver>/bin/linux/<arch>/kubectl[.sha256].
	KubectlBaseURL = "https://dl.k8s.io/release"
	// HelmBaseURL serves helm tarballs and their sha256sum-format .sha256sum:
	// <base>/helm-v<ver>-linux-<arch>.tar.gz[.sha256sum].
	HelmBaseURL = "https://get.helm.sh"
)

// pluginPackages maps plugin ids to their release names on the plugin
// release site (mattermost-kb §D.2). Other ids are used as given.
var pluginPackages = map[string]string{
	"com.mattermost.calls":       "mattermost-plugin-calls",
	"playbooks":                  "mattermost-plugin-playbooks",
	"mattermost-ai":              "mattermost-plugin-agents",
	"focalboard":                 "mattermost-plugin-boards",
	"com.mattermost.nps":         "mattermost-plugin-nps",
	"com.mattermost.user-survey": "mattermost-plugin-user-survey",
	"github":                     "mattermost-plugin-github",
	"com.github.manland.mattermost-plugin-gitlab": "mattermost-plugin-gitlab",
	"jira":                                     "mattermost-plugin-jira",
	"zoom":                                     "mattermost-plugin-zoom",
	"jitsi":                                    "mattermost-plugin-jitsi",
	"com.mattermost.msteamsmeetings":           "mattermost-plugin-msteams-meetings",
	"com.mattermost.mscalendar":                "mattermost-plugin-mscalendar",
	"mattermost-plugin-servicenow":             "mattermost-plugin-servicenow",
	"com.mattermost.apps":                      "mattermost-plugin-apps",
	"com.mattermost.welcomebot":                "mattermost-plugin-welcomebot",
	"com.mattermost.plugin-channel-export":     "mattermost-plugin-channel-export",
	"mattermost-autolink":                      "mattermost-plugin-autolink",
	"com.mattermost.custom-attributes":         "mattermost-plugin-custom-attributes",
	"com.mattermost.mattermost-plugin-metrics": "mattermost-plugin-metrics",
}

// prepackaged is the prepackaged plugin list of the server's Makefile at
// the kb's reference commit (about v11.2), in that order.
var prepackaged = []struct{ id, version string }{
	{"com.mattermost.calls", "1.11.0"},
	{"playbooks", "2.6.1"},
	{"mattermost-ai", "1.6.2"},
	{"focalboard", "9.2.1"},
	{"com.mattermost.user-survey", "1.1.1"},
	{"github", "2.5.0"},
	{"com.github.manland.mattermost-plugin-gitlab", "1.11.0"},
	{"jira", "4.4.1"},
	{"zoom", "1.10.0"},
	{"com.mattermost.msteamsmeetings", "2.3.0"},
	{"com.mattermost.mscalendar", "1.5.0"},
	{"mattermost-plugin-servicenow", "2.4.0"},
	{"com.mattermost.plugin-channel-export", "1.3.0"},
	{"com.mattermost.mattermost-plugin-metrics", "0.7.0"},
}

// releaseSHA256 holds the SHA-256 values Mattermost publishes inline in
// its version archive, by "version/edition/arch". Tarballs not listed are
// verified by signature alone.
var releaseSHA256 = map[string]string{
	"11.10.0/enterprise/amd64": "8ae404ed0c0fbab2b01c00c031b9d0f3e17c51007e3bb3401bebaf3e60da0c3e",
}
