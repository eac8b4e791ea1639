// Package manifest reads mmgap.yaml, the file that says what an air-gapped
// Mattermost installation needs: container images, files such as the
// Mattermost release tarball, Helm charts, and the mirrors that fetchers use
// instead of upstream hosts.
//
// # Decoding
//
// [Parse] and [Load] decode strictly. The YAML is parsed into a yaml.Node
// tree and walked against the Go types by reflection, so that every problem
// carries the file, line and column where it is: unknown fields (with a
// "did you mean" suggestion and the list of known fields), values of the
// wrong type, duplicate keys, missing required fields, and then the meaning
// of the values (image references, digests, platforms, URLs, chart sources,
// mirrors, duplicate names). All problems are collected, up to [MaxErrors],
// and returned together as one [*Errors], one "FILE:LINE:COL: message" per
// line. Readers check apiVersion first: a manifest whose apiVersion is
// missing or not one of [SupportedAPIVersions] is rejected with that single
// error, since nothing else in it can be interpreted.
//
// The input is untrusted: files larger than [MaxSize] are refused, YAML
// aliases are followed with cycle detection and a budget (see
// [MaxAliasExpansion]) so that "billion laughs" documents fail fast, and
// only one YAML document per file is accepted.
//
// # The mattermost section
//
// The optional mattermost: section ([Mattermost]) describes the deployment
// instead of listing its artifacts: version, edition, method,
// architectures, components, plugins, and pins for catalog images and
// charts. This package decodes and validates it (closed value sets with
// suggestions, exact versions, PostgreSQL at least 14 for Mattermost v11)
// and resolves its key files into [Mattermost.ReleaseKeyPath] and
// [Mattermost.PluginKeyPath]; internal/catalog expands it into images,
// files and charts. [Mattermost.WithDefaults] fills in the defaults.
//
// # Parse, Load and Check
//
// Parse and Load look only at the manifest's own bytes; they never touch
// the network and never read the files it points to. Signature key paths
// are resolved relative to the manifest's directory into
// [Signature.KeyPath] (an absolute path when the manifest came from Load),
// but whether that file exists is not checked there, so a manifest can be
// planned or linted on a machine that does not hold the keys.
//
// [Manifest.Check] is the separate, explicit step that looks at the local
// file system: it reports, with the manifest position, every referenced key
// file that is missing, unreadable, not a regular file, too large, or not
// an OpenPGP public key. Commands that are about to fetch and verify
// (gather) call it; commands that only read the manifest (plan, lint) need
// not.
//
// # Schema
//
// The JSON Schema for editors lives at schema/mmgap.schema.json at the root
// of the repository. It is generated from these types and their doc
// comments; a test fails when the committed file is out of date.
// Regenerate it with:
//
//	go generate ./internal/manifest
//
// # Growing the format
//
// New top-level sections are added as new fields of [Manifest] with their
// own types; the decoder needs no change for structs, pointers to structs,
// slices, maps with string keys, strings, integers, floats and booleans.
// Mark required fields with the struct tag jsonschema:"required"; both the
// decoder and the schema read it.
package manifest

//go:generate go test -run ^TestSchemaUpToDate$ -update .
