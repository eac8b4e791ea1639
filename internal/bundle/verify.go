package bundle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/mmgap/mmgap/internal/fetch"
	"github.com/mmgap/mmgap/internal/pgp"
	"github.com/mmgap/mmgap/internal/store"
)

// VerifyOptions configures Verify, Extract and Inspect.
type VerifyOptions struct {
	// Keyring holds the keys trusted to sign bundles.
	Keyring pgp.Keyring
	// InsecureSkipSignature reads the bundle without checking its signature (and accepts an
	// unsigned bundle). Its use is reported in Report.SignatureSkipped.
	InsecureSkipSignature bool
	// AllowExpiredKey accepts a signature made before its key expired (see pgp.VerifyOptions).
	AllowExpiredKey bool
	// Now is the time signatures are checked at; zero means time.Now().
	Now time.Time
	// Progress receives the bytes checked, as one item with id "bundle"; nil discards.
	Progress fetch.Progress
	// Logger receives debug messages; nil discards.
	Logger *slog.Logger
}

// SignerInfo describes who signed a bundle.
type SignerInfo struct {
	// Fingerprint of the signer's primary key, uppercase hex.
	Fingerprint string
	// KeyID of the key that made the signature, 16 uppercase hex digits.
	KeyID string
	// UserID is the signer's primary user ID, or "".
	UserID string
	// Created is the signature creation time.
	Created time.Time
	// KeyExpired is set when the signature was accepted by AllowExpiredKey.
	KeyExpired bool
}

// Report is the outcome of a successful Verify or Extract.
type Report struct {
	Inventory *Inventory
	// Signer is the verified signer; nil when SignatureSkipped.
	Signer *SignerInfo
	// SignatureSkipped is true when InsecureSkipSignature was used: nothing vouches for the
	// bundle's origin.
	SignatureSkipped bool
	// Blobs is the number of blobs checked; Bytes the content bytes checked (files and blobs).
	Blobs int64
	Bytes int64
}

// Verify checks a bundle read from r in one streaming pass, without writing anything: bundle.json
// and its formatVersion, the signature over it against opts.Keyring before any other entry is
// looked at, then the name, type, order, size and SHA-256 of every entry, and at the end that
// every listed entry was seen once and that the store is complete (docs/spec/bundle-v1.md §6).
//
// Failures are a *SignatureError or an *IntegrityError (exit code 4 in the CLI), a *VersionError,
// an error wrapping ErrNotBundle, or an I/O or context error.
func Verify(ctx context.Context, r io.Reader, opts VerifyOptions) (*Report, error) {
	return run(ctx, r, opts, "")
}

type rankKind int

const (
	rankInventory rankKind = iota
	rankSignature
	rankSBOM
	rankLayout
	rankIndex
	rankBlob
)

func rankOf(name string) rankKind {
	switch name {
	case NameInventory:
		return rankInventory
	case NameSignature:
		return rankSignature
	case NameSBOM:
		return rankSBOM
	case NameLayout:
		return rankLayout
	case NameIndex:
		return rankIndex
	}
	return rankBlob
}

// expect is one entry bundle.json declares.
type expect struct {
	name   string
	digest v1.Hash
	size   int64
	seen   bool
	job    *job
}

// job is the checking (and, for Extract, writing) of one entry by a worker.
type job struct {
	e       *expect
	ch      chan []chunk
	file    *os.File
	capture int64 // keep up to this many bytes of content (manifests, index.json)

	aborted atomic.Bool

	// Set by the worker; read after the workers stopped.
	done     bool
	fault    bool
	n        int64
	got      v1.Hash
	werr     error
	data     []byte
	kids     []v1.Descriptor // children, when the content parsed as a manifest
	parsed   bool
	parseErr error
}

type verifier struct {
	ctx  context.Context
	opts VerifyOptions
	log  *slog.Logger
	dir  string // extraction directory, "" for Verify

	z       *zreader
	inv     *Inventory
	entries map[string]*expect
	jobs    []*job

	work    chan *job
	wg      sync.WaitGroup
	stopped atomic.Bool
}

func (v *verifier) progress() fetch.Progress {
	if v.opts.Progress == nil {
		return fetch.NopProgress{}
	}
	return v.opts.Progress
}

