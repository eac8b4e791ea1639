package plan

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// DiskError reports a filesystem without room for what gather will write there.
type DiskError struct {
	Path string   // the directory checked (the store's, the bundle's, or the nearest existing parent)
	Uses []string // what will be written there: "store", "bundle"
	Need uint64   // bytes needed
	Free uint64   // bytes available
}

func (e *DiskError) Error() string {
	what := "the store and the bundle"
	switch {
	case len(e.Uses) == 1 && e.Uses[0] == "store":
		what = "the store"
	case len(e.Uses) == 1 && e.Uses[0] == "bundle":
		what = "the bundle"
	}
	return fmt.Sprintf("not enough disk space at %s for %s: need %s, %s free (%s short); free space there or choose another location (--store, -o)",
		e.Path, what, HumanBytes(e.Need), HumanBytes(e.Free), HumanBytes(e.Need-e.Free))
}

// StatfsFree is the space statfs(2) reports available to unprivileged users at path.
func StatfsFree(path string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}

// existingDir is path if it is a directory, else its nearest existing ancestor directory.
func existingDir(path string, isDir bool) (string, error) {
	p, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if !isDir {
		p = filepath.Dir(p)
	}
	for {
		fi, err := os.Stat(p)
		if err == nil && fi.IsDir() {
			return p, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return "", fmt.Errorf("%s: no existing directory above it", path)
		}
		p = parent
	}
}

// device identifies the filesystem holding dir.
func device(dir string) (uint64, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return 0, false
	}
	return uint64(st.Dev), true
}

// checkDisks works out what the store and the bundle need and compares it with the free space
// where they go. Store and bundle on one filesystem share its free space.
func checkDisks(t Totals, items []Item, opts Options) ([]Disk, error) {
	type target struct {
		use  string
		path string
		dir  bool
		need uint64
	}
	var targets []target
	if opts.StoreDir != "" {
		need := uint64(max(t.Download, 0))
		for _, it := range items {
			if it.temp && it.Size > 0 {
				need += uint64(it.Size) // the temporary copy of a signature-checked file
			}
		}
		need += uint64(len(items)) * perArtifactOverhead
		targets = append(targets, target{"store", opts.StoreDir, true, need})
	}
	if opts.BundlePath != "" {
		targets = append(targets, target{"bundle", opts.BundlePath, false, uint64(max(t.Bundle, 0))})
	}
	var disks []Disk
	var first *DiskError
	byDev := map[uint64]int{}
	for _, tg := range targets {
		dir, err := existingDir(tg.path, tg.dir)
		if err != nil {
			disks = append(disks, Disk{Path: tg.path, Uses: []string{tg.use}, Need: tg.need, Err: err.Error()})
			continue
		}
		if dev, ok := device(dir); ok {
			if i, ok := byDev[dev]; ok {
				disks[i].Uses = append(disks[i].Uses, tg.use)
				disks[i].Need += tg.need
				continue
			}
			byDev[dev] = len(disks)
		}
		disks = append(disks, Disk{Path: dir, Uses: []string{tg.use}, Need: tg.need})
	}
	for i := range disks {
		d := &disks[i]
		if d.Err != "" {
			continue
		}
		free, err := opts.FreeSpace(d.Path)
		if err != nil {
			d.Err = err.Error()
			continue
		}
		d.Free = free
		d.OK = d.Need <= free
		if !d.OK && first == nil {
			first = &DiskError{Path: d.Path, Uses: d.Uses, Need: d.Need, Free: free}
		}
	}
	if first != nil {
		return disks, first
	}
	return disks, nil
}

// HumanBytes formats n in binary units: 512 B, 1.5 KiB, 3.2 GiB.
func HumanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
