package chart

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mmgap/mmgap/internal/upstreamtest"
)

func TestResolveChartURL(t *testing.T) {
	for _, tc := range []struct{ repo, ref, want string }{
		{"https://charts.example.invalid", "mm-1.0.0.tgz", "https://charts.example.invalid/mm-1.0.0.tgz"},
		{"https://charts.example.invalid/", "mm-1.0.0.tgz", "https://charts.example.invalid/mm-1.0.0.tgz"},
		{"https://h.invalid/sub/repo", "charts/mm-1.0.0.tgz", "https://h.invalid/sub/repo/charts/mm-1.0.0.tgz"},
		{"https://h.invalid/sub/repo", "/abs/mm.tgz", "https://h.invalid/abs/mm.tgz"},
		{"https://h.invalid/repo?sig=1", "mm.tgz", "https://h.invalid/repo/mm.tgz?sig=1"},
		{"https://u:p@h.invalid/repo", "mm.tgz", "https://u:p@h.invalid/repo/mm.tgz"},
		{"https://h.invalid/repo", "https://other.invalid/dl/mm.tgz", "https://other.invalid/dl/mm.tgz"},
	} {
		got, err := ResolveChartURL(tc.repo, tc.ref)
		if err != nil || got != tc.want {
			t.Errorf("ResolveChartURL(%q, %q) = %q, %v; want %q", tc.repo, tc.ref, got, err, tc.want)
		}
	}
	for _, ref := range []string{"file:///etc/passwd", "ftp://h.invalid/x.tgz", "http://", "%zz"} {
		if got, err := ResolveChartURL("https://h.invalid/repo", ref); err == nil {
			t.Errorf("ResolveChartURL(%q) = %q, want an error", ref, got)
		}
	}
}

