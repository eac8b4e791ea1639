package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mmgap/mmgap/internal/bundle"
	"github.com/mmgap/mmgap/internal/pgp"
	"github.com/mmgap/mmgap/internal/store"
)

func newBundleCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "bundle",
		Short: "Create, inspect, verify and extract bundles",
		Long: `A bundle is one tar + zstd file: bundle.json (the inventory), bundle.json.asc (an OpenPGP
signature over it), sbom.cdx.json (CycloneDX) and the content store. The format is specified in
docs/spec/bundle-v1.md.`,
	}
	c.AddCommand(newBundleCreateCmd(a), newBundleInspectCmd(a), newBundleVerifyCmd(a), newBundleExtractCmd(a))
	return c
}

func newBundleCreateCmd(a *app) *cobra.Command {
	var (
		storeDir, out, created string
		sign                   signFlags
	)
	c := &cobra.Command{
		Use:   "create --store DIR -o BUNDLE --sign-key KEY",
		Short: "Write a signed bundle of a content store",
		Long: `Write a signed bundle of a content store filled by 'mmgap gather --no-bundle'. The store is
checked first: every blob reachable from its index must be present with the right size.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageErrorf("no -o BUNDLE")
			}
			cr, err := parseCreated(created)
			if err != nil {
				return err
			}
			sg, err := sign.signer(a.stderr)
			if err != nil {
				return err
			}
			var signer bundle.Signer
			if sg != nil {
				signer = sg
			}
			st, err := store.OpenExisting(storeDir)
			if err != nil {
				return err
			}
			prog := a.progressFor("write")
			inv, err := bundle.Create(cmd.Context(), st, out, bundle.CreateOptions{
				Signer: signer, Unsigned: sign.unsigned, Created: cr, ToolVersion: toolVersion(),
				Progress: prog, Logger: a.log,
			})
			prog.Close()
			if err != nil {
				return fmt.Errorf("write bundle %s: %w", out, err)
			}
			s := summarize(out, inv, signer)
			if a.json() {
				return a.printJSON(s)
			}
			return a.renderGather(&gatherResult{Bundle: s})
		},
	}
	c.Flags().StringVar(&storeDir, "store", "mmgap-store", "content store directory")
	c.Flags().StringVarP(&out, "out", "o", "", "bundle file to write")
	c.Flags().StringVar(&created, "created", "", "bundle creation time, RFC 3339 (default now)")
	sign.register(c)
	return c
}

func openBundle(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open bundle: %w", err)
	}
	return f, nil
}

type inspectResult struct {
	Path              string              `json:"path"`
	FormatVersion     int                 `json:"formatVersion"`
	Created           time.Time           `json:"created"`
	Tool              bundle.Tool         `json:"tool"`
	Manifest          bundle.ManifestInfo `json:"manifest"`
	Signed            bool                `json:"signed"`
	SignatureVerified bool                `json:"signatureVerified"`
	SignatureError    string              `json:"signatureError,omitempty"`
	Signer            *bundle.SignerInfo  `json:"signer,omitempty"`
	TotalSize         int64               `json:"totalSize"`
	Blobs             int                 `json:"blobs"`
	Artifacts         []bundle.Artifact   `json:"artifacts"`
	Overrides         []bundle.Override   `json:"overrides,omitempty"`
}

func newBundleInspectCmd(a *app) *cobra.Command {
	var trust trustFlags
	c := &cobra.Command{
		Use:   "inspect BUNDLE",
		Short: "Show what a bundle holds: artifacts, sizes, signer, creation time",
		Long: `Show a bundle's inventory without reading past it. With --trust, the signature over the
inventory is checked too; the blobs are not: use 'mmgap bundle verify' for that.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kr, err := trust.keyring(false)
			if err != nil {
				return err
			}
			f, err := openBundle(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			var krp *pgp.Keyring
			if kr.Len() > 0 {
				krp = &kr
			}
			in, err := bundle.Inspect(f, krp)
			if err != nil {
				return err
			}
			inv := in.Inventory
			r := inspectResult{Path: args[0], FormatVersion: inv.FormatVersion, Created: inv.Created, Tool: inv.Tool,
				Manifest: inv.Manifest, Signed: in.Signed, SignatureVerified: in.SignatureVerified, Signer: in.Signer,
				TotalSize: in.TotalSize, Blobs: len(inv.Blobs), Artifacts: inv.Artifacts, Overrides: inv.Overrides}
			if in.SignatureError != nil {
				r.SignatureError = in.SignatureError.Error()
			}
			if a.json() {
				return a.printJSON(r)
			}
			fmt.Fprintf(a.stdout, "bundle:    %s (format %d)\ncreated:   %s by %s %s\n", r.Path, r.FormatVersion,
				r.Created.Format(time.RFC3339), r.Tool.Name, r.Tool.Version)
			if r.Manifest.Name != "" {
				fmt.Fprintf(a.stdout, "manifest:  %s\n", r.Manifest.Name)
			}
			fmt.Fprintf(a.stdout, "signature: %s\n", describeSignature(in))
			fmt.Fprintf(a.stdout, "content:   %s in %d blobs\n\n", humanBytes(r.TotalSize), r.Blobs)
			tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KIND\tNAME\tVERSION\tREFERENCE\tPLATFORMS\tSIZE")
			for _, ar := range inv.Artifacts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ar.Kind, ar.Name, orDash(ar.Version), ar.Ref,
					orDash(strings.Join(ar.Platforms, ",")), humanBytes(ar.TotalSize))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(r.Overrides) > 0 {
				fmt.Fprintf(a.stdout, "\noverrides (checks relaxed by the user at gather time):\n")
				for _, o := range r.Overrides {
					fmt.Fprintf(a.stdout, "  %s\n", describeOverride(o))
				}
			}
			return nil
		},
	}
	trust.register(c)
	return c
}

