package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/spf13/cobra"

	"github.com/mmgap/mmgap/internal/bundle"
	"github.com/mmgap/mmgap/internal/catalog"
	"github.com/mmgap/mmgap/internal/fetch"
	"github.com/mmgap/mmgap/internal/gather"
	"github.com/mmgap/mmgap/internal/pgp"
	"github.com/mmgap/mmgap/internal/store"
)

type gatherFlags struct {
	file, out, storeDir string
	noBundle            bool
	jobs, blobJobs      int
	retries             int
	username            string
	passwordStdin       bool
	created             string
	allowExpiredKeys    []string
	sign                signFlags
}

func newGatherCmd(a *app) *cobra.Command {
	var f gatherFlags
	c := &cobra.Command{
		Use:   "gather -f mmgap.yaml -o BUNDLE --sign-key KEY",
		Short: "Fetch everything mmgap.yaml lists into the content store and write one signed bundle",
		Long: `Fetch every image, file and Helm chart that mmgap.yaml lists into the content store (an OCI
image layout, --store), then write one signed bundle (tar + zstd) to -o.

Images are copied by digest (tags are resolved once and recorded), narrowed to the platforms
listed; files are checked against their sha256 or OpenPGP signature; every blob is checked before
it enters the store. Run it again after an interruption: what is already stored is not fetched
again, and a half-fetched blob resumes where it stopped.

Registry credentials come from Docker's config.json ($DOCKER_CONFIG or ~/.docker), or from
--username with --password-stdin. The manifest's mirrors: section sends every fetch for a host to
a replacement (a proxy on the connected side).

A file signed by an OpenPGP key that has since expired (Mattermost's release key, for one) is
refused. If you have checked the key and accept it, name it with --allow-expired-key and its full
fingerprint; only signatures made before the key expired are accepted, and every file accepted
this way is recorded in the bundle (bundle.json "overrides", shown by 'mmgap bundle inspect').`,
		Example: `  mmgap key generate --name "Site Ops" -o signing
  mmgap gather -f mmgap.yaml -o site.mmgap.tar.zst --sign-key signing.key
  mmgap gather -f mmgap.yaml --no-bundle --store ./store    # fill the store only
  mmgap gather -f mmgap.yaml -o site.mmgap.tar.zst --sign-key signing.key \
      --allow-expired-key A1B31D46F0F3A10B02CF2D44F8F2C31744774B28`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runGather(cmd, a, &f) },
	}
	c.Flags().StringVarP(&f.file, "file", "f", "mmgap.yaml", "the manifest")
	c.Flags().StringVarP(&f.out, "out", "o", "", "bundle file to write (e.g. site.mmgap.tar.zst)")
	c.Flags().StringVar(&f.storeDir, "store", "mmgap-store", "content store directory (kept between runs)")
	c.Flags().BoolVar(&f.noBundle, "no-bundle", false, "only fill the store; write no bundle")
	c.Flags().IntVarP(&f.jobs, "jobs", "j", 4, "artifacts fetched at once")
	c.Flags().IntVar(&f.blobJobs, "blob-jobs", 4, "blobs of one image fetched at once")
	c.Flags().IntVar(&f.retries, "retries", fetch.DefaultRetry.Attempts, "attempts per request before giving up")
	c.Flags().StringVar(&f.username, "username", "", "registry user name for every registry (password from --password-stdin)")
	c.Flags().BoolVar(&f.passwordStdin, "password-stdin", false, "read the registry password from standard input")
	c.Flags().StringVar(&f.created, "created", "", "bundle creation time, RFC 3339 (default now; fixes it for reproducible bundles)")
	c.Flags().StringArrayVar(&f.allowExpiredKeys, "allow-expired-key", nil,
		"accept file signatures made before this key `FINGERPRINT` expired (full fingerprint; repeatable; recorded in the bundle)")
	f.sign.register(c)
	return c
}

