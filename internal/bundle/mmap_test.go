package bundle

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mmgap/mmgap/internal/fetch"
)

// truncator shrinks the bundle file as soon as verification is under way.
type truncator struct {
	fetch.NopProgress
	once sync.Once
	path string
	size int64
}

func (p *truncator) Add(string, int64, bool) {
	p.once.Do(func() { os.Truncate(p.path, p.size) })
}

func TestMappedInput(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Log("input mapping is used on Linux only; this checks the read path")
	}
	f := newFixture(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "b.mmgap.tar.zst")
	writeFile(t, path, f.raw)
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if m := mapInput(fh); runtime.GOOS == "linux" && m != nil {
		t.Fatal("a 4 MB bundle was mapped; the threshold is 8 MiB")
	}
	if runtime.GOOS == "linux" {
		defer func(old int64) { minMapSize = old }(minMapSize)
		minMapSize = 0
	}
	// Start in the middle of a file, as a reader handed an open file at some offset would.
	prefix := make([]byte, 5000)
	writeFile(t, path, append(prefix, f.raw...))
	fh2, _ := os.Open(path)
	defer fh2.Close()
	fh2.Seek(int64(len(prefix)), io.SeekStart)
	if _, err := Verify(context.Background(), fh2, VerifyOptions{Keyring: f.key.kr}); err != nil {
		t.Fatal(err)
	}
	if off, _ := fh2.Seek(0, io.SeekCurrent); off != int64(len(prefix)+len(f.raw)) {
		t.Fatalf("file offset after Verify %d, want %d", off, len(prefix)+len(f.raw))
	}

	// Damage is still found through the mapping.
	d := append(slices.Clone(prefix), f.raw...)
	d[len(d)-3000] ^= 4
	writeFile(t, path, d)
	fh3, _ := os.Open(path)
	defer fh3.Close()
	fh3.Seek(int64(len(prefix)), io.SeekStart)
	var ie *IntegrityError
	if _, err := Verify(context.Background(), fh3, VerifyOptions{Keyring: f.key.kr}); !errors.As(err, &ie) {
		t.Fatalf("damaged mapped bundle: %v", err)
	}

	// A file that shrinks while it is mapped and read is an integrity failure, not a crash.
	for _, extract := range []bool{false, true} {
		writeFile(t, path, f.raw)
		fh, _ := os.Open(path)
		p := &truncator{path: path, size: int64(len(f.raw)) / 3}
		root := t.TempDir()
		var err error
		if extract {
			_, err = Extract(context.Background(), fh, filepath.Join(root, "out"), VerifyOptions{Keyring: f.key.kr, Progress: p})
		} else {
			_, err = Verify(context.Background(), fh, VerifyOptions{Keyring: f.key.kr, Progress: p})
		}
		fh.Close()
		if !errors.As(err, &ie) || !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "changed (shrank)") {
			t.Fatalf("file shrinking under the reader (extract=%v): %v", extract, err)
		}
		if tree := treeOf(t, root); len(tree) != 1 {
			t.Fatalf("left behind: %v", tree)
		}
	}
}
