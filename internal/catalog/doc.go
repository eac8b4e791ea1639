// Package catalog knows what a Mattermost deployment needs. [Expand] turns
// the mattermost: section of an mmgap.yaml (version, edition, method,
// architectures, components, plugins) into a [Plan]: the container images,
// files and Helm charts to gather, the Debian packages the components need
// (data for a package-mirror fetcher), the OpenPGP keys that verify the
// files, and version-aware warnings. [Plan.Apply] merges the plan into a
// copy of the manifest after the user's own entries, so that gather runs
// on it unchanged.
//
// # What each method expands to
//
//   - tarball: the release tarball for each architecture,
//     https://releases.mattermost.com/X.Y.Z/mattermost-X.Y.Z-linux-ARCH.tar.gz
//     (team: mattermost-team-X.Y.Z-...), verified by its detached .sig with
//     Mattermost's release key, and by SHA-256 where mmgap knows the value
//     Mattermost publishes; plus Debian packages for the components
//     (postgresql-N, nginx, prometheus, prometheus-node-exporter, postfix,
//     slapd, ldap-utils). Components Debian does not ship are named in a
//     warning.
//   - docker: the mattermost-enterprise-edition or mattermost-team-edition
//     image at the version, and images for the components (postgres at a
//     version Mattermost supports, nginx, minio, prometheus, node-exporter,
//     grafana, elasticsearch or opensearch, an SMTP relay, openldap, rtcd,
//     calls-offloader), pinned by tag here and by digest at gather time;
//     the docker.io and docker-compose Debian packages.
//   - kubernetes: the Mattermost image and component images; for the
//     enterprise edition the Mattermost Operator image, the images the
//     operator pulls by default (postgres:13 for its readiness check unless
//     readinessCheck is builtin, appropriate/curl, minio/mc with minio) and
//     the mattermost-operator and mattermost-enterprise-edition charts; for
//     the team edition the mattermost-team-edition chart and its curl
//     init-container image. Charts come from https://helm.mattermost.com.
//   - plugins (any method): each plugin bundle and its .sig from
//     https://plugins.releases.mattermost.com/release/PACKAGE-vVERSION-linux-ARCH.tar.gz,
//     where PACKAGE is the plugin's release name (mattermost-plugin-calls
//     for com.mattermost.calls; known ids are mapped, others used as
//     given, and plugins[].package overrides). prepackagedPlugins adds the
//     plugins Mattermost prepackages.
//
// Every upstream host can be redirected with the manifest's mirrors:
// (the fetchers apply them), every image pinned with mattermost.images
// (by catalog name, see [ImageNames]) and every chart version with
// mattermost.charts (see [ChartNames]).
//
// # Keys
//
// mmgap embeds Mattermost's release key (fingerprint
// A1B3 1D46 F0F3 A10B 02CF 2D44 F8F2 C317 4477 4B28) as a [Key] with
// Embedded set; [Plan.WriteKeys] writes it to a directory the caller
// chooses and points the tarball signatures at it. The embedded copy's
// self-signature expired on 2024-04-06 (Mattermost has since extended the
// key), so a warning asks for a current export in mattermost.releaseKey.
//
// mmgap also embeds Mattermost's plugin signing key (fingerprint
// C558 81B8 0F69 E863 B85A D5D1 D1B5 4B47 A5CE FEC4), the copy the server's
// source carries as server/build/plugin-production-public-key.gpg, and checks
// plugin bundles against it; mattermost.pluginKey names another key file.
//
// # Version awareness
//
// Mattermost v11 needs PostgreSQL 14 or later (a lower pin is an error)
// and no longer supports MySQL; the plan warns about stale upstream
// defaults that contradict this: mattermost/docker's POSTGRES_IMAGE_TAG
// 13-alpine, the team-edition chart's bundled MySQL, the operator's
// postgres:13 readiness image and its default Mattermost version, and
// the edition charts' default Mattermost version.
//
// The order of every list in a plan is deterministic: it follows the
// manifest's architectures and plugins and a fixed component order.
package catalog