func run(ctx context.Context, r io.Reader, opts VerifyOptions, dir string) (rep *Report, err error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v := &verifier{ctx: ctx, opts: opts, log: log, dir: dir}
	pool := newBufPool(bufSize, poolBuffers)
	z := newZreader(ctx, r, pool)
	z.m = mapInput(r)
	if z.m != nil {
		// A mapped file that shrinks under us faults: make that a panic we recover.
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	}
	t := &tarStream{z: z}
	v.z = z
	started := false
	defer func() {
		p := recover()
		v.stopWorkers()
		t.close()
		z.close()
		if z.m != nil {
			z.m.close(z.moff)
		}
		pool.recycle()
		if p != nil {
			if !isFault(p) {
				panic(p)
			}
			rep, err = nil, &IntegrityError{Reason: "the bundle file changed (shrank) while it was read", Err: ErrTruncated}
		}
		// Name the artifacts a damaged blob belongs to, now that no worker runs.
		var ie *IntegrityError
		if errors.As(err, &ie) && ie.Artifact == "" {
			if hex, ok := strings.CutPrefix(ie.Entry, blobPrefix); ok {
				ie.Artifact = v.owners(hex)
			}
		}
		if started {
			v.progress().Done("bundle", err)
		}
	}()

	// 1. bundle.json and its formatVersion; 2. the signature, verified before any other entry
	// is acted on.
	invData, sig, h, err := readHead(t)
	if err != nil {
		return nil, err
	}
	rep = &Report{}
	switch {
	case opts.InsecureSkipSignature:
		rep.SignatureSkipped = true
		v.log.Warn("bundle signature not checked (insecure skip)")
	case sig == nil:
		next := "the archive ends"
		if h != nil {
			next = "the next entry is " + quoteName(h.name)
		}
		return nil, &SignatureError{Reason: "no " + NameSignature + " after " + NameInventory + " (" + next + "); refusing an unsigned bundle", Err: ErrUnsigned}
	default:
		s, err := checkSignature(opts.Keyring, invData, sig, opts)
		if err != nil {
			return nil, err
		}
		rep.Signer = s
		v.log.Debug("bundle signature good", "fingerprint", s.Fingerprint, "user", s.UserID)
	}

	// 3. The signed inventory.
	inv, err := ParseInventory(invData)
	if err != nil {
		var ve *VersionError
		if errors.As(err, &ve) {
			return nil, err
		}
		return nil, &IntegrityError{Entry: NameInventory, Reason: err.Error()}
	}
	v.inv = inv
	rep.Inventory = inv
	v.entries = make(map[string]*expect, len(inv.Files)+len(inv.Blobs))
	for _, f := range inv.Files {
		v.entries[f.Path] = &expect{name: f.Path, digest: f.Digest, size: f.Size}
	}
	for _, b := range inv.Blobs {
		name := blobPrefix + b.Digest.Hex
		v.entries[name] = &expect{name: name, digest: b.Digest, size: b.Size}
	}
	total := inv.TotalSize()
	v.progress().Start("bundle", "bundle", total)
	started = true

	if v.dir != "" {
		if err := v.writeSmall(NameInventory, invData); err != nil {
			return nil, err
		}
		if sig != nil {
			if err := v.writeSmall(NameSignature, sig); err != nil {
				return nil, err
			}
		}
		if err := os.MkdirAll(filepath.Join(v.dir, "store", "blobs", "sha256"), 0o755); err != nil {
			return nil, err
		}
	}

	// 4. Every later entry.
	v.startWorkers()
	rerr := v.entriesLoop(t, h)
	v.stopWorkers()
	if err := v.firstJobError(); err != nil {
		return nil, err
	}
	if rerr == errStopped {
		return nil, errors.New("verify bundle: stopped without a cause (bug)")
	}
	if rerr != nil {
		return nil, rerr
	}

	// 5. Every listed entry seen once, and the store complete.
	for _, f := range inv.Files {
		if e := v.entries[f.Path]; !e.seen {
			return nil, &IntegrityError{Entry: f.Path, Reason: "listed in bundle.json but missing from the bundle"}
		}
	}
	for _, b := range inv.Blobs {
		if e := v.entries[blobPrefix+b.Digest.Hex]; !e.seen {
			return nil, v.integrity(e.name, "listed in bundle.json but missing from the bundle", nil)
		}
	}
	if err := v.checkStore(); err != nil {
		return nil, err
	}
	rep.Blobs = int64(len(inv.Blobs))
	rep.Bytes = total
	return rep, nil
}

