//go:build linux

package bundle

import (
	"io"
	"os"
	"syscall"
)

// minMapSize is the smallest input worth mapping.
var minMapSize int64 = 8 << 20

// mapping is a read-only memory map of the rest of an input file. Reading a bundle through it
// saves the copy from the page cache that read(2) makes, about a sixth of the CPU time of a
// verification. Windows are populated in one call when the reader takes them and dropped from
// the process (madvise DONTNEED) as soon as they are hashed, so resident memory stays bounded by
// the buffer pool. If the file shrinks meanwhile, reading a dropped page faults: readers turn
// that into an error with debug.SetPanicOnFault.
type mapping struct {
	f    *os.File
	all  []byte // the whole mapping, from a page boundary
	data []byte // from the reader's offset
	base int64  // file offset of data[0]
}

// mapInput maps r when it is a regular file large enough to be worth it; nil otherwise.
func mapInput(r io.Reader) *mapping {
	f, ok := r.(*os.File)
	if !ok {
		return nil
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	off, err := f.Seek(0, io.SeekCurrent)
	if err != nil || fi.Size()-off < minMapSize || fi.Size() > 1<<46 {
		return nil
	}
	page := int64(os.Getpagesize())
	start := off &^ (page - 1)
	length := fi.Size() - start
	if int64(int(length)) != length {
		return nil
	}
	all, err := syscall.Mmap(int(f.Fd()), start, int(length), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil
	}
	_ = syscall.Madvise(all, syscall.MADV_SEQUENTIAL)
	return &mapping{f: f, all: all, data: all[off-start:], base: off}
}

// close unmaps and leaves the file offset after the bytes consumed, as reading would.
func (m *mapping) close(consumed int) {
	syscall.Munmap(m.all)
	m.f.Seek(m.base+int64(consumed), io.SeekStart)
}

// skip is how far data starts into the page-aligned mapping.
func (m *mapping) skip() int { return len(m.all) - len(m.data) }

// dropPages releases the whole pages of b from the process; the data stays in the page cache
// and b stays valid (it would fault back in).
func dropPages(b []byte) {
	if len(b) == 0 {
		return
	}
	page := uintptr(os.Getpagesize())
	p := uintptr(unsafePointer(b))
	start := (page - p%page) % page
	end := uintptr(len(b)) - (p+uintptr(len(b)))%page
	if end <= start {
		return
	}
	_ = syscall.Madvise(b[start:end], syscall.MADV_DONTNEED)
}

// madvPopulateRead is MADV_POPULATE_READ (Linux 5.14).
const madvPopulateRead = 22

// populate maps the pages of a window in one call rather than one fault every 16 pages. Errors
// (an older kernel) are ignored: the pages then fault in as they are read.
func populate(b []byte) {
	if len(b) > 0 {
		_ = syscall.Madvise(b, madvPopulateRead)
	}
}
