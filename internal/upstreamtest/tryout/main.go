// Command tryout serves a stand-in for the internet on 127.0.0.1 (an OCI registry with generated
// multi-arch images, a file server with a signed release tarball, a Helm chart repository) and
// writes an mmgap.yaml that gathers from it. scripts/tryout.sh uses it to show mmgap working on a
// machine without internet access.
//
//	tryout -dir DIR    serve until interrupted; DIR receives mmgap.yaml, keys/ and a "ready" file
package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/mmgap/mmgap/internal/upstreamtest"
)

// tb lets the fixture constructors, written for tests, run in a program: failures end it.
type tb struct {
	testing.TB
	dir      string
	cleanups []func()
}

func (t *tb) Helper()                         {}
func (t *tb) Name() string                    { return "tryout" }
func (t *tb) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (t *tb) Errorf(format string, args ...any) {
	t.Fatalf(format, args...)
}
func (t *tb) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "tryout: "+format+"\n", args...)
	t.cleanup()
	os.Exit(1)
}
func (t *tb) Fatal(args ...any) { t.Fatalf("%s", fmt.Sprint(args...)) }
func (t *tb) Cleanup(f func())  { t.cleanups = append(t.cleanups, f) }
func (t *tb) TempDir() string {
	d, err := os.MkdirTemp(t.dir, "upstream-")
	if err != nil {
		t.Fatal(err)
	}
	return d
}
func (t *tb) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

func main() {
	dir := flag.String("dir", "", "directory for mmgap.yaml and keys")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "usage: tryout -dir DIR")
		os.Exit(2)
	}
	t := &tb{dir: *dir}
	defer t.cleanup()

	reg := upstreamtest.NewRegistry(t)
	base := reg.Layer(t, 2<<20)
	reg.PushIndex(t, "mattermost/mattermost-enterprise-edition", "11.4.0", upstreamtest.RegistryIndexSpec{
		Platforms: []string{"linux/amd64", "linux/arm64/v8"}, Layers: 3, LayerSize: 4 << 20,
		Shared: []upstreamtest.RegistryLayer{base}})
	reg.PushImage(t, "library/postgres", "15-alpine", upstreamtest.RegistryImageSpec{
		Layers: 2, LayerSize: 3 << 20, Shared: []upstreamtest.RegistryLayer{base}})
	upstreamtest.PushOCIChart(t, reg.Host(), "charts/mattermost-operator",
		upstreamtest.Chart{Name: "mattermost-operator", Version: "1.22.0", AppVersion: "1.22.0"})

	files := upstreamtest.NewFileServer(t)
	tarball := make([]byte, 8<<20)
	rand.Read(tarball)
	files.AddSigned("/11.4.0/mattermost-team-11.4.0-linux-amd64.tar.gz", tarball, nil)
	mmctl := make([]byte, 1<<20)
	rand.Read(mmctl)
	files.Add("/tools/mmctl-11.4.0.tar.gz", mmctl)
	sum := sha256.Sum256(mmctl)

	charts := upstreamtest.NewChartRepo(t)
	charts.AddChart(t, upstreamtest.Chart{Name: "mattermost-team-edition", Version: "2.6.0", AppVersion: "11.4.0"})

	keys := filepath.Join(*dir, "keys")
	must(t, os.MkdirAll(keys, 0o755))
	must(t, os.WriteFile(filepath.Join(keys, "release.asc"), files.Key().PublicArmored, 0o644))
	manifest := fmt.Sprintf(`apiVersion: mmgap.io/v1alpha1
kind: Manifest
metadata:
  name: tryout
  description: Mattermost-shaped artifacts served on 127.0.0.1 by mmgap's try-out.
images:
  - name: mattermost
    ref: %[1]s/mattermost/mattermost-enterprise-edition:11.4.0
    platforms: [linux/amd64]
  - name: postgres
    ref: %[1]s/library/postgres:15-alpine
files:
  - name: mattermost-team-tarball
    version: 11.4.0
    url: %[2]s/11.4.0/mattermost-team-11.4.0-linux-amd64.tar.gz
    signature:
      url: %[2]s/11.4.0/mattermost-team-11.4.0-linux-amd64.tar.gz.asc
      key: keys/release.asc
  - name: mmctl
    version: 11.4.0
    url: %[2]s/tools/mmctl-11.4.0.tar.gz
    sha256: %[3]s
charts:
  - repo: %[4]s
    chart: mattermost-team-edition
    version: 2.6.0
  - oci: oci://%[1]s/charts/mattermost-operator
    version: 1.22.0
`, reg.Host(), files.URL, hex.EncodeToString(sum[:]), charts.URL)
	must(t, os.WriteFile(filepath.Join(*dir, "mmgap.yaml"), []byte(manifest), 0o644))
	must(t, os.WriteFile(filepath.Join(*dir, "ready"), nil, 0o644))
	fmt.Fprintf(os.Stderr, "tryout: registry %s, files %s, charts %s\n", reg.Host(), files.URL, charts.URL)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
}

func must(t *tb, err error) {
	if err != nil {
		t.Fatal(err)
	}
}
