package main

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/mmgap/mmgap/internal/upstreamtest"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"mmgap": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// upstream is what one script's fixture servers hold.
type upstream struct {
	reg    *upstreamtest.Registry
	files  *upstreamtest.FileServer
	charts *upstreamtest.ChartRepo
}

// TestScripts runs cmd/mmgap/testdata/script/*.txtar. Each script gets its own upstream servers on
// 127.0.0.1, named by environment variables:
//
//	REGISTRY   host:port of an OCI registry: mattermost/server:11.4.0 (linux/amd64 + linux/arm64/v8),
//	           library/postgres:15 (linux/amd64), charts/mattermost-operator:1.0.0 (a Helm chart);
//	           the two images share a base layer
//	FILES      base URL of a file server: /releases/11.4.0/mattermost-11.4.0-linux-amd64.tar.gz (+ .asc,
//	           signed by the key in $WORK/keys/upstream.asc), /tools/mmctl.tar.gz ($MMCTL_SHA256)
//	           with /tools/mmctl.tar.gz.sha256 (bare digest) and /tools/SHA256SUMS (sha256sum listing);
//	           /k8s/release/v1.34.1/bin/linux/amd64/kubectl (+ .sha256, bare digest) and
//	           /helm/helm-v3.19.0-linux-amd64.tar.gz (+ .sha256sum): kubectl and helm at the
//	           catalog's paths below a mirror
//	           /mm-releases/{11.4.0,11.10.0}/mattermost-X-linux-amd64.tar.gz (+ .sig): release-shaped
//	           tarballs signed by keys/release.asc ($RELEASE_FPR); /mm-expired/11.4.0/… signed,
//	           before it expired at $EXPIRED_AT, by keys/expired.asc ($EXPIRED_FPR); /mm-late/11.4.0/…
//	           signed by the same key after it expired
//	CHARTS     URL of a Helm chart repository holding mattermost-team-edition 2.6.0
//	DEAD       a 127.0.0.1 port nobody listens on
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Condition:           scriptCondition,
		Setup: func(env *testscript.Env) error {
			u := &upstream{reg: upstreamtest.NewRegistry(t), files: upstreamtest.NewFileServer(t), charts: upstreamtest.NewChartRepo(t)}
			base := u.reg.Layer(t, 48<<10)
			u.reg.PushIndex(t, "mattermost/server", "11.4.0", upstreamtest.RegistryIndexSpec{
				Platforms: []string{"linux/amd64", "linux/arm64/v8"}, Layers: 2, LayerSize: 96 << 10,
				Shared: []upstreamtest.RegistryLayer{base}})
			u.reg.PushImage(t, "library/postgres", "15", upstreamtest.RegistryImageSpec{
				Layers: 1, LayerSize: 64 << 10, Shared: []upstreamtest.RegistryLayer{base}})
			upstreamtest.PushOCIChart(t, u.reg.Host(), "charts/mattermost-operator",
				upstreamtest.Chart{Name: "mattermost-operator", Version: "1.0.0", AppVersion: "1.22.0"})
			u.charts.AddChart(t, upstreamtest.Chart{Name: "mattermost-team-edition", Version: "2.6.0", AppVersion: "11.4.0"})

			tarball := randomBytes(t, 300<<10)
			u.files.AddSigned("/releases/11.4.0/mattermost-11.4.0-linux-amd64.tar.gz", tarball, nil)
			mmctl := randomBytes(t, 40<<10)
			u.files.Add("/tools/mmctl.tar.gz", mmctl)
			// Published checksum files: a bare digest next to mmctl and at a kubectl-shaped path,
			// a sha256sum line at a helm-shaped path, and a SHA256SUMS listing several files.
			u.files.Add("/tools/mmctl.tar.gz.sha256", []byte(hexSum(mmctl)+"\n"))
			kubectl := randomBytes(t, 24<<10)
			u.files.Add("/k8s/release/v1.34.1/bin/linux/amd64/kubectl", kubectl)
			u.files.Add("/k8s/release/v1.34.1/bin/linux/amd64/kubectl.sha256", []byte(hexSum(kubectl)))
			helm := randomBytes(t, 24<<10)
			u.files.Add("/helm/helm-v3.19.0-linux-amd64.tar.gz", helm)
			u.files.Add("/helm/helm-v3.19.0-linux-amd64.tar.gz.sha256sum", []byte(hexSum(helm)+"  helm-v3.19.0-linux-amd64.tar.gz\n"))
			u.files.Add("/tools/SHA256SUMS", []byte(hexSum(kubectl)+"  kubectl\n"+hexSum(mmctl)+" *mmctl.tar.gz\n"+hexSum(helm)+"  mmctl.tar.gz.sig\n"))
			keys := filepath.Join(env.WorkDir, "keys")
			if err := os.MkdirAll(keys, 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(keys, "upstream.asc"), u.files.Key().PublicArmored, 0o644); err != nil {
				return err
			}
			other := upstreamtest.NewSigningKey(t, "Somebody Else")
			if err := os.WriteFile(filepath.Join(keys, "other.asc"), other.PublicArmored, 0o644); err != nil {
				return err
			}
			// Release-shaped tarballs at the catalog's paths: under /mm-releases signed by the key in
			// keys/release.asc, under /mm-expired signed (before it expired) by keys/expired.asc.
			release := upstreamtest.NewSigningKey(t, "Mattermost Build Test")
			expired, expiredAt := upstreamtest.NewExpiredSigningKey(t, "Mattermost Build Expired")
			for _, v := range []string{"11.4.0", "11.10.0"} {
				u.files.AddRelease("/mm-releases", v, "enterprise", "amd64", release)
			}
			u.files.AddRelease("/mm-expired", "11.4.0", "enterprise", "amd64", expired)
			late := upstreamtest.ReleaseTarball(t, "11.4.0", "enterprise")
			latePath := "/mm-late" + upstreamtest.ReleaseTarballPath("11.4.0", "enterprise", "amd64")
			u.files.Add(latePath, late)
			u.files.Add(latePath+".sig", expired.SignAt(t, late, time.Now().Add(-30*time.Minute)))
			for name, k := range map[string]*upstreamtest.SigningKey{"release.asc": release, "expired.asc": expired} {
				if err := os.WriteFile(filepath.Join(keys, name), k.PublicArmored, 0o644); err != nil {
					return err
				}
			}
			env.Setenv("RELEASE_FPR", release.Fingerprint)
			env.Setenv("EXPIRED_FPR", expired.Fingerprint)
			env.Setenv("EXPIRED_AT", expiredAt.UTC().Format(time.RFC3339))
			sum := sha256.Sum256(mmctl)
			env.Setenv("REGISTRY", u.reg.Host())
			env.Setenv("FILES", u.files.URL)
			env.Setenv("CHARTS", u.charts.URL)
			env.Setenv("MMCTL_SHA256", hex.EncodeToString(sum[:]))
			env.Setenv("DEAD", deadPort(t))
			env.Setenv("DOCKER_CONFIG", filepath.Join(env.WorkDir, ".docker")) // no credentials from the host
			env.Setenv("HOME", env.WorkDir)
			env.Values["upstream"] = u
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"upstream": cmdUpstream,
			"tamper":   cmdTamper,
			"exitcode": cmdExitCode,
			"expand":   cmdExpand,
			"tmpfs":    cmdTmpfs,
		},
	})
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func deadPort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// cmdUpstream changes or checks the fixture servers:
//
//	upstream fail PATH N         the next N requests for a file fail with 503
//	upstream truncate PATH K N   the next N responses for a file stop after K bytes
//	upstream replace PATH        the file's content changes (its pinned sha256 no longer matches)
//	upstream requests PATH N     the file was requested exactly N times
//	upstream blob-gets N         the registry served exactly N blob GETs
//	upstream reset               zero every counter
func cmdUpstream(ts *testscript.TestScript, neg bool, args []string) {
	u := ts.Value("upstream").(*upstream)
	if len(args) == 0 {
		ts.Fatalf("usage: upstream fail|truncate|replace|requests|blob-gets|reset ...")
	}
	atoi := func(s string) int {
		n, err := strconv.Atoi(s)
		ts.Check(err)
		return n
	}
	switch args[0] {
	case "fail":
		u.files.Set(args[1], upstreamtest.FailFirst(atoi(args[2])))
	case "truncate":
		u.files.Set(args[1], upstreamtest.TruncateAfter(int64(atoi(args[2])), atoi(args[3])))
	case "replace":
		u.files.Replace(args[1], []byte("tampered upstream content"))
	case "requests":
		if got, want := u.files.Requests(args[1]), atoi(args[2]); (got == want) == neg {
			ts.Fatalf("%s requested %d times, want %d", args[1], got, want)
		}
	case "blob-gets":
		if got, want := u.reg.TotalBlobGets(), atoi(args[1]); (got == want) == neg {
			ts.Fatalf("registry served %d blob GETs, want %d", got, want)
		}
	case "reset":
		u.files.ResetCounters()
		u.reg.ResetCounts()
	default:
		ts.Fatalf("upstream: unknown subcommand %q", args[0])
	}
}

