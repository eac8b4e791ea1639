package bundle

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// DefaultLevel is the compression level Create uses unless told otherwise. Most of a bundle is
// image layers that are already compressed; see bench/README-bundle.md for the measurement.
const DefaultLevel = zstd.SpeedFastest

// frameWriter compresses a byte stream as a sequence of independent zstd frames of bufSize
// uncompressed bytes each, compressed in parallel and written in order. A frame that
// compression does not shrink by at least 1/32 is stored as raw blocks instead, which readers
// pass through without decoding. The output depends only on the input and the level, not on
// the number of cores.
type frameWriter struct {
	ctx context.Context
	w   io.Writer
	enc *zstd.Encoder

	cur    []byte // the frame being filled
	curOut []byte // its output buffer

	work  chan *fjob
	order chan *fjob
	free  chan *fjob
	wg    sync.WaitGroup
	done  chan struct{}

	mu  sync.Mutex
	err error
}

type fjob struct {
	in, out []byte
	done    chan struct{}
}

func newFrameWriter(ctx context.Context, w io.Writer, level zstd.EncoderLevel) (*frameWriter, error) {
	workers := min(max(runtime.GOMAXPROCS(0), 1), 8)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(workers), zstd.WithEncoderCRC(true))
	if err != nil {
		return nil, err
	}
	inflight := 2*workers + 2
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
	j := <-fw.free
	fw.cur, fw.curOut = j.in, j.out
	return fw, nil
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
	for j := range fw.work {
		out := fw.enc.EncodeAll(j.in, j.out[:0])
		if len(out) >= len(j.in)-len(j.in)/32 {
			out = appendRawFrame(out[:0], j.in)
		}
		j.out = out
		close(j.done)
	}
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
		fw.free <- &fjob{in: j.in[:0], out: j.out[:0]}
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
	if len(fw.cur) == 0 {
		return nil
	}
	j := &fjob{in: fw.cur, out: fw.curOut, done: make(chan struct{})}
	fw.cur, fw.curOut = nil, nil
	fw.order <- j
	fw.work <- j
	select {
	case n := <-fw.free:
		fw.cur, fw.curOut = n.in, n.out
	case <-fw.ctx.Done():
		return fw.ctx.Err()
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
		m := copy(fw.cur[len(fw.cur):cap(fw.cur)], p)
		fw.cur = fw.cur[:len(fw.cur)+m]
		p = p[m:]
		n += m
		if len(fw.cur) == cap(fw.cur) {
			if err := fw.submit(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// copyFrom appends exactly n bytes read from r, reading straight into the frame buffers, and
// calls fn on each piece read.
func (fw *frameWriter) copyFrom(r io.Reader, n int64, fn func([]byte)) error {
	for n > 0 {
		if err := fw.ctx.Err(); err != nil {
			return err
		}
		if fw.cur == nil {
			return fw.stopped()
		}
		room := fw.cur[len(fw.cur):cap(fw.cur)]
		room = room[:min(int64(len(room)), n)]
		m, err := io.ReadFull(r, room)
		if m > 0 {
			fn(room[:m])
			fw.cur = fw.cur[:len(fw.cur)+m]
			n -= int64(m)
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if len(fw.cur) == cap(fw.cur) {
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