type gatherResult struct {
	Manifest  string            `json:"manifest"`
	Store     string            `json:"store"`
	Artifacts []gather.Item     `json:"artifacts"`
	Dropped   []string          `json:"dropped,omitempty"`
	Warnings  []catalog.Warning `json:"warnings,omitempty"`
	Bundle    *bundleSummary    `json:"bundle,omitempty"`
	// Overrides are the relaxed checks the bundle records (--allow-expired-key).
	Overrides []bundle.Override `json:"overrides,omitempty"`
}

type bundleSummary struct {
	Path      string `json:"path"`
	Size      int64  `json:"size"`
	Artifacts int    `json:"artifacts"`
	Blobs     int    `json:"blobs"`
	Signer    string `json:"signer,omitempty"`
	Signed    bool   `json:"signed"`
}

func runGather(cmd *cobra.Command, a *app, f *gatherFlags) error {
	if f.out == "" && !f.noBundle {
		return withHint(usageErrorf("no -o BUNDLE"), "name the bundle to write with -o, or pass --no-bundle to only fill the store")
	}
	created, err := parseCreated(f.created)
	if err != nil {
		return err
	}
	for _, k := range f.allowExpiredKeys {
		if _, err := pgp.ParseFingerprint(k); err != nil {
			return withHint(usageErrorf("--allow-expired-key: %v", err),
				"give the key's full fingerprint, as the expired-key error or 'gpg --show-keys KEYFILE' prints it")
		}
	}
	var signer bundle.Signer
	if !f.noBundle {
		sg, err := f.sign.signer(a.stderr)
		if err != nil {
			return err
		}
		if sg != nil {
			signer = sg
		}
	}
	auth, err := a.registryAuth(f.username, f.passwordStdin)
	if err != nil {
		return err
	}
	// The mattermost: section's built-in release and plugin keys are written where the file
	// fetcher reads trusted keys.
	keyDir, err := os.MkdirTemp("", "mmgap-keys-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(keyDir)
	raw, m, cp, err := loadManifest(f.file, keyDir)
	if err != nil {
		return err
	}
	if !a.json() {
		for _, w := range cp.Warnings {
			fmt.Fprintf(a.stderr, "mmgap: warning: %s (%s)\n", w.Message, w.Code)
		}
	}
	st, err := store.Open(f.storeDir)
	if err != nil {
		return err
	}
	prog := a.progressFor("fetch")
	retry := fetch.DefaultRetry
	retry.Attempts = max(f.retries, 1)
	rep, err := gather.Run(cmd.Context(), m, gather.Options{
		Store: st, Jobs: f.jobs, BlobJobs: f.blobJobs, Auth: auth, Retry: retry,
		Progress: prog, Logger: a.log, AllowExpiredKeys: f.allowExpiredKeys,
	})
	prog.Close()
	res := gatherResult{Manifest: f.file, Store: st.Dir(), Warnings: cp.Warnings}
	if rep != nil {
		res.Artifacts, res.Dropped = rep.Items, rep.Dropped
	}
	if err != nil {
		hint := expiredKeyHint(err)
		if rep != nil && rep.Failed < len(rep.Items) {
			a.renderGather(&res)
			h := "what was gathered stays in " + f.storeDir + "; run the same command again to fetch only what is missing"
			if hint != "" {
				h = hint + "; " + h
			}
			return partialError{withHint(err, h)}
		}
		if hint != "" {
			return withHint(err, hint)
		}
		return err
	}
	if !f.noBundle {
		sum := sha256.Sum256(raw)
		bprog := a.progressFor("write")
		inv, err := bundle.Create(cmd.Context(), st, f.out, bundle.CreateOptions{
			Signer: signer, Unsigned: f.sign.unsigned, Created: created, ToolVersion: toolVersion(),
			ManifestName: m.Metadata.Name, ManifestDigest: "sha256:" + hex.EncodeToString(sum[:]),
			Progress: bprog, Logger: a.log,
		})
		bprog.Close()
		if err != nil {
			return fmt.Errorf("write bundle %s: %w", f.out, err)
		}
		res.Bundle = summarize(f.out, inv, signer)
		res.Overrides = inv.Overrides
	}
	return a.renderGather(&res)
}

// expiredKeyHint names the flag that accepts the expired keys err reports, or is "" when err
// reports none that an override could accept.
func expiredKeyHint(err error) string {
	var fps []string
	var walk func(error)
	walk = func(e error) {
		var ke *pgp.KeyExpiredError
		switch {
		case e == nil:
		case errors.As(e, &ke) && !ke.AfterExpiry && !ke.Signing:
			if !slices.Contains(fps, ke.Fingerprint) {
				fps = append(fps, ke.Fingerprint)
			}
		}
		if m, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range m.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	if len(fps) == 0 {
		return ""
	}
	flags := make([]string, len(fps))
	for i, fp := range fps {
		flags[i] = "--allow-expired-key " + fp
	}
	return "a signing key has expired; check the key (gpg --show-keys) and that the files are what you expect, " +
		"then, to accept signatures made before it expired, run again with " + strings.Join(flags, " ") +
		" (the bundle records the override)"
}

func summarize(path string, inv *bundle.Inventory, signer bundle.Signer) *bundleSummary {
	s := &bundleSummary{Path: path, Artifacts: len(inv.Artifacts), Blobs: len(inv.Blobs), Signed: signer != nil}
	if fi, err := os.Stat(path); err == nil {
		s.Size = fi.Size()
	}
	if signer != nil {
		s.Signer = signer.Fingerprint()
	}
	return s
}

func parseCreated(s string) (time.Time, error) {
	if s == "" {
		return time.Now().UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, usageErrorf("--created %q: want RFC 3339, e.g. 2026-11-27T10:00:00Z", s)
	}
	return t.UTC(), nil
}

// partialError is exit code 3: some of the work was done and is kept.
type partialError struct{ error }

func (p partialError) Unwrap() error { return p.error }
func (partialError) ExitCode() int   { return exitPartial }

func (a *app) renderGather(r *gatherResult) error {
	if a.json() {
		return a.printJSON(r)
	}
	tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tREFERENCE\tDIGEST\tSTATUS")
	for _, it := range r.Artifacts {
		status := humanBytes(it.Size)
		if it.Error != "" {
			status = "FAILED"
		}
		dg := it.Digest.String()
		if it.Digest.Hex == "" {
			dg = "-"
		} else {
			dg = dg[:19]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", it.Kind, it.Name, orDash(it.Ref), dg, status)
	}
	tw.Flush()
	for _, d := range r.Dropped {
		fmt.Fprintf(a.stdout, "left out of the bundle (not in %s): %s\n", filepath.Base(r.Manifest), d)
	}
	for _, o := range r.Overrides {
		fmt.Fprintf(a.stdout, "override recorded in the bundle: %s\n", describeOverride(o))
	}
	if b := r.Bundle; b != nil {
		fmt.Fprintf(a.stdout, "bundle: %s (%s, %d artifacts, %d blobs)", b.Path, humanBytes(b.Size), b.Artifacts, b.Blobs)
		if b.Signed {
			fmt.Fprintf(a.stdout, ", signed by %s\n", b.Signer)
		} else {
			fmt.Fprintln(a.stdout, ", UNSIGNED")
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// registryAuth is the one set of registry credentials given on the command line, if any: a user
// name with the password on standard input, never in a flag value.
func (a *app) registryAuth(username string, passwordStdin bool) (authn.Authenticator, error) {
	if !passwordStdin && username == "" {
		return nil, nil
	}
	if username == "" || !passwordStdin {
		return nil, usageErrorf("--username and --password-stdin go together")
	}
	pw, err := io.ReadAll(io.LimitReader(a.stdin, 64<<10))
	if err != nil {
		return nil, err
	}
	return &authn.Basic{Username: username, Password: strings.TrimRight(string(pw), "\r\n")}, nil
}
