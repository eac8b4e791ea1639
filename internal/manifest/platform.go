package manifest

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Platform is an OCI platform: an operating system, a CPU architecture and
// an optional architecture variant.
type Platform struct {
	OS           string
	Architecture string
	Variant      string
}

// String formats the platform as os/arch[/variant].
func (p Platform) String() string {
	if p.Variant == "" {
		return p.OS + "/" + p.Architecture
	}
	return p.OS + "/" + p.Architecture + "/" + p.Variant
}

// platformPattern is what a platform looks like; ParsePlatform also checks
// the operating system and architecture against knownOS and knownArch.
const platformPattern = `^[a-z0-9]+/[a-z0-9]+(/[a-z0-9][a-z0-9.]*)?$`

var variantRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.]*$`)

// knownOS and knownArch are the values the OCI image index uses, which are
// Go's GOOS and GOARCH.
var (
	knownOS = []string{
		"aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios", "js",
		"linux", "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows",
	}
	knownArch = []string{
		"386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le",
		"mipsle", "ppc64", "ppc64le", "riscv64", "s390x", "wasm",
	}
)

// platformAliases maps names other tools use to the OCI ones.
var platformAliases = map[string]string{
	"x86_64": "amd64", "x86-64": "amd64", "x64": "amd64", "aarch64": "arm64",
	"i386": "386", "i686": "386", "armhf": "arm", "armv7l": "arm", "macos": "darwin",
}

// ParsePlatform parses os/arch[/variant], e.g. linux/amd64 or
// linux/arm64/v8. The operating system and architecture must be ones an
// OCI image index uses (Go's GOOS and GOARCH values).
func ParsePlatform(s string) (Platform, error) {
	if strings.Contains(s, ":") {
		return Platform{}, fmt.Errorf("platform %q: os version suffixes (:...) are not supported; write os/arch[/variant]", s)
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return Platform{}, fmt.Errorf("platform %q is not os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8", s)
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	if !slices.Contains(knownOS, p.OS) {
		return Platform{}, unknownPlatformPart("operating system", p.OS, s, knownOS)
	}
	if !slices.Contains(knownArch, p.Architecture) {
		return Platform{}, unknownPlatformPart("architecture", p.Architecture, s, knownArch)
	}
	if len(parts) == 3 && !variantRE.MatchString(p.Variant) {
		return Platform{}, fmt.Errorf("platform %q: variant %q must be lowercase letters, digits and dots, e.g. v8", s, p.Variant)
	}
	return p, nil
}

func unknownPlatformPart(what, got, platform string, known []string) error {
	msg := fmt.Sprintf("platform %q: unknown %s %q", platform, what, got)
	if s, ok := platformAliases[strings.ToLower(got)]; ok {
		msg += fmt.Sprintf("; did you mean %q?", s)
	} else if s := suggest(got, known); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return fmt.Errorf("%s (known: %s)", msg, strings.Join(known, ", "))
}
