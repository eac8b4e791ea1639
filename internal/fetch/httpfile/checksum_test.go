package httpfile_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mmgap/mmgap/internal/fetch/httpfile"
	"github.com/mmgap/mmgap/internal/store"
	"github.com/mmgap/mmgap/internal/upstreamtest"
)

func TestChecksumBareHex(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(t, 30_000)
	u := e.srv.Add("/release/v1.34.2/bin/linux/amd64/kubectl", data)
	cu := e.srv.Add("/release/v1.34.2/bin/linux/amd64/kubectl.sha256", []byte(sha(data))) // no newline, like dl.k8s.io
	desc, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "kubectl", Version: "1.34.2", URL: u, ChecksumURL: cu})
	if err != nil {
		t.Fatal(err)
	}
	m := e.manifest(desc)
	if len(m.Layers) != 1 || m.Layers[0].Digest.Hex != sha(data) || !bytes.Equal(e.blob(m.Layers[0].Digest), data) {
		t.Fatalf("layers %+v", m.Layers)
	}
	if got := m.Annotations[store.AnnotationChecksumSource]; got != cu {
		t.Errorf("checksum source annotation %q, want %q", got, cu)
	}
	if err := e.st.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	// A second run fetches the checksum file again but not the file.
	e.srv.ResetCounters()
	if _, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "kubectl", Version: "1.34.2", URL: u, ChecksumURL: cu}); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.Requests("/release/v1.34.2/bin/linux/amd64/kubectl"); n != 0 {
		t.Errorf("stored file fetched again: %d requests", n)
	}
}

func TestChecksumSha256sumSingle(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(t, 20_000)
	u := e.srv.Add("/helm-v3.19.2-linux-amd64.tar.gz", data)
	cu := e.srv.Add("/helm-v3.19.2-linux-amd64.tar.gz.sha256sum", []byte(sha(data)+"  helm-v3.19.2-linux-amd64.tar.gz\n"))
	desc, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "helm", URL: u, ChecksumURL: cu})
	if err != nil {
		t.Fatal(err)
	}
	if m := e.manifest(desc); m.Layers[0].Digest.Hex != sha(data) {
		t.Errorf("digest %s", m.Layers[0].Digest)
	}
}

func TestChecksumSHA256SUMSPicksLine(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(t, 20_000)
	u := e.srv.Add("/dist/tool-linux-arm64.tar.gz", data)
	sums := sha([]byte("a")) + "  tool-linux-amd64.tar.gz\n" +
		sha(data) + " *tool-linux-arm64.tar.gz\n" +
		sha([]byte("b")) + "  tool-linux-arm64.tar.gz.sig\n"
	cu := e.srv.Add("/dist/SHA256SUMS", []byte(sums))
	desc, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "tool", URL: u, ChecksumURL: cu})
	if err != nil {
		t.Fatal(err)
	}
	if m := e.manifest(desc); m.Layers[0].Digest.Hex != sha(data) {
		t.Errorf("digest %s", m.Layers[0].Digest)
	}
}

func TestChecksumNameAbsent(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(t, 1000)
	u := e.srv.Add("/dist/tool-linux-s390x.tar.gz", data)
	cu := e.srv.Add("/dist/SHA256SUMS", []byte(sha(data)+"  tool-linux-amd64.tar.gz\n"))
	_, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "tool", URL: u, ChecksumURL: cu})
	if !errors.Is(err, httpfile.ErrChecksumFile) {
		t.Fatalf("err = %v, want ErrChecksumFile", err)
	}
	mustContain(t, err, `"tool"`, cu, `"tool-linux-s390x.tar.gz" is not listed`)
	if n := e.srv.Requests("/dist/tool-linux-s390x.tar.gz"); n != 0 {
		t.Errorf("file downloaded without a digest: %d requests", n)
	}
	e.assertNothingStored()
}

func TestChecksumMismatchRefused(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(t, 40_000)
	other := randomBytes(t, 40_000)
	u := e.srv.Add("/kubectl", other)
	cu := e.srv.Add("/kubectl.sha256", []byte(sha(data)+"\n"))
	_, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "kubectl", URL: u, ChecksumURL: cu})
	if !errors.Is(err, httpfile.ErrChecksum) {
		t.Fatalf("err = %v, want ErrChecksum", err)
	}
	mustContain(t, err, `"kubectl"`, cu, "sha256:"+sha(data), "sha256:"+sha(other), "nothing was stored")
	e.assertNothingStored()
}

