package pgp

import (
	"io"
	"runtime"
	"testing"
)

// zeros is an endless reader of zero bytes that allocates nothing.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestStreaming signs and verifies a 64 MiB message and checks that
// neither holds it in memory: total allocation stays far below its size.
func TestStreaming(t *testing.T) {
	const size = 64 << 20
	const budget = 8 << 20
	k := newKey(t, KeyOptions{})

	allocated := func(f func()) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}

	var sig []byte
	n := allocated(func() {
		var err error
		sig, err = k.signer.SignDetached(io.LimitReader(zeros{}, size))
		if err != nil {
			t.Fatal(err)
		}
	})
	if n > budget {
		t.Errorf("signing %d bytes allocated %d bytes; the message is being buffered", size, n)
	}
	n = allocated(func() {
		if _, err := Verify(k.kr, io.LimitReader(zeros{}, size), sig, VerifyOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	if n > budget {
		t.Errorf("verifying %d bytes allocated %d bytes; the message is being buffered", size, n)
	}
	// One byte short: same stream, bad signature.
	if _, err := Verify(k.kr, io.LimitReader(zeros{}, size-1), sig, VerifyOptions{}); err == nil {
		t.Error("truncated stream verified")
	}
}
