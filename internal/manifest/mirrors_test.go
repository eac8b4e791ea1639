package manifest

import (
	"strings"
	"testing"
)

var testMirrors = Mirrors{
	"docker.io":                mirror1,
	"ghcr.io":                  "https://harbor.corp.example/ghcr-proxy/",
	"quay.io":                  "http://127.0.0.1:5000",
	"releases.mattermost.com":  "https://proxy.corp.example/mm",
	"helm.mattermost.com":      "charts.corp.example:8443",
	"files.example:8080":       "https://files.corp.example/base",
	"deb.debian.org":           "http://apt.corp.example",
	"registry.example.invalid": "https://bad.example?x",
}

const mirror1 = "mirror.corp.example:5000"

func TestRewriteRegistry(t *testing.T) {
	for in, want := range map[string]string{
		"docker.io":            mirror1,
		"index.docker.io":      mirror1,
		"registry-1.docker.io": mirror1,
		"Docker.IO":            mirror1,
		"ghcr.io":              "harbor.corp.example",
		"quay.io":              "127.0.0.1:5000",
		"gcr.io":               "gcr.io",
		"localhost:5000":       "localhost:5000",
	} {
		if got := testMirrors.RewriteRegistry(in); got != want {
			t.Errorf("RewriteRegistry(%q) = %q, want %q", in, got, want)
		}
	}
	// A mirror under one Docker Hub name wins over the others only when
	// the exact name has none.
	m := Mirrors{"index.docker.io": "a.example", "docker.io": "b.example"}
	if got := m.RewriteRegistry("index.docker.io"); got != "a.example" {
		t.Errorf("exact Docker Hub name: %q", got)
	}
	if got := m.RewriteRegistry("registry-1.docker.io"); got != "b.example" {
		t.Errorf("alias order: %q", got)
	}
	if got := Mirrors(nil).RewriteRegistry("docker.io"); got != "docker.io" {
		t.Errorf("nil mirrors: %q", got)
	}
	if mir, ok := testMirrors.LookupRegistry("quay.io"); !ok || mir.Scheme != "http" {
		t.Errorf("LookupRegistry(quay.io) = %+v, %v", mir, ok)
	}
}

func TestRewriteReference(t *testing.T) {
	for in, want := range map[string]string{
		"postgres:15-alpine": mirror1 + "/library/postgres:15-alpine",
		"docker.io/mattermost/mattermost-enterprise-edition:11.4.0": mirror1 + "/mattermost/mattermost-enterprise-edition:11.4.0",
		"index.docker.io/library/postgres@sha256:" + hexA:           mirror1 + "/library/postgres@sha256:" + hexA,
		"postgres:15@sha256:" + hexA:                                mirror1 + "/library/postgres:15@sha256:" + hexA,
		"ghcr.io/mattermost/rtcd:1.0":                               "harbor.corp.example/ghcr-proxy/mattermost/rtcd:1.0",
		"quay.io/x/y:1":                                             "127.0.0.1:5000/x/y:1",
		"gcr.io/x/y:1":                                              "gcr.io/x/y:1",
		"localhost:5000/x:1":                                        "localhost:5000/x:1",
	} {
		got, err := testMirrors.RewriteReference(in)
		if err != nil || got != want {
			t.Errorf("RewriteReference(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := testMirrors.RewriteReference("UPPER:1"); err == nil {
		t.Errorf("invalid reference accepted")
	}
	if _, err := testMirrors.RewriteReference("registry.example.invalid/x:1"); err == nil {
		t.Errorf("invalid mirror value accepted")
	}
}

func TestRewriteURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://releases.mattermost.com/11.4.0/mattermost-team-11.4.0-linux-amd64.tar.gz": "https://proxy.corp.example/mm/11.4.0/mattermost-team-11.4.0-linux-amd64.tar.gz",
		"https://releases.mattermost.com:443/a.sig":                                        "https://proxy.corp.example/mm/a.sig",
		"https://releases.mattermost.com:8443/a.sig":                                       "https://releases.mattermost.com:8443/a.sig",
		"https://helm.mattermost.com/index.yaml":                                           "https://charts.corp.example:8443/index.yaml",
		"https://helm.mattermost.com":                                                      "https://charts.corp.example:8443",
		"http://files.example:8080/x/y?token=1":                                            "https://files.corp.example/base/x/y?token=1",
		"http://files.example/x":                                                           "http://files.example/x",
		"http://deb.debian.org/debian/dists/bookworm/InRelease":                            "http://apt.corp.example/debian/dists/bookworm/InRelease",
		"https://RELEASES.mattermost.com/a%2Fb":                                            "https://proxy.corp.example/mm/a%2Fb",
		"https://example.com/x":                                                            "https://example.com/x",
	} {
		got, err := testMirrors.RewriteURL(in)
		if err != nil || got != want {
			t.Errorf("RewriteURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"ftp://releases.mattermost.com/x", "https://h/%zz", "releases.mattermost.com/x"} {
		if _, err := testMirrors.RewriteURL(in); err == nil {
			t.Errorf("RewriteURL(%q) succeeded", in)
		}
	}
	if _, err := (Mirrors{"h.example": "https://u:secret@m.example"}).RewriteURL("https://h.example/x"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("bad mirror: %v", err)
	}
}

func TestParseMirror(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mirror
		err  string
	}{
		{in: "mirror.corp.example:5000", want: Mirror{Host: "mirror.corp.example:5000"}},
		{in: "127.0.0.1", want: Mirror{Host: "127.0.0.1"}},
		{in: "[::1]:5000", want: Mirror{Host: "[::1]:5000"}},
		{in: "https://proxy.corp.example/releases/", want: Mirror{Scheme: "https", Host: "proxy.corp.example", Path: "/releases"}},
		{in: "http://proxy.corp.example", want: Mirror{Scheme: "http", Host: "proxy.corp.example"}},
		{in: "proxy.corp.example/x", err: `mirror "proxy.corp.example/x" has a path but no scheme; write https://proxy.corp.example/x`},
		{in: "Proxy.example", err: `mirror host "Proxy.example" must be lowercase; write "proxy.example"`},
		{in: "https://proxy.example/x#y", err: `mirror must not have a fragment (#...)`},
		{in: "https://proxy.example/x?", err: `mirror must not have a query (?...)`},
		{in: "https://proxy.example/a%20b", err: `mirror path must not contain percent-escapes`},
		{in: "https:proxy.example", err: `mirror host "https:proxy.example" is not host or host:port`},
		{in: "https://", err: `mirror host is empty`},
		{in: "bad_host!", err: `mirror host "bad_host!" is not a valid host name`},
		{in: "[zz]:1", err: `mirror host "[zz]:1" is not host or host:port`},
		{in: "h:", err: `mirror host "h:" has an invalid port`},
	} {
		got, err := ParseMirror(tc.in)
		switch {
		case tc.err != "" && (err == nil || err.Error() != tc.err):
			t.Errorf("%q: err = %v, want %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%q: %+v, %v", tc.in, got, err)
		case tc.err == "" && strings.TrimRight(got.String(), "/") != strings.TrimRight(tc.in, "/"):
			t.Errorf("%q: String() = %q", tc.in, got.String())
		}
	}
}