// cmdExitCode runs a command and checks its exit code: exitcode N PROG ARGS...
// Its stdout and stderr become the script's, as with exec.
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: exitcode N PROG ARGS...")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exitcode: %v", err)
		}
		got = ee.ExitCode()
	}
	if (got == want) == neg {
		ts.Fatalf("exit code %d, want %d", got, want)
	}
}

// cmdTamper rewrites a bundle IN into OUT with one defect, keeping bundle.json and its signature:
//
//	tamper IN OUT flip-blob       flip one bit in the first blob's content
//	tamper IN OUT flip-last-blob  flip one bit in the last blob's content
//	tamper IN OUT dotdot          add an entry ../escape after the signature
//	tamper IN OUT absolute        add an entry /tmp/mmgap-escape
//	tamper IN OUT symlink         add a symlink store/evil -> /etc
//	tamper IN OUT drop-signature  remove bundle.json.asc
//	tamper IN OUT truncate        cut the compressed stream in half
//	tamper IN OUT resign KEYFILE  (not used) reserved
func cmdTamper(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: tamper IN OUT MODE")
	}
	in, out, mode := ts.MkAbs(args[0]), ts.MkAbs(args[1]), args[2]
	raw, err := os.ReadFile(in)
	ts.Check(err)
	if mode == "truncate" {
		ts.Check(os.WriteFile(out, raw[:len(raw)/2], 0o644))
		return
	}
	zr, err := zstd.NewReader(bytes.NewReader(raw))
	ts.Check(err)
	defer zr.Close()
	tr := tar.NewReader(zr)
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	ts.Check(err)
	tw := tar.NewWriter(zw)
	var blobs []string
	type entry struct {
		hdr  *tar.Header
		data []byte
	}
	var entries []entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		ts.Check(err)
		data, err := io.ReadAll(tr)
		ts.Check(err)
		entries = append(entries, entry{h, data})
		if strings.HasPrefix(h.Name, "store/blobs/") {
			blobs = append(blobs, h.Name)
		}
	}
	if len(blobs) == 0 {
		ts.Fatalf("tamper: %s has no blobs", in)
	}
	evil := func(h *tar.Header, data []byte) {
		h.ModTime = time.Unix(0, 0)
		ts.Check(tw.WriteHeader(h))
		_, err := tw.Write(data)
		ts.Check(err)
	}
	for i, e := range entries {
		switch {
		case mode == "drop-signature" && e.hdr.Name == "bundle.json.asc":
			continue
		case (mode == "flip-blob" && e.hdr.Name == blobs[0]) || (mode == "flip-last-blob" && e.hdr.Name == blobs[len(blobs)-1]):
			e.data = bytes.Clone(e.data)
			e.data[len(e.data)/2] ^= 0x10
		}
		evil(e.hdr, e.data)
		if i == 1 || (i == 0 && mode == "drop-signature") {
			switch mode {
			case "dotdot":
				evil(&tar.Header{Name: "../escape", Mode: 0o644, Size: 4, Typeflag: tar.TypeReg}, []byte("evil"))
			case "absolute":
				evil(&tar.Header{Name: "/tmp/mmgap-escape", Mode: 0o644, Size: 4, Typeflag: tar.TypeReg}, []byte("evil"))
			case "symlink":
				evil(&tar.Header{Name: "store/evil", Linkname: "/etc", Mode: 0o777, Typeflag: tar.TypeSymlink}, nil)
			}
		}
	}
	ts.Check(tw.Close())
	ts.Check(zw.Close())
	ts.Check(os.WriteFile(out, buf.Bytes(), 0o644))
}

// cmdExpand replaces ${VAR} in files with the script's environment: expand FILE...
func cmdExpand(ts *testscript.TestScript, neg bool, args []string) {
	for _, f := range args {
		b, err := os.ReadFile(ts.MkAbs(f))
		ts.Check(err)
		ts.Check(os.WriteFile(ts.MkAbs(f), []byte(os.Expand(string(b), ts.Getenv)), 0o644))
	}
}
