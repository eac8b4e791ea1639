package manifest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestParseErrors(t *testing.T) {
	schema := loadSchema(t)
	seen := map[string]bool{}
	for _, tc := range errorCases {
		if seen[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse("m.yaml", []byte(tc.doc))
			if err == nil {
				t.Fatalf("Parse succeeded, want:\n%s", strings.Join(tc.want, "\n"))
			}
			if m != nil {
				t.Errorf("Parse returned a manifest with an error")
			}
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want *Errors", err)
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tc.want, "\n      "))
			}
			var one *Error
			if !errors.As(err, &one) || one.File != "m.yaml" || one != errs.List[0] {
				t.Errorf("errors.As(*Error) = %v, want the first problem", one)
			}
			// The JSON schema rejects what it can express.
			if j, err := yamlToJSONErr([]byte(tc.doc)); err == nil {
				problems := schema.validate(j)
				if rejects := len(problems) > 0; rejects != tc.schema {
					t.Errorf("schema rejects = %v, want %v (problems: %v)", rejects, tc.schema, problems)
				}
			}
		})
	}
}

func TestErrorsCarryPaths(t *testing.T) {
	doc := header + "images:\n  - ref: postgres:15\n    platforms: [linux/amd64, linux/amd46]\n"
	_, err := Parse("m.yaml", []byte(doc))
	var errs *Errors
	if !errors.As(err, &errs) || len(errs.List) != 1 {
		t.Fatalf("err = %v", err)
	}
	e := errs.List[0]
	if e.Path != "images[0].platforms[1]" || e.Line != 7 || e.Col != 30 {
		t.Errorf("got %+v", e)
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{File: "f", Line: 3, Col: 7, Msg: "m"}, "f:3:7: m"},
		{Error{File: "f", Line: 3, Msg: "m"}, "f:3: m"},
		{Error{File: "f", Msg: "m"}, "f: m"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestTooManyErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString(header + "images:\n")
	for range MaxErrors + 5 {
		b.WriteString("  - ref: Bad\n")
	}
	_, err := Parse("m.yaml", []byte(b.String()))
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v", err)
	}
	if len(errs.List) != MaxErrors || !errs.Truncated {
		t.Fatalf("got %d errors, truncated %v", len(errs.List), errs.Truncated)
	}
	lines := strings.Split(err.Error(), "\n")
	if last := lines[len(lines)-1]; last != "m.yaml: too many errors; stopped after 20" {
		t.Errorf("last line = %q", last)
	}
}

func TestTooLarge(t *testing.T) {
	data := []byte(header + "# " + strings.Repeat("x", MaxSize) + "\n")
	_, err := Parse("m.yaml", data)
	want := "m.yaml: manifest is larger than 4194304 bytes (4 MiB); split it or remove what it does not need"
	if err == nil || err.Error() != want {
		t.Fatalf("Parse: %v", err)
	}
	p := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(p)
	if err == nil || err.Error() != strings.Replace(want, "m.yaml", p, 1) {
		t.Fatalf("Load: %v", err)
	}
}

func TestAliasBomb(t *testing.T) {
	// 1,000 aliases to an image whose platforms list holds 1,000 entries:
	// a few kilobytes that would decode to a million values.
	var b strings.Builder
	b.WriteString(header + "images:\n  - &i\n    ref: postgres:15\n    platforms: [")
	for j := range 1000 {
		if j > 0 {
			b.WriteString(", ")
		}
		b.WriteString("linux/amd64")
	}
	b.WriteString("]\n")
	for range 999 {
		b.WriteString("  - *i\n")
	}
	_, err := Parse("m.yaml", []byte(b.String()))
	want := "m.yaml:8:9117: images[100].platforms[700]: aliases expand to more than 100000 values; write the values out instead"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v", err)
	}
	// Aliases within the budget work.
	doc := header + "images:\n  - ref: postgres:15\n    platforms: &p [linux/amd64, linux/arm64]\n  - ref: nginx:1\n    platforms: *p\n"
	m, err := Parse("m.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.Images[1].Platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("platforms via alias = %v", m.Images[1].Platforms)
	}
}

