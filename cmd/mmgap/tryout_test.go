package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestTryout runs scripts/tryout.sh, the README's offline try-out, so that promise stays true.
func TestTryout(t *testing.T) {
	work := t.TempDir()
	cmd := exec.Command("bash", "../../scripts/tryout.sh", work)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/tryout.sh: %v\n%s", err, out)
	}
	for _, want := range []string{
		"bundle: tryout.mmgap.tar.zst (",
		"tryout.mmgap.tar.zst verified: 6 artifacts",
		"extracted to incoming and verified",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("try-out output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(work, "incoming", "store", "index.json")); err != nil {
		t.Error(err)
	}
}