func TestParseIndex(t *testing.T) {
	idx, err := ParseIndex([]byte(`apiVersion: v1
entries:
  mm:
    - name: mm
      version: 1.0.0
      digest: abc
      urls: [mm-1.0.0.tgz]
      maintainers: [{name: x}]
      somethingNew: {a: b}
    - name: mm
      version: [not, a, string]
    - name: other
      version: 2.0.0
    - version: 3.0.0
      urls: [mm-3.0.0.tgz]
  broken: "not a list"
generated: 2026-01-01T00:00:00Z
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Entries["mm"]) != 2 || idx.Skipped != 3 {
		t.Fatalf("entries %+v skipped %d", idx.Entries, idx.Skipped)
	}
	if e, err := idx.Lookup("mm", "3.0.0"); err != nil || e.Name != "mm" || e.URLs[0] != "mm-3.0.0.tgz" {
		t.Errorf("Lookup = %+v, %v", e, err)
	}
	for _, bad := range []string{
		"",
		"entries: {}\n",
		"apiVersion: v1\nentries: [1, 2]\n",
		"apiVersion: v1\napiVersion: v2\nentries: {}\n",
		"apiVersion: v1\nentries:\n  a: []\n  a: []\n",
		"- just\n- a list\n",
		"a: &a [*a, *a]\n",
	} {
		if _, err := ParseIndex([]byte(bad)); err == nil {
			t.Errorf("ParseIndex(%q) accepted", bad)
		}
	}
	big := bytes.Repeat([]byte("#"), MaxIndexSize+1)
	if _, err := ParseIndex(big); err == nil {
		t.Error("oversized index accepted")
	}
}

// aliasBomb is YAML anchors a0..a11, each a list of ten references to the previous one: 10^11
// nodes once expanded.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= 11; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	return b.String()
}

func TestAliasBombs(t *testing.T) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Index entries decode into typed fields only, so aliases are never expanded deeply.
		ParseIndex([]byte(aliasBomb() + "apiVersion: v1\nentries:\n  x:\n    - version: 1.0.0\n      urls: *a11\n    - *a11\n  y: *a11\n"))
		// Chart.yaml has free-form import-values: the YAML decoder's alias limit must refuse it.
		if _, err := ParseChartYAML([]byte(aliasBomb() + goodChartYAML + "dependencies:\n  - name: pg\n    repository: x\n    import-values: *a11\n")); err == nil {
			t.Error("Chart.yaml alias bomb accepted")
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("alias bomb still being expanded after 20s")
	}
}

func TestCompareVersions(t *testing.T) {
	vs := []string{"1.0.0", "banana", "1.10.0", "1.2.0-rc.1", "1.2.0", "v2.0.0", "0.9"}
	sortVersionsDesc(vs)
	want := "v2.0.0,1.10.0,1.2.0,1.2.0-rc.1,1.0.0,0.9,banana"
	if got := strings.Join(vs, ","); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

type tarEntry struct {
	name string
	typ  byte
	body string
	link string
}

func makeTgz(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Mode: 0o644, Size: int64(len(e.body)), Linkname: e.link}
		if typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

const goodChartYAML = "apiVersion: v2\nname: mm\nversion: 1.0.0\n"

func TestReadChartArchive(t *testing.T) {
	md, raw, err := ReadChartArchive(makeTgz(t,
		tarEntry{name: "mm/", typ: tar.TypeDir},
		tarEntry{name: "mm/Chart.yaml", body: goodChartYAML + "description: \"two\\nlines\\u0007\"\nmaintainers:\n  - name: a\ndependencies:\n  - name: pg\n    repository: https://x.invalid\n    import-values: [{child: a, parent: b}, data]\n"},
		tarEntry{name: "mm/values.yaml", body: "a: 1\n"},
		tarEntry{name: "mm/charts/pg/Chart.yaml", body: "apiVersion: v2\nname: pg\nversion: 9\n"},
	))
	if err != nil {
		t.Fatal(err)
	}
	if md.Name != "mm" || md.Version != "1.0.0" || md.Description != "two lines" || len(raw) == 0 {
		t.Errorf("metadata %+v", md)
	}
	cfg, err := md.ConfigJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"mm","version":"1.0.0","description":"two lines","maintainers":[{"name":"a"}],"apiVersion":"v2",` +
		`"dependencies":[{"name":"pg","repository":"https://x.invalid","import-values":[{"child":"a","parent":"b"},"data"]}]}`
	if string(cfg) != want {
		t.Errorf("config\n%s\nwant\n%s", cfg, want)
	}

	for name, tgz := range map[string][]byte{
		"no Chart.yaml":       makeTgz(t, tarEntry{name: "mm/values.yaml", body: "a: 1\n"}),
		"root Chart.yaml":     makeTgz(t, tarEntry{name: "Chart.yaml", body: goodChartYAML}),
		"two Chart.yaml":      makeTgz(t, tarEntry{name: "mm/Chart.yaml", body: goodChartYAML}, tarEntry{name: "other/Chart.yaml", body: goodChartYAML}),
		"dot-dot":             makeTgz(t, tarEntry{name: "mm/Chart.yaml", body: goodChartYAML}, tarEntry{name: "mm/../../etc/x", body: "x"}),
		"absolute":            makeTgz(t, tarEntry{name: "/mm/Chart.yaml", body: goodChartYAML}),
		"symlink":             makeTgz(t, tarEntry{name: "mm/Chart.yaml", body: goodChartYAML}, tarEntry{name: "mm/x", typ: tar.TypeSymlink, link: "/etc/passwd"}),
		"device":              makeTgz(t, tarEntry{name: "mm/Chart.yaml", body: goodChartYAML}, tarEntry{name: "mm/null", typ: tar.TypeChar}),
		"no version":          makeTgz(t, tarEntry{name: "mm/Chart.yaml", body: "apiVersion: v2\nname: mm\n"}),
		"bad name":            makeTgz(t, tarEntry{name: "mm/Chart.yaml", body: "apiVersion: v2\nname: ..\nversion: 1\n"}),
		"bad type":            makeTgz(t, tarEntry{name: "mm/Chart.yaml", body: goodChartYAML + "type: plugin\n"}),
		"yaml list":           makeTgz(t, tarEntry{name: "mm/Chart.yaml", body: "- a\n"}),
		"null maintainer":     makeTgz(t, tarEntry{name: "mm/Chart.yaml", body: goodChartYAML + "maintainers: [null]\n"}),
		"not gzip":            []byte("PK\x03\x04 zip file"),
		"truncated":           makeTgz(t, tarEntry{name: "mm/Chart.yaml", body: goodChartYAML})[:40],
		"huge Chart.yaml":     makeTgz(t, tarEntry{name: "mm/Chart.yaml", body: goodChartYAML + "#" + strings.Repeat("x", MaxChartYAMLSize)}),
		"expands beyond 100M": bombTgz(t),
	} {
		if _, _, err := ReadChartArchive(tgz); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// bombTgz is a small archive whose tar stream is larger than MaxChartExpandedSize.
func bombTgz(t testing.TB) []byte {
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "mm/Chart.yaml", Mode: 0o644, Size: int64(len(goodChartYAML)), Typeflag: tar.TypeReg})
	tw.Write([]byte(goodChartYAML))
	size := int64(MaxChartExpandedSize + 1<<20)
	tw.WriteHeader(&tar.Header{Name: "mm/zeros", Mode: 0o644, Size: size, Typeflag: tar.TypeReg})
	zeros := make([]byte, 1<<20)
	for n := int64(0); n < size; n += int64(len(zeros)) {
		tw.Write(zeros)
	}
	tw.Close()
	gz.Close()
	if buf.Len() > MaxChartSize {
		t.Fatalf("bomb is %d bytes", buf.Len())
	}
	return buf.Bytes()
}

// TestConfigMatchesUpstreamtest checks our Chart.yaml→JSON against the config upstreamtest pushes
// for OCI charts (a hand-written subset of Helm's fields, in Helm's order).
func TestConfigMatchesUpstreamtest(t *testing.T) {
	c := upstreamtest.Chart{Name: "mm", Version: "1.0.0", AppVersion: "2", Description: "d"}
	md, _, err := ReadChartArchive(upstreamtest.BuildChart(t, c))
	if err != nil {
		t.Fatal(err)
	}
	var ours, theirs map[string]any
	cfg, _ := md.ConfigJSON()
	json.Unmarshal(cfg, &ours)
	json.Unmarshal(c.ConfigJSON(), &theirs)
	for k, v := range theirs {
		if ours[k] != v {
			t.Errorf("%s: ours %v, upstreamtest %v", k, ours[k], v)
		}
	}
	if !errors.Is(ErrChecksum, ErrChecksum) {
		t.Fatal()
	}
}
