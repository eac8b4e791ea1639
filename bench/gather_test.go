// Package bench holds side-by-side benchmarks, each against fixtures on 127.0.0.1 only. This
// file compares mmgap's image gathering with crane and skopeo in one run; see README.md.
package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/mmgap/mmgap/internal/fetch/image"
	"github.com/mmgap/mmgap/internal/store"
	"github.com/mmgap/mmgap/internal/upstreamtest"
)

var (
	benchImages   = flag.Int("images", 4, "images in the large data set")
	benchLayers   = flag.Int("layers", 8, "layers per image in the large data set")
	benchLayerMiB = flag.Int("layer-mib", 32, "MiB of random content per layer in the large data set")
	benchJobs     = flag.Int("jobs", 0, "mmgap Fetcher Jobs (0: the Fetcher's default)")
	craneBin      = flag.String("crane", "", "crane binary for the crane-cli case (default: crane from PATH; skipped when absent)")
)

// gatherChildEnv makes the test binary a one-shot fetcher (see TestMain): a JSON gatherChildJob.
const gatherChildEnv = "MMGAP_BENCH_CHILD"

type gatherChildJob struct {
	Store string   `json:"store"`
	Refs  []string `json:"refs"`
	Jobs  int      `json:"jobs"`
}

type gatherChildResult struct {
	Bytes   int64  `json:"bytes"`
	HeapSys uint64 `json:"heapSys"`
	VmHWMkB int64  `json:"vmHWMkB"`
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(gatherChildEnv); spec != "" {
		if err := runGatherChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runGatherChild fetches the refs into a fresh store and prints peak memory as JSON.
func runGatherChild(spec string) error {
	var job gatherChildJob
	if err := json.Unmarshal([]byte(spec), &job); err != nil {
		return err
	}
	if p := os.Getenv("MMGAP_BENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	n, err := gatherFetchAll(job.Store, job.Refs, job.Jobs)
	if err != nil {
		return err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return json.NewEncoder(os.Stdout).Encode(gatherChildResult{Bytes: n, HeapSys: ms.HeapSys, VmHWMkB: gatherVmHWM()})
}

func gatherVmHWM() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return -1
}

// gatherFetchAll gathers refs concurrently into a new store at dir, as gather does, and returns the
// bytes received.
func gatherFetchAll(dir string, refs []string, jobs int) (int64, error) {
	s, err := store.Open(dir)
	if err != nil {
		return 0, err
	}
	f, err := image.New(image.Options{Store: s, Jobs: jobs})
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var total int64
	var first error
	for _, r := range refs {
		wg.Go(func() {
			res, err := f.Fetch(context.Background(), image.Request{Ref: r})
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = err
			}
			total += res.Bytes
		})
	}
	wg.Wait()
	return total, first
}

type gatherDataSet struct {
	refs  []string
	bytes int64 // blob bytes
}

func gatherPush(b *testing.B, reg *upstreamtest.Registry, prefix string, images, layers int, layerBytes int64) gatherDataSet {
	var ds gatherDataSet
	for i := range images {
		img := reg.PushRandomImage(b, fmt.Sprintf("bench/%s%d", prefix, i), "1", layers, layerBytes)
		ds.refs = append(ds.refs, img.Ref)
		ds.bytes += img.BlobBytes()
	}
	return ds
}

// gatherTimed runs one iteration of a case: untimed preparation (removing the previous output) and
// sync, so one tool's unflushed output does not slow the next; the tool (gatherTimed); then an untimed
// sync whose duration is added to the tool's for the durable-MB/s metric. mmgap fsyncs every blob
// before it returns; crane and skopeo leave their output in the page cache.
type gatherTimed struct {
	b          *testing.B
	bytes      int64
	tool, sync time.Duration
}

func newGatherTimed(b *testing.B, bytes int64) *gatherTimed {
	b.SetBytes(bytes)
	return &gatherTimed{b: b, bytes: bytes}
}

func (t *gatherTimed) run(prepare, fn func()) {
	t.b.StopTimer()
	prepare()
	syscall.Sync()
	t.b.StartTimer()
	start := time.Now()
	fn()
	t.tool += time.Since(start)
	t.b.StopTimer()
	start = time.Now()
	syscall.Sync()
	t.sync += time.Since(start)
	t.b.StartTimer()
}

func (t *gatherTimed) report() {
	n := float64(t.b.N)
	t.b.ReportMetric(float64(t.bytes)/1e6/((t.tool+t.sync).Seconds()/n), "durable-MB/s")
	t.b.ReportMetric(t.sync.Seconds()/n, "sync-s")
}

// BenchmarkGather fetches the same data set (default 4 images x 8 layers x 32 MiB of random,
// incompressible content) with each tool into a fresh OCI layout, and measures mmgap's peak
// memory for a small and the large data set. Run it with:
//
//	go test -run='^$' -bench=Gather -benchtime=1x ./bench/
func BenchmarkGather(b *testing.B) {
	start := time.Now()
	reg := upstreamtest.NewRegistry(b)
	large := gatherPush(b, reg, "large", *benchImages, *benchLayers, int64(*benchLayerMiB)<<20)
	small := gatherPush(b, reg, "small", 1, 4, 25<<20)
	b.Logf("generated %d MiB + %d MiB in %s at %s", large.bytes>>20, small.bytes>>20, time.Since(start).Round(time.Millisecond), reg.Host())
	work := b.TempDir()
	fresh := func(name string) string {
		d := filepath.Join(work, name)
		if err := os.RemoveAll(d); err != nil {
			b.Fatal(err)
		}
		return d
	}
	for _, r := range append(large.refs, small.refs...) { // warm the page cache of the source
		if _, err := gatherFetchAll(fresh("warm"), []string{r}, *benchJobs); err != nil {
			b.Fatal(err)
		}
	}
	fresh("warm")

	b.Run("mmgap", func(b *testing.B) {
		tm := newGatherTimed(b, large.bytes)
		for range b.N {
			var dir string
			tm.run(func() { dir = fresh("mmgap") }, func() {
				n, err := gatherFetchAll(dir, large.refs, *benchJobs)
				if err != nil {
					b.Fatal(err)
				}
				if n < large.bytes {
					b.Fatalf("fetched %d bytes, want %d", n, large.bytes)
				}
			})
		}
		tm.report()
	})

	b.Run("crane-lib", func(b *testing.B) {
		// What `crane pull --format oci REF... DIR` does: crane.Pull each reference, then
		// crane.MultiSaveOCI (layout.AppendImage per image, its layers written concurrently).
		tm := newGatherTimed(b, large.bytes)
		for range b.N {
			var dir string
			tm.run(func() { dir = fresh("crane") }, func() {
				p, err := layout.Write(dir, empty.Index)
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range large.refs {
					img, err := crane.Pull(r, crane.Insecure)
					if err != nil {
						b.Fatal(err)
					}
					if err := p.AppendImage(img); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		tm.report()
	})

	b.Run("crane-cli", func(b *testing.B) {
		bin := *craneBin
		if bin == "" {
			bin, _ = exec.LookPath("crane")
		}
		if bin == "" {
			b.Skip("no crane binary: pass -crane=PATH or put crane on PATH (see README.md)")
		}
		tm := newGatherTimed(b, large.bytes)
		for range b.N {
			var cmd *exec.Cmd
			tm.run(func() {
				args := append([]string{"pull", "--insecure", "--format", "oci"}, large.refs...)
				cmd = exec.Command(bin, append(args, fresh("crane-cli"))...)
			}, func() {
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("crane pull: %v\n%s", err, out)
				}
			})
		}
		tm.report()
	})

	b.Run("skopeo", func(b *testing.B) {
		bin, err := exec.LookPath("skopeo")
		if err != nil {
			b.Fatal("skopeo is required (apt-get install skopeo)")
		}
		tm := newGatherTimed(b, large.bytes)
		for range b.N {
			var dir string
			tm.run(func() { dir = fresh("skopeo") }, func() {
				for i, r := range large.refs {
					cmd := exec.Command(bin, "copy", "--quiet", "--src-tls-verify=false",
						"docker://"+r, fmt.Sprintf("oci:%s:img%d", dir, i))
					if out, err := cmd.CombinedOutput(); err != nil {
						b.Fatalf("skopeo copy: %v\n%s", err, out)
					}
				}
			})
		}
		tm.report()
	})

	// Peak memory of a process that only fetches: the test binary re-executed as a child.
	for _, tc := range []struct {
		name string
		ds   gatherDataSet
	}{{"memory-100MB", small}, {"memory-1GB", large}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(tc.ds.bytes)
			var res gatherChildResult
			for range b.N {
				b.StopTimer()
				spec, _ := json.Marshal(gatherChildJob{Store: fresh("child"), Refs: tc.ds.refs, Jobs: *benchJobs})
				syscall.Sync()
				b.StartTimer()
				cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
				cmd.Env = append(os.Environ(), gatherChildEnv+"="+string(spec))
				cmd.Stderr = os.Stderr
				out, err := cmd.Output()
				if err != nil {
					b.Fatalf("child: %v", err)
				}
				if err := json.Unmarshal(out, &res); err != nil {
					b.Fatalf("child output %q: %v", out, err)
				}
			}
			b.ReportMetric(float64(res.VmHWMkB)/1024, "VmHWM-MB")
			b.ReportMetric(float64(res.HeapSys)/(1<<20), "HeapSys-MB")
			if res.VmHWMkB > 200<<10 {
				b.Errorf("peak RSS %d MiB exceeds 200 MiB", res.VmHWMkB>>10)
			}
		})
	}
}