func TestAliasCycle(t *testing.T) {
	// yaml.v3 may build a node that contains an alias to itself; the
	// decoder must not recurse forever.
	for _, doc := range []string{
		header + "images: &a [*a]\n",
		header + "images:\n  - &a {ref: postgres:15, platforms: *a}\n",
		header + "mirrors: &a {docker.io: *a}\n",
	} {
		if _, err := Parse("m.yaml", []byte(doc)); err == nil {
			t.Errorf("Parse(%q) succeeded", doc)
		}
	}
}

func TestParseFull(t *testing.T) {
	m, err := Load("testdata/valid/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if m.Filename() != "testdata/valid/full.yaml" {
		t.Errorf("Filename = %q", m.Filename())
	}
	if got, want := len(m.Images)+len(m.Files)+len(m.Charts)+len(m.Mirrors), 3+2+2+3; got != want {
		t.Fatalf("got %d entries, want %d", got, want)
	}
	var names []string
	for _, i := range m.Images {
		names = append(names, i.DisplayName())
	}
	for _, f := range m.Files {
		names = append(names, f.DisplayName())
	}
	for _, c := range m.Charts {
		names = append(names, c.DisplayName())
	}
	want := []string{"mattermost", "postgres", "nginx", "mattermost-tarball", "tool.bin", "mattermost-team-edition", "mattermost-operator"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("display names = %q, want %q", names, want)
	}
	if !reflect.DeepEqual(m.Images[1].Platforms, m.Images[0].Platforms) {
		t.Errorf("aliased platforms = %v", m.Images[1].Platforms)
	}
	abs, _ := filepath.Abs("testdata/valid/keys/mattermost-release.asc")
	if got := m.Files[0].Signature.KeyPath; got != abs {
		t.Errorf("KeyPath = %q, want %q", got, abs)
	}
	if m.Charts[0].IsOCI() || !m.Charts[1].IsOCI() {
		t.Errorf("IsOCI wrong")
	}
	if pos, ok := m.Position("images[1].platforms[1]"); !ok || pos != (Position{Line: 10, Col: 41}) {
		t.Errorf("Position via alias = %v %v", pos, ok)
	}
	if pos, ok := m.Position(`mirrors["[::1]:8443"]`); !ok || pos != (Position{Line: 34, Col: 17}) {
		t.Errorf("Position of mirror = %v %v", pos, ok)
	}
	// A path that was not written reports its nearest written parent.
	if pos, ok := m.Position("images[2].name"); !ok || pos != (Position{Line: 13, Col: 5}) {
		t.Errorf("Position of unwritten path = %v %v", pos, ok)
	}
	e := m.ErrorAt("charts[1].version", "charts[1].version: no such tag %q", "v1.0.0-rc.1+build.5")
	if got := e.Error(); got != `testdata/valid/full.yaml:30:14: charts[1].version: no such tag "v1.0.0-rc.1+build.5"` {
		t.Errorf("ErrorAt = %q", got)
	}
}

