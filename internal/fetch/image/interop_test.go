package image_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/mmgap/mmgap/internal/fetch/image"
	"github.com/mmgap/mmgap/internal/upstreamtest"
)

// interopStore gathers a single image, a narrowed OCI index with attestations, a full Docker
// manifest list and a digest-only reference into one store.
func interopStore(t *testing.T) (*fixture, []image.Result) {
	t.Helper()
	reg := upstreamtest.NewRegistry(t)
	base := reg.Layer(t, 16<<10)
	single := reg.PushRandomImage(t, "tools/single", "1.0", 2, 8<<10)
	oci := reg.PushIndex(t, "tools/multi", "2.0", upstreamtest.RegistryIndexSpec{Layers: 1, Shared: []upstreamtest.RegistryLayer{base}, Attestations: true})
	docker := reg.PushIndex(t, "tools/docker", "3.0", upstreamtest.RegistryIndexSpec{Layers: 1, Shared: []upstreamtest.RegistryLayer{base}, Docker: true})
	pinned := reg.PushRandomImage(t, "tools/pinned", "", 1, 4<<10)
	fx := newFixture(t)
	var out []image.Result
	for _, req := range []image.Request{
		{Ref: single.Ref},
		{Ref: oci.Ref, Platforms: []string{"linux/amd64", "linux/arm64"}},
		{Ref: docker.Ref},
		{Ref: pinned.Ref},
	} {
		out = append(out, fx.fetch(t, req))
	}
	return fx, out
}

// TestLayoutReadableByGoContainerRegistry opens the store with crane's layout package and
// validates every image and index in it, layers included (digests, diff IDs, sizes).
func TestLayoutReadableByGoContainerRegistry(t *testing.T) {
	fx, results := interopStore(t)
	p, err := layout.FromPath(fx.store.Dir())
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("validate.Index: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != len(results) {
		t.Fatalf("index.json lists %d, want %d", len(im.Manifests), len(results))
	}
	img, err := idx.Image(results[0].Descriptor.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatal(err)
	}
}

// TestLayoutReadableBySkopeo reads every OCI-typed stored reference with skopeo's oci: transport
// and copies each out to a dir: destination.
//
// Entries whose media type is Docker's (a manifest list or schema 2 manifest stored as the source
// served it, spec §2.2) are left out: containers/image's oci: transport only matches ref names on
// descriptors of OCI media types (oci/layout getManifestDescriptor), so skopeo cannot address them
// by name. go-containerregistry reads them (TestLayoutReadableByGoContainerRegistry).
func TestLayoutReadableBySkopeo(t *testing.T) {
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Fatal("skopeo is required for this test (apt-get install skopeo); CI installs it")
	}
	fx, results := interopStore(t)
	checked := 0
	for _, res := range results {
		if res.Descriptor.MediaType != types.OCIImageIndex && res.Descriptor.MediaType != types.OCIManifestSchema1 {
			continue
		}
		checked++
		name := res.Ref.Name()
		ref := "oci:" + fx.store.Dir() + ":" + name
		out, err := exec.Command(skopeo, "inspect", "--raw", ref).Output()
		if err != nil {
			t.Fatalf("skopeo inspect --raw %s: %v\n%s", ref, err, stderr(err))
		}
		want, err := os.ReadFile(fx.store.BlobPath(res.Descriptor.Digest))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(bytes.TrimSpace(out), bytes.TrimSpace(want)) {
			t.Errorf("skopeo inspect --raw %s:\n%s\nwant\n%s", name, out, want)
		}
		dst := filepath.Join(t.TempDir(), "out")
		cmd := exec.Command(skopeo, "copy", "--quiet", "--multi-arch", "all", ref, "dir:"+dst)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("skopeo copy %s: %v\n%s", ref, err, b)
		}
		if _, err := os.Stat(filepath.Join(dst, "manifest.json")); err != nil {
			t.Errorf("skopeo copy %s wrote no manifest.json: %v", name, err)
		}
	}
	if checked != 3 {
		t.Fatalf("checked %d references with skopeo, want 3", checked)
	}
	// And skopeo's own platform choice through the narrowed index.
	dst := filepath.Join(t.TempDir(), "arm64")
	ref := "oci:" + fx.store.Dir() + ":" + results[1].Ref.Name()
	if b, err := exec.Command(skopeo, "copy", "--quiet", "--override-os", "linux", "--override-arch", "arm64", ref, "dir:"+dst).CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy (arm64 from narrowed index): %v\n%s", err, b)
	}
}

func stderr(err error) []byte {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Stderr
	}
	return nil
}
