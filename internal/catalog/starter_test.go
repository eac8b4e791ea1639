package catalog

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/mmgap/mmgap/internal/manifest"
)

func TestStarterParsesAndExpands(t *testing.T) {
	for _, method := range manifest.MattermostMethods {
		for _, edition := range []string{"", "enterprise", "team"} {
			t.Run(method+"-"+edition, func(t *testing.T) {
				data, err := Starter(StarterOptions{Method: method, Edition: edition})
				if err != nil {
					t.Fatal(err)
				}
				m, err := manifest.Parse("mmgap.yaml", data)
				if err != nil {
					t.Fatalf("starter does not parse:\n%v\n%s", err, data)
				}
				mm := m.Mattermost
				if mm == nil || mm.Method != method || mm.Version != DefaultVersion {
					t.Fatalf("mattermost section: %+v", mm)
				}
				if edition != "" && mm.Edition != edition {
					t.Errorf("edition %q, want %q", mm.Edition, edition)
				}
				p, err := Expand(m)
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Images)+len(p.Files) == 0 {
					t.Errorf("starter expands to nothing")
				}
				if !strings.HasPrefix(string(data), "# mmgap.yaml") {
					t.Errorf("starter does not start with its comment")
				}
			})
		}
	}
}

func TestStarterRefuses(t *testing.T) {
	for _, o := range []StarterOptions{
		{}, {Method: "helm"}, {Method: "docker", Edition: "free"}, {Method: "docker", Version: "v11.1.0"}, {Method: "docker", Version: "11"},
	} {
		if _, err := Starter(o); err == nil {
			t.Errorf("Starter(%+v) succeeded", o)
		}
	}
	data, err := Starter(StarterOptions{Method: "tarball", Edition: "team", Version: "10.11.2"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "version: 10.11.2") || !strings.Contains(string(data), "edition: team") {
		t.Errorf("options not written:\n%s", data)
	}
}

// TestStarterExample keeps examples/mattermost-docker.yaml equal to what
// mmgap init --method docker writes (-update rewrites it).
func TestStarterExample(t *testing.T) {
	const file = "../../examples/mattermost-docker.yaml"
	got, err := Starter(StarterOptions{Method: "docker"})
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s is not what mmgap init --method docker writes (%v); run go test ./internal/catalog -update", file, err)
	}
}