// readHead reads bundle.json (checking its size and formatVersion) and, when it follows,
// bundle.json.asc. next is the header after them when it is not the signature (nil at the end).
func readHead(t *tarStream) (invData, sig []byte, next *entryHeader, err error) {
	v := &verifier{}
	h, err := t.nextHeader()
	if err != nil {
		var se *streamError
		if errors.As(err, &se) && se.cleanEnd && t.pos < blockLen {
			return nil, nil, nil, fmt.Errorf("%w: %d bytes of data, not a tar archive", ErrNotBundle, t.pos)
		}
		return nil, nil, nil, v.firstError(err)
	}
	if reason := checkName(h.name); reason != "" || h.name != NameInventory {
		return nil, nil, nil, v.firstEntryError(h.name, reason)
	}
	if h.size > MaxInventorySize {
		return nil, nil, nil, &IntegrityError{Entry: NameInventory, Reason: fmt.Sprintf("%d bytes, more than the %d allowed", h.size, MaxInventorySize)}
	}
	invData, err = t.readAll(h.size)
	if err != nil {
		return nil, nil, nil, v.streamError(err, NameInventory)
	}
	if err := checkFormatVersion(invData); err != nil {
		var ve *VersionError
		if errors.As(err, &ve) {
			return nil, nil, nil, err
		}
		return nil, nil, nil, &IntegrityError{Entry: NameInventory, Reason: err.Error()}
	}
	h, err = t.nextHeader()
	if err == errEndOfArchive {
		return invData, nil, nil, nil
	}
	if err != nil {
		return nil, nil, nil, v.headerError(err)
	}
	if reason := checkName(h.name); reason != "" {
		return nil, nil, nil, &IntegrityError{Entry: h.name, Reason: reason}
	}
	if h.name != NameSignature {
		return invData, nil, h, nil
	}
	if h.size > pgp.MaxSignatureSize {
		return nil, nil, nil, &IntegrityError{Entry: NameSignature, Reason: fmt.Sprintf("%d bytes, more than the %d allowed", h.size, pgp.MaxSignatureSize)}
	}
	if sig, err = t.readAll(h.size); err != nil {
		return nil, nil, nil, v.streamError(err, NameSignature)
	}
	return invData, sig, nil, nil
}

// firstError maps a failure reading the very first header: garbage there means the input is
// not a bundle at all.
func (v *verifier) firstError(err error) error {
	var se *streamError
	if errors.As(err, &se) && se.notZstd {
		return fmt.Errorf("%w: %s", ErrNotBundle, se.msg)
	}
	var te *tarError
	if errors.As(err, &te) && te.header {
		return fmt.Errorf("%w: not a tar archive (%s)", ErrNotBundle, te.reason)
	}
	if err == errEndOfArchive {
		return fmt.Errorf("%w: empty tar archive", ErrNotBundle)
	}
	return v.headerError(err)
}

func (v *verifier) firstEntryError(name, reason string) error {
	switch {
	case reason == "":
		// A name of the format, in the wrong place.
		return &IntegrityError{Entry: name, Reason: "out of order: the first entry must be " + NameInventory}
	case strings.HasPrefix(reason, "unknown entry"):
		return fmt.Errorf("%w: first entry is %s, not %s", ErrNotBundle, quoteName(name), NameInventory)
	default:
		return &IntegrityError{Entry: name, Reason: reason}
	}
}

func (v *verifier) headerError(err error) error {
	var te *tarError
	if errors.As(err, &te) {
		return v.integrity(te.name, te.reason, nil)
	}
	return v.streamError(err, "")
}

// streamError maps a failure of the stream while reading entry.
func (v *verifier) streamError(err error, entry string) error {
	var se *streamError
	if errors.As(err, &se) {
		if se.truncated {
			return v.integrity(entry, "bundle is truncated: "+se.msg, ErrTruncated)
		}
		return v.integrity(entry, se.Error(), se)
	}
	return err
}

// integrity builds an IntegrityError; run fills in the artifacts once the workers stopped.
func (v *verifier) integrity(entry, reason string, cause error) *IntegrityError {
	return &IntegrityError{Entry: entry, Reason: reason, Err: cause}
}

