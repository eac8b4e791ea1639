package catalog

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"github.com/mmgap/mmgap/internal/manifest"
)

// DefaultVersion is the Mattermost version a starter manifest names when
// none is given.
const DefaultVersion = "11.10.0"

// StarterOptions choose what Starter writes.
type StarterOptions struct {
	Method  string // tarball, docker or kubernetes; required
	Edition string // enterprise (default) or team
	Version string // exact X.Y.Z; default DefaultVersion
}

var exactVersion = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)

// Starter returns a commented starter mmgap.yaml for a deployment method.
// The result parses, and expands without error.
func Starter(o StarterOptions) ([]byte, error) {
	if o.Edition == "" {
		o.Edition = "enterprise"
	}
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	switch {
	case !slices.Contains(manifest.MattermostMethods, o.Method):
		return nil, fmt.Errorf("method %q: want one of %s", o.Method, strings.Join(manifest.MattermostMethods, ", "))
	case !slices.Contains(manifest.MattermostEditions, o.Edition):
		return nil, fmt.Errorf("edition %q: want one of %s", o.Edition, strings.Join(manifest.MattermostEditions, ", "))
	case !exactVersion.MatchString(o.Version):
		return nil, fmt.Errorf("version %q: want an exact version X.Y.Z such as %s", o.Version, DefaultVersion)
	}
	var b bytes.Buffer
	if err := starterTmpl.Execute(&b, o); err != nil {
		return nil, fmt.Errorf("starter manifest: %w", err)
	}
	return b.Bytes(), nil
}

var starterTmpl = template.Must(template.New("starter").Parse(`# mmgap.yaml: what an air-gapped Mattermost installation needs, and where to get it.
# Written by "mmgap init --method {{.Method}}". Edit it, then:
#   mmgap plan -f mmgap.yaml      # every artifact, its source and the space it needs
#   mmgap gather -f mmgap.yaml    # fetch, verify and bundle
# Editors with YAML language support can validate it against schema/mmgap.schema.json.
apiVersion: mmgap.io/v1alpha1
kind: Manifest
metadata:
  name: mattermost-{{.Method}}
  description: Mattermost {{.Version}} ({{.Edition}} edition), deployed with {{if eq .Method "tarball"}}the release tarball{{else if eq .Method "docker"}}Docker Compose{{else}}Kubernetes{{end}}

# mmgap expands this section into the images, files, Helm charts and Debian
# packages the deployment needs, each checked against its published digest,
# checksum or signature.
mattermost:
  # The exact Mattermost server version, X.Y.Z.
  version: {{.Version}}
  # enterprise or team.
  edition: {{.Edition}}
  # tarball, docker or kubernetes.
  method: {{.Method}}
  # CPU architectures to gather for: amd64 and/or arm64.
  architectures: [amd64]
  components:
    postgres:
      # PostgreSQL major version; Mattermost v11 needs 14 or later.
      version: 17
      # false when Mattermost uses a database server you already run.
      enabled: true
    # local (a directory or volume) or minio (S3-compatible object storage).
    fileStorage: local
    # nginx as the TLS-terminating reverse proxy.
    nginx: {{if eq .Method "kubernetes"}}false{{else}}true{{end}}
    # Prometheus, node-exporter and Grafana.
    monitoring: false
    # none (database search), elasticsearch or opensearch.
    search: none
    # An SMTP relay for email notifications.
    smtp: false
    # An OpenLDAP directory server.
    ldap: false
    # The Calls plugin's services: rtcd (media offload) and calls-offloader (recordings).
    calls:
      rtcd: false
      offloader: false
  # Plugin bundles by id and exact version, verified with Mattermost's plugin
  # signing key (C558 81B8 0F69 E863 B85A D5D1 D1B5 4B47 A5CE FEC4), which mmgap
  # carries; pluginKey names another key file.
  plugins: []
  #  - id: com.mattermost.calls
  #    version: 1.11.0
  # Also gather the plugins Mattermost prepackages (the linux-arm64 tarball has none).
  prepackagedPlugins: false
{{- if eq .Method "tarball"}}
  # The tarball's signature is checked with Mattermost's release key
  # (A1B3 1D46 F0F3 A10B 02CF 2D44 F8F2 C317 4477 4B28). mmgap's built-in copy
  # has an expired self-signature; export a current copy, check its fingerprint
  # with gpg --show-keys, and name it here:
  # releaseKey: keys/mattermost-release.asc
{{- end}}
{{- if eq .Method "kubernetes"}}
  # The Mattermost Operator's database readiness check: builtin runs
  # "mattermost db ping" from the Mattermost image; external (the operator's
  # default) also needs postgres:13. Set the same mode in the Mattermost resource.
  readinessCheck: builtin
{{- end}}
  # Pin a catalog image or chart version, e.g. to your own build or a newer release:
  # images:
  #   postgres: docker.io/library/postgres:17.6-alpine
{{- if eq .Method "kubernetes"}}
  # charts:
  #   mattermost-operator: 1.0.5
  # kubectl and helm are gathered too, checked against their published checksums:
  # tools:
  #   kubectl: 1.34.1
  #   helm: 3.19.0
{{- end}}

# Anything else to carry across, gathered before the catalog's artifacts:
# images:
#   - ref: docker.io/library/busybox:1.37
# files:
#   - url: https://files.example.com/tool-1.0.tar.gz
#     sha256: <64 lowercase hex digits>   # or checksum: {url: …/SHA256SUMS}, or signature: {url, key}

# Fetch from your own mirrors instead of the upstream hosts:
# mirrors:
#   docker.io: registry.example.internal
#   releases.mattermost.com: https://files.example.internal/mattermost
`))
