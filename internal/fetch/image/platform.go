package image

import (
	"fmt"
	"slices"
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

// Platforms is a parsed list of wanted platforms, matched the way gather narrows images.
type Platforms []platform

// ParsePlatforms parses "os/arch[/variant]" strings.
func ParsePlatforms(ss []string) (Platforms, error) {
	out := make(Platforms, 0, len(ss))
	for _, s := range ss {
		p, err := parsePlatform(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Select picks the children of an index that gather keeps for wants: those whose platform
// matches (all of them when wants is empty), plus the attestation manifests of kept children.
// It returns a keep mask over kids, the platforms kept, and a *PlatformError (Ref unset) when a
// wanted platform is not offered.
func (wants Platforms) Select(kids []v1.Descriptor) (keep []bool, platforms []string, err error) {
	var offered []string
	for _, k := range kids {
		if p := fromV1(k.Platform); p.known() && !slices.Contains(offered, p.String()) {
			offered = append(offered, p.String())
		}
	}
	keep = make([]bool, len(kids))
	if len(wants) == 0 {
		for i := range keep {
			keep[i] = true
		}
		return keep, offered, nil
	}
	var missing []string
	for _, w := range wants {
		found := false
		for i, k := range kids {
			if p := fromV1(k.Platform); p.known() && w.matches(p) {
				keep[i], found = true, true
			}
		}
		if !found {
			for i, k := range kids {
				if p := fromV1(k.Platform); p.known() && w.matchesLoosely(p) {
					keep[i], found = true, true
				}
			}
		}
		if !found {
			missing = append(missing, w.String())
		}
	}
	if len(missing) > 0 {
		return nil, nil, &PlatformError{Missing: missing, Offered: offered}
	}
	kept := map[string]bool{}
	for i, k := range kids {
		if keep[i] {
			kept[k.Digest.String()] = true
		}
	}
	for i, k := range kids {
		if !keep[i] && k.Annotations[refTypeAnnotation] == "attestation-manifest" && kept[k.Annotations[refDigestAnnotation]] {
			keep[i] = true
		}
		if keep[i] {
			if p := fromV1(k.Platform); p.known() && !slices.Contains(platforms, p.String()) {
				platforms = append(platforms, p.String())
			}
		}
	}
	return keep, platforms, nil
}

// Check checks a single-platform image's platform (from its config) against wants and returns
// the platform it offers, or a *PlatformError (Ref unset).
func (wants Platforms) Check(os, arch, variant string) ([]string, error) {
	have := platform{os: os, arch: arch, variant: variant}
	var missing, offered []string
	for _, w := range wants {
		if !w.matches(have) && !w.matchesLoosely(have) {
			missing = append(missing, w.String())
		}
	}
	if have.known() {
		offered = []string{have.String()}
	}
	if len(missing) > 0 {
		return nil, &PlatformError{Missing: missing, Offered: offered}
	}
	return offered, nil
}
