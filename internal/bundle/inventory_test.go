package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mmgap/mmgap/internal/store"
)

func validInventory(t testing.TB) []byte {
	t.Helper()
	ts := newTestStore(t, 100)
	inv, _, err := BuildInventory(ts.s, InventoryOptions{Created: testCreated, ToolVersion: "0.1.0", ManifestName: "mm", ManifestDigest: store.Digest([]byte("m")).String()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := inv.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuildInventory(t *testing.T) {
	ts := newTestStore(t, 101)
	inv, _, err := BuildInventory(ts.s, InventoryOptions{Created: testCreated.Add(1500 * 1e6), ToolVersion: "0.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	if !inv.Created.Equal(testCreated.Add(1e9)) {
		t.Fatalf("created not truncated to seconds: %v", inv.Created)
	}
	im, _ := ts.s.Index()
	if len(inv.Artifacts) != len(im.Manifests) {
		t.Fatal("artifact count")
	}
	for i, a := range inv.Artifacts {
		d := im.Manifests[i]
		if a.Digest != d.Digest || a.Size != d.Size || a.MediaType != string(d.MediaType) || a.Ref != d.Annotations[store.AnnotationRefName] {
			t.Fatalf("artifact %d does not match index.json: %+v", i, a)
		}
		reach, _ := ts.s.Reachable(d)
		var total int64
		for _, r := range reach {
			total += r.Size
		}
		if a.TotalSize != total {
			t.Fatalf("%s totalSize %d, want %d", a.Ref, a.TotalSize, total)
		}
		switch a.Kind {
		case store.KindImage:
			if len(a.Platforms) == 0 {
				t.Fatalf("%s: no platforms", a.Ref)
			}
		default:
			if a.UpstreamDigest != nil || a.Platforms != nil {
				t.Fatalf("%s: image-only fields on a %s", a.Ref, a.Kind)
			}
		}
	}
	mm := inv.Artifacts[entryOf(inv, "registry.example.org/mattermost/mattermost-enterprise-edition:11.4.0")]
	if mm.UpstreamDigest == nil || len(mm.Platforms) != 2 {
		t.Fatalf("index artifact: %+v", mm)
	}
	// Shared layers count once in totalSize but appear once in blobs.
	blobs, _ := ts.s.Blobs()
	if len(inv.Blobs) != len(blobs) {
		t.Fatal("blobs")
	}
	for i, b := range blobs {
		if inv.Blobs[i].Digest != b.Digest || inv.Blobs[i].Size != b.Size {
			t.Fatalf("blob %d", i)
		}
	}
	enc, _ := inv.Encode()
	if !bytes.HasSuffix(enc, []byte("}\n")) || !bytes.HasPrefix(enc, []byte("{\n  \"formatVersion\": 1,\n  \"created\": \"2026-11-20T10:00:01Z\",\n  \"tool\"")) {
		t.Fatalf("encoding:\n%s", enc[:200])
	}
	back, err := ParseInventory(enc)
	if err != nil {
		t.Fatal(err)
	}
	enc2, _ := back.Encode()
	if !bytes.Equal(enc, enc2) {
		t.Fatal("parse/encode round trip changed bundle.json")
	}
}

func entryOf(inv *Inventory, ref string) int {
	for i, a := range inv.Artifacts {
		if a.Ref == ref {
			return i
		}
	}
	return -1
}

func TestParseInventory(t *testing.T) {
	good := validInventory(t)
	if _, err := ParseInventory(good); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	blobs := func(m map[string]any) []any { return m["blobs"].([]any) }
	files := func(m map[string]any) []any { return m["files"].([]any) }
	arts := func(m map[string]any) []any { return m["artifacts"].([]any) }
	obj := func(v any) map[string]any { return v.(map[string]any) }
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"too big", append(bytes.Repeat([]byte(" "), MaxInventorySize), good...), "more than"},
		{"not json", []byte("{"), "not a JSON object"},
		{"array", []byte("[]"), "not a JSON object"},
		{"bom", append([]byte{0xef, 0xbb, 0xbf}, good...), "byte-order mark"},
		{"no version", edit(func(m map[string]any) { delete(m, "formatVersion") }), "no formatVersion"},
		{"version 2", edit(func(m map[string]any) { m["formatVersion"] = 2 }), "formatVersion 2 is not supported; supported versions: 1"},
		{"version string", edit(func(m map[string]any) { m["formatVersion"] = "1" }), `formatVersion "1" is not supported`},
		{"version 1.0", []byte(strings.Replace(string(good), `"formatVersion": 1,`, `"formatVersion": 1.0,`, 1)), "formatVersion 1.0 is not supported"},
		{"sha512 blob", edit(func(m map[string]any) { obj(blobs(m)[0])["digest"] = "sha512:" + strings.Repeat("a", 128) }), "blobs"},
		{"uppercase hex", edit(func(m map[string]any) {
			d := obj(blobs(m)[0])["digest"].(string)
			obj(blobs(m)[0])["digest"] = "sha256:" + strings.ToUpper(d[7:])
		}), "lowercase"},
		{"short digest", edit(func(m map[string]any) { obj(files(m)[0])["digest"] = "sha256:abcd" }), "files"},
		{"negative size", edit(func(m map[string]any) { obj(blobs(m)[1])["size"] = -1 }), "out of range"},
		{"size 2^53", edit(func(m map[string]any) { obj(blobs(m)[1])["size"] = float64(1 << 53) }), "out of range"},
		{"fractional size", []byte(strings.Replace(string(good), `"size": 30`, `"size": 30.5`, 1)), "bundle.json"},
		{"duplicate blob", edit(func(m map[string]any) { m["blobs"] = append([]any{blobs(m)[0]}, blobs(m)...) }), "listed twice"},
		{"unsorted blobs", edit(func(m map[string]any) { b := blobs(m); b[0], b[1] = b[1], b[0] }), "out of order"},
		{"duplicate file", edit(func(m map[string]any) { m["files"] = append(files(m), files(m)[0]) }), "listed twice"},
		{"unknown file", edit(func(m map[string]any) { obj(files(m)[0])["path"] = "../evil" }), "not a file of formatVersion 1"},
		{"missing file", edit(func(m map[string]any) { m["files"] = files(m)[1:] }), "sbom.cdx.json missing"},
		{"duplicate ref", edit(func(m map[string]any) { obj(arts(m)[1])["ref"] = obj(arts(m)[0])["ref"] }), "listed twice"},
		{"artifact not a blob", edit(func(m map[string]any) { obj(arts(m)[0])["digest"] = store.Digest([]byte("x")).String() }), "not among the blobs"},
		{"artifact size", edit(func(m map[string]any) { obj(arts(m)[0])["size"] = 1 }), "but blob"},
		{"no created", edit(func(m map[string]any) { delete(m, "created") }), "created"},
		{"bad created", edit(func(m map[string]any) { m["created"] = "yesterday" }), "bundle.json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseInventory(c.in)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
	var ve *VersionError
	if _, err := ParseInventory(edit(func(m map[string]any) { m["formatVersion"] = 2; m["artifacts"] = "changed shape" })); !errors.As(err, &ve) || ve.Found != "2" {
		t.Fatalf("version checked first: %v", err)
	}
	// Unknown fields are ignored within version 1.
	if _, err := ParseInventory(edit(func(m map[string]any) { m["future"] = map[string]any{"x": 1}; obj(blobs(m)[0])["extra"] = true })); err != nil {
		t.Fatalf("unknown fields: %v", err)
	}
}

func TestParseInventoryOverrides(t *testing.T) {
	good := validInventory(t)
	var inv Inventory
	if err := json.Unmarshal(good, &inv); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(good, []byte(`"overrides"`)) {
		t.Fatal("an inventory without overrides lists them")
	}
	ref := inv.Artifacts[0].Ref
	fp := strings.Repeat("A1B3", 10)
	with := func(o ...Override) []byte {
		c := inv
		c.Overrides = o
		b, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ok := Override{Kind: OverrideExpiredKey, Artifact: ref, Fingerprint: fp, Expired: testCreated}
	got, err := ParseInventory(with(ok))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Overrides) != 1 || got.Overrides[0] != ok {
		t.Fatalf("overrides %+v", got.Overrides)
	}
	if !bytes.Contains(with(ok), []byte(`"kind": "expired-key"`)) {
		t.Error("encoded override lacks its kind")
	}
	// A kind from a later writer is kept, not refused (the field is additive).
	if _, err := ParseInventory(with(Override{Kind: "future-kind", Artifact: ref})); err != nil {
		t.Errorf("unknown kind: %v", err)
	}
	for _, c := range []struct {
		name string
		o    Override
		want string
	}{
		{"no kind", Override{Artifact: ref}, "overrides[0]: kind missing"},
		{"no artifact", Override{Kind: OverrideExpiredKey, Fingerprint: fp, Expired: testCreated}, "artifact missing"},
		{"unknown artifact", Override{Kind: OverrideExpiredKey, Artifact: "mmgap.files/nope:1", Fingerprint: fp, Expired: testCreated}, "not an artifact of this bundle"},
		{"key id", Override{Kind: OverrideExpiredKey, Artifact: ref, Fingerprint: "F8F2C31744774B28", Expired: testCreated}, "fingerprint"},
		{"lowercase", Override{Kind: OverrideExpiredKey, Artifact: ref, Fingerprint: strings.ToLower(fp), Expired: testCreated}, "fingerprint"},
		{"no expiry", Override{Kind: OverrideExpiredKey, Artifact: ref, Fingerprint: fp}, "expired: missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseInventory(with(c.o))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}
