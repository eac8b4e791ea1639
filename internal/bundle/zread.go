package bundle

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

const (
	zstdMagic         = 0xFD2FB528
	skippableMagic    = 0x184D2A50 // low 4 bits free
	skippableMask     = 0xFFFFFFF0
	maxBlockSize      = 128 << 10
	maxFrameHeader    = 18
	maxDecoderWindow  = 64 << 20      // larger windows are refused (memory bound)
	maxFastFrameBytes = 2*bufSize + 1 // frames larger than this are left to the streaming decoder
)

// streamError is a failure of the compressed stream itself.
type streamError struct {
	truncated bool
	cleanEnd  bool // the compressed stream ended cleanly, the tar stream inside did not
	notZstd   bool // the data is not zstd at all
	msg       string
	err       error
}

func (e *streamError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

func (e *streamError) Unwrap() error { return e.err }

func errTruncatedStream(what string) error {
	return &streamError{truncated: true, msg: "compressed stream ends early (" + what + ")"}
}

// zreader decompresses a bundle into pooled chunks.
//
// It walks zstd frames itself. A frame whose blocks are all raw (what writers emit for
// incompressible data such as image layers) is passed through without copying: its chunks point
// into the buffers the input was read into. Other small frames (bounded content size) are
// decoded whole with DecodeAll. Anything else (a frame without a content size, a large frame,
// dictionaries) switches the rest of the stream to klauspost's streaming decoder, which handles
// every valid zstd stream. Frame checksums are not checked on the fast path: every byte is
// covered by SHA-256 against the signed inventory.
type zreader struct {
	ctx  context.Context
	r    *recReader
	pool *bufPool
	m    *mapping // the input, mapped; nil when read
	moff int      // next unmapped offset in m.data

	q     []inbuf // input not yet consumed; q[0].b[off:] is next
	off   int
	eof   bool
	rerr  error
	begun bool // a zstd frame was seen

	pending []chunk
	blocks  []blockRef
	scratch []byte

	slow    *zstd.Decoder
	slowErr error
}

type inbuf struct {
	buf *rbuf
	b   []byte
}

type blockRef struct {
	off, size int
}

func newZreader(ctx context.Context, r io.Reader, pool *bufPool) *zreader {
	return &zreader{ctx: ctx, r: &recReader{r: r}, pool: pool}
}

func (z *zreader) close() {
	for _, c := range z.pending {
		c.release()
	}
	z.pending = nil
	for _, in := range z.q {
		in.buf.release()
	}
	z.q = nil
	if z.slow != nil {
		z.slow.Close()
	}
}

func (z *zreader) avail() int {
	n := -z.off
	for _, in := range z.q {
		n += len(in.b)
	}
	return n
}

// fill reads until need bytes are buffered or the input ends.
func (z *zreader) fill(need int) error {
	for z.avail() < need {
		if z.eof {
			return nil
		}
		if z.rerr != nil {
			return z.rerr
		}
		if err := z.ctx.Err(); err != nil {
			return err
		}
		if z.m != nil {
			if z.moff >= len(z.m.data) {
				z.eof = true
				return nil
			}
			// Windows end on windowSize boundaries of the page-aligned mapping, so that whole
			// pages can be dropped when they are released.
			skip := z.m.skip()
			end := min(len(z.m.data), ((skip+z.moff)/windowSize+1)*windowSize-skip)
			w, err := z.pool.window(z.ctx, z.m.data, z.moff, end)
			if err != nil {
				return err
			}
			populate(w.data)
			z.q = append(z.q, inbuf{buf: w, b: w.data})
			z.moff = end
			continue
		}
		buf, err := z.pool.get(z.ctx)
		if err != nil {
			return err
		}
		n, err := io.ReadFull(z.r, buf.data)
		if n > 0 {
			z.q = append(z.q, inbuf{buf: buf, b: buf.data[:n]})
		} else {
			buf.release()
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			z.eof = true
		case err != nil:
			z.rerr = fmt.Errorf("read bundle: %w", err)
			return z.rerr
		}
	}
	return nil
}

// peek copies the buffered bytes at [pos, pos+len(p)) into p; they must be buffered.
func (z *zreader) peek(pos int, p []byte) {
	pos += z.off
	for _, in := range z.q {
		if pos >= len(in.b) {
			pos -= len(in.b)
			continue
		}
		n := copy(p, in.b[pos:])
		p = p[n:]
		pos = 0
		if len(p) == 0 {
			return
		}
	}
	if len(p) > 0 {
		panic("bundle: peek beyond buffered input")
	}
}

// refs appends chunks referencing the buffered bytes [pos, pos+n) without copying.
func (z *zreader) refs(out []chunk, pos, n int) []chunk {
	pos += z.off
	for _, in := range z.q {
		if n == 0 {
			break
		}
		if pos >= len(in.b) {
			pos -= len(in.b)
			continue
		}
		m := min(n, len(in.b)-pos)
		in.buf.retain()
		out = append(out, chunk{b: in.b[pos : pos+m], buf: in.buf})
		n -= m
		pos = 0
	}
	return out
}

// consume drops n buffered bytes.
func (z *zreader) consume(n int) {
	for n > 0 {
		in := z.q[0]
		m := min(n, len(in.b)-z.off)
		z.off += m
		n -= m
		if z.off == len(in.b) {
			in.buf.release()
			z.q[0] = inbuf{}
			z.q = z.q[1:]
			z.off = 0
		}
	}
}

// next returns the next piece of decompressed data, io.EOF at the clean end of the stream, or
// a *streamError.
func (z *zreader) next() (chunk, error) {
	for {
		if len(z.pending) > 0 {
			c := z.pending[0]
			z.pending[0] = chunk{}
			z.pending = z.pending[1:]
			return c, nil
		}
		if z.slow != nil {
			return z.readSlow()
		}
		if err := z.frame(); err != nil {
			return chunk{}, err
		}
	}
}

// frame handles the next frame: it queues its content in pending, skips it (skippable frames),
// or hands the stream over to the streaming decoder.
func (z *zreader) frame() error {
	if err := z.fill(maxFrameHeader); err != nil {
		return err
	}
	avail := z.avail()
	if avail == 0 {
		if !z.begun {
			return &streamError{notZstd: true, msg: "empty input"}
		}
		return io.EOF
	}
	if avail < 4 {
		if z.begun {
			return errTruncatedStream("partial frame header")
		}
		return &streamError{notZstd: true, msg: "input too short to be zstd"}
	}
	var hdr [maxFrameHeader]byte
	z.peek(0, hdr[:min(avail, maxFrameHeader)])
	magic := binary.LittleEndian.Uint32(hdr[:4])
	if magic&skippableMask == skippableMagic {
		return z.skipFrame()
	}
	if magic != zstdMagic {
		if !z.begun {
			return &streamError{notZstd: true, msg: "input is not zstd-compressed"}
		}
		return &streamError{msg: fmt.Sprintf("bytes %02x%02x%02x%02x where a zstd frame should start", hdr[0], hdr[1], hdr[2], hdr[3])}
	}
	z.begun = true
	if avail < 5 {
		return errTruncatedStream("frame header")
	}
	fhd := hdr[4]
	fcsFlag := fhd >> 6
	single := fhd>>5&1 == 1
	reserved := fhd>>3&1 == 1
	checksum := fhd>>2&1 == 1
	dictFlag := fhd & 3
	pos := 5
	window := uint64(0)
	if !single {
		pos++
		if avail < pos {
			return errTruncatedStream("frame header")
		}
		wd := hdr[5]
		base := uint64(1) << (10 + wd>>3)
		window = base + base/8*uint64(wd&7)
	}
	dictSize := [4]int{0, 1, 2, 4}[dictFlag]
	fcsSize := [4]int{0, 2, 4, 8}[fcsFlag]
	if fcsFlag == 0 && single {
		fcsSize = 1
	}
	if avail < pos+dictSize+fcsSize {
		return errTruncatedStream("frame header")
	}
	var dictID uint64
	for i := 0; i < dictSize; i++ {
		dictID |= uint64(hdr[pos+i]) << (8 * i)
	}
	pos += dictSize
	var fcs uint64
	for i := 0; i < fcsSize; i++ {
		fcs |= uint64(hdr[pos+i]) << (8 * i)
	}
	if fcsSize == 2 {
		fcs += 256
	}
	pos += fcsSize
	if reserved || dictID != 0 || fcsSize == 0 || fcs > bufSize {
		return z.toSlow()
	}
	if single {
		window = fcs
	}
	blockMax := int(min(window, maxBlockSize))

	// Walk the block headers, keeping the whole frame buffered, to learn whether it is all raw.
	z.blocks = z.blocks[:0]
	allRaw := true
	var total uint64
	var bh [3]byte
	for {
		if pos+3 > maxFastFrameBytes {
			return z.toSlow()
		}
		if err := z.fill(pos + 3); err != nil {
			return err
		}
		if z.avail() < pos+3 {
			return errTruncatedStream("block header")
		}
		z.peek(pos, bh[:])
		h := uint32(bh[0]) | uint32(bh[1])<<8 | uint32(bh[2])<<16
		last := h&1 == 1
		typ := (h >> 1) & 3
		size := int(h >> 3)
		payload := size
		switch typ {
		case 0: // raw
			total += uint64(size)
			z.blocks = append(z.blocks, blockRef{off: pos + 3, size: size})
		case 1: // RLE
			payload = 1
			allRaw = false
		case 2: // compressed
			allRaw = false
		default:
			return &streamError{msg: "corrupt zstd frame: reserved block type"}
		}
		if size > blockMax {
			return &streamError{msg: fmt.Sprintf("corrupt zstd frame: block of %d bytes exceeds the %d-byte maximum", size, blockMax)}
		}
		pos += 3 + payload
		if pos > maxFastFrameBytes {
			return z.toSlow()
		}
		if err := z.fill(pos); err != nil {
			return err
		}
		if z.avail() < pos {
			return errTruncatedStream("block data")
		}
		if last {
			break
		}
	}
	if checksum {
		pos += 4
		if err := z.fill(pos); err != nil {
			return err
		}
		if z.avail() < pos {
			return errTruncatedStream("frame checksum")
		}
	}
	if allRaw {
		if total != fcs {
			return &streamError{msg: fmt.Sprintf("corrupt zstd frame: %d bytes of content, header says %d", total, fcs)}
		}
		for _, b := range z.blocks {
			if b.size > 0 {
				z.pending = z.refs(z.pending, b.off, b.size)
			}
		}
		z.consume(pos)
		return nil
	}
	return z.decodeFrame(pos)
}

// decodeFrame decodes the buffered frame of n bytes whole.
func (z *zreader) decodeFrame(n int) error {
	if cap(z.scratch) < n {
		z.scratch = make([]byte, n)
	}
	src := z.scratch[:n]
	z.peek(0, src)
	z.consume(n)
	dec, err := frameDecoder()
	if err != nil {
		return err
	}
	out, err := z.pool.get(z.ctx)
	if err != nil {
		return err
	}
	res, err := dec.DecodeAll(src, out.data[:0])
	if err != nil {
		out.release()
		return &streamError{msg: "corrupt zstd frame", err: err}
	}
	if len(res) == 0 {
		out.release()
		return nil
	}
	if &res[0] != &out.data[0] {
		out.release()
		return &streamError{msg: "corrupt zstd frame: content larger than its header says"}
	}
	z.pending = append(z.pending, chunk{b: res, buf: out})
	return nil
}

func (z *zreader) skipFrame() error {
	if err := z.fill(8); err != nil {
		return err
	}
	if z.avail() < 8 {
		return errTruncatedStream("skippable frame header")
	}
	var h [8]byte
	z.peek(0, h[:])
	n := int64(binary.LittleEndian.Uint32(h[4:]))
	z.consume(8)
	for n > 0 {
		if err := z.fill(1); err != nil {
			return err
		}
		a := z.avail()
		if a == 0 {
			return errTruncatedStream("skippable frame")
		}
		m := int(min(n, int64(a)))
		z.consume(m)
		n -= int64(m)
	}
	return nil
}

var (
	frameDecOnce sync.Once
	frameDec     *zstd.Decoder
	frameDecErr  error
)

// frameDecoder is shared by every reader: DecodeAll is safe for concurrent use, and the frames it
// decodes hold at most bufSize bytes.
func frameDecoder() (*zstd.Decoder, error) {
	frameDecOnce.Do(func() {
		frameDec, frameDecErr = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecodeAllCapLimit(true),
			zstd.WithDecoderMaxWindow(maxDecoderWindow), zstd.WithDecoderMaxMemory(bufSize))
	})
	return frameDec, frameDecErr
}

