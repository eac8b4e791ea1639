package bundle

import (
	"context"
	"sync"
	"sync/atomic"
)

// bufSize is the size of every pooled buffer, and the uncompressed size of the zstd frames a
// writer emits: a raw frame or a decoded frame always fits one buffer.
const bufSize = 1 << 20

// poolBuffers bounds the buffers in flight while reading a bundle: the memory a reader uses
// does not grow with the bundle.
const poolBuffers = 40

// rbuf is a pooled buffer shared by reference count between the stream parser and the hashing
// workers. It returns to its pool when the last reference is released.
type rbuf struct {
	data []byte
	refs atomic.Int32
	pool *bufPool
}

func (b *rbuf) retain() { b.refs.Add(1) }

func (b *rbuf) release() {
	if n := b.refs.Add(-1); n == 0 {
		b.pool.put(b)
	} else if n < 0 {
		panic("bundle: buffer released twice")
	}
}

// bufPool hands out at most max buffers, allocating them lazily so small bundles stay small.
type bufPool struct {
	size int
	max  int

	mu   sync.Mutex
	made int
	free chan *rbuf
}

func newBufPool(size, max int) *bufPool {
	return &bufPool{size: size, max: max, free: make(chan *rbuf, max)}
}

// get returns a buffer holding one reference, waiting while all are in use.
func (p *bufPool) get(ctx context.Context) (*rbuf, error) {
	select {
	case b := <-p.free:
		b.refs.Store(1)
		return b, nil
	default:
	}
	p.mu.Lock()
	if p.made < p.max {
		p.made++
		p.mu.Unlock()
		b := &rbuf{data: make([]byte, p.size), pool: p}
		b.refs.Store(1)
		return b, nil
	}
	p.mu.Unlock()
	select {
	case b := <-p.free:
		b.refs.Store(1)
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *bufPool) put(b *rbuf) { p.free <- b }

// chunk is a piece of data in a pooled buffer; the holder owns one reference to buf (nil for
// memory that is not pooled).
type chunk struct {
	b   []byte
	buf *rbuf
}

func (c chunk) release() {
	if c.buf != nil {
		c.buf.release()
	}
}
