package image

import (
	"encoding/json"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// FuzzNarrow feeds untrusted index bytes to the narrowing code: it must not panic, and what it
// keeps must be valid JSON listing a subset of the source's manifests.
func FuzzNarrow(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[`+
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":1,"platform":{"os":"linux","architecture":"amd64"}},`+
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","size":1,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},`+
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc","size":1,"platform":{"os":"unknown","architecture":"unknown"},`+
		`"annotations":{"vnd.docker.reference.type":"attestation-manifest","vnd.docker.reference.digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}}]}`), "linux/arm64")
	f.Add([]byte(`{"manifests":null}`), "linux/amd64")
	f.Add([]byte(`{"manifests":[{"platform":null}]}`), "")
	f.Fuzz(func(t *testing.T, raw []byte, want string) {
		j := &job{ref: Ref{Registry: "r", Repository: "x", Tag: "1"}}
		if want != "" {
			p, err := parsePlatform(want)
			if err != nil {
				return
			}
			j.wants = []platform{p}
		}
		out, plats, err := j.narrow(raw)
		if err != nil {
			return
		}
		var in, got struct {
			Manifests []v1.Descriptor `json:"manifests"`
		}
		if err := json.Unmarshal(raw, &in); err != nil {
			t.Fatalf("accepted invalid input: %v", err)
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, out)
		}
		if len(got.Manifests) > len(in.Manifests) {
			t.Fatalf("output lists %d manifests, input %d", len(got.Manifests), len(in.Manifests))
		}
		if j.wants != nil && len(plats) == 0 {
			t.Fatal("narrowed to no platform without an error")
		}
	})
}

// FuzzManifestMediaType checks that media type detection never panics on untrusted bytes.
func FuzzManifestMediaType(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"config":{}}`), "")
	f.Add([]byte(`{"schemaVersion":1}`), "application/vnd.docker.distribution.manifest.v1+json")
	f.Add([]byte(`{}`), "application/vnd.oci.image.index.v1+json; charset=utf-8")
	f.Fuzz(func(t *testing.T, raw []byte, ct string) {
		_, _ = manifestMediaType(raw, ct)
	})
}