func TestRoundTrip(t *testing.T) {
	m1, err := Parse("testdata/valid/full.yaml", mustRead(t, "testdata/valid/full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(m1)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Parse("testdata/valid/full.yaml", out)
	if err != nil {
		t.Fatalf("re-parse:\n%s\n%v", out, err)
	}
	if !sameContent(m1, m2) {
		t.Errorf("round trip changed the manifest:\n%s", out)
	}
	out2, err := yaml.Marshal(m2)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(out2) {
		t.Errorf("marshal is not stable:\n%s\n---\n%s", out, out2)
	}
	if strings.Contains(string(out), "KeyPath") || strings.Contains(string(out), "keypath") {
		t.Errorf("KeyPath leaked into YAML:\n%s", out)
	}
}

// sameContent compares the exported content of two manifests.
func sameContent(a, b *Manifest) bool {
	return a.APIVersion == b.APIVersion && a.Kind == b.Kind &&
		reflect.DeepEqual(a.Metadata, b.Metadata) &&
		reflect.DeepEqual(a.Images, b.Images) &&
		reflect.DeepEqual(a.Files, b.Files) &&
		reflect.DeepEqual(a.Charts, b.Charts) &&
		reflect.DeepEqual(a.Mirrors, b.Mirrors)
}

func mustRead(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExampleManifest(t *testing.T) {
	m, err := Load("../../examples/mmgap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if m.Metadata.Name != "mattermost-11.4" || len(m.Images) != 2 || len(m.Files) != 0 || len(m.Charts) != 1 {
		t.Fatalf("unexpected example: %+v", m)
	}
	for _, img := range m.Images {
		if !reflect.DeepEqual(img.Platforms, []string{"linux/amd64"}) {
			t.Errorf("%s: platforms %v", img.DisplayName(), img.Platforms)
		}
	}
	if m.Charts[0].Repo != "https://helm.mattermost.com" || m.Charts[0].DisplayName() != "mattermost-team-edition" {
		t.Errorf("chart entry: %+v", m.Charts[0])
	}
	if err := m.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "load manifest: ") {
		t.Fatalf("err = %v", err)
	}
	var errs *Errors
	if errors.As(err, &errs) {
		t.Errorf("a read failure must not be *Errors")
	}
}

func TestParseResolvesKeysAgainstFilename(t *testing.T) {
	doc := header + "files:\n  - url: https://h/f\n    signature: {url: https://h/f.sig, key: keys/k.asc}\n" +
		"  - url: https://h/g\n    signature: {url: https://h/g.sig, key: /etc/mmgap/k.asc}\n"
	m, err := Parse(filepath.FromSlash("conf/mmgap.yaml"), []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Files[0].Signature.KeyPath, filepath.FromSlash("conf/keys/k.asc"); got != want {
		t.Errorf("relative KeyPath = %q, want %q", got, want)
	}
	if got, want := m.Files[1].Signature.KeyPath, filepath.FromSlash("/etc/mmgap/k.asc"); got != want {
		t.Errorf("absolute KeyPath = %q, want %q", got, want)
	}
}

func TestImageHelpers(t *testing.T) {
	for _, tc := range []struct {
		ref, display, registry, repo string
	}{
		{"docker.io/mattermost/mattermost-enterprise-edition:11.4.0", "mattermost-enterprise-edition", "index.docker.io", "mattermost/mattermost-enterprise-edition"},
		{"postgres:15-alpine", "postgres", "index.docker.io", "library/postgres"},
		{"localhost:5000/a/b:1@sha256:" + hexA, "b", "localhost:5000", "a/b"},
		{"ghcr.io/x/y@sha256:" + hexA, "y", "ghcr.io", "x/y"},
	} {
		img := Image{Ref: tc.ref}
		if got := img.DisplayName(); got != tc.display {
			t.Errorf("%s: DisplayName = %q, want %q", tc.ref, got, tc.display)
		}
		r, err := img.Reference()
		if err != nil {
			t.Errorf("%s: Reference: %v", tc.ref, err)
			continue
		}
		if r.Context().RegistryStr() != tc.registry || r.Context().RepositoryStr() != tc.repo {
			t.Errorf("%s: registry %q repo %q", tc.ref, r.Context().RegistryStr(), r.Context().RepositoryStr())
		}
	}
	if got := (Image{Name: "n", Ref: "postgres:15"}).DisplayName(); got != "n" {
		t.Errorf("explicit name ignored: %q", got)
	}
	if _, err := (Image{Ref: "UPPER"}).Reference(); err == nil {
		t.Errorf("Reference accepted an invalid ref")
	}
	ps, err := Image{Platforms: []string{"linux/amd64", "linux/arm64/v8"}}.ParsedPlatforms()
	if err != nil || !reflect.DeepEqual(ps, []Platform{{"linux", "amd64", ""}, {"linux", "arm64", "v8"}}) {
		t.Errorf("ParsedPlatforms = %v, %v", ps, err)
	}
	if _, err := (Image{Platforms: []string{"linux"}}).ParsedPlatforms(); err == nil {
		t.Errorf("ParsedPlatforms accepted linux")
	}
}

func TestFileAndChartDisplayNames(t *testing.T) {
	for _, tc := range []struct {
		f    File
		want string
	}{
		{File{URL: "https://h/a/b/mattermost-11.4.0-linux-amd64.tar.gz"}, "mattermost-11.4.0-linux-amd64.tar.gz"},
		{File{URL: "https://h/a/tool%20x.bin?x=1"}, "tool x.bin"},
		{File{URL: "https://h/"}, ""},
		{File{URL: "https://h"}, ""},
		{File{Name: "n", URL: "https://h/x"}, "n"},
	} {
		if got := tc.f.DisplayName(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.f, got, tc.want)
		}
	}
	for _, tc := range []struct {
		c    Chart
		want string
	}{
		{Chart{Repo: "https://h", Chart: "c"}, "c"},
		{Chart{OCI: "oci://r.example/charts/op"}, "op"},
		{Chart{Name: "n", OCI: "oci://r.example/charts/op"}, "n"},
	} {
		if got := tc.c.DisplayName(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.c, got, tc.want)
		}
	}
}

func TestParsePlatform(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Platform
		err  string
	}{
		{in: "linux/amd64", want: Platform{"linux", "amd64", ""}},
		{in: "linux/arm64/v8", want: Platform{"linux", "arm64", "v8"}},
		{in: "linux/arm/v7", want: Platform{"linux", "arm", "v7"}},
		{in: "windows/amd64", want: Platform{"windows", "amd64", ""}},
		{in: "linux/arm64/v8.2", want: Platform{"linux", "arm64", "v8.2"}},
		{in: "linux", err: `platform "linux" is not os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8`},
		{in: "linux/arm64/v8/x", err: `platform "linux/arm64/v8/x" is not os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8`},
		{in: "linux/aarch64", err: `platform "linux/aarch64": unknown architecture "aarch64"; did you mean "arm64"?`},
		{in: "linxu/amd64", err: `platform "linxu/amd64": unknown operating system "linxu"; did you mean "linux"?`},
		{in: "linux/amd64/", err: `platform "linux/amd64/": variant "" must be lowercase letters, digits and dots, e.g. v8`},
		{in: "/amd64", err: `platform "/amd64": unknown operating system ""`},
	} {
		got, err := ParsePlatform(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.err)):
			t.Errorf("%q: err = %v, want prefix %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%q: %v, %v", tc.in, got, err)
		case tc.err == "" && got.String() != tc.in:
			t.Errorf("%q: String() = %q", tc.in, got.String())
		}
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"name", "ref", "platforms"}
	for in, want := range map[string]string{
		"platfrom": "platforms", "platform": "platforms", "Platforms": "platforms",
		"nmae": "name", "refs": "ref", "x": "", "registry": "", "plat": "platforms",
	} {
		if got := suggest(in, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParentPath(t *testing.T) {
	for in, want := range map[string]string{
		"images[2].platforms[0]": "images[2].platforms",
		"images[2].platforms":    "images[2]",
		"images[2]":              "images",
		"images":                 "",
		`mirrors["a.b[c"]`:       "mirrors",
		`mirrors["a\"].b"]`:      "mirrors",
		"":                       "",
	} {
		if got := parentPath(in); got != want {
			t.Errorf("parentPath(%q) = %q, want %q", in, got, want)
		}
	}
}
