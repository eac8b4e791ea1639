package manifest

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// FuzzParse feeds Parse arbitrary bytes. It must never panic, must return
// either a manifest or *Errors (never both, never neither), must report at
// most MaxErrors problems, and whatever it accepts must survive a
// marshal and re-parse unchanged.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/valid/full.yaml", "../../examples/mmgap.yaml"} {
		f.Add(mustRead(f, p))
	}
	for _, tc := range errorCases {
		f.Add([]byte(tc.doc))
	}
	seeds, _ := filepath.Glob("testdata/fuzz-seeds/*.yaml")
	for _, p := range seeds {
		f.Add(mustRead(f, p))
	}
	f.Add([]byte(header + "images:\n  - &i {ref: postgres:15, platforms: &p [linux/amd64]}\n  - *i\n"))
	f.Add([]byte(header + "mirrors: {docker.io: 'https://m.example/p', '[::1]:1': h}\n"))
	f.Add([]byte(header + "images: &a [*a]\n"))
	f.Add([]byte("\xef\xbb\xbfapiVersion: mmgap.io/v1alpha1\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				panic(fmt.Sprintf("Parse took over 10s on %q", data))
			}
		}()
		m, err := Parse("f.yaml", data)
		if err != nil {
			if m != nil {
				t.Fatal("manifest and error both returned")
			}
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, not *Errors: %v", err, err)
			}
			if len(errs.List) == 0 || len(errs.List) > MaxErrors {
				t.Fatalf("%d problems reported", len(errs.List))
			}
			for _, e := range errs.List {
				if e.File != "f.yaml" || e.Line < 0 || e.Col < 0 || e.Msg == "" {
					t.Fatalf("malformed problem %+v", e)
				}
			}
			if !strings.HasPrefix(err.Error(), "f.yaml:") {
				t.Fatalf("error text %q", err.Error())
			}
			return
		}
		if m == nil {
			t.Fatal("neither manifest nor error")
		}
		out, err := yaml.Marshal(m)
		if err != nil {
			t.Fatalf("marshal accepted manifest: %v", err)
		}
		m2, err := Parse("f.yaml", out)
		if err != nil {
			t.Fatalf("re-parse of marshalled manifest failed:\n%s\n%v", out, err)
		}
		if !sameContent(m, m2) {
			t.Fatalf("round trip changed the manifest:\n%s", out)
		}
		// The helpers must not panic on anything Parse accepted.
		for _, i := range m.Images {
			if _, err := i.Reference(); err != nil {
				t.Fatalf("accepted ref %q does not parse: %v", i.Ref, err)
			}
			if _, err := i.ParsedPlatforms(); err != nil {
				t.Fatalf("accepted platforms do not parse: %v", err)
			}
			_ = i.DisplayName()
			if _, err := m.Mirrors.RewriteReference(i.Ref); err != nil {
				t.Fatalf("RewriteReference(%q): %v", i.Ref, err)
			}
		}
		for _, fl := range m.Files {
			_ = fl.DisplayName()
			if _, err := m.Mirrors.RewriteURL(fl.URL); err != nil {
				t.Fatalf("RewriteURL(%q): %v", fl.URL, err)
			}
		}
		for _, c := range m.Charts {
			_ = c.DisplayName()
		}
	})
}
