package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mmgap/mmgap/internal/catalog"
	"github.com/mmgap/mmgap/internal/manifest"
	"github.com/mmgap/mmgap/internal/plan"
	"github.com/mmgap/mmgap/internal/store"
)

type planFlags struct {
	file, out, storeDir string
	jobs                int
	username            string
	passwordStdin       bool
}

func newPlanCmd(a *app) *cobra.Command {
	var f planFlags
	c := &cobra.Command{
		Use:   "plan -f mmgap.yaml [--store DIR] [-o BUNDLE]",
		Short: "Show what gather will fetch, how much, and whether the disk has room",
		Long: `List every artifact gather will fetch for mmgap.yaml: its kind, name and source, where it
really comes from after the manifest's mirrors, its size where the upstream tells it, and whether
the content store (--store) already holds it. Then the totals: bytes to download, the store's size
after gather, an estimate of the bundle (-o), and the disk space they need where they go (added
together when the store and the bundle share a filesystem).

plan downloads no layer and no file: one manifest request per image (plus the child manifests of
an index), a HEAD (or a one-byte ranged GET) per file and chart archive, and the index.yaml of
each chart repository. Shared layers are counted once. The bundle is about the size of its unique
blobs: image layers are compressed already.

Exit codes: 0 everything sized and the disks have room; 1 a disk lacks room (the message says
where, how much is needed and how much is free) or the manifest cannot be read; 2 usage;
3 some artifacts could not be sized (unreachable, missing, wrong platform) - the others are listed
and the totals are lower bounds.`,
		Example: `  mmgap plan -f mmgap.yaml
  mmgap plan -f mmgap.yaml --store mmgap-store -o site.mmgap.tar.zst
  mmgap plan -f mmgap.yaml -O json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPlan(cmd, a, &f) },
	}
	c.Flags().StringVarP(&f.file, "file", "f", "mmgap.yaml", "the manifest")
	c.Flags().StringVarP(&f.out, "out", "o", "", "bundle file gather will write; its disk is checked too")
	c.Flags().StringVar(&f.storeDir, "store", "mmgap-store", "content store directory; what it holds counts as no download")
	c.Flags().IntVarP(&f.jobs, "jobs", "j", 8, "artifacts sized at once")
	c.Flags().StringVar(&f.username, "username", "", "registry user name for every registry (password from --password-stdin)")
	c.Flags().BoolVar(&f.passwordStdin, "password-stdin", false, "read the registry password from standard input")
	return c
}

// planResult is what plan prints with -O json.
type planResult struct {
	*plan.Plan
	Store  string `json:"store"`
	Bundle string `json:"bundle,omitempty"`
	// Packages are the Debian packages the mattermost: section needs; plan does not size them.
	Packages []catalog.Package `json:"packages,omitempty"`
	// Warnings are the catalog's version-aware notes.
	Warnings []catalog.Warning `json:"warnings,omitempty"`
}

// loadManifest reads and parses the manifest at path and expands its mattermost: section into
// the explicit images, files and charts gather fetches, after the manifest's own. With keyDir,
// the catalog's built-in keys are written there and the files point at them (gather verifies;
// plan does not need them). Mistakes in the manifest are usage errors.
func loadManifest(path, keyDir string) ([]byte, *manifest.Manifest, *catalog.Plan, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, nil, withHint(fmt.Errorf("read manifest: %w", err), "pass the manifest with -f (see examples/mmgap.yaml)")
	}
	m, err := manifest.Parse(path, raw)
	if err != nil {
		return nil, nil, nil, usageError{err}
	}
	var cp *catalog.Plan
	if keyDir != "" {
		m, cp, err = catalog.Prepare(m, keyDir)
	} else if cp, err = catalog.Expand(m); err == nil {
		m = cp.Apply(m)
	}
	if err != nil {
		var me *manifest.Errors
		if errors.As(err, &me) {
			return nil, nil, nil, usageError{err}
		}
		return nil, nil, nil, err
	}
	return raw, m, cp, nil
}

func runPlan(cmd *cobra.Command, a *app, f *planFlags) error {
	auth, err := a.registryAuth(f.username, f.passwordStdin)
	if err != nil {
		return err
	}
	_, m, cp, err := loadManifest(f.file, "")
	if err != nil {
		return err
	}
	// An existing store counts; a missing one is not created (plan writes nothing).
	var st *store.Store
	if _, err := os.Stat(f.storeDir); err == nil {
		if st, err = store.OpenExisting(f.storeDir); err != nil {
			return withHint(err, "--store names a directory that is not an mmgap content store")
		}
	}
	p, err := plan.Run(cmd.Context(), m, plan.Options{
		Store: st, Auth: auth, StoreDir: f.storeDir, BundlePath: f.out, Jobs: f.jobs, Logger: a.log,
	})
	var de *plan.DiskError
	if err != nil && !errors.As(err, &de) {
		return err
	}
	res := planResult{Plan: p, Store: f.storeDir, Bundle: f.out, Packages: cp.Packages, Warnings: cp.Warnings}
	if rerr := a.renderPlan(&res); rerr != nil {
		return rerr
	}
	if de != nil {
		return withHint(de, fmt.Sprintf("%s more is needed at %s; free space there, or point --store and -o at a larger disk", plan.HumanBytes(de.Need-de.Free), de.Path))
	}
	if n := p.Totals.Failed; n > 0 {
		return partialError{withHint(fmt.Errorf("%d of %d artifacts could not be sized; the totals leave them out", n, p.Totals.Artifacts),
			"check the errors above (network, credentials, names, platforms); mirrors: sends a host elsewhere")}
	}
	return nil
}

func (a *app) renderPlan(r *planResult) error {
	if a.json() {
		return a.printJSON(r)
	}
	p := r.Plan
	tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tSOURCE\tSIZE\tSTATUS")
	for _, it := range p.Items {
		size := "-"
		if it.Size >= 0 {
			size = humanBytes(it.Size)
		}
		status := it.Status
		switch it.Status {
		case plan.StatusPartial:
			status = "partial (" + humanBytes(it.Download) + " to download)"
		case plan.StatusUnknown:
			status = "download (not known whether stored)"
		case plan.StatusError:
			status = "ERROR"
		}
		src := it.Source
		if it.Resolved != "" && hostOf(it.Resolved) != hostOf(it.Source) {
			src += " (via " + it.Resolved + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", it.Kind, it.Name, src, size, status)
	}
	tw.Flush()
	for _, it := range p.Items {
		if it.Error != "" {
			fmt.Fprintf(a.stdout, "error: %s\n", it.Error)
		}
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(a.stdout, "warning: %s (%s)\n", w.Message, w.Code)
	}
	if n := len(r.Packages); n > 0 {
		fmt.Fprintf(a.stdout, "not sized: %d Debian packages for the components (a package mirror gathers them)\n", n)
	}
	t := p.Totals
	fmt.Fprintf(a.stdout, "\n%d artifacts", t.Artifacts)
	if t.Failed > 0 {
		fmt.Fprintf(a.stdout, ", %d could not be sized", t.Failed)
	}
	fmt.Fprintf(a.stdout, "\ndownload:  %s\n", humanBytes(t.Download))
	fmt.Fprintf(a.stdout, "stored:    %s already in %s\n", humanBytes(t.Stored), r.Store)
	fmt.Fprintf(a.stdout, "store:     %s after gather\n", humanBytes(t.Store))
	fmt.Fprintf(a.stdout, "bundle:    about %s\n", humanBytes(t.Bundle))
	for _, d := range p.Disks {
		if d.Err != "" {
			fmt.Fprintf(a.stdout, "disk:      %s (%s): need %s, free space unknown: %s\n", d.Path, strings.Join(d.Uses, " + "), plan.HumanBytes(d.Need), d.Err)
			continue
		}
		ok := "ok"
		if !d.OK {
			ok = "NOT ENOUGH"
		}
		fmt.Fprintf(a.stdout, "disk:      %s (%s): need %s, %s free: %s\n", d.Path, strings.Join(d.Uses, " + "), plan.HumanBytes(d.Need), plan.HumanBytes(d.Free), ok)
	}
	verdict := map[string]string{
		plan.VerdictOK:      "ok: gather has everything it needs",
		plan.VerdictPartial: "partial: some artifacts could not be sized; the totals are lower bounds",
		plan.VerdictNoSpace: "no space: gather would run out of disk",
	}[p.Verdict]
	fmt.Fprintf(a.stdout, "verdict:   %s\n", verdict)
	return nil
}

// hostOf is the host[:port] of an image reference, oci:// reference or URL.
func hostOf(s string) string {
	s = strings.TrimPrefix(s, "oci://")
	if u, err := url.Parse(s); err == nil && strings.Contains(s, "://") {
		return u.Host
	}
	h, _, _ := strings.Cut(s, "/")
	return h
}