func checkSignature(kr pgp.Keyring, inv, sig []byte, opts VerifyOptions) (*SignerInfo, error) {
	s, err := pgp.Verify(kr, bytes.NewReader(inv), sig, pgp.VerifyOptions{Now: opts.Now, AllowExpiredKey: opts.AllowExpiredKey})
	if err != nil {
		se := &SignatureError{Reason: err.Error(), Err: err}
		var us *pgp.UnknownSignerError
		if errors.As(err, &us) {
			se.KeyID, se.Fingerprint = us.KeyID, us.Fingerprint
		}
		var ke *pgp.KeyExpiredError
		if errors.As(err, &ke) {
			se.Fingerprint = ke.Fingerprint
		}
		return nil, se
	}
	return &SignerInfo{Fingerprint: s.Fingerprint, KeyID: s.KeyID, UserID: s.UserID, Created: s.Created, KeyExpired: s.KeyExpired}, nil
}

func (v *verifier) entriesLoop(t *tarStream, h *entryHeader) error {
	last := rankSignature
	lastBlob := ""
	for {
		if h == nil {
			var err error
			h, err = t.nextHeader()
			if err == errEndOfArchive {
				break
			}
			if err != nil {
				return v.headerError(err)
			}
		}
		if v.stopped.Load() {
			return errStopped
		}
		if err := v.ctx.Err(); err != nil {
			return err
		}
		name := h.name
		if reason := checkName(name); reason != "" {
			return v.integrity(name, reason, nil)
		}
		e := v.entries[name]
		rk := rankOf(name)
		switch {
		case rk <= rankSignature:
			return &IntegrityError{Entry: name, Reason: "duplicate entry"}
		case e != nil && e.seen:
			return v.integrity(name, "duplicate entry", nil)
		case rk < last || rk == last && rk != rankBlob:
			return &IntegrityError{Entry: name, Reason: "entry out of order"}
		case rk == rankBlob && name <= lastBlob:
			return v.integrity(name, "entry out of order: blobs must come in ascending digest order", nil)
		case e == nil:
			return v.integrity(name, "not listed in bundle.json", nil)
		case h.size != e.size:
			return v.integrity(name, fmt.Sprintf("size %d, but bundle.json declares %d", h.size, e.size), nil)
		}
		last = rk
		if rk == rankBlob {
			lastBlob = name
		}
		e.seen = true
		if err := v.entry(t, e); err != nil {
			return err
		}
		h = nil
	}
	if err := t.finish(); err != nil {
		var te *tarError
		if errors.As(err, &te) {
			return &IntegrityError{Reason: te.reason}
		}
		var se *streamError
		if errors.As(err, &se) && !se.truncated {
			return &IntegrityError{Reason: "data after the end-of-archive marker: " + se.Error(), Err: se}
		}
		return v.streamError(err, "")
	}
	return nil
}

var errStopped = errors.New("stopped")

// batchBytes is how much content the reader gathers before handing it to a worker: sending
// chunk by chunk (a raw zstd block is 128 KiB) would cost a channel operation each.
const batchBytes = bufSize

// entry streams one entry's content to a worker, in batches of chunks. A job's channel holds
// more batches than the pool has buffers, so the reader never waits on a busy worker, only on
// buffers: it reads ahead into the next entries while workers hash earlier ones.
func (v *verifier) entry(t *tarStream, e *expect) error {
	j := &job{e: e, ch: make(chan []chunk, min(int64(poolBuffers)+2, e.size/batchBytes+2))}
	e.job = j
	switch {
	case e.name == NameIndex:
		j.capture = maxJSONSize
	case strings.HasPrefix(e.name, blobPrefix) && e.size <= store.MaxManifestSize:
		j.capture = -1 // decided on the first byte
	}
	if v.dir != "" {
		f, err := v.create(e.name)
		if err != nil {
			return err
		}
		j.file = f
	}
	v.jobs = append(v.jobs, j)
	select {
	case v.work <- j:
	case <-v.ctx.Done():
		j.aborted.Store(true)
		if j.file != nil {
			j.file.Close()
		}
		j.file = nil
		return v.ctx.Err()
	}
	var batch []chunk
	var batched int
	closed := false
	abort := func(err error) error {
		for _, c := range batch {
			c.release()
		}
		batch = nil
		j.aborted.Store(true)
		close(j.ch)
		closed = true
		return err
	}
	defer func() {
		if !closed {
			// Unwinding from a fault: let the worker drain and stop.
			abort(nil)
		}
	}()
	send := func() error {
		select {
		case j.ch <- batch:
		case <-v.ctx.Done():
			return abort(v.ctx.Err())
		}
		v.progress().Add("bundle", int64(batched), false)
		batch, batched = make([]chunk, 0, 16), 0
		return nil
	}
	remaining := e.size
	first := true
	for remaining > 0 {
		if v.stopped.Load() {
			return abort(errStopped)
		}
		c, err := t.take(remaining)
		if err != nil {
			return abort(v.streamError(err, e.name))
		}
		if first {
			first = false
			if j.capture < 0 {
				if c.b[0] == '{' {
					j.capture = e.size
				} else {
					j.capture = 0
				}
			}
		}
		remaining -= int64(len(c.b))
		batch = append(batch, c)
		batched += len(c.b)
		if batched >= batchBytes || remaining == 0 {
			if err := send(); err != nil {
				return err
			}
		}
	}
	close(j.ch)
	closed = true
	if err := t.skip(padding(e.size)); err != nil {
		return v.streamError(err, e.name)
	}
	return nil
}

