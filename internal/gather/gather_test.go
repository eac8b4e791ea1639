package gather

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/oci"

	"github.com/mmgap/mmgap/internal/fetch"
	"github.com/mmgap/mmgap/internal/manifest"
	"github.com/mmgap/mmgap/internal/pgp"
	"github.com/mmgap/mmgap/internal/store"
	"github.com/mmgap/mmgap/internal/upstreamtest"
)

func fixture(t *testing.T) (yaml string, payload []byte) {
	reg := upstreamtest.NewRegistry(t)
	reg.PushIndex(t, "mattermost/server", "11.4.0", upstreamtest.RegistryIndexSpec{
		Platforms: []string{"linux/amd64", "linux/arm64/v8"}, Layers: 2, LayerSize: 32 << 10})
	files := upstreamtest.NewFileServer(t)
	payload = make([]byte, 50_000)
	rand.Read(payload)
	files.Add("/mmctl.tar.gz", payload)
	charts := upstreamtest.NewChartRepo(t)
	charts.AddChart(t, upstreamtest.Chart{Name: "mattermost-team-edition", Version: "2.6.0"})
	sum := sha256.Sum256(payload)
	yaml = fmt.Sprintf(`apiVersion: mmgap.io/v1alpha1
kind: Manifest
metadata: {name: t}
images:
  - ref: %s/mattermost/server:11.4.0
    platforms: [linux/arm64]
files:
  - name: mmctl
    url: %s/mmctl.tar.gz
    sha256: %s
charts:
  - {repo: %s, chart: mattermost-team-edition, version: 2.6.0}
`, reg.Host(), files.URL, hex.EncodeToString(sum[:]), charts.URL)
	return yaml, payload
}

// TestRunReadableByORAS gathers every kind of artifact and reads them back with oras-go, an
// independent implementation of the OCI image layout.
func TestRunReadableByORAS(t *testing.T) {
	yaml, payload := fixture(t)
	dir := t.TempDir()
	m, err := manifest.Parse(filepath.Join(dir, "mmgap.yaml"), []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), m, Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Items) != 3 || rep.Failed != 0 {
		t.Fatalf("report = %+v", rep)
	}
	for _, it := range rep.Items {
		if it.Size <= 0 || it.Ref == "" {
			t.Errorf("item %+v: want a ref and a total size", it)
		}
	}

	ctx := context.Background()
	o, err := oci.NewFromFS(ctx, os.DirFS(st.Dir()))
	if err != nil {
		t.Fatal(err)
	}
	// the file artifact: its layer is the file's bytes
	desc, err := o.Resolve(ctx, "mmgap.files/mmctl:latest")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := content.FetchAll(ctx, o, desc)
	if err != nil {
		t.Fatal(err)
	}
	var mf ocispec.Manifest
	if err := json.Unmarshal(raw, &mf); err != nil {
		t.Fatal(err)
	}
	if mf.ArtifactType != store.ArtifactTypeFile || len(mf.Layers) != 1 {
		t.Fatalf("file manifest = %s", raw)
	}
	got, err := content.FetchAll(ctx, o, mf.Layers[0])
	if err != nil || string(got) != string(payload) {
		t.Fatalf("file content differs (%v)", err)
	}
	// the narrowed image index lists arm64 only
	desc, err = o.Resolve(ctx, rep.Items[0].Ref)
	if err != nil {
		t.Fatal(err)
	}
	raw, err = content.FetchAll(ctx, o, desc)
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	json.Unmarshal(raw, &idx)
	if len(idx.Manifests) != 1 || idx.Manifests[0].Platform.Architecture != "arm64" {
		t.Fatalf("narrowed index = %s", raw)
	}
	// the chart, in Helm's media types
	desc, err = o.Resolve(ctx, "mmgap.charts/mattermost-team-edition:2.6.0")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := o.Fetch(ctx, desc)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(rc)
	rc.Close()
	json.Unmarshal(raw, &mf)
	if mf.Config.MediaType != store.MediaTypeHelmConfig || mf.Layers[0].MediaType != store.MediaTypeHelmChart {
		t.Fatalf("chart manifest = %s", raw)
	}
}

// TestRunPartial keeps what succeeded, reports what failed by name, and leaves stale entries
// of the store alone until a run succeeds.
func TestRunPartial(t *testing.T) {
	yaml, _ := fixture(t)
	dir := t.TempDir()
	st, _ := store.Open(filepath.Join(dir, "store"))
	m, err := manifest.Parse(filepath.Join(dir, "mmgap.yaml"), []byte(yaml+`  - {repo: http://127.0.0.1:9/nothing, chart: gone, version: 1.0.0}
`))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), m, Options{Store: st, Retry: fastRetry})
	var pe *PartialError
	if !errors.As(err, &pe) || len(pe.Failed) != 1 || pe.Failed[0].Name != "gone" || pe.Total != 4 {
		t.Fatalf("err = %v", err)
	}
	if rep.Failed != 1 || rep.Items[3].Error == "" || rep.Items[0].Error != "" {
		t.Fatalf("report = %+v", rep)
	}
	if _, ok, _ := st.Lookup("mmgap.files/mmctl:latest"); !ok {
		t.Fatal("the file that succeeded is not in the store")
	}
}

var fastRetry = fetch.Retry{Attempts: 2, Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond}

// TestRunExpiredKeyOverride: an expired signing key is refused unless named in
// Options.AllowExpiredKeys (in any spelling ParseFingerprint accepts); a key ID is refused.
func TestRunExpiredKeyOverride(t *testing.T) {
	files := upstreamtest.NewFileServer(t)
	key, _ := upstreamtest.NewExpiredSigningKey(t, "Expired")
	files.AddRelease("/r", "11.4.0", "team", "amd64", key)
	dir := t.TempDir()
	keyPath := key.WritePublicKey(t, dir)
	u := files.URL + "/r" + upstreamtest.ReleaseTarballPath("11.4.0", "team", "amd64")
	m, err := manifest.Parse(filepath.Join(dir, "mmgap.yaml"), []byte(fmt.Sprintf(`apiVersion: mmgap.io/v1alpha1
kind: Manifest
metadata: {name: t}
files:
  - {name: mm, version: 11.4.0, url: %s, signature: {url: %s.sig, key: %s}}
`, u, u, filepath.Base(keyPath))))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := store.Open(filepath.Join(dir, "store"))
	if _, err := Run(context.Background(), m, Options{Store: st, Retry: fastRetry}); !errors.Is(err, pgp.ErrKeyExpired) {
		t.Fatalf("no override: err = %v, want pgp.ErrKeyExpired", err)
	}
	if _, err := Run(context.Background(), m, Options{Store: st, Retry: fastRetry, AllowExpiredKeys: []string{key.KeyID}}); err == nil || !errors.Is(err, pgp.ErrInvalidFingerprint) {
		t.Fatalf("key ID: err = %v, want pgp.ErrInvalidFingerprint", err)
	}
	spaced := pgp.FormatFingerprint(key.Fingerprint)
	rep, err := Run(context.Background(), m, Options{Store: st, Retry: fastRetry, AllowExpiredKeys: []string{spaced}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Items[0].Ref != "mmgap.files/mm:11.4.0" {
		t.Fatalf("report %+v", rep)
	}
}
