package catalog

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/mmgap/mmgap/internal/manifest"
)

// FuzzExpand: whatever Parse accepts, Expand either expands without
// panicking into a plan whose artifacts Apply keeps, or refuses with
// positioned *manifest.Errors.
func FuzzExpand(f *testing.F) {
	for _, tc := range goldenCases {
		f.Add([]byte(header + tc.body))
	}
	for _, m := range manifest.MattermostMethods {
		s, err := Starter(StarterOptions{Method: m})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := manifest.Parse("f.yaml", data)
		if err != nil {
			return
		}
		p, err := Expand(m)
		if err != nil {
			var errs *manifest.Errors
			if !errors.As(err, &errs) || len(errs.List) == 0 {
				t.Fatalf("error %T is not positioned: %v", err, err)
			}
			return
		}
		if _, err := json.Marshal(p); err != nil {
			t.Fatal(err)
		}
		a := p.Apply(m)
		if len(a.Images) < len(m.Images) || len(a.Files) < len(m.Files) || len(a.Charts) < len(m.Charts) {
			t.Fatal("Apply dropped the manifest's own artifacts")
		}
		names := map[string]bool{}
		for _, i := range a.Images {
			if names[i.DisplayName()] {
				t.Fatalf("duplicate image name %q after Apply", i.DisplayName())
			}
			names[i.DisplayName()] = true
		}
	})
}
