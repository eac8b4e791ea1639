package bundle

import (
	"runtime"
	"unsafe"
)

func unsafePointer(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

// isFault reports whether a recovered panic is a memory fault (debug.SetPanicOnFault): a mapped
// input file that shrank while it was read.
func isFault(r any) bool {
	_, ok := r.(interface{ Addr() uintptr })
	_, isErr := r.(runtime.Error)
	return ok && isErr
}