func (v *verifier) startWorkers() {
	n := min(max(runtime.GOMAXPROCS(0), 1), 8)
	v.work = make(chan *job, poolBuffers)
	for range n {
		v.wg.Add(1)
		go v.worker(v.work)
	}
}

func (v *verifier) stopWorkers() {
	if v.work == nil {
		return
	}
	close(v.work)
	v.work = nil
	v.wg.Wait()
}

func (v *verifier) worker(work <-chan *job) {
	defer v.wg.Done()
	if v.z != nil && v.z.m != nil {
		debug.SetPanicOnFault(true)
	}
	h := sha256.New()
	var sum [sha256.Size]byte
	for j := range work {
		h.Reset()
		var n int64
		skip := false
		for batch := range j.ch {
			v.consume(j, h, batch, &skip, &n)
		}
		if j.file != nil {
			if j.werr == nil && !skip {
				j.werr = j.file.Sync()
			}
			if err := j.file.Close(); err != nil && j.werr == nil {
				j.werr = err
			}
		}
		if skip || j.aborted.Load() {
			j.data = nil
			if j.werr != nil || j.fault {
				j.done = true
			}
			continue
		}
		j.n = n
		j.got = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(sum[:0]))}
		j.done = true
		if j.werr != nil || j.n != j.e.size || j.got != j.e.digest {
			j.data = nil
			v.stopped.Store(true)
			continue
		}
		if j.capture > 0 && j.e.name != NameIndex {
			kids, err := store.Children("", j.data)
			j.kids, j.parseErr, j.parsed = kids, err, true
			j.data = nil
		}
	}
}

// consume hashes (and writes, and captures) one batch and releases its chunks. A fault on a
// mapped input that shrank stops the run.
func (v *verifier) consume(j *job, h hash.Hash, batch []chunk, skip *bool, n *int64) {
	i := 0
	defer func() {
		if p := recover(); p != nil {
			if !isFault(p) {
				panic(p)
			}
			for ; i < len(batch); i++ {
				batch[i].release()
			}
			j.fault, *skip = true, true
			v.stopped.Store(true)
		}
	}()
	for ; i < len(batch); i++ {
		c := batch[i]
		if !*skip && (j.aborted.Load() || v.stopped.Load()) {
			*skip = true
		}
		if !*skip {
			h.Write(c.b)
			*n += int64(len(c.b))
			if j.file != nil {
				if _, err := j.file.Write(c.b); err != nil {
					j.werr = err
					*skip = true
					v.stopped.Store(true)
				}
			}
			if j.capture > 0 && int64(len(j.data)+len(c.b)) <= j.capture {
				j.data = append(j.data, c.b...)
			}
		}
		c.release()
	}
}

// firstJobError reports the failure of the earliest entry, if any.
func (v *verifier) firstJobError() error {
	for _, j := range v.jobs {
		if !j.done {
			continue
		}
		name := j.e.name
		switch {
		case j.fault:
			return &IntegrityError{Entry: name, Reason: "the bundle file changed (shrank) while it was read", Err: ErrTruncated}
		case j.werr != nil:
			return fmt.Errorf("extract %s: %w", name, j.werr)
		case j.n != j.e.size:
			return v.integrity(name, fmt.Sprintf("content is %d bytes, bundle.json declares %d", j.n, j.e.size), nil)
		case j.got != j.e.digest:
			return v.integrity(name, fmt.Sprintf("SHA-256 mismatch: content hashes to %s, bundle.json declares %s", j.got, j.e.digest), nil)
		}
	}
	return nil
}

