package manifest

// header is the start of every test manifest; bodies begin on line 5.
const header = "apiVersion: mmgap.io/v1alpha1\nkind: Manifest\nmetadata:\n  name: test\n"

const hexA = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// errorCase is an invalid manifest and the exact problems Parse reports.
type errorCase struct {
	name string
	doc  string
	want []string
	// schema says whether the JSON schema rejects the document too; some
	// checks (image references, platforms by name, mirrors, duplicate
	// names and keys) are beyond it.
	schema bool
}

var errorCases = []errorCase{
	// Header: apiVersion is checked first and alone.
	{name: "apiVersion missing", doc: "kind: Manifest\nmetadata: {name: x}\n", want: []string{
		`m.yaml:1:1: missing apiVersion; this mmgap reads apiVersion: mmgap.io/v1alpha1`}, schema: true},
	{name: "apiVersion unsupported", doc: "apiVersion: mmgap.io/v1\nkind: Manifest\n", want: []string{
		`m.yaml:1:13: unsupported apiVersion "mmgap.io/v1"; this mmgap reads mmgap.io/v1alpha1; a newer mmgap may read it`}, schema: true},
	{name: "apiVersion checked before anything else", doc: "bogus: 1\nkind: Other\napiVersion: v2\n", want: []string{
		`m.yaml:3:13: unsupported apiVersion "v2"; this mmgap reads mmgap.io/v1alpha1`}, schema: true},
	{name: "apiVersion not a string", doc: "apiVersion: [a]\n", want: []string{
		`m.yaml:1:13: apiVersion must be a string such as mmgap.io/v1alpha1, got a list`}, schema: true},
	{name: "kind missing", doc: "apiVersion: mmgap.io/v1alpha1\nmetadata: {name: x}\n", want: []string{
		`m.yaml:1:1: missing kind; set kind: Manifest`}, schema: true},
	{name: "kind wrong", doc: "apiVersion: mmgap.io/v1alpha1\nkind: Bundle\n", want: []string{
		`m.yaml:2:7: kind "Bundle" is not Manifest; set kind: Manifest`}, schema: true},
	{name: "unknown top-level field with suggestion", doc: header + "image:\n  - ref: postgres:15\n", want: []string{
		`m.yaml:5:1: unknown field "image" at the top level; did you mean "images"? (known fields: apiVersion, kind, metadata, mattermost, images, files, charts, mirrors)`}, schema: true},
	{name: "unknown field in image with suggestion", doc: header + "images:\n  - ref: postgres:15\n    platfrom: [linux/amd64]\n", want: []string{
		`m.yaml:7:5: unknown field "platfrom" in images[0]; did you mean "platforms"? (known fields: name, ref, platforms)`}, schema: true},
	{name: "unknown field without suggestion", doc: header + "files:\n  - url: https://h/f\n    sha256: " + hexA + "\n    digest-algo: x\n", want: []string{
		`m.yaml:8:5: unknown field "digest-algo" in files[0] (known fields: name, version, url, sha256, signature, checksum)`}, schema: true},
	{name: "unknown field case", doc: header + "Images: []\n", want: []string{
		`m.yaml:5:1: unknown field "Images" at the top level; did you mean "images"? (known fields: apiVersion, kind, metadata, mattermost, images, files, charts, mirrors)`}, schema: true},
	{name: "string where list expected", doc: header + "images:\n  - ref: postgres:15\n    platforms: linux/amd64\n", want: []string{
		`m.yaml:7:16: images[0].platforms: expected a list of strings, got a string ("linux/amd64"); write a list, e.g. [linux/amd64]`}, schema: true},
	{name: "list where string expected", doc: header + "images:\n  - ref: [postgres:15]\n", want: []string{
		`m.yaml:6:10: images[0].ref: expected a string, got a list`}, schema: true},
	{name: "mapping where list expected", doc: header + "images:\n  ref: postgres:15\n", want: []string{
		`m.yaml:6:3: images: expected a list of mappings, got a mapping`}, schema: true},
	{name: "scalar where mapping expected", doc: header + "files:\n  - https://h/f\n", want: []string{
		`m.yaml:6:5: files[0]: expected a mapping, got a string ("https://h/f")`}, schema: true},
	{name: "metadata scalar", doc: "apiVersion: mmgap.io/v1alpha1\nkind: Manifest\nmetadata: test\n", want: []string{
		`m.yaml:3:11: metadata: expected a mapping, got a string ("test")`}, schema: true},
	{name: "mirrors list", doc: header + "mirrors: [a, b]\n", want: []string{
		`m.yaml:5:10: mirrors: expected a mapping, got a list`}, schema: true},
	{name: "mirror value mapping", doc: header + "mirrors:\n  docker.io: {host: x}\n", want: []string{
		`m.yaml:6:14: mirrors["docker.io"]: expected a string, got a mapping`}, schema: true},
	{name: "duplicate top-level key", doc: header + "images: []\nimages: []\n", want: []string{
		`m.yaml:6:1: duplicate key "images" at the top level; the first is at line 5`}, schema: true},
	{name: "duplicate nested key", doc: header + "images:\n  - ref: postgres:15\n    ref: postgres:16\n", want: []string{
		`m.yaml:7:5: duplicate key "ref" in images[0]; the first is at line 6`}, schema: true},
	{name: "duplicate mirror key", doc: header + "mirrors:\n  docker.io: a.example\n  docker.io: b.example\n", want: []string{
		`m.yaml:7:3: duplicate key "docker.io" in mirrors; the first is at line 6`}, schema: true},
	{name: "missing metadata", doc: "apiVersion: mmgap.io/v1alpha1\nkind: Manifest\n", want: []string{
		`m.yaml:1:1: missing required field "metadata" at the top level`}, schema: true},
	{name: "empty metadata", doc: "apiVersion: mmgap.io/v1alpha1\nkind: Manifest\nmetadata:\n", want: []string{
		`m.yaml:3:10: missing required field "name" in metadata`}, schema: true},
	{name: "missing image ref", doc: header + "images:\n  - name: x\n    platforms: [linux/amd64]\n", want: []string{
		`m.yaml:6:5: missing required field "ref" in images[0]`}, schema: true},
	{name: "empty image ref", doc: header + "images:\n  - ref: \"\"\n", want: []string{
		`m.yaml:6:10: images[0].ref is required and must not be empty`}, schema: true},
	{name: "null list item", doc: header + "images:\n  -\n", want: []string{
		`m.yaml:6:4: missing required field "ref" in images[0]`}, schema: true},
	{name: "missing chart version", doc: header + "charts:\n  - repo: https://h/c\n    chart: c\n", want: []string{
		`m.yaml:6:5: missing required field "version" in charts[0]`}, schema: true},
	{name: "missing signature key", doc: header + "files:\n  - url: https://h/f\n    signature:\n      url: https://h/f.sig\n", want: []string{
		`m.yaml:8:7: missing required field "key" in files[0].signature`}, schema: true},
	{name: "missing file url", doc: header + "files:\n  - sha256: " + hexA + "\n", want: []string{
		`m.yaml:6:5: missing required field "url" in files[0]`}, schema: true},
	{name: "ref without tag", doc: header + "images:\n  - ref: docker.io/library/postgres\n", want: []string{
		`m.yaml:6:10: images[0].ref: image reference "docker.io/library/postgres" names neither a tag nor a digest; add one, e.g. docker.io/library/postgres:<tag> (mmgap never assumes :latest)`}, schema: true},
	{name: "ref uppercase", doc: header + "images:\n  - ref: docker.io/Mattermost/server:1\n", want: []string{
		`m.yaml:6:10: images[0].ref: repository "docker.io/Mattermost/server" must be lowercase`}, schema: false},
	{name: "ref bad digest", doc: header + "images:\n  - ref: postgres@sha256:abc\n", want: []string{
		`m.yaml:6:10: images[0].ref: digest "sha256:abc" is not sha256:<64 lowercase hex digits>`}, schema: true},
	{name: "ref sha512", doc: header + "images:\n  - ref: postgres@sha512:" + hexA + hexA + "\n", want: []string{
		`m.yaml:6:10: images[0].ref: digest "sha512:0123456789abcdef0123456789abcdef0123456789abcdef01234..." is not sha256:<64 lowercase hex digits>`}, schema: true},
	{name: "ref scheme", doc: header + "images:\n  - ref: https://docker.io/library/postgres:15\n", want: []string{
		`m.yaml:6:10: images[0].ref: image reference "https://docker.io/library/postgres:15" must not contain a scheme; write registry/repository:tag`}, schema: true},
	{name: "ref bad tag", doc: header + "images:\n  - ref: postgres:1+2\n", want: []string{
		"m.yaml:6:10: images[0].ref: invalid image reference \"postgres:1+2\": tag can only contain the characters `abcdefghijklmnopqrstuvwxyz0123456789_-.ABCDEFGHIJKLMNOPQRSTUVWXYZ`: 1+2"}, schema: false},
	{name: "ref empty tag", doc: header + "images:\n  - ref: 'postgres:'\n", want: []string{
		`m.yaml:6:10: images[0].ref: image reference "postgres:" has an empty tag after ':'`}, schema: true},
	{name: "ref double slash", doc: header + "images:\n  - ref: docker.io//postgres:15\n", want: []string{
		`m.yaml:6:10: images[0].ref: repository "docker.io//postgres" has an empty path element`}, schema: true},
	{name: "ref registry uppercase", doc: header + "images:\n  - ref: Registry.example/x:1\n", want: []string{
		`m.yaml:6:10: images[0].ref: registry host "Registry.example" must be lowercase; write "registry.example"`}, schema: false},
	{name: "sha256 uppercase", doc: header + "files:\n  - url: https://h/f\n    sha256: 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF\n", want: []string{
		`m.yaml:7:13: files[0].sha256: must be lowercase hex; write 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef`}, schema: true},
	{name: "sha256 prefixed", doc: header + "files:\n  - url: https://h/f\n    sha256: sha256:" + hexA + "\n", want: []string{
		`m.yaml:7:13: files[0].sha256: drop the "sha256:" prefix; give only the 64 hex digits`}, schema: true},
	{name: "sha256 short", doc: header + "files:\n  - url: https://h/f\n    sha256: abc123\n", want: []string{
		`m.yaml:7:13: files[0].sha256: must be 64 lowercase hex digits, got 6 characters`}, schema: true},
	{name: "platform bad format", doc: header + "images:\n  - ref: postgres:15\n    platforms: [linux]\n", want: []string{
		`m.yaml:7:17: images[0].platforms[0]: platform "linux" is not os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8`}, schema: true},
	{name: "platform unknown arch", doc: header + "images:\n  - ref: postgres:15\n    platforms: [linux/amd46]\n", want: []string{
		`m.yaml:7:17: images[0].platforms[0]: platform "linux/amd46": unknown architecture "amd46"; did you mean "amd64"? (known: 386, amd64, arm, arm64, loong64, mips, mips64, mips64le, mipsle, ppc64, ppc64le, riscv64, s390x, wasm)`}, schema: false},
	{name: "platform alias", doc: header + "images:\n  - ref: postgres:15\n    platforms: [linux/x86_64]\n", want: []string{
		`m.yaml:7:17: images[0].platforms[0]: platform "linux/x86_64": unknown architecture "x86_64"; did you mean "amd64"? (known: 386, amd64, arm, arm64, loong64, mips, mips64, mips64le, mipsle, ppc64, ppc64le, riscv64, s390x, wasm)`}, schema: true},
	{name: "platform unknown os", doc: header + "images:\n  - ref: postgres:15\n    platforms: [Linux/amd64]\n", want: []string{
		`m.yaml:7:17: images[0].platforms[0]: platform "Linux/amd64": unknown operating system "Linux"; did you mean "linux"? (known: aix, android, darwin, dragonfly, freebsd, illumos, ios, js, linux, netbsd, openbsd, plan9, solaris, wasip1, windows)`}, schema: true},
	{name: "platform duplicate", doc: header + "images:\n  - ref: postgres:15\n    platforms: [linux/amd64, linux/arm64, linux/amd64]\n", want: []string{
		`m.yaml:7:43: images[0].platforms[2]: platform "linux/amd64" is already listed at images[0].platforms[0]`}, schema: true},
	{name: "platform os version", doc: header + "images:\n  - ref: postgres:15\n    platforms: ['windows/amd64:10.0.17763']\n", want: []string{
		`m.yaml:7:17: images[0].platforms[0]: platform "windows/amd64:10.0.17763": os version suffixes (:...) are not supported; write os/arch[/variant]`}, schema: true},
	{name: "platform variant", doc: header + "images:\n  - ref: postgres:15\n    platforms: [linux/arm/V7]\n", want: []string{
		`m.yaml:7:17: images[0].platforms[0]: platform "linux/arm/V7": variant "V7" must be lowercase letters, digits and dots, e.g. v8`}, schema: true},
	{name: "platform empty", doc: header + "images:\n  - ref: postgres:15\n    platforms: ['']\n", want: []string{
		`m.yaml:7:17: images[0].platforms[0]: empty platform; write os/arch, e.g. linux/amd64`}, schema: true},
	{name: "url ftp", doc: header + "files:\n  - url: ftp://h/f\n    sha256: " + hexA + "\n", want: []string{
		`m.yaml:6:10: files[0].url: scheme "ftp" is not supported; use https:// or http://`}, schema: true},
	{name: "url no scheme", doc: header + "files:\n  - url: h.example/f\n    sha256: " + hexA + "\n", want: []string{
		`m.yaml:6:10: files[0].url: url has no scheme; write https://h.example/f`}, schema: true},
	{name: "url credentials", doc: header + "files:\n  - url: https://user:secret@h/f\n    sha256: " + hexA + "\n", want: []string{
		`m.yaml:6:10: files[0].url: url must not contain credentials (user:password@); configure them outside the manifest`}, schema: true},
	{name: "url oci", doc: header + "files:\n  - url: oci://h/f\n    sha256: " + hexA + "\n", want: []string{
		`m.yaml:6:10: files[0].url: scheme "oci" is not supported here; charts from OCI registries go under charts: with oci:`}, schema: true},
	{name: "url no host", doc: header + "files:\n  - url: https:///f\n    sha256: " + hexA + "\n", want: []string{
		`m.yaml:6:10: files[0].url: url has no host`}, schema: true},
	{name: "url bad port", doc: header + "files:\n  - url: https://h:99999/f\n    sha256: " + hexA + "\n", want: []string{
		`m.yaml:6:10: files[0].url: url host "h:99999" has an invalid port`}, schema: false},
	{name: "url bad escape", doc: header + "files:\n  - url: https://h/%zz\n    sha256: " + hexA + "\n", want: []string{
		`m.yaml:6:10: files[0].url: not a valid URL: invalid URL escape "%zz"`}, schema: false},
	{name: "signature url", doc: header + "files:\n  - url: https://h/f\n    signature: {url: file:///f.sig, key: k.asc}\n", want: []string{
		`m.yaml:7:22: files[0].signature.url: scheme "file" is not supported; use https:// or http://`}, schema: true},
	{name: "chart repo url", doc: header + "charts:\n  - repo: ftp://h/c\n    chart: c\n    version: 1.0.0\n", want: []string{
		`m.yaml:6:11: charts[0].repo: scheme "ftp" is not supported; use https:// or http://`}, schema: true},
	{name: "chart both", doc: header + "charts:\n  - repo: https://h/c\n    chart: c\n    oci: oci://r.example/c\n    version: 1.0.0\n", want: []string{
		`m.yaml:8:10: charts[0]: give either repo (an HTTP chart repository) or oci (an OCI registry), not both`}, schema: true},
	{name: "chart neither", doc: header + "charts:\n  - name: c\n    version: 1.0.0\n", want: []string{
		`m.yaml:6:5: charts[0]: missing chart source; give repo and chart for an HTTP chart repository, or oci for an OCI registry`}, schema: true},
	{name: "chart repo without chart", doc: header + "charts:\n  - repo: https://h/c\n    version: 1.0.0\n", want: []string{
		`m.yaml:6:5: charts[0]: chart is required with repo; give the chart's name in that repository`}, schema: true},
	{name: "chart with oci", doc: header + "charts:\n  - oci: oci://r.example/charts/c\n    chart: c\n    version: 1.0.0\n", want: []string{
		`m.yaml:7:12: charts[0].chart: chart is only used with repo; with oci the reference names the chart`}, schema: true},
	{name: "chart oci tag", doc: header + "charts:\n  - oci: oci://r.example/charts/c:1.0.0\n    version: 1.0.0\n", want: []string{
		`m.yaml:6:10: charts[0].oci: put the chart version in version, not as a tag in the oci reference`}, schema: true},
	{name: "chart oci digest", doc: header + "charts:\n  - oci: oci://r.example/charts/c@sha256:" + hexA + "\n    version: 1.0.0\n", want: []string{
		`m.yaml:6:10: charts[0].oci: pin the chart with version, not a digest in the oci reference`}, schema: true},
	{name: "chart oci no path", doc: header + "charts:\n  - oci: oci://r.example\n    version: 1.0.0\n", want: []string{
		`m.yaml:6:10: charts[0].oci: oci reference must name a registry host and a repository, e.g. oci://registry.example.com/charts/name`}, schema: true},
	{name: "chart oci no scheme", doc: header + "charts:\n  - oci: r.example/charts/c\n    version: 1.0.0\n", want: []string{
		`m.yaml:6:10: charts[0].oci: "r.example/charts/c" must start with oci://, e.g. oci://registry.example.com/charts/name`}, schema: true},
	{name: "chart repo oci", doc: header + "charts:\n  - repo: oci://r.example/charts\n    chart: c\n    version: 1.0.0\n", want: []string{
		`m.yaml:6:11: charts[0].repo: an oci:// reference goes in oci, not repo`}, schema: true},
	{name: "chart version range", doc: header + "charts:\n  - repo: https://h/c\n    chart: c\n    version: '>=1.0.0'\n", want: []string{
		`m.yaml:8:14: charts[0].version: ">=1.0.0" is a version range; give one exact version, e.g. 2.6.0`}, schema: true},
	{name: "chart version wildcard", doc: header + "charts:\n  - repo: https://h/c\n    chart: c\n    version: 1.x\n", want: []string{
		`m.yaml:8:14: charts[0].version: "1.x" is a version range; give one exact version, e.g. 2.6.0`}, schema: true},
	{name: "chart version not semver", doc: header + "charts:\n  - repo: https://h/c\n    chart: c\n    version: 1.0\n", want: []string{
		`m.yaml:8:14: charts[0].version: "1.0" is not a semantic version such as 2.6.0`}, schema: true},
	{name: "chart name invalid", doc: header + "charts:\n  - repo: https://h/c\n    chart: My_Chart\n    version: 1.0.0\n", want: []string{
		`m.yaml:7:12: charts[0].chart: "My_Chart" must be lowercase; write "my_chart"`}, schema: true},
	{name: "file without sha256 or signature", doc: header + "files:\n  - url: https://h/f\n", want: []string{
		`m.yaml:6:5: files[0]: give sha256, signature or checksum (or several), so that the download can be verified`}, schema: true},
	{name: "checksum url", doc: header + "files:\n  - url: https://h/f\n    checksum: {url: file:///f.sha256}\n", want: []string{
		`m.yaml:7:21: files[0].checksum.url: scheme "file" is not supported; use https:// or http://`}, schema: true},
	{name: "checksum url missing", doc: header + "files:\n  - url: https://h/f\n    checksum: {}\n", want: []string{
		`m.yaml:7:15: missing required field "url" in files[0].checksum`}, schema: true},
	{name: "checksum unknown field", doc: header + "files:\n  - url: https://h/f\n    checksum: {url: https://h/f.sha256, algo: sha512}\n", want: []string{
		`m.yaml:7:41: unknown field "algo" in files[0].checksum (known fields: url)`}, schema: true},
	{name: "file name underivable", doc: header + "files:\n  - url: https://h/\n    sha256: " + hexA + "\n", want: []string{
		`m.yaml:6:10: files[0]: cannot derive a name from url (its path has no last element); set name`}, schema: false},
	{name: "key url", doc: header + "files:\n  - url: https://h/f\n    signature: {url: https://h/f.sig, key: 'https://h/key.asc'}\n", want: []string{
		`m.yaml:7:44: files[0].signature.key: key is a local file (an OpenPGP public key) relative to the manifest, not a URL; download it and keep it next to the manifest`}, schema: false},
	{name: "duplicate derived image names", doc: header + "images:\n  - ref: postgres:15\n  - ref: docker.io/library/postgres:16\n", want: []string{
		`m.yaml:7:5: images[1]: name "postgres" (derived) is already used by images[0] (line 6); give one of them a distinct name`}, schema: false},
	{name: "duplicate explicit file names", doc: header + "files:\n  - name: f\n    url: https://h/a\n    sha256: " + hexA + "\n  - name: f\n    url: https://h/b\n    sha256: " + hexA + "\n", want: []string{
		`m.yaml:9:11: files[1]: name "f" is already used by files[0] (line 6); give one of them a distinct name`}, schema: false},
	{name: "duplicate chart names", doc: header + "charts:\n  - repo: https://h/c\n    chart: c\n    version: 1.0.0\n  - oci: oci://r.example/x/c\n    version: 1.0.0\n", want: []string{
		`m.yaml:9:5: charts[1]: name "c" (derived) is already used by charts[0] (line 6); give one of them a distinct name`}, schema: false},
	{name: "metadata name invalid", doc: "apiVersion: mmgap.io/v1alpha1\nkind: Manifest\nmetadata:\n  name: Mattermost\n", want: []string{
		`m.yaml:4:9: metadata.name: "Mattermost" must be lowercase; write "mattermost"`}, schema: true},
	{name: "metadata name chars", doc: "apiVersion: mmgap.io/v1alpha1\nkind: Manifest\nmetadata:\n  name: -a b\n", want: []string{
		`m.yaml:4:9: metadata.name: "-a b" may hold only lowercase letters, digits, '.', '_' and '-', and must start with a letter or digit`}, schema: true},
	{name: "image name invalid", doc: header + "images:\n  - name: _x\n    ref: postgres:15\n", want: []string{
		`m.yaml:6:11: images[0].name: "_x" may hold only lowercase letters, digits, '.', '_' and '-', and must start with a letter or digit`}, schema: true},
	{name: "mirror key url", doc: header + "mirrors:\n  https://docker.io: m.example\n", want: []string{
		`m.yaml:6:22: mirrors["https://docker.io"]: key: host "https://docker.io" is a URL; give only host[:port] (keys are upstream hosts, e.g. docker.io)`}, schema: false},
	{name: "mirror key path", doc: header + "mirrors:\n  docker.io/library: m.example\n", want: []string{
		`m.yaml:6:22: mirrors["docker.io/library"]: key: host "docker.io/library" is not host or host:port (keys are upstream hosts, e.g. docker.io)`}, schema: false},
	{name: "mirror value path without scheme", doc: header + "mirrors:\n  docker.io: m.example/proxy\n", want: []string{
		`m.yaml:6:14: mirrors["docker.io"]: mirror "m.example/proxy" has a path but no scheme; write https://m.example/proxy`}, schema: true},
	{name: "mirror value query", doc: header + "mirrors:\n  docker.io: https://m.example/p?x=1\n", want: []string{
		`m.yaml:6:14: mirrors["docker.io"]: mirror must not have a query (?...)`}, schema: true},
	{name: "mirror value scheme", doc: header + "mirrors:\n  docker.io: ftp://m.example\n", want: []string{
		`m.yaml:6:14: mirrors["docker.io"]: mirror scheme "ftp" is not supported; use https:// or http://`}, schema: true},
	{name: "mirror value credentials", doc: header + "mirrors:\n  docker.io: https://u:p@m.example\n", want: []string{
		`m.yaml:6:14: mirrors["docker.io"]: mirror must not contain credentials (user:password@); configure them outside the manifest`}, schema: true},
	{name: "mirror value empty", doc: header + "mirrors:\n  docker.io: ''\n", want: []string{
		`m.yaml:6:14: mirrors["docker.io"]: empty mirror; give host[:port] or a base URL`}, schema: true},
	{name: "mirror value port", doc: header + "mirrors:\n  docker.io: m.example:0\n", want: []string{
		`m.yaml:6:14: mirrors["docker.io"]: mirror host "m.example:0" has an invalid port`}, schema: false},
	{name: "yaml syntax", doc: header + "images:\n  - ref: [\n", want: []string{
		`m.yaml:6: invalid YAML: did not find expected node content`}, schema: true},
	{name: "yaml tab", doc: header + "images:\n\t- ref: x\n", want: []string{
		`m.yaml:6: invalid YAML: found character that cannot start any token`}, schema: true},
	{name: "two documents", doc: header + "---\napiVersion: mmgap.io/v1alpha1\nkind: Manifest\nmetadata:\n  name: test\n", want: []string{
		`m.yaml:5:1: a manifest is one YAML document; remove this second one (and the --- before it)`}, schema: false},
	{name: "empty", doc: "", want: []string{
		`m.yaml:1:1: the manifest is empty; start it with apiVersion: mmgap.io/v1alpha1`}, schema: true},
	{name: "comments only", doc: "# nothing\n", want: []string{
		`m.yaml:1:1: the manifest is empty; start it with apiVersion: mmgap.io/v1alpha1`}, schema: true},
	{name: "top-level list", doc: "- a\n", want: []string{
		`m.yaml:1:1: expected a mapping at the top level (apiVersion, kind, metadata, ...), got a list`}, schema: true},
	{name: "custom tag", doc: header + "images:\n  - ref: !custom postgres:15\n", want: []string{
		`m.yaml:6:10: images[0].ref: unsupported YAML tag "!custom"; remove it`}, schema: false},
	{name: "binary tag", doc: header + "images:\n  - ref: !!binary cG9zdGdyZXM6MTU=\n", want: []string{
		`m.yaml:6:10: images[0].ref: unsupported YAML tag "!!binary"; remove it`}, schema: false},
	{name: "merge key", doc: header + "images:\n  - &base {ref: postgres:15}\n  - <<: *base\n    name: other\n", want: []string{
		`m.yaml:7:5: merge keys (<<) are not supported in images[1]; write the fields out`,
		`m.yaml:7:5: missing required field "ref" in images[1]`}, schema: false},
	{name: "complex key", doc: header + "images:\n  - ? [a]\n    : x\n", want: []string{
		`m.yaml:6:5: missing required field "ref" in images[0]`,
		`m.yaml:6:7: keys in images[0] must be plain strings, got a list`}, schema: true},
	{name: "null key", doc: header + "images:\n  - ~: x\n", want: []string{
		`m.yaml:6:5: keys in images[0] must be plain strings, got null`,
		`m.yaml:6:5: missing required field "ref" in images[0]`}, schema: true},
	{name: "alias in list", doc: header + "x: &a [1]\nimages: *a\n", want: []string{
		`m.yaml:5:1: unknown field "x" at the top level (known fields: apiVersion, kind, metadata, mattermost, images, files, charts, mirrors)`,
		`m.yaml:5:8: images[0]: expected a mapping, got a number (1)`}, schema: true},
}
