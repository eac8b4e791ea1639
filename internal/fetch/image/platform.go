package image

import (
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// platform is an os/arch[/variant] triple.
type platform struct{ os, arch, variant string }

func parsePlatform(s string) (platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" || (len(parts) == 3 && parts[2] == "") {
		return platform{}, fmt.Errorf("platform %q: want os/arch[/variant]", s)
	}
	p := platform{os: parts[0], arch: parts[1]}
	if len(parts) == 3 {
		p.variant = parts[2]
	}
	return p, nil
}

func fromV1(p *v1.Platform) platform {
	if p == nil {
		return platform{}
	}
	return platform{os: p.OS, arch: p.Architecture, variant: p.Variant}
}

func (p platform) String() string {
	s := p.os + "/" + p.arch
	if p.variant != "" {
		s += "/" + p.variant
	}
	return s
}

// known reports whether p names a real platform (attestation manifests say unknown/unknown).
func (p platform) known() bool {
	return p.os != "" && p.arch != "" && p.os != "unknown" && p.arch != "unknown"
}

// defaultVariant is the variant an arch implies when none is written, as containerd's platform
// matcher normalises it: linux/arm64 is linux/arm64/v8, linux/arm is linux/arm/v7.
func defaultVariant(arch string) string {
	switch arch {
	case "arm64":
		return "v8"
	case "arm":
		return "v7"
	}
	return ""
}

func normVariant(arch, v string) string {
	if v == "" {
		return defaultVariant(arch)
	}
	if !strings.HasPrefix(v, "v") {
		return "v" + v
	}
	return v
}

// matches reports whether have (what the source offers) satisfies want, comparing variants
// after normalisation.
func (want platform) matches(have platform) bool {
	return want.os == have.os && want.arch == have.arch &&
		normVariant(want.arch, want.variant) == normVariant(have.arch, have.variant)
}

// matchesLoosely is the fallback for a wanted platform without variant that matched nothing
// exactly: any variant of the same os/arch.
func (want platform) matchesLoosely(have platform) bool {
	return want.variant == "" && want.os == have.os && want.arch == have.arch
}

// PlatformError reports requested platforms that the source does not offer.
type PlatformError struct {
	Ref     string   // normalised reference
	Missing []string // requested, not offered
	Offered []string // what the source offers
}

func (e *PlatformError) Error() string {
	offered := "none"
	if len(e.Offered) > 0 {
		offered = strings.Join(e.Offered, ", ")
	}
	return fmt.Sprintf("platform %s not offered by the source; it offers %s", strings.Join(e.Missing, ", "), offered)
}