func describeOverride(o bundle.Override) string {
	if o.Kind == bundle.OverrideExpiredKey {
		return fmt.Sprintf("expired-key: %s signed by key %s, which expired at %s (accepted with --allow-expired-key)",
			o.Artifact, pgp.FormatFingerprint(o.Fingerprint), o.Expired.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("%s: %s", o.Kind, o.Artifact)
}

func describeSignature(in *bundle.Inspection) string {
	switch {
	case !in.Signed:
		return "NONE (unsigned bundle)"
	case in.SignatureVerified:
		return fmt.Sprintf("good, by %s %s", pgp.FormatFingerprint(in.Signer.Fingerprint), in.Signer.UserID)
	case in.SignatureError != nil:
		return "BAD: " + in.SignatureError.Error()
	case in.Signer != nil:
		return fmt.Sprintf("present, key ID %s (not checked: pass --trust)", in.Signer.KeyID)
	}
	return "present (not checked: pass --trust)"
}

type verifyResult struct {
	Path             string             `json:"path"`
	OK               bool               `json:"ok"`
	Signer           *bundle.SignerInfo `json:"signer,omitempty"`
	SignatureSkipped bool               `json:"signatureSkipped,omitempty"`
	Artifacts        int                `json:"artifacts"`
	Blobs            int64              `json:"blobs"`
	Bytes            int64              `json:"bytes"`
	Seconds          float64            `json:"seconds"`
	Overrides        []bundle.Override  `json:"overrides,omitempty"`
}

func (t *trustFlags) verifyOptions(a *app, prog progressSink) (bundle.VerifyOptions, error) {
	kr, err := t.keyring(true)
	if err != nil {
		return bundle.VerifyOptions{}, err
	}
	if t.skip {
		fmt.Fprintln(a.stderr, "mmgap: WARNING: --insecure-skip-signature: the signature is NOT checked; nothing vouches for where this bundle came from")
	}
	return bundle.VerifyOptions{Keyring: kr, InsecureSkipSignature: t.skip, AllowExpiredKey: t.allowExpired,
		Progress: prog, Logger: a.log}, nil
}

func newBundleVerifyCmd(a *app) *cobra.Command {
	var trust trustFlags
	c := &cobra.Command{
		Use:   "verify BUNDLE --trust KEYFILE",
		Short: "Check a bundle's signature, then every blob's digest and size, without unpacking it",
		Long: `Check a bundle in one streaming pass, writing nothing to disk: the signature over bundle.json
against the keys you trust first, then the name, size and SHA-256 of every entry against the
signed inventory, and at the end that nothing is missing.

Exit code 4 means the bundle cannot be trusted; the message names the entry and the artifact.`,
		Example: `  mmgap bundle verify site.mmgap.tar.zst --trust signing.pub`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.verifyOrExtract(cmd.Context(), &trust, args[0], "")
		},
	}
	trust.register(c)
	return c
}

func newBundleExtractCmd(a *app) *cobra.Command {
	var (
		trust trustFlags
		out   string
	)
	c := &cobra.Command{
		Use:   "extract BUNDLE -o DIR --trust KEYFILE",
		Short: "Verify a bundle and unpack it into a new directory",
		Long: `Verify a bundle exactly as 'bundle verify' does while unpacking it into a temporary directory
beside DIR, then move it into place. On any failure nothing is left behind and nothing is written
outside DIR. DIR/store is then an OCI image layout that skopeo, crane and oras read.`,
		Example: `  mmgap bundle extract site.mmgap.tar.zst --trust signing.pub -o incoming
  skopeo inspect oci:incoming/store:docker.io/library/postgres:15-alpine`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageErrorf("no -o DIR")
			}
			return a.verifyOrExtract(cmd.Context(), &trust, args[0], out)
		},
	}
	c.Flags().StringVarP(&out, "out", "o", "", "directory to create")
	trust.register(c)
	return c
}

