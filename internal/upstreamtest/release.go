package upstreamtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// ReleaseTarballPath is the path of a Mattermost release tarball under the release site's
// base URL, as mmgap's catalog builds it: <version>/mattermost-<version>-linux-<arch>.tar.gz for
// the enterprise edition, <version>/mattermost-team-<version>-linux-<arch>.tar.gz for team.
func ReleaseTarballPath(version, edition, arch string) string {
	name := "mattermost-"
	if edition == "team" {
		name = "mattermost-team-"
	}
	return fmt.Sprintf("/%s/%s%s-linux-%s.tar.gz", version, name, version, arch)
}

// ReleaseTarball builds a small gzipped tar shaped like a Mattermost server release:
// mattermost/bin/mattermost and mmctl, config/config.json, i18n/en.json, templates/,
// client/root.html and prepackaged_plugins/ with a plugin bundle and its .sig. The bytes are
// the same for the same arguments.
func ReleaseTarball(t testing.TB, version, edition string) []byte {
	t.Helper()
	mtime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	plugin := gzipTar(t, mtime, []tarEntry{
		{name: "com.mattermost.example/plugin.json", body: `{"id":"com.mattermost.example","version":"1.0.0"}`},
		{name: "com.mattermost.example/server/dist/plugin-linux-amd64", body: "\x7fELF fake plugin", mode: 0o755},
	})
	entries := []tarEntry{
		{name: "mattermost/", dir: true},
		{name: "mattermost/bin/", dir: true},
		{name: "mattermost/bin/mattermost", body: "\x7fELF fake mattermost server " + version + " " + edition + "\n", mode: 0o755},
		{name: "mattermost/bin/mmctl", body: "\x7fELF fake mmctl " + version + "\n", mode: 0o755},
		{name: "mattermost/config/", dir: true},
		{name: "mattermost/config/config.json", body: `{"ServiceSettings":{"SiteURL":"","ListenAddress":":8065"},"SqlSettings":{"DriverName":"postgres"}}` + "\n"},
		{name: "mattermost/i18n/", dir: true},
		{name: "mattermost/i18n/en.json", body: `[{"id":"api.test","translation":"test"}]` + "\n"},
		{name: "mattermost/templates/", dir: true},
		{name: "mattermost/templates/welcome_body.html", body: "<html><body>Welcome to Mattermost " + version + "</body></html>\n"},
		{name: "mattermost/client/", dir: true},
		{name: "mattermost/client/root.html", body: "<!doctype html><title>Mattermost</title>\n"},
		{name: "mattermost/prepackaged_plugins/", dir: true},
		{name: "mattermost/prepackaged_plugins/mattermost-plugin-example-v1.0.0-linux-amd64.tar.gz", body: string(plugin)},
		{name: "mattermost/prepackaged_plugins/mattermost-plugin-example-v1.0.0-linux-amd64.tar.gz.sig", body: "fake detached signature\n"},
		{name: "mattermost/NOTICE.txt", body: "Mattermost " + edition + " edition " + version + " (test fixture)\n"},
	}
	return gzipTar(t, mtime, entries)
}

type tarEntry struct {
	name string
	body string
	mode int64
	dir  bool
}

func gzipTar(t testing.TB, mtime time.Time, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.ModTime = mtime
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, ModTime: mtime, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body)), Format: tar.FormatPAX}
		if e.mode != 0 {
			h.Mode = e.mode
		}
		if e.dir {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if !e.dir {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// NewExpiredSigningKey makes an Ed25519 key that was created two hours ago with a one-hour
// lifetime, so it expired an hour ago. Its signatures are dated 90 minutes ago, while it was
// still valid: the case an expired-key override may accept. Expires is when it expired.
func NewExpiredSigningKey(t testing.TB, name string) (k *SigningKey, expires time.Time) {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	created := now.Add(-2 * time.Hour)
	k = newSigningKey(t, name, created, uint32(time.Hour/time.Second))
	k.signAt = now.Add(-90 * time.Minute)
	return k, created.Add(time.Hour)
}

func newSigningKey(t testing.TB, name string, created time.Time, lifetimeSecs uint32) *SigningKey {
	t.Helper()
	cfg := &packet.Config{
		Algorithm:       packet.PubKeyAlgoEdDSA,
		Curve:           packet.Curve25519,
		DefaultHash:     crypto.SHA256,
		Time:            func() time.Time { return created },
		KeyLifetimeSecs: lifetimeSecs,
	}
	e, err := openpgp.NewEntity(name, "mmgap test key", strings.ToLower(strings.ReplaceAll(name, " ", "."))+"@example.invalid", cfg)
	if err != nil {
		t.Fatalf("upstreamtest: generate key: %v", err)
	}
	var buf bytes.Buffer
	aw, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(aw); err != nil {
		t.Fatalf("upstreamtest: serialise key: %v", err)
	}
	if err := aw.Close(); err != nil {
		t.Fatal(err)
	}
	return &SigningKey{
		PublicArmored: buf.Bytes(),
		Fingerprint:   strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint)),
		KeyID:         fmt.Sprintf("%016X", e.PrimaryKey.KeyId),
		entity:        e,
	}
}

// AddRelease serves a release-shaped tarball (ReleaseTarball) under prefix at the path the
// catalog uses (ReleaseTarballPath) with its detached signature by key at the same path +
// ".sig", as releases.mattermost.com does. It returns the tarball's bytes.
func (s *FileServer) AddRelease(prefix, version, edition, arch string, key *SigningKey) []byte {
	s.t.Helper()
	if key == nil {
		key = s.Key()
	}
	tb := ReleaseTarball(s.t, version, edition)
	p := strings.TrimSuffix(prefix, "/") + ReleaseTarballPath(version, edition, arch)
	s.Add(p, tb)
	s.Add(p+".sig", key.Sign(s.t, tb))
	return tb
}

// SignAt makes an ASCII-armored detached signature over content dated at, bypassing every check
// of the key's validity then: it forges what a careless signer could publish, such as a
// signature made after the key expired.
func (k *SigningKey) SignAt(t testing.TB, content []byte, at time.Time) []byte {
	t.Helper()
	pub := k.entity.PrimaryKey
	sig := &packet.Signature{
		Version:           pub.Version,
		SigType:           packet.SigTypeBinary,
		PubKeyAlgo:        pub.PubKeyAlgo,
		Hash:              crypto.SHA256,
		CreationTime:      at,
		IssuerKeyId:       &pub.KeyId,
		IssuerFingerprint: pub.Fingerprint,
	}
	cfg := &packet.Config{DefaultHash: crypto.SHA256, Time: func() time.Time { return at }}
	h, err := sig.PrepareSign(cfg)
	if err != nil {
		t.Fatalf("upstreamtest: sign: %v", err)
	}
	h.Write(content)
	if err := sig.Sign(h, k.entity.PrivateKey, cfg); err != nil {
		t.Fatalf("upstreamtest: sign: %v", err)
	}
	var buf bytes.Buffer
	aw, err := armor.Encode(&buf, openpgp.SignatureType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sig.Serialize(aw); err != nil {
		t.Fatal(err)
	}
	if err := aw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