// owners names the artifacts that reach blob hex, from index.json descriptors and the manifests
// checked so far; "" when none is known yet.
func (v *verifier) owners(hexd string) string {
	if v.inv == nil {
		return ""
	}
	for _, b := range v.inv.Blobs {
		if b.Digest.Hex == hexd && len(b.UsedBy) > 0 {
			return joinRefs(b.UsedBy)
		}
	}
	parents := map[string][]string{}
	for _, j := range v.jobs {
		if !j.parsed || j.parseErr != nil {
			continue
		}
		p := strings.TrimPrefix(j.e.name, blobPrefix)
		for _, k := range j.kids {
			parents[k.Digest.Hex] = append(parents[k.Digest.Hex], p)
		}
	}
	tops := map[string][]string{}
	for _, a := range v.inv.Artifacts {
		tops[a.Digest.Hex] = append(tops[a.Digest.Hex], a.Ref)
	}
	seen := map[string]bool{hexd: true}
	queue := []string{hexd}
	var refs []string
	have := map[string]bool{}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		for _, r := range tops[d] {
			if !have[r] {
				have[r] = true
				refs = append(refs, r)
			}
		}
		for _, p := range parents[d] {
			if !seen[p] {
				seen[p] = true
				queue = append(queue, p)
			}
		}
	}
	return joinRefs(refs)
}

// joinRefs lists up to five ref names.
func joinRefs(refs []string) string {
	const show = 5
	if len(refs) > show {
		return strings.Join(refs[:show], ", ") + fmt.Sprintf(" and %d more", len(refs)-show)
	}
	return strings.Join(refs, ", ")
}

// checkStore checks index.json against the inventory's artifacts and that the blobs are exactly
// those reachable from index.json (spec §2, §3).
func (v *verifier) checkStore() error {
	ij := v.entries[NameIndex].job
	if ij == nil || ij.data == nil && ij.e.size > 0 {
		return &IntegrityError{Entry: NameIndex, Reason: "could not be read back"}
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(ij.data, &im); err != nil {
		return &IntegrityError{Entry: NameIndex, Reason: "not an OCI image index: " + err.Error()}
	}
	ij.data = nil
	arts := v.inv.Artifacts
	if len(im.Manifests) != len(arts) {
		return &IntegrityError{Entry: NameIndex, Reason: fmt.Sprintf("lists %d descriptors, bundle.json %d artifacts", len(im.Manifests), len(arts))}
	}
	for i, d := range im.Manifests {
		a := arts[i]
		if d.Digest != a.Digest || d.Size != a.Size || string(d.MediaType) != a.MediaType || d.Annotations[store.AnnotationRefName] != a.Ref {
			return &IntegrityError{Entry: NameIndex, Artifact: a.Ref, Reason: fmt.Sprintf("descriptor %d does not match bundle.json artifact %d", i, i)}
		}
	}
	reached := map[string]bool{}
	var visit func(d v1.Descriptor, ref string, depth int) error
	visit = func(d v1.Descriptor, ref string, depth int) error {
		name := blobPrefix + d.Digest.Hex
		if reached[d.Digest.Hex] {
			return nil
		}
		reached[d.Digest.Hex] = true
		e := v.entries[name]
		if e == nil {
			return &IntegrityError{Entry: name, Artifact: ref, Reason: "reachable from index.json but not in the bundle"}
		}
		if e.size != d.Size {
			return &IntegrityError{Entry: name, Artifact: ref, Reason: fmt.Sprintf("descriptor says %d bytes, bundle.json %d", d.Size, e.size)}
		}
		if !isManifestType(string(d.MediaType)) {
			return nil
		}
		if depth > 16 {
			return &IntegrityError{Entry: name, Artifact: ref, Reason: "manifests nested too deeply"}
		}
		j := e.job
		if j == nil || !j.parsed || j.parseErr != nil {
			reason := "manifest could not be parsed"
			if j != nil && j.parseErr != nil {
				reason += ": " + j.parseErr.Error()
			}
			return &IntegrityError{Entry: name, Artifact: ref, Reason: reason}
		}
		for _, k := range j.kids {
			if err := visit(k, ref, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	for _, d := range im.Manifests {
		if err := store.CheckDigest(d.Digest); err != nil {
			return &IntegrityError{Entry: NameIndex, Reason: err.Error()}
		}
		if err := visit(d, d.Annotations[store.AnnotationRefName], 0); err != nil {
			return err
		}
	}
	for _, b := range v.inv.Blobs {
		if !reached[b.Digest.Hex] {
			return &IntegrityError{Entry: blobPrefix + b.Digest.Hex, Reason: "not reachable from index.json"}
		}
	}
	return nil
}