func TestChecksumDisagreesWithSHA256(t *testing.T) {
	e := newEnv(t)
	data := randomBytes(t, 1000)
	u := e.srv.Add("/f.bin", data)
	cu := e.srv.Add("/f.bin.sha256", []byte(sha([]byte("other"))))
	_, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "f", URL: u, SHA256: sha(data), ChecksumURL: cu})
	if !errors.Is(err, httpfile.ErrChecksum) {
		t.Fatalf("err = %v, want ErrChecksum", err)
	}
	mustContain(t, err, cu, sha(data), sha([]byte("other")))
	if n := e.srv.Requests("/f.bin"); n != 0 {
		t.Errorf("file downloaded despite disagreeing pins: %d requests", n)
	}
	e.assertNothingStored()

	// Agreeing pins are fine.
	e.srv.Replace("/f.bin.sha256", []byte(strings.ToUpper(sha(data))+"\n"))
	if _, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "f", URL: u, SHA256: sha(data), ChecksumURL: cu}); err != nil {
		t.Fatal(err)
	}
}

func TestChecksumFileRetriedAndMirrored(t *testing.T) {
	var base string // the test server, set below; the upstream host is never contacted
	e := newEnv(t, func(o *httpfile.Options) {
		o.RewriteURL = func(s string) (string, error) {
			return strings.Replace(s, "https://dl.example.invalid", base, 1), nil
		}
	})
	base = e.srv.URL + "/m"
	data := randomBytes(t, 1000)
	u := "https://dl.example.invalid/kubectl"
	cu := "https://dl.example.invalid/kubectl.sha256"
	e.srv.Add("/m/kubectl", data)
	e.srv.Add("/m/kubectl.sha256", []byte(sha(data)), upstreamtest.FailFirst(1))
	desc, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "kubectl", URL: u, ChecksumURL: cu})
	if err != nil {
		t.Fatal(err)
	}
	if got := e.manifest(desc).Annotations[store.AnnotationChecksumSource]; got != cu {
		t.Errorf("checksum source %q, want the URL as written %q", got, cu)
	}
	if n := e.srv.Requests("/m/kubectl.sha256"); n != 2 {
		t.Errorf("checksum file requests %d, want 2 (one failure, one retry)", n)
	}
}

func TestChecksumFileTooLarge(t *testing.T) {
	e := newEnv(t)
	u := e.srv.Add("/f", []byte("x"))
	cu := e.srv.Add("/SHA256SUMS", bytes.Repeat([]byte("#"), httpfile.MaxChecksumFileSize+10))
	_, err := e.fetch.Fetch(context.Background(), httpfile.Request{Name: "f", URL: u, ChecksumURL: cu})
	mustContain(t, err, "larger than")
	e.assertNothingStored()
}

func TestParseChecksumFile(t *testing.T) {
	a, b := sha([]byte("a")), sha([]byte("b"))
	for _, c := range []struct {
		in, name, want, err string
	}{
		{in: a, name: "x", want: a},
		{in: "\ufeff" + strings.ToUpper(a) + "\r\n", name: "x", want: a},
		{in: a + "  x\n", name: "x", want: a},
		{in: a + " *x\n", name: "x", want: a},
		{in: "# comment\n\n" + b + "  y\n" + a + "  ./x\n", name: "x", want: a},
		{in: a + "  x\n" + a + "  x\n", name: "x", want: a},
		{in: a + "  x\n" + b + "  x\n", name: "x", err: "more than once"},
		{in: a + "  y\n", name: "x", err: "not listed"},
		{in: a + "\n" + b + "\n", name: "x", err: "2 bare digests"},
		{in: a + "\n" + b + "  x\n", name: "x", err: "mixes"},
		{in: "", name: "x", err: "no sha256 digest"},
		{in: "deadbeef  x\n", name: "x", err: "line 1"},
		{in: a + "x\n", name: "x", err: "line 1"},
		{in: a + " x\n", name: "x", err: "two spaces"},
		{in: "<html>not found</html>", name: "x", err: "line 1"},
	} {
		got, err := httpfile.ParseChecksumFile([]byte(c.in), c.name)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, httpfile.ErrChecksumFile) {
				t.Errorf("%q: err %v, want one containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: got %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func FuzzParseChecksumFile(f *testing.F) {
	a := sha([]byte("a"))
	f.Add([]byte(a), "x")
	f.Add([]byte(a+"  x\n"+a+" *y\n"), "y")
	f.Add([]byte("\ufeff# c\r\n"+a+"  ./x\r\n"), "x")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		got, err := httpfile.ParseChecksumFile(data, name)
		if (err == nil) == (got == "") {
			t.Fatalf("got %q and err %v", got, err)
		}
		if err == nil {
			if len(got) != 64 || strings.Trim(got, "0123456789abcdef") != "" {
				t.Fatalf("digest %q is not 64 lowercase hex digits", got)
			}
			if !bytes.Contains(bytes.ToLower(data), []byte(got)) {
				t.Fatalf("digest %q is not in the input", got)
			}
		}
	})
}
