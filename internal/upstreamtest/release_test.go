package upstreamtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/mmgap/mmgap/internal/pgp"
)

func TestReleaseTarballShape(t *testing.T) {
	tb := ReleaseTarball(t, "11.4.0", "enterprise")
	if !bytes.Equal(tb, ReleaseTarball(t, "11.4.0", "enterprise")) {
		t.Error("the fixture is not reproducible")
	}
	zr, err := gzip.NewReader(bytes.NewReader(tb))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	for _, want := range []string{
		"mattermost/bin/mattermost", "mattermost/bin/mmctl", "mattermost/config/config.json",
		"mattermost/i18n/en.json", "mattermost/templates/", "mattermost/client/root.html",
		"mattermost/prepackaged_plugins/mattermost-plugin-example-v1.0.0-linux-amd64.tar.gz",
		"mattermost/prepackaged_plugins/mattermost-plugin-example-v1.0.0-linux-amd64.tar.gz.sig",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("tarball lacks %s (has %v)", want, names)
		}
	}
	if got := ReleaseTarballPath("11.4.0", "team", "arm64"); got != "/11.4.0/mattermost-team-11.4.0-linux-arm64.tar.gz" {
		t.Errorf("team path %s", got)
	}
}

func TestExpiredSigningKey(t *testing.T) {
	k, expires := NewExpiredSigningKey(t, "Expired")
	kr, err := pgp.ParseKeyring(k.PublicArmored)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("release")
	sig := k.Sign(t, msg)
	_, err = pgp.Verify(kr, bytes.NewReader(msg), sig, pgp.VerifyOptions{})
	var ke *pgp.KeyExpiredError
	if !errors.As(err, &ke) || ke.AfterExpiry || !ke.Expired.Equal(expires) {
		t.Fatalf("err = %v, want the key expired at %s with the signature made before", err, expires)
	}
	s, err := pgp.Verify(kr, bytes.NewReader(msg), sig, pgp.VerifyOptions{AllowExpiredKey: true})
	if err != nil || !s.KeyExpired {
		t.Fatalf("with the override: %v %+v", err, s)
	}
	if !s.Created.Before(expires) || time.Since(expires) < 30*time.Minute {
		t.Errorf("signed %s, expired %s", s.Created, expires)
	}
}
