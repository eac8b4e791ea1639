package bundle

import (
	"context"
	"encoding/binary"
	"errors"
	"hash"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// DefaultLevel is the compression level Create uses unless told otherwise. Most of a bundle is
// image layers that are already compressed; see bench/README-bundle.md for the measurement.
const DefaultLevel = zstd.SpeedFastest

// frameWriter compresses a byte stream as a sequence of independent zstd frames of bufSize
// uncompressed bytes each, compressed in parallel and written in order. A frame that
// compression does not shrink by at least 1/32 is stored as raw blocks instead, which readers
// pass through without decoding; a frame whose samples do not compress is stored raw without
// trying the rest. The output depends only on the input and the level, not on the number of
// cores.
type frameWriter struct {
	ctx context.Context
	w   io.Writer
	enc *zstd.Encoder

	cur *fjob // the frame being filled

	work  chan *fjob
	order chan *fjob
	free  chan *fjob
	wg    sync.WaitGroup
	done  chan struct{}

	mu  sync.Mutex
	err error
}

// fjob is one frame: its input, its output, and the references that keep its input buffer from
// being reused (the writer's, and one per piece a blob hasher still has to read).
type fjob struct {
	in, out []byte
	refs    atomic.Int32
	done    chan struct{}
}

func newFrameWriter(ctx context.Context, w io.Writer, level zstd.EncoderLevel) (*frameWriter, error) {
	workers := min(max(runtime.GOMAXPROCS(0), 1), 8)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(workers), zstd.WithEncoderCRC(true))
	if err != nil {
		return nil, err
	}
	inflight := 2*workers + 4
	fw := &frameWriter{
		ctx:   ctx,
		w:     w,
		enc:   enc,
		work:  make(chan *fjob, inflight),
		order: make(chan *fjob, inflight),
		free:  make(chan *fjob, inflight+1),
		done:  make(chan struct{}),
	}
	for range inflight + 1 {
		fw.free <- &fjob{in: make([]byte, 0, bufSize), out: make([]byte, 0, bufSize+bufSize/8)}
	}
	for range workers {
		fw.wg.Add(1)
		go fw.compressor()
	}
	go fw.writer()
	fw.cur, _ = fw.take()
	return fw, nil
}

// take returns a free frame buffer, waiting while all are in use.
func (fw *frameWriter) take() (*fjob, error) {
	var j *fjob
	select {
	case j = <-fw.free:
	case <-fw.ctx.Done():
		return nil, fw.ctx.Err()
	}
	j.in, j.out = j.in[:0], j.out[:0]
	j.refs.Store(1) // the frame writer's own, handed to the writer goroutine on submit
	j.done = make(chan struct{})
	return j, nil
}

func (fw *frameWriter) unref(j *fjob) {
	if j.refs.Add(-1) == 0 {
		fw.free <- j
	}
}

func (fw *frameWriter) setErr(err error) {
	fw.mu.Lock()
	if fw.err == nil {
		fw.err = err
	}
	fw.mu.Unlock()
}

func (fw *frameWriter) failed() error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return fw.err
}

func (fw *frameWriter) compressor() {
	defer fw.wg.Done()
	var scratch []byte
	for j := range fw.work {
		if fw.incompressible(j.in, &scratch) {
			j.out = appendRawFrame(j.out, j.in)
		} else {
			out := fw.enc.EncodeAll(j.in, j.out)
			if len(out) >= len(j.in)-len(j.in)/32 {
				out = appendRawFrame(out[:0], j.in)
			}
			j.out = out
		}
		close(j.done)
	}
}

// incompressible reports whether three samples of in all fail to compress by 1/32, as with
// already compressed data (image layers, archives): the frame is then stored raw without
// compressing the rest.
func (fw *frameWriter) incompressible(in []byte, scratch *[]byte) bool {
	const sample = 16 << 10
	if len(in) < 8*sample {
		return false
	}
	for _, off := range []int{0, len(in)/2 - sample/2, len(in) - sample} {
		s := in[off : off+sample]
		*scratch = fw.enc.EncodeAll(s, (*scratch)[:0])
		if len(*scratch) < len(s)-len(s)/32 {
			return false
		}
	}
	return true
}

func (fw *frameWriter) writer() {
	defer close(fw.done)
	for j := range fw.order {
		<-j.done
		if fw.failed() == nil {
			if _, err := fw.w.Write(j.out); err != nil {
				fw.setErr(err)
			}
		}
		fw.unref(j)
	}
}

