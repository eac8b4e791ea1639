package bundle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Extract verifies the bundle read from r exactly as Verify does and writes its entries under
// destDir: bundle.json, bundle.json.asc, sbom.cdx.json and the store/ OCI layout. destDir must
// not exist or be an empty directory.
//
// Entries are written into a temporary directory beside destDir (destDir's name plus
// ".partial-" and a random suffix), files 0644 and directories 0755, each file created new
// (never through an existing name or link) only after its header passed the checks. The
// directory is renamed to destDir once every check succeeded; on any failure it is removed, so
// nothing is left behind and nothing is ever written outside it.
func Extract(ctx context.Context, r io.Reader, destDir string, opts VerifyOptions) (*Report, error) {
	abs, err := filepath.Abs(destDir)
	if err != nil {
		return nil, err
	}
	existed := false
	fi, err := os.Lstat(abs)
	switch {
	case err == nil:
		if !fi.IsDir() {
			return nil, fmt.Errorf("extract bundle: %s exists and is not a directory", destDir)
		}
		ents, err := os.ReadDir(abs)
		if err != nil {
			return nil, fmt.Errorf("extract bundle: %w", err)
		}
		if len(ents) > 0 {
			return nil, fmt.Errorf("extract bundle: %s exists and is not empty", destDir)
		}
		existed = true
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, fmt.Errorf("extract bundle: %w", err)
	}
	parent := filepath.Dir(abs)
	tmp, err := os.MkdirTemp(parent, filepath.Base(abs)+".partial-*")
	if err != nil {
		return nil, fmt.Errorf("extract bundle: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	rep, err := run(ctx, r, opts, tmp)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"store/blobs/sha256", "store/blobs", "store", "."} {
		p := filepath.Join(tmp, filepath.FromSlash(d))
		if err := os.Chmod(p, 0o755); err != nil {
			return nil, fmt.Errorf("extract bundle: %w", err)
		}
		if err := syncDir(p); err != nil {
			return nil, fmt.Errorf("extract bundle: %w", err)
		}
	}
	if existed {
		if err := os.Remove(abs); err != nil {
			return nil, fmt.Errorf("extract bundle: %s: %w", destDir, err)
		}
	}
	if err := os.Rename(tmp, abs); err != nil {
		return nil, fmt.Errorf("extract bundle: %w", err)
	}
	done = true
	if err := syncDir(parent); err != nil {
		return nil, fmt.Errorf("extract bundle: %w", err)
	}
	return rep, nil
}

// create makes a new file for entry name in the extraction directory. name passed checkName,
// so it is one of the format's fixed paths.
func (v *verifier) create(name string) (*os.File, error) {
	p := filepath.Join(v.dir, filepath.FromSlash(name))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, fmt.Errorf("extract %s: %w", name, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return nil, fmt.Errorf("extract %s: %w", name, err)
	}
	return f, nil
}

func (v *verifier) writeSmall(name string, data []byte) error {
	f, err := v.create(name)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