func (a *app) verifyOrExtract(ctx context.Context, trust *trustFlags, path, dest string) error {
	prog := a.progressFor("check")
	opts, err := trust.verifyOptions(a, prog)
	if err != nil {
		prog.Close()
		return err
	}
	f, err := openBundle(path)
	if err != nil {
		prog.Close()
		return err
	}
	defer f.Close()
	start := time.Now()
	var rep *bundle.Report
	if dest == "" {
		rep, err = bundle.Verify(ctx, f, opts)
	} else {
		rep, err = bundle.Extract(ctx, f, dest, opts)
	}
	prog.Close()
	if err != nil {
		err = fmt.Errorf("%s: %w", path, err)
		if errors.Is(err, pgp.ErrKeyExpired) {
			return withHint(err, "if you accept a bundle signed while its key was still valid, pass --allow-expired-signer")
		}
		return err
	}
	el := time.Since(start)
	r := verifyResult{Path: path, OK: true, Signer: rep.Signer, SignatureSkipped: rep.SignatureSkipped,
		Artifacts: len(rep.Inventory.Artifacts), Blobs: rep.Blobs, Bytes: rep.Bytes, Seconds: el.Seconds(),
		Overrides: rep.Inventory.Overrides}
	if a.json() {
		return a.printJSON(r)
	}
	verb := "verified"
	if dest != "" {
		verb = "extracted to " + dest + " and verified"
	}
	fmt.Fprintf(a.stdout, "%s %s: %d artifacts, %d blobs, %s in %s (%s/s)\n", path, verb, r.Artifacts, r.Blobs,
		humanBytes(r.Bytes), el.Round(time.Millisecond), humanBytes(int64(float64(r.Bytes)/max(el.Seconds(), 1e-3))))
	if r.Signer != nil {
		fmt.Fprintf(a.stdout, "signed by %s %s at %s\n", pgp.FormatFingerprint(r.Signer.Fingerprint), r.Signer.UserID,
			r.Signer.Created.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintln(a.stdout, "signature NOT checked (--insecure-skip-signature)")
	}
	for _, o := range r.Overrides {
		fmt.Fprintf(a.stdout, "override made at gather time: %s\n", describeOverride(o))
	}
	return nil
}
