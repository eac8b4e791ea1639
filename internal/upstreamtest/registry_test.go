package upstreamtest_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/mmgap/mmgap/internal/upstreamtest"
)

// TestRegistryImagesAreValid pulls generated images with go-containerregistry's client and
// validates them fully (digests, diff IDs, platforms), so fetch tests start from honest content.
func TestRegistryImagesAreValid(t *testing.T) {
	reg := upstreamtest.NewRegistry(t, upstreamtest.RegistryWithBasicAuth("u", "p"))
	auth := remote.WithAuth(&authn.Basic{Username: "u", Password: "p"})
	shared := reg.Layer(t, 8<<10)
	for _, docker := range []bool{false, true} {
		idx := reg.PushIndex(t, "multi", "1", upstreamtest.RegistryIndexSpec{Layers: 2, Shared: []upstreamtest.RegistryLayer{shared}, Docker: docker, Attestations: !docker})
		ref, err := name.ParseReference(idx.Ref)
		if err != nil {
			t.Fatal(err)
		}
		ii, err := remote.Index(ref, auth)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Index(ii); err != nil {
			t.Fatalf("docker=%v: %v", docker, err)
		}
		if d, _ := ii.Digest(); d != idx.Digest {
			t.Errorf("index digest %s, pushed %s", d, idx.Digest)
		}
		mt, _ := ii.MediaType()
		if mt != idx.MediaType {
			t.Errorf("media type %s, want %s", mt, idx.MediaType)
		}
	}
	img := reg.PushRandomImage(t, "single", "1", 2, 4096)
	ref, _ := name.ParseReference(img.Ref)
	ri, err := remote.Image(ref, auth)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(ri); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Image(ref); err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Errorf("anonymous pull: %v, want UNAUTHORIZED", err)
	}
}

func TestRegistryFaults(t *testing.T) {
	reg := upstreamtest.NewRegistry(t)
	img := reg.PushRandomImage(t, "app", "1", 1, 64<<10)
	l := img.Layers[0].Descriptor
	url := reg.URL() + "/v2/app/blobs/" + l.Digest.String()
	get := func(rangeHdr string) (*http.Response, []byte, error) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if rangeHdr != "" {
			req.Header.Set("Range", rangeHdr)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}

	reg.FailBlob(l.Digest, 1, 0)
	if resp, _, _ := get(""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("injected failure: %d", resp.StatusCode)
	}
	reg.TruncateBlob(l.Digest, 1000, 1)
	if _, b, err := get(""); err == nil || len(b) != 1000 {
		t.Errorf("truncated: %d bytes, err %v", len(b), err)
	}
	if resp, b, err := get("bytes=1000-2999"); err != nil || resp.StatusCode != http.StatusPartialContent || len(b) != 2000 {
		t.Errorf("range: %v %d bytes", err, len(b))
	}
	reg.IgnoreRange(true)
	if resp, b, err := get("bytes=1000-2999"); err != nil || resp.StatusCode != http.StatusOK || int64(len(b)) != l.Size {
		t.Errorf("ignored range: %v %d bytes", err, len(b))
	}
	reg.CorruptBlob(l.Digest, true)
	if _, b, _ := get(""); int64(len(b)) != l.Size || strings.Contains(string(b), "random-") {
		t.Error("corrupt blob served as is")
	}
	if got := reg.BlobGets(l.Digest); got != 5 {
		t.Errorf("BlobGets %d, want 5", got)
	}
	if r := reg.BlobRanges(l.Digest); len(r) != 5 || r[2] != "bytes=1000-2999" {
		t.Errorf("ranges %q", r)
	}
	if got, want := reg.BlobBytes(l.Digest), 1000+2000+2*l.Size; got != want {
		t.Errorf("BlobBytes %d, want %d", got, want)
	}
}