// appendRawFrame appends a zstd frame holding in as raw blocks: single segment, 4-byte content
// size, no checksum (RFC 8878 §3.1.1).
func appendRawFrame(dst, in []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, zstdMagic)
	dst = append(dst, 0xA0) // FCS field 4 bytes, single segment
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(in)))
	for first := true; first || len(in) > 0; first = false {
		n := min(len(in), maxBlockSize)
		h := uint32(n) << 3 // raw block
		if n == len(in) {
			h |= 1 // last block
		}
		dst = append(dst, byte(h), byte(h>>8), byte(h>>16))
		dst = append(dst, in[:n]...)
		in = in[n:]
	}
	return dst
}

func (fw *frameWriter) submit() error {
	if len(fw.cur.in) == 0 {
		return nil
	}
	j := fw.cur
	fw.cur = nil
	fw.order <- j
	fw.work <- j
	var err error
	if fw.cur, err = fw.take(); err != nil {
		return err
	}
	return fw.failed()
}

func (fw *frameWriter) stopped() error {
	if err := fw.failed(); err != nil {
		return err
	}
	if err := fw.ctx.Err(); err != nil {
		return err
	}
	return errors.New("bundle writer closed")
}

// Write appends p to the stream.
func (fw *frameWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if fw.cur == nil {
			return n, fw.stopped()
		}
		in := fw.cur.in
		m := copy(in[len(in):cap(in)], p)
		fw.cur.in = in[:len(in)+m]
		p = p[m:]
		n += m
		if len(fw.cur.in) == cap(fw.cur.in) {
			if err := fw.submit(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// copyFrom appends exactly n bytes read from r, reading straight into the frame buffers, and
// hands each piece to h, which hashes it on its own goroutine; read reports progress.
func (fw *frameWriter) copyFrom(r io.Reader, n int64, h *pipeHasher, read func(int)) error {
	for n > 0 {
		if err := fw.ctx.Err(); err != nil {
			return err
		}
		if fw.cur == nil {
			return fw.stopped()
		}
		in := fw.cur.in
		room := in[len(in):cap(in)]
		room = room[:min(int64(len(room)), n)]
		m, err := io.ReadFull(r, room)
		if m > 0 {
			fw.cur.refs.Add(1)
			h.add(room[:m], fw.cur)
			fw.cur.in = in[:len(in)+m]
			n -= int64(m)
			read(m)
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if len(fw.cur.in) == cap(fw.cur.in) {
			if err := fw.submit(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close flushes the last frame and waits for everything to be written.
func (fw *frameWriter) Close() error {
	var err error
	if fw.cur != nil && fw.failed() == nil && fw.ctx.Err() == nil {
		err = fw.submit()
	}
	close(fw.order)
	close(fw.work)
	fw.wg.Wait()
	<-fw.done
	fw.enc.Close()
	if err != nil {
		return err
	}
	if err := fw.failed(); err != nil {
		return err
	}
	return fw.ctx.Err()
}

// pipeHasher hashes blob content on its own goroutine while the frame writer reads on, and
// checks each blob against its expected digest.
type pipeHasher struct {
	fw    *frameWriter
	items chan hashItem
	done  chan struct{}
	h     hash.Hash

	mu  sync.Mutex
	err error
}

type hashItem struct {
	b     []byte
	j     *fjob
	check func(sum []byte) error // end of a blob
}

func newPipeHasher(fw *frameWriter, h hash.Hash) *pipeHasher {
	p := &pipeHasher{fw: fw, items: make(chan hashItem, 256), done: make(chan struct{}), h: h}
	go p.run()
	return p
}

func (p *pipeHasher) run() {
	defer close(p.done)
	var sum []byte
	for it := range p.items {
		switch {
		case it.check != nil:
			sum = p.h.Sum(sum[:0])
			p.h.Reset()
			if err := it.check(sum); err != nil {
				p.mu.Lock()
				if p.err == nil {
					p.err = err
				}
				p.mu.Unlock()
			}
		default:
			p.h.Write(it.b)
			p.fw.unref(it.j)
		}
	}
}

func (p *pipeHasher) add(b []byte, j *fjob) { p.items <- hashItem{b: b, j: j} }

// end closes the current blob; check receives its SHA-256.
func (p *pipeHasher) end(check func(sum []byte) error) { p.items <- hashItem{check: check} }

func (p *pipeHasher) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// close waits for every piece to be hashed and returns the first mismatch.
func (p *pipeHasher) close() error {
	close(p.items)
	<-p.done
	return p.failed()
}
