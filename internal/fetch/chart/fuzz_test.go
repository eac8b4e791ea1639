package chart

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mmgap/mmgap/internal/upstreamtest"
)

func FuzzParseIndex(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nentries:\n  mm:\n    - name: mm\n      version: 1.0.0\n      digest: 0123\n      urls: [mm-1.0.0.tgz, \"https://x.invalid/mm.tgz\"]\n      created: 2026-01-01T00:00:00Z\n"))
	f.Add([]byte("apiVersion: v1\nentries:\n  a: []\n  b: [{version: '2'}, {version: [1]}, 3]\n  c: x\ngenerated: now\n"))
	f.Add([]byte("apiVersion: v1\nentries: &e\n  a: *e\n"))
	f.Add([]byte("{\"apiVersion\":\"v1\",\"entries\":{\"a\":[{\"version\":\"1\",\"urls\":[\"../../x\"]}]}}"))
	f.Add([]byte("%YAML 1.2\n---\napiVersion: v1\n...\n---\nentries: {}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		idx, err := ParseIndex(data)
		if err != nil {
			if idx != nil {
				t.Fatal("index returned with an error")
			}
			return
		}
		if idx.APIVersion == "" {
			t.Fatal("accepted an index without apiVersion")
		}
		for name, list := range idx.Entries {
			for _, e := range list {
				if e.Version == "" || e.Name != name {
					t.Fatalf("entry %+v under %q", e, name)
				}
				got, err := idx.Lookup(name, e.Version)
				if err != nil || got.Version != e.Version {
					t.Fatalf("Lookup(%q, %q) = %+v, %v", name, e.Version, got, err)
				}
				for _, u := range e.URLs {
					if r, err := ResolveChartURL("https://charts.example.invalid/repo", u); err == nil &&
						!strings.HasPrefix(r, "http://") && !strings.HasPrefix(r, "https://") {
						t.Fatalf("resolved %q to non-HTTP %q", u, r)
					}
				}
			}
		}
		if _, err := idx.Lookup("\x00absent", "0"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Lookup of an absent chart: %v", err)
		}
	})
}

func FuzzParseChartYAML(f *testing.F) {
	f.Add([]byte(goodChartYAML))
	f.Add([]byte(goodChartYAML + "maintainers:\n  - name: a\n    email: b\nannotations:\n  x: \"1\"\ndependencies:\n  - name: pg\n    repository: oci://x\n    import-values: [a, {child: b, parent: c}]\n    tags: [t]\n"))
	f.Add([]byte("apiVersion: v1\nname: x\nversion: 1\ntype: library\ndeprecated: true\nkeywords: [1, 2]\n"))
	f.Add([]byte("apiVersion: v2\nname: x\nversion: 1\ndependencies:\n  - import-values: [{1: 2}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		md, err := ParseChartYAML(data)
		if err != nil {
			return
		}
		if md.Name == "" || md.Version == "" || md.APIVersion == "" || strings.ContainsAny(md.Name, `/\`) {
			t.Fatalf("accepted metadata %+v", md)
		}
		cfg, err := md.ConfigJSON()
		if err != nil {
			return // e.g. import-values maps with non-string keys: refused, not a panic
		}
		var back Metadata
		if err := json.Unmarshal(cfg, &back); err != nil {
			t.Fatalf("config %s does not parse: %v", cfg, err)
		}
		if back.Name != md.Name || back.Version != md.Version || back.APIVersion != md.APIVersion {
			t.Fatalf("round trip changed %+v into %+v", md, back)
		}
	})
}

func FuzzReadChartArchive(f *testing.F) {
	f.Add(upstreamtest.BuildChart(f, upstreamtest.Chart{Name: "mm", Version: "1.0.0"}))
	f.Add(makeTgz(f, tarEntry{name: "mm/", typ: tar.TypeDir}, tarEntry{name: "mm/Chart.yaml", body: goodChartYAML}))
	f.Add(makeTgz(f, tarEntry{name: "mm/Chart.yaml", body: goodChartYAML}, tarEntry{name: "mm/x", typ: tar.TypeSymlink, link: "../../x"}))
	f.Add(makeTgz(f, tarEntry{name: "./mm/Chart.yaml", body: goodChartYAML}))
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		md, raw, err := ReadChartArchive(data)
		if err != nil {
			return
		}
		if md == nil || raw == nil || len(raw) > MaxChartYAMLSize {
			t.Fatalf("accepted archive with metadata %v and %d-byte Chart.yaml", md, len(raw))
		}
		again, err := ParseChartYAML(raw)
		if err != nil || again.Name != md.Name || again.Version != md.Version {
			t.Fatalf("Chart.yaml re-parse: %+v, %v", again, err)
		}
	})
}
