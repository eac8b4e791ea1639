package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mmgap/mmgap/internal/catalog"
	"github.com/mmgap/mmgap/internal/manifest"
	"github.com/mmgap/mmgap/internal/store"
)

func newInitCmd(a *app) *cobra.Command {
	var (
		o     catalog.StarterOptions
		out   string
		force bool
	)
	c := &cobra.Command{
		Use:   "init --method tarball|docker|kubernetes",
		Short: "Write a commented starter mmgap.yaml for a deployment method",
		Long: `init writes a commented starter mmgap.yaml with a mattermost: section for the chosen
deployment method, edition and version. Edit it, check it with "mmgap plan -f mmgap.yaml",
then gather. It refuses to replace an existing file unless --force is given; "-o -" writes
to standard output.`,
		Example: "  mmgap init --method docker\n  mmgap init --method kubernetes --edition team --version 11.10.0 -o site.yaml",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if o.Method == "" {
				return usageErrorf("--method is required: %s", strings.Join(manifest.MattermostMethods, ", "))
			}
			data, err := catalog.Starter(o)
			if err != nil {
				return usageError{err}
			}
			if out == "-" {
				_, err := a.stdout.Write(data)
				return err
			}
			if _, err := os.Stat(out); err == nil && !force {
				return withHint(fmt.Errorf("%s exists", out), "choose another -o FILE, or pass --force to replace it")
			} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if err := store.WriteFileAtomic(out, data, 0o644); err != nil {
				return fmt.Errorf("write %s: %w", out, err)
			}
			if a.json() {
				return a.printJSON(map[string]string{"file": out, "method": o.Method, "edition": initEdition(o.Edition), "version": initVersion(o.Version)})
			}
			if !a.quiet {
				fmt.Fprintf(a.stdout, "wrote %s (Mattermost %s, %s edition, method %s)\nnext: edit it, then run mmgap plan -f %s\n",
					out, initVersion(o.Version), initEdition(o.Edition), o.Method, out)
			}
			return nil
		},
	}
	c.Flags().StringVar(&o.Method, "method", "", "deployment method: tarball, docker or kubernetes")
	c.Flags().StringVar(&o.Edition, "edition", "enterprise", "Mattermost edition: enterprise or team")
	c.Flags().StringVar(&o.Version, "version", catalog.DefaultVersion, "exact Mattermost version, X.Y.Z")
	c.Flags().StringVarP(&out, "out", "o", "mmgap.yaml", `file to write ("-" for standard output)`)
	c.Flags().BoolVar(&force, "force", false, "replace an existing file")
	return c
}

func initEdition(e string) string {
	if e == "" {
		return "enterprise"
	}
	return e
}

func initVersion(v string) string {
	if v == "" {
		return catalog.DefaultVersion
	}
	return v
}
