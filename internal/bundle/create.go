package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"

	"github.com/mmgap/mmgap/internal/fetch"
	"github.com/mmgap/mmgap/internal/pgp"
	"github.com/mmgap/mmgap/internal/store"
)

// Signer makes the detached signature over bundle.json. *pgp.Signer is one.
type Signer interface {
	// SignDetached returns an ASCII-armored OpenPGP detached signature over message.
	SignDetached(message io.Reader) ([]byte, error)
	// Fingerprint identifies the signing key.
	Fingerprint() string
}

var _ Signer = (*pgp.Signer)(nil)

// CreateOptions configures Create and Write.
type CreateOptions struct {
	// Signer signs bundle.json. It may be nil only when Unsigned is set.
	Signer Signer
	// Unsigned asks explicitly for a bundle without signature (spec §5).
	Unsigned bool
	// Created is the bundle's creation time (bundle.json "created" and every tar entry's
	// modification time), truncated to seconds; zero means now. The same store, Created and
	// signature give the same bytes.
	Created time.Time
	// ToolVersion is mmgap's version, recorded in bundle.json and the SBOM.
	ToolVersion string
	// ManifestName and ManifestDigest identify the mmgap.yaml gathered.
	ManifestName   string
	ManifestDigest string
	// Level is the zstd level; zero means DefaultLevel.
	Level zstd.EncoderLevel
	// Progress receives bytes written, as one item with id "bundle"; nil discards.
	Progress fetch.Progress
	// Logger receives debug messages; nil discards.
	Logger *slog.Logger
}

// Create writes the bundle of store s to outPath: it streams into outPath+".partial", fsyncs it
// and renames it into place, so outPath holds a complete bundle or nothing new. It returns the
// inventory written. See Write.
func Create(ctx context.Context, s *store.Store, outPath string, opts CreateOptions) (*Inventory, error) {
	partial := outPath + ".partial"
	f, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create bundle: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(partial)
		}
	}()
	inv, err := Write(ctx, f, s, opts)
	if err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("create bundle: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("create bundle: %w", err)
	}
	if err := os.Rename(partial, outPath); err != nil {
		return nil, fmt.Errorf("create bundle: %w", err)
	}
	ok = true
	if err := syncDir(filepath.Dir(outPath)); err != nil {
		return nil, fmt.Errorf("create bundle: %w", err)
	}
	return inv, nil
}

// Write streams the bundle of store s to w (docs/spec/bundle-v1.md §1): bundle.json, its
// signature, sbom.cdx.json, store/oci-layout, store/index.json and every blob reachable from
// index.json in ascending digest order, as a deterministic tar stream compressed as zstd
// frames. Blobs are streamed from the store, never held in memory, and their SHA-256 is
// checked on the way: a store blob that no longer matches its digest fails the write with a
// *store.DigestError.
func Write(ctx context.Context, w io.Writer, s *store.Store, opts CreateOptions) (*Inventory, error) {
	if opts.Signer == nil && !opts.Unsigned {
		return nil, errors.New("create bundle: no signing key given (an unsigned bundle must be asked for explicitly)")
	}
	if opts.Signer != nil && opts.Unsigned {
		return nil, errors.New("create bundle: both a signing key and Unsigned given")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	prog := opts.Progress
	if prog == nil {
		prog = fetch.NopProgress{}
	}
	snap, err := buildSnapshot(s, InventoryOptions{
		Created:        opts.Created,
		ToolVersion:    opts.ToolVersion,
		ManifestName:   opts.ManifestName,
		ManifestDigest: opts.ManifestDigest,
	})
	if err != nil {
		return nil, fmt.Errorf("create bundle: %w", err)
	}
	var sig []byte
	if opts.Signer != nil {
		sig, err = opts.Signer.SignDetached(bytes.NewReader(snap.invJSON))
		if err != nil {
			return nil, fmt.Errorf("create bundle: sign bundle.json: %w", err)
		}
		log.Debug("signed bundle.json", "fingerprint", opts.Signer.Fingerprint())
	}
	level := opts.Level
	if level == 0 {
		level = DefaultLevel
	}
	fw, err := newFrameWriter(ctx, w, level)
	if err != nil {
		return nil, fmt.Errorf("create bundle: %w", err)
	}
	err = writeEntries(fw, s, snap, sig, prog)
	if cerr := fw.Close(); err == nil {
		err = cerr
	}
	prog.Done("bundle", err)
	if err != nil {
		return nil, fmt.Errorf("create bundle: %w", err)
	}
	return snap.inv, nil
}

func writeEntries(fw *frameWriter, s *store.Store, snap *snapshot, sig []byte, prog fetch.Progress) error {
	mtime := snap.inv.Created
	total := snap.inv.TotalSize() + int64(len(snap.invJSON)) + int64(len(sig))
	prog.Start("bundle", "bundle", total)
	small := []struct {
		name string
		data []byte
	}{{NameInventory, snap.invJSON}, {NameSignature, sig}, {NameSBOM, snap.sbom}, {NameLayout, snap.layout}, {NameIndex, snap.index}}
	for _, e := range small {
		if e.name == NameSignature && sig == nil {
			continue
		}
		if err := writeHeader(fw, e.name, int64(len(e.data)), mtime); err != nil {
			return err
		}
		if _, err := fw.Write(e.data); err != nil {
			return err
		}
		if err := writePadding(fw, int64(len(e.data))); err != nil {
			return err
		}
		prog.Add("bundle", int64(len(e.data)), false)
	}
	h := newPipeHasher(fw, sha256.New())
	var err error
	for _, d := range snap.blobs {
		if err = writeBlob(fw, s, d, mtime, h, prog); err != nil {
			break
		}
		if err = h.failed(); err != nil {
			break
		}
	}
	if herr := h.close(); err == nil {
		err = herr
	}
	if err != nil {
		return err
	}
	_, err = fw.Write(make([]byte, 2*blockLen))
	return err
}

func writeBlob(fw *frameWriter, s *store.Store, d v1.Descriptor, mtime time.Time, h *pipeHasher, prog fetch.Progress) error {
	f, err := s.Open(d.Digest)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != d.Size {
		return fmt.Errorf("blob %s: %w", d.Digest, &store.DigestError{Want: d.Digest, WantSize: d.Size, GotSize: fi.Size()})
	}
	if err := writeHeader(fw, blobPrefix+d.Digest.Hex, d.Size, mtime); err != nil {
		return err
	}
	if err := fw.copyFrom(f, d.Size, h, func(n int) { prog.Add("bundle", int64(n), false) }); err != nil {
		return fmt.Errorf("read blob %s: %w", d.Digest, err)
	}
	h.end(func(sum []byte) error {
		if got := (v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum)}); got != d.Digest {
			return &store.DigestError{Want: d.Digest, Got: got, WantSize: d.Size, GotSize: d.Size}
		}
		return nil
	})
	return writePadding(fw, d.Size)
}

// writeHeader writes a deterministic header for a regular file: mode 0644, uid and gid 0, no
// user or group names, the given modification time; USTAR when it can hold the entry, PAX
// otherwise (sizes of 8 GiB and more).
func writeHeader(w io.Writer, name string, size int64, mtime time.Time) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     0o644,
		ModTime:  mtime,
	})
	if err != nil {
		return fmt.Errorf("tar header %s: %w", name, err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

var zeroBlock [blockLen]byte

func writePadding(w io.Writer, size int64) error {
	if p := padding(size); p > 0 {
		_, err := w.Write(zeroBlock[:p])
		return err
	}
	return nil
}