// toSlow hands the rest of the stream, starting at the current frame, to the streaming decoder.
func (z *zreader) toSlow() error {
	rest := make([]byte, z.avail())
	z.peek(0, rest)
	z.consume(len(rest))
	var src io.Reader = bytes.NewReader(rest)
	switch {
	case z.m != nil:
		// The streaming decoder reads in goroutines of its own: give it the file, not the
		// mapping, whose pages could fault if the file shrank.
		tail := io.NewSectionReader(z.m.f, z.m.base+int64(z.moff), int64(len(z.m.data)-z.moff))
		z.r = &recReader{r: tail}
		src = io.MultiReader(src, ctxReader{z.ctx, z.r})
		z.moff = len(z.m.data)
	case !z.eof && z.rerr == nil:
		src = io.MultiReader(src, ctxReader{z.ctx, z.r})
	}
	d, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(min(runtime.GOMAXPROCS(0), 4)),
		zstd.WithDecoderMaxWindow(maxDecoderWindow), zstd.WithDecoderMaxMemory(maxDecoderWindow))
	if err != nil {
		return err
	}
	z.slow = d
	return nil
}

func (z *zreader) readSlow() (chunk, error) {
	if z.slowErr != nil {
		return chunk{}, z.slowErr
	}
	out, err := z.pool.get(z.ctx)
	if err != nil {
		return chunk{}, err
	}
	n := 0
	for n < len(out.data) && err == nil {
		var m int
		m, err = z.slow.Read(out.data[n:])
		n += m
	}
	if err != nil {
		z.slowErr = z.slowError(err)
	}
	if n > 0 {
		return chunk{b: out.data[:n], buf: out}, nil
	}
	out.release()
	return chunk{}, z.slowErr
}

func (z *zreader) slowError(err error) error {
	switch {
	case err == io.EOF:
		return io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errTruncatedStream("zstd frame")
	case z.r.err != nil:
		return fmt.Errorf("read bundle: %w", z.r.err)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return err
	default:
		return &streamError{msg: "corrupt zstd stream", err: err}
	}
}

// recReader remembers the first error of its reader other than io.EOF, so that a failing
// disk is not mistaken for a corrupt stream.
type recReader struct {
	r   io.Reader
	err error
}

func (r *recReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
