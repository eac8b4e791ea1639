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

func mapInput(io.Reader) *mapping { return nil }

func (m *mapping) close(int) {}

// skip is how far data starts into the page-aligned mapping.
func (m *mapping) skip() int { return len(m.all) - len(m.data) }

func dropPages([]byte) {}

func populate([]byte) {}
