package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise it comes from the
// module's build information.
var version = ""

func toolVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return strings.TrimPrefix(bi.Main.Version, "v")
	}
	return "0.1.0-dev"
}

// Exit codes, documented in `mmgap --help`.
const (
	exitOK        = 0
	exitError     = 1
	exitUsage     = 2
	exitPartial   = 3
	exitIntegrity = 4
)

// app is what every command shares: streams, output format, logger.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	output         string // text | json
	verbose        bool
	quiet          bool
	log            *slog.Logger
}

func (a *app) json() bool { return a.output == "json" }

// printJSON writes v as indented JSON on stdout.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "mmgap",
		Short: "Carry a Mattermost deployment across an air gap, with a check behind every step",
		Long: `mmgap turns Mattermost's air-gapped deployment guide into commands.

Connected side:  mmgap gather -f mmgap.yaml -o site.mmgap.tar.zst --sign-key signing.key
                 (images, files and Helm charts into one OCI-layout store, then one signed bundle)
Isolated side:   mmgap bundle verify site.mmgap.tar.zst --trust signing.pub
                 mmgap bundle extract site.mmgap.tar.zst -o store --trust signing.pub

Exit codes: 0 ok, 1 error, 2 usage, 3 partial success, 4 integrity or signature failure.`,
		Version:       toolVersion(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			switch a.output {
			case "text", "json":
			default:
				return usageErrorf("--output %q: want text or json", a.output)
			}
			level := slog.LevelWarn
			if a.verbose {
				level = slog.LevelDebug
			}
			a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
			return nil
		},
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetVersionTemplate("mmgap {{.Version}}\n")
	root.PersistentFlags().StringVarP(&a.output, "output", "O", "text", "report format: text or json")
	root.PersistentFlags().BoolVarP(&a.verbose, "verbose", "v", false, "log details to stderr")
	root.PersistentFlags().BoolVarP(&a.quiet, "quiet", "q", false, "no progress output")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	root.AddCommand(newInitCmd(a), newGatherCmd(a), newPlanCmd(a), newBundleCmd(a), newKeyCmd(a), newVersionCmd(a))
	return root
}

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print mmgap's version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			v := map[string]string{"name": "mmgap", "version": toolVersion(), "bundleFormat": "1"}
			if a.json() {
				return a.printJSON(v)
			}
			fmt.Fprintf(a.stdout, "mmgap %s (bundle format 1)\n", v["version"])
			return nil
		},
	}
}

// usageError marks a mistake in how the command was called (exit 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usageErrorf(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// hinted carries a suggested fix printed after the error.
type hinted struct {
	err  error
	hint string
}

func (h hinted) Error() string { return h.err.Error() }
func (h hinted) Unwrap() error { return h.err }

func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return hinted{err, hint}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, output: "text"}
	root := newRoot(a)
	root.SetArgs(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	fmt.Fprintf(stderr, "mmgap: error: %s\n", err)
	var h hinted
	if errors.As(err, &h) {
		fmt.Fprintf(stderr, "mmgap: hint: %s\n", h.hint)
	}
	if code == exitUsage && !strings.Contains(err.Error(), "--help") {
		fmt.Fprintf(stderr, "mmgap: hint: see '%s --help'\n", commandPath(root, args))
	}
	return code
}

// commandPath names the subcommand that args select, for usage hints.
func commandPath(root *cobra.Command, args []string) string {
	c, _, err := root.Find(args)
	if err != nil || c == nil {
		return root.Name()
	}
	return c.CommandPath()
}

// exitCoder lets library errors choose their exit code.
type exitCoder interface{ ExitCode() int }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return exitUsage
	}
	var ec exitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	if isIntegrity(err) {
		return exitIntegrity
	}
	if strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") ||
		strings.Contains(err.Error(), "arg(s)") || strings.HasPrefix(err.Error(), "required flag") {
		return exitUsage
	}
	return exitError
}
