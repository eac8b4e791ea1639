package bundle

import (
	"context"
	"crypto/sha256"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/mmgap/mmgap/internal/store"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mmgap/mmgap/internal/pgp"
)

func TestZZLocalVerify(t *testing.T) {
	p := os.Getenv("ZZ_BUNDLE")
	if p == "" {
		return
	}
	mem := make([]byte, 64<<20)
	rand.NewChaCha8([32]byte{9}).Read(mem)
	for k := 0; k < 2 && os.Getenv("ZZ_NOSHA") == ""; k++ {
		st := time.Now()
		h := sha256.New()
		for i := 0; i < 16; i++ {
			h.Write(mem)
		}
		h.Sum(nil)
		t.Logf("sha256 single core: %.0f MB/s", float64(1<<30)/time.Since(st).Seconds()/1e6)
		st = time.Now()
		var wg sync.WaitGroup
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h := sha256.New()
				for i := 0; i < 8; i++ {
					h.Write(mem)
				}
				h.Sum(nil)
			}()
		}
		wg.Wait()
		t.Logf("sha256 two goroutines: %.0f MB/s", float64(1<<30)/time.Since(st).Seconds()/1e6)
	}
	for i := 0; i < 3; i++ {
		f, _ := os.Open(p)
		st := time.Now()
		rep, err := Verify(context.Background(), f, VerifyOptions{InsecureSkipSignature: true, Keyring: pgp.Keyring{}})
		if err != nil {
			t.Fatal(err)
		}
		d := time.Since(st)
		t.Logf("%.0f MB/s", float64(rep.Bytes)/d.Seconds()/1e6)
		f.Close()
	}
}

func TestZZMake(t *testing.T) {
	dir := os.Getenv("ZZ_MAKE")
	if dir == "" {
		return
	}
	s, err := store.Open(dir + "/store")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{5})
	buf := make([]byte, 32<<20)
	var layers []v1.Descriptor
	for i := 0; i < 32; i++ {
		rng.Read(buf)
		layers = append(layers, put(t, s, string(types.OCILayer), buf))
	}
	m := putJSON(t, s, string(types.OCIManifestSchema1), map[string]any{"schemaVersion": 2, "mediaType": types.OCIManifestSchema1, "config": put(t, s, string(types.OCIConfigJSON), []byte("{}")), "layers": layers})
	m.Annotations = map[string]string{store.AnnotationRefName: "x/y:1", store.AnnotationKind: "image"}
	if err := s.SetRef(m); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(context.Background(), s, dir+"/b.tar.zst", CreateOptions{Unsigned: true}); err != nil {
		t.Fatal(err)
	}
}
