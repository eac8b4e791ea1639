//go:build !linux

package bundle

import (
	"io"
	"os"
)

type mapping struct {
	f    *os.File
	all  []byte
	data []byte
	base int64
}

// minMapSize exists for tests; inputs are never mapped here.
var minMapSize int64 = 8 << 20

func mapInput(io.Reader) *mapping { return nil }

func (m *mapping) close(int) {}

func (m *mapping) skip() int { return len(m.all) - len(m.data) }

func dropPages([]byte) {}

func populate([]byte) {}
