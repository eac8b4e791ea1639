package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// MaxAliasExpansion bounds how many YAML nodes may be decoded through
// aliases (*name). Real manifests use a handful; a "billion laughs"
// document hits the bound and is rejected.
const MaxAliasExpansion = 100_000

// parse is Parse with the directory that relative key paths resolve
// against given separately from the file name shown in messages.
func parse(filename, dir string, data []byte) (*Manifest, error) {
	c := &collector{file: filename}
	if len(data) > MaxSize {
		c.add(Position{}, "", "manifest is larger than %d bytes (4 MiB); split it or remove what it does not need", MaxSize)
		return nil, c.err()
	}
	root := parseYAML(data, c)
	if root == nil || !checkHeader(root, c) {
		return nil, c.err()
	}
	m := &Manifest{file: filename}
	d := &decoder{c: c, pos: map[string]Position{}, bad: map[string]bool{}, expanding: map[*yaml.Node]bool{}}
	d.decode(root, reflect.ValueOf(m).Elem(), "")
	m.pos = d.pos
	if !c.full() && !d.exhausted {
		validate(m, c, d.bad)
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	resolveKeys(m, dir)
	return m, nil
}

// resolveKeys fills Signature.KeyPath and the mattermost section's key paths.
func resolveKeys(m *Manifest, dir string) {
	resolve := func(k string) string {
		k = filepath.FromSlash(k)
		if filepath.IsAbs(k) {
			return filepath.Clean(k)
		}
		return filepath.Join(dir, k)
	}
	if mm := m.Mattermost; mm != nil {
		if mm.ReleaseKey != "" {
			mm.ReleaseKeyPath = resolve(mm.ReleaseKey)
		}
		if mm.PluginKey != "" {
			mm.PluginKeyPath = resolve(mm.PluginKey)
		}
	}
	for i := range m.Files {
		s := m.Files[i].Signature
		if s == nil || s.Key == "" {
			continue
		}
		k := filepath.FromSlash(s.Key)
		if filepath.IsAbs(k) {
			s.KeyPath = filepath.Clean(k)
		} else {
			s.KeyPath = filepath.Join(dir, k)
		}
	}
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML parses exactly one YAML document and returns its root node, or
// nil after recording why not.
func parseYAML(data []byte, c *collector) (root *yaml.Node) {
	defer func() {
		// yaml.v3 has panicked on hostile input before; never let that
		// escape to the caller.
		if r := recover(); r != nil {
			c.add(Position{}, "", "invalid YAML: %v", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			c.add(Position{Line: 1, Col: 1}, "", "the manifest is empty; start it with apiVersion: %s", APIVersion)
			return nil
		}
		addYAMLError(c, err)
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		addYAMLError(c, err)
		return nil
	default:
		c.add(Position{Line: next.Line, Col: next.Column}, "", "a manifest is one YAML document; remove this second one (and the --- before it)")
		return nil
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		c.add(Position{Line: 1, Col: 1}, "", "the manifest is empty; start it with apiVersion: %s", APIVersion)
		return nil
	}
	return doc.Content[0]
}

func addYAMLError(c *collector, err error) {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		c.add(Position{Line: line}, "", "invalid YAML: %s", m[2])
		return
	}
	c.add(Position{}, "", "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// checkHeader checks apiVersion, then kind, before anything else is read:
// a document of another version or kind cannot be interpreted further.
func checkHeader(root *yaml.Node, c *collector) bool {
	if root.Kind != yaml.MappingNode {
		c.add(nodePos(root), "", "expected a mapping at the top level (apiVersion, kind, metadata, ...), got %s", describeNode(root))
		return false
	}
	supported := strings.Join(SupportedAPIVersions, ", ")
	av := findKey(root, "apiVersion")
	switch {
	case av == nil:
		c.add(nodePos(root), "apiVersion", "missing apiVersion; this mmgap reads apiVersion: %s", supported)
		return false
	case av.Kind != yaml.ScalarNode:
		c.add(nodePos(av), "apiVersion", "apiVersion must be a string such as %s, got %s", APIVersion, describeNode(av))
		return false
	case !slices.Contains(SupportedAPIVersions, av.Value):
		hint := ""
		if strings.HasPrefix(av.Value, "mmgap.io/") {
			hint = "; a newer mmgap may read it"
		}
		c.add(nodePos(av), "apiVersion", "unsupported apiVersion %s; this mmgap reads %s%s", describeValue(av), supported, hint)
		return false
	}
	k := findKey(root, "kind")
	switch {
	case k == nil:
		c.add(nodePos(root), "kind", "missing kind; set kind: %s", Kind)
		return false
	case k.Kind != yaml.ScalarNode || k.Value != Kind:
		c.add(nodePos(k), "kind", "kind %s is not %s; set kind: %s", describeValue(k), Kind, Kind)
		return false
	}
	return true
}

// findKey returns the value of the first key named key in a mapping,
// following an alias, or nil.
func findKey(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			v := m.Content[i+1]
			if v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			return v
		}
	}
	return nil
}

// decoder walks a yaml.Node tree against a Go value, strictly.
type decoder struct {
	c   *collector
	pos map[string]Position // where each path was written
	bad map[string]bool     // paths whose value could not be decoded

	aliasDepth int                 // > 0 while decoding through an alias
	aliasNodes int                 // nodes decoded through aliases so far
	expanding  map[*yaml.Node]bool // alias targets being decoded (cycle guard)
	exhausted  bool                // alias budget spent; stop decoding
}

var standardTags = map[string]bool{
	"!!str": true, "!!int": true, "!!float": true, "!!bool": true, "!!null": true,
	"!!map": true, "!!seq": true, "!!timestamp": true,
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.c.full() || d.exhausted {
		return
	}
	if _, ok := d.pos[path]; !ok {
		d.pos[path] = nodePos(n)
	}
	if d.aliasDepth > 0 {
		d.aliasNodes++
		if d.aliasNodes > MaxAliasExpansion {
			d.exhausted = true
			d.c.add(nodePos(n), path, "%s: aliases expand to more than %d values; write the values out instead", displayPath(path), MaxAliasExpansion)
			return
		}
	}
	if n.Kind == yaml.AliasNode {
		t := n.Alias
		if t == nil {
			d.c.add(nodePos(n), path, "%s: unknown alias *%s", displayPath(path), n.Value)
			d.bad[path] = true
			return
		}
		if d.expanding[t] {
			d.c.add(nodePos(n), path, "%s: alias *%s refers to a value that contains it", displayPath(path), n.Value)
			d.bad[path] = true
			return
		}
		d.expanding[t] = true
		d.aliasDepth++
		d.decode(t, v, path)
		d.aliasDepth--
		delete(d.expanding, t)
		return
	}
	if n.Kind == yaml.ScalarNode || n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		if !standardTags[n.Tag] {
			d.c.add(nodePos(n), path, "%s: unsupported YAML tag %q; remove it", displayPath(path), n.Tag)
			d.bad[path] = true
			return
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			v.SetZero()
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if isNull(n) {
			v.SetZero()
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.typeError(n, v.Type(), path)
			return
		}
		if len(n.Content) == 0 {
			// [] means the same as leaving the field out.
			v.SetZero()
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, e := range n.Content {
			d.decode(e, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.typeError(n, v.Type(), path)
			return
		}
		if isNull(n) {
			v.SetString("")
			return
		}
		v.SetString(n.Value)
	case reflect.Bool,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		if n.Kind != yaml.ScalarNode {
			d.typeError(n, v.Type(), path)
			return
		}
		if isNull(n) {
			v.SetZero()
			return
		}
		tmp := reflect.New(v.Type())
		if err := n.Decode(tmp.Interface()); err != nil {
			d.typeError(n, v.Type(), path)
			return
		}
		v.Set(tmp.Elem())
	default:
		d.c.add(nodePos(n), path, "%s: internal error: cannot decode into %s", displayPath(path), v.Type())
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	var content []*yaml.Node
	switch {
	case isNull(n):
		// An empty section: report its missing required fields below.
	case n.Kind == yaml.MappingNode:
		content = n.Content
	default:
		d.typeError(n, v.Type(), path)
		return
	}
	info := structInfoOf(v.Type())
	seen := make(map[string]*yaml.Node, len(content)/2)
	for i := 0; i+1 < len(content); i += 2 {
		k, val := content[i], content[i+1]
		key, ok := d.key(k, path)
		if !ok {
			continue
		}
		fp := joinPath(path, key)
		if first := seen[key]; first != nil {
			d.c.add(nodePos(k), fp, "duplicate key %q %s; the first is at line %d", key, where(path), first.Line)
			continue
		}
		seen[key] = k
		f, ok := info.byName[key]
		if !ok {
			d.unknownField(k, key, path, info)
			continue
		}
		d.decode(val, v.Field(f.index), fp)
		if f.required && isEmptyScalar(val) && !isStructType(v.Field(f.index).Type()) {
			d.c.add(nodePos(val), fp, "%s is required and must not be empty", fp)
		}
	}
	for _, f := range info.fields {
		if f.required && seen[f.name] == nil {
			d.c.add(nodePos(n), path, "missing required field %q %s", f.name, where(path))
		}
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if v.Type().Key().Kind() != reflect.String {
		d.c.add(nodePos(n), path, "%s: internal error: map keys must be strings", displayPath(path))
		return
	}
	if isNull(n) {
		v.SetZero()
		return
	}
	if n.Kind != yaml.MappingNode {
		d.typeError(n, v.Type(), path)
		return
	}
	if len(n.Content) == 0 {
		// {} means the same as leaving the field out.
		v.SetZero()
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key, ok := d.key(k, path)
		if !ok {
			continue
		}
		kp := fmt.Sprintf("%s[%s]", path, strconv.Quote(key))
		if first := seen[key]; first != nil {
			d.c.add(nodePos(k), kp, "duplicate key %q %s; the first is at line %d", key, where(path), first.Line)
			continue
		}
		seen[key] = k
		e := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, e, kp)
		m.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), e)
	}
	v.Set(m)
}

// key returns a mapping key as a string, or records why it cannot be one.
func (d *decoder) key(k *yaml.Node, path string) (string, bool) {
	if k.Kind == yaml.AliasNode && k.Alias != nil {
		k = k.Alias
	}
	switch {
	case k.Kind == yaml.ScalarNode && k.Tag == "!!merge":
		d.c.add(nodePos(k), path, "merge keys (<<) are not supported %s; write the fields out", where(path))
		return "", false
	case k.Kind != yaml.ScalarNode || isNull(k):
		d.c.add(nodePos(k), path, "keys %s must be plain strings, got %s", where(path), describeNode(k))
		return "", false
	}
	return k.Value, true
}

func (d *decoder) unknownField(k *yaml.Node, key, path string, info *structInfo) {
	msg := fmt.Sprintf("unknown field %q %s", key, where(path))
	if s := suggest(key, info.names); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	msg += " (known fields: " + strings.Join(info.names, ", ") + ")"
	d.c.add(nodePos(k), joinPath(path, key), "%s", msg)
}

func (d *decoder) typeError(n *yaml.Node, t reflect.Type, path string) {
	d.bad[path] = true
	msg := fmt.Sprintf("%s: expected %s, got %s", displayPath(path), describeType(t), describeNode(n))
	if t.Kind() == reflect.Slice && n.Kind == yaml.ScalarNode && !isNull(n) {
		msg += fmt.Sprintf("; write a list, e.g. [%s]", shorten(n.Value))
	}
	d.c.add(nodePos(n), path, "%s", msg)
}

// fieldInfo describes one decodable struct field.
type fieldInfo struct {
	name     string
	index    int
	required bool
}

type structInfo struct {
	fields []fieldInfo
	byName map[string]*fieldInfo
	names  []string
}

var structInfoCache sync.Map // reflect.Type -> *structInfo

// structInfoOf reads the yaml and jsonschema tags of a struct type. Fields
// tagged yaml:"-" and unexported fields are not decoded; a field is
// required when its jsonschema tag says "required".
func structInfoOf(t reflect.Type) *structInfo {
	if v, ok := structInfoCache.Load(t); ok {
		return v.(*structInfo)
	}
	info := &structInfo{byName: map[string]*fieldInfo{}}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		required := slices.Contains(strings.Split(f.Tag.Get("jsonschema"), ","), "required")
		info.fields = append(info.fields, fieldInfo{name: name, index: i, required: required})
		info.names = append(info.names, name)
	}
	for i := range info.fields {
		info.byName[info.fields[i].name] = &info.fields[i]
	}
	v, _ := structInfoCache.LoadOrStore(t, info)
	return v.(*structInfo)
}

// isStructType reports whether t is a struct or a pointer to one; their
// own required fields are reported instead of the section being empty.
func isStructType(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct
}

func nodePos(n *yaml.Node) Position { return Position{Line: n.Line, Col: n.Column} }

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// isEmptyScalar reports whether n (after following an alias) is null or
// an empty string.
func isEmptyScalar(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || n.Value == "")
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return describeType(t.Elem())
	case reflect.Struct, reflect.Map:
		return "a mapping"
	case reflect.Slice:
		e := t.Elem()
		for e.Kind() == reflect.Pointer {
			e = e.Elem()
		}
		switch e.Kind() {
		case reflect.String:
			return "a list of strings"
		case reflect.Struct, reflect.Map:
			return "a list of mappings"
		}
		return "a list"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	}
	return t.String()
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!bool":
			return "a boolean (" + shorten(n.Value) + ")"
		case "!!int", "!!float":
			return "a number (" + shorten(n.Value) + ")"
		case "!!timestamp":
			return "a timestamp (" + shorten(n.Value) + ")"
		}
		return "a string (" + strconv.Quote(shorten(n.Value)) + ")"
	}
	return "nothing"
}

// describeValue quotes a scalar or describes another node.
func describeValue(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		return strconv.Quote(shorten(n.Value))
	}
	return describeNode(n)
}

// shorten keeps messages readable when a value is long.
func shorten(s string) string {
	const limit = 60
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// joinPath appends a field name to a path.
func joinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// displayPath names a path in a message.
func displayPath(path string) string {
	if path == "" {
		return "the manifest"
	}
	return path
}

// where names a mapping's path as "in PATH" or "at the top level".
func where(path string) string {
	if path == "" {
		return "at the top level"
	}
	return "in " + path
}

// parentPath strips the last element of a path: images[2].platforms[0]
// becomes images[2].platforms, mirrors["a.b"] becomes mirrors, and a
// single element becomes "". Quoted map keys may hold '.' and '['.
func parentPath(p string) string {
	last := 0
	inQuote := false
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case inQuote && c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && (c == '.' || c == '['):
			last = i
		}
	}
	return p[:last]
}
