package chart

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxIndexSize bounds a repository's index.yaml (after any transfer decoding). Large public
// repositories publish indexes of a few tens of MiB.
const MaxIndexSize = 64 << 20

// ErrNotFound reports a chart, or a version of it, that the repository does not list.
var ErrNotFound = errors.New("chart not found")

// Index is the part of a chart repository's index.yaml that mmgap uses.
type Index struct {
	// APIVersion is the index's apiVersion (Helm writes v1).
	APIVersion string
	// Entries maps chart names to their versions, in the order the index lists them.
	Entries map[string][]IndexEntry
	// Skipped counts entries that could not be read (wrong types, no version) and were ignored,
	// as Helm ignores them.
	Skipped int
}

// IndexEntry is one chart version in index.yaml.
type IndexEntry struct {
	APIVersion  string   `yaml:"apiVersion"`
	Name        string   `yaml:"name"`
	Version     string   `yaml:"version"`
	AppVersion  string   `yaml:"appVersion"`
	Description string   `yaml:"description"`
	Type        string   `yaml:"type"`
	Deprecated  bool     `yaml:"deprecated"`
	Digest      string   `yaml:"digest"`
	URLs        []string `yaml:"urls"`
}

// ParseIndex reads an index.yaml. It refuses input larger than MaxIndexSize, input that is not
// a YAML mapping with an apiVersion and an entries mapping, and duplicate keys; it skips (and
// counts) single entries it cannot read rather than failing on them. YAML alias expansion is
// bounded by the YAML decoder.
func ParseIndex(data []byte) (idx *Index, err error) {
	if len(data) > MaxIndexSize {
		return nil, fmt.Errorf("index.yaml: larger than %d bytes", MaxIndexSize)
	}
	defer func() {
		if r := recover(); r != nil {
			idx, err = nil, fmt.Errorf("index.yaml: YAML parser failed on this input")
		}
	}()
	var raw struct {
		APIVersion string               `yaml:"apiVersion"`
		Entries    map[string]yaml.Node `yaml:"entries"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("index.yaml: %w", err)
	}
	if raw.APIVersion == "" {
		return nil, errors.New("index.yaml: no apiVersion; this is not a Helm chart repository index")
	}
	idx = &Index{APIVersion: raw.APIVersion, Entries: make(map[string][]IndexEntry, len(raw.Entries))}
	for name, node := range raw.Entries {
		if node.Kind != yaml.SequenceNode {
			idx.Skipped++
			continue
		}
		var list []IndexEntry
		for _, n := range node.Content {
			var e IndexEntry
			if n.Kind != yaml.MappingNode || n.Decode(&e) != nil || e.Version == "" || (e.Name != "" && e.Name != name) {
				idx.Skipped++
				continue
			}
			e.Name = name
			list = append(list, e)
		}
		idx.Entries[name] = list
	}
	return idx, nil
}

// Lookup finds chart name at exactly version. Errors wrap ErrNotFound and list what the index
// has: the versions of the chart, or the names of charts when the chart is absent.
func (x *Index) Lookup(name, version string) (IndexEntry, error) {
	list, ok := x.Entries[name]
	if !ok || len(list) == 0 {
		names := make([]string, 0, len(x.Entries))
		for n := range x.Entries {
			names = append(names, n)
		}
		sort.Strings(names)
		return IndexEntry{}, fmt.Errorf("%w: no chart %q in the repository index; it lists %s", ErrNotFound, name, summarize(names, 20, "no charts"))
	}
	for _, e := range list {
		if e.Version == version {
			return e, nil
		}
	}
	vs := make([]string, 0, len(list))
	for _, e := range list {
		vs = append(vs, e.Version)
	}
	sortVersionsDesc(vs)
	return IndexEntry{}, fmt.Errorf("%w: chart %q has no version %q in the repository index; available versions: %s", ErrNotFound, name, version, summarize(vs, 20, "none"))
}

func summarize(items []string, n int, none string) string {
	if len(items) == 0 {
		return none
	}
	for i, s := range items {
		items[i] = clip(s)
	}
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
}

// clip bounds untrusted text quoted in an error.
func clip(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

var semverRE = regexp.MustCompile(`^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$`)

// sortVersionsDesc orders versions newest first: semantic versions by precedence (pre-releases
// before their release), anything else after them, alphabetically.
func sortVersionsDesc(vs []string) {
	sort.SliceStable(vs, func(i, j int) bool { return compareVersions(vs[i], vs[j]) > 0 })
}

func compareVersions(a, b string) int {
	ma, mb := semverRE.FindStringSubmatch(a), semverRE.FindStringSubmatch(b)
	switch {
	case ma == nil && mb == nil:
		return -strings.Compare(a, b)
	case ma == nil:
		return -1
	case mb == nil:
		return 1
	}
	for i := 1; i <= 3; i++ {
		x, _ := strconv.ParseUint("0"+ma[i], 10, 64)
		y, _ := strconv.ParseUint("0"+mb[i], 10, 64)
		if x != y {
			if x > y {
				return 1
			}
			return -1
		}
	}
	switch pa, pb := ma[4], mb[4]; {
	case pa == pb:
		return 0
	case pa == "":
		return 1
	case pb == "":
		return -1
	default:
		return strings.Compare(pa, pb)
	}
}
