package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// scriptCondition adds conditions to the scripts: [root] is true when running as root (needed to
// mount a tmpfs).
func scriptCondition(cond string) (bool, error) {
	switch cond {
	case "root":
		return os.Geteuid() == 0, nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// cmdTmpfs mounts a size-limited tmpfs on DIR for the rest of the script: tmpfs DIR SIZE (e.g.
// 1m). It needs root (CI runs as root); a failing mount fails the script.
func cmdTmpfs(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: tmpfs DIR SIZE")
	}
	dir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dir, 0o755))
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+args[1], "tmpfs", dir).CombinedOutput()
	if err != nil {
		ts.Fatalf("tmpfs: mount -t tmpfs -o size=%s on %s: %v\n%s", args[1], dir, err, strings.TrimSpace(string(out)))
	}
	ts.Defer(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			ts.Logf("tmpfs: umount %s: %v %s", dir, err, out)
		}
	})
}
