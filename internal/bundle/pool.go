package bundle

import (
	"context"
	"sync"
	"sync/atomic"
)

// bufSize is the size of every pooled buffer, and the uncompressed size of the zstd frames a
// writer emits: a raw frame or a decoded frame always fits one buffer.
const bufSize = 1 << 20

// poolBuffers bounds the buffers (or mapped windows of the input) in flight while reading a
// bundle, so the memory a reader uses does not grow with the bundle. Blobs up to about half of
// it are hashed two at a time; a larger blob is hashed on one core while the next is read.
const poolBuffers = 96

// windowSize is the size of the windows of a mapped input; each counts as windowTokens buffers.
const windowSize = 4 * bufSize

const windowTokens = windowSize / bufSize

// rbuf is a buffer shared by reference count between the stream parser and the hashing
// workers: memory from the pool, or a window of a memory-mapped input file. It goes back when
// the last reference is released.
type rbuf struct {
	data   []byte
	refs   atomic.Int32
	pool   *bufPool
	mapped bool // a window of the input mapping: released by dropping its pages
}

func (b *rbuf) retain() { b.refs.Add(1) }

func (b *rbuf) release() {
	if n := b.refs.Add(-1); n == 0 {
		b.pool.put(b)
	} else if n < 0 {
		panic("bundle: buffer released twice")
	}
}

// bufPool bounds the buffers in flight with a semaphore, allocating memory lazily so that small
// bundles stay small.
type bufPool struct {
	size int
	sem  chan struct{} // one token per buffer in flight
	free chan *rbuf    // memory buffers ready for reuse

}

func newBufPool(size, max int) *bufPool {
	return &bufPool{size: size, sem: make(chan struct{}, max), free: make(chan *rbuf, max)}
}

func (p *bufPool) acquire(ctx context.Context) error {
	select {
	case p.sem <- struct{}{}:
		return nil
	default:
	}
	select {
	case p.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// get returns a memory buffer holding one reference, waiting while all are in use.
func (p *bufPool) get(ctx context.Context) (*rbuf, error) {
	if err := p.acquire(ctx); err != nil {
		return nil, err
	}
	var b *rbuf
	select {
	case b = <-p.free:
	default:
		var data []byte
		if p.size == bufSize {
			if d, ok := spare.Get().(*[]byte); ok {
				data = *d
			}
		}
		if data == nil {
			data = make([]byte, p.size)
		}
		b = &rbuf{data: data, pool: p}
	}
	b.refs.Store(1)
	return b, nil
}

// window wraps the window [off, end) of the mapped input as a buffer holding one reference.
func (p *bufPool) window(ctx context.Context, input []byte, off, end int) (*rbuf, error) {
	for i := range windowTokens {
		if err := p.acquire(ctx); err != nil {
			for range i {
				<-p.sem
			}
			return nil, err
		}
	}
	b := &rbuf{data: input[off:end:end], pool: p, mapped: true}
	b.refs.Store(1)
	return b, nil
}

func (p *bufPool) put(b *rbuf) {
	if b.mapped {
		dropPages(b.data)
		for range windowTokens - 1 {
			<-p.sem
		}
	} else {
		p.free <- b
	}
	<-p.sem
}

// spare keeps buffers between runs, so that reading many small bundles does not allocate and
// zero a megabyte each time.
var spare sync.Pool

// recycle hands the pool's memory buffers to the next run. It does so only when every buffer
// is back, so that no buffer still referenced can be reused.
func (p *bufPool) recycle() {
	if p.size != bufSize || len(p.sem) != 0 {
		return
	}
	for {
		select {
		case b := <-p.free:
			spare.Put(&b.data)
		default:
			return
		}
	}
}

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
