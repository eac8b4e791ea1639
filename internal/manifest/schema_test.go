package manifest

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/invopop/jsonschema"
	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite generated files (schema/mmgap.schema.json)")

const (
	schemaFile = "../../schema/mmgap.schema.json"
	schemaID   = "https://github.com/mmgap/mmgap/schema/mmgap.schema.json"
)

// generateSchema builds the JSON Schema from the Go types, their doc
// comments and the validator's patterns.
func generateSchema(t *testing.T) []byte {
	t.Helper()
	r := &jsonschema.Reflector{
		FieldNameTag:               "yaml",
		RequiredFromJSONSchemaTags: true,
	}
	if err := r.AddGoComments("github.com/mmgap/mmgap/internal/manifest", "."); err != nil {
		t.Fatalf("read doc comments: %v", err)
	}
	s := r.Reflect(&Manifest{})
	s.ID = schemaID
	s.Title = "mmgap manifest (mmgap.yaml)"

	def := func(name string) *jsonschema.Schema {
		d, ok := s.Definitions[name]
		if !ok {
			t.Fatalf("schema has no definition %q", name)
		}
		return d
	}
	prop := func(d *jsonschema.Schema, name string) *jsonschema.Schema {
		p, ok := d.Properties.Get(name)
		if !ok {
			t.Fatalf("schema definition has no property %q", name)
		}
		return p
	}
	m := def("Manifest")
	prop(m, "apiVersion").Enum = toAny(SupportedAPIVersions)
	prop(m, "kind").Const = Kind
	prop(def("Metadata"), "name").Pattern = namePattern

	img := def("Image")
	prop(img, "name").Pattern = namePattern
	prop(img, "ref").Pattern = imageRefSchemaPattern
	pl := prop(img, "platforms")
	pl.Items.Pattern = platformPattern
	pl.UniqueItems = true

	f := def("File")
	prop(f, "name").Pattern = namePattern
	prop(f, "url").Pattern = httpURLSchemaPattern
	prop(f, "sha256").Pattern = sha256Pattern
	f.AnyOf = []*jsonschema.Schema{{Required: []string{"sha256"}}, {Required: []string{"signature"}}, {Required: []string{"checksum"}}}
	cs := def("Checksum")
	prop(cs, "url").Pattern = httpURLSchemaPattern
	sig := def("Signature")
	prop(sig, "url").Pattern = httpURLSchemaPattern
	prop(sig, "key").MinLength = ptr(uint64(1))

	c := def("Chart")
	prop(c, "name").Pattern = namePattern
	prop(c, "repo").Pattern = httpURLSchemaPattern
	prop(c, "chart").Pattern = namePattern
	prop(c, "oci").Pattern = "^oci://[^@]+/[^@:]+$"
	prop(c, "version").Pattern = versionPattern
	c.OneOf = []*jsonschema.Schema{
		{Required: []string{"repo", "chart"}, Not: &jsonschema.Schema{Required: []string{"oci"}}},
		{Required: []string{"oci"}, Not: &jsonschema.Schema{AnyOf: []*jsonschema.Schema{
			{Required: []string{"repo"}}, {Required: []string{"chart"}},
		}}},
	}
	def("Mirrors").AdditionalProperties.Pattern = mirrorSchemaPattern

	mm := def("Mattermost")
	prop(mm, "version").Pattern = exactVersionPattern
	prop(mm, "edition").Enum = toAny(MattermostEditions)
	prop(mm, "method").Enum = toAny(MattermostMethods)
	arch := prop(mm, "architectures")
	arch.Items.Enum = toAny(MattermostArchitectures)
	arch.UniqueItems = true
	prop(mm, "readinessCheck").Enum = toAny(ReadinessCheckModes)
	prop(mm, "releaseKey").MinLength = ptr(uint64(1))
	prop(mm, "pluginKey").MinLength = ptr(uint64(1))
	prop(mm, "images").AdditionalProperties.Pattern = imageRefSchemaPattern
	prop(mm, "charts").AdditionalProperties.Pattern = versionPattern
	prop(mm, "tools").AdditionalProperties.Pattern = versionPattern
	comp := def("Components")
	prop(comp, "fileStorage").Enum = toAny(FileStorageKinds)
	prop(comp, "search").Enum = toAny(SearchEngines)
	plug := def("Plugin")
	prop(plug, "id").Pattern = pluginIDPattern
	prop(plug, "version").Pattern = exactVersionPattern
	prop(plug, "package").Pattern = namePattern

	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatalf("marshal schema: %v", err)
	}
	return append(b, '\n')
}

// Patterns only the schema uses: Parse checks these values more closely.
const (
	// imageRefSchemaPattern wants a tag, a sha256 digest, or both.
	imageRefSchemaPattern = `^(([^@/\s]+/)*[^@/:\s]+:[^@/:\s]+(@sha256:[0-9a-f]{64})?|[^@\s]+@sha256:[0-9a-f]{64})$`
	// httpURLSchemaPattern wants http(s), a host, and no credentials.
	httpURLSchemaPattern = `^https?://[^/?#@\s]+([/?#]\S*)?$`
	// mirrorSchemaPattern wants host[:port] or an http(s) base URL.
	mirrorSchemaPattern = `^(([a-z0-9._-]+|\[[0-9a-f:.]+\])(:[0-9]+)?|https?://[^/?#@\s]+(/[^?#\s]*)?)$`
)

func ptr[T any](v T) *T { return &v }

func toAny[T any](s []T) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// TestSchemaUpToDate fails when schema/mmgap.schema.json differs from what
// the types generate. With -update it rewrites the file instead.
func TestSchemaUpToDate(t *testing.T) {
	got := generateSchema(t)
	if *update {
		if err := os.WriteFile(schemaFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatalf("read committed schema: %v\nregenerate it with: go generate ./internal/manifest", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("schema/mmgap.schema.json is out of date with the Go types in internal/manifest\n" +
			"regenerate it with: go generate ./internal/manifest\n" +
			"(or: go test ./internal/manifest -run '^TestSchemaUpToDate$' -update)")
	}
}

// TestSchemaDescribesEveryField keeps the doc comments, which become the
// schema's descriptions, from going missing.
func TestSchemaDescribesEveryField(t *testing.T) {
	var s map[string]any
	if err := json.Unmarshal(generateSchema(t), &s); err != nil {
		t.Fatal(err)
	}
	for name, d := range s["$defs"].(map[string]any) {
		d := d.(map[string]any)
		if d["description"] == nil {
			t.Errorf("$defs.%s has no description (add a doc comment to the type)", name)
		}
		props, _ := d["properties"].(map[string]any)
		for p, ps := range props {
			if ps.(map[string]any)["description"] == nil {
				t.Errorf("$defs.%s.properties.%s has no description (add a doc comment to the field)", name, p)
			}
		}
	}
}

// TestTagsAgree checks that every field's yaml and json names match, so
// the schema and the YAML describe the same document.
func TestTagsAgree(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(ty reflect.Type) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice || ty.Kind() == reflect.Map {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || seen[ty] {
			return
		}
		seen[ty] = true
		for i := range ty.NumField() {
			f := ty.Field(i)
			if !f.IsExported() {
				continue
			}
			y, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			j, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if y != j || y == "" {
				t.Errorf("%s.%s: yaml name %q and json name %q differ", ty.Name(), f.Name, y, j)
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[Manifest]())
}

// TestExamplesMatchSchema validates the example manifests against the
// committed schema and checks that Parse accepts them too.
func TestExamplesMatchSchema(t *testing.T) {
	schema := loadSchema(t)
	files, _ := filepath.Glob("../../examples/*.yaml")
	more, _ := filepath.Glob("testdata/valid/*.yaml")
	files = append(files, more...)
	if len(files) < 2 {
		t.Fatalf("found only %d example manifests", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Parse(f, data); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if errs := schema.validate(yamlToJSON(t, data)); len(errs) > 0 {
				t.Fatalf("schema rejects %s:\n%s", f, strings.Join(errs, "\n"))
			}
		})
	}
}

func loadSchema(t *testing.T) *miniSchema {
	t.Helper()
	data, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	return &miniSchema{root: root}
}

// yamlToJSON turns a YAML document into the values encoding/json would
// produce, so that the schema sees what a JSON Schema validator would.
func yamlToJSON(t *testing.T, data []byte) any {
	t.Helper()
	v, err := yamlToJSONErr(data)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func yamlToJSONErr(data []byte) (any, error) {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	err = json.Unmarshal(b, &out)
	return out, err
}

// miniSchema is a JSON Schema validator for the keywords our generated
// schema uses, so that the tests need no validator dependency. It fails
// loudly on any keyword it does not know.
type miniSchema struct{ root map[string]any }

var ignoredKeywords = []string{"$schema", "$id", "$defs", "title", "description", "format"}

func (m *miniSchema) validate(v any) []string {
	var errs []string
	m.check(m.root, v, "$", &errs)
	return errs
}

func (m *miniSchema) check(s map[string]any, v any, at string, errs *[]string) {
	fail := func(format string, args ...any) {
		*errs = append(*errs, at+": "+fmt.Sprintf(format, args...))
	}
	for k, kv := range s {
		switch k {
		case "$ref":
			name := strings.TrimPrefix(kv.(string), "#/$defs/")
			d, ok := m.root["$defs"].(map[string]any)[name].(map[string]any)
			if !ok {
				fail("unresolvable $ref %v", kv)
				continue
			}
			m.check(d, v, at, errs)
		case "type":
			if !jsonType(kv.(string), v) {
				fail("want type %s, got %T", kv, v)
			}
		case "properties":
			obj, ok := v.(map[string]any)
			if !ok {
				continue
			}
			for p, ps := range kv.(map[string]any) {
				if pv, ok := obj[p]; ok {
					m.check(ps.(map[string]any), pv, at+"."+p, errs)
				}
			}
		case "additionalProperties":
			obj, ok := v.(map[string]any)
			if !ok {
				continue
			}
			props, _ := s["properties"].(map[string]any)
			for p, pv := range obj {
				if _, ok := props[p]; ok {
					continue
				}
				switch ap := kv.(type) {
				case bool:
					if !ap {
						fail("additional property %q", p)
					}
				case map[string]any:
					m.check(ap, pv, at+"."+p, errs)
				}
			}
		case "required":
			obj, ok := v.(map[string]any)
			if !ok {
				continue
			}
			for _, r := range kv.([]any) {
				if _, ok := obj[r.(string)]; !ok {
					fail("missing required %q", r)
				}
			}
		case "items":
			arr, ok := v.([]any)
			if !ok {
				continue
			}
			for i, e := range arr {
				m.check(kv.(map[string]any), e, fmt.Sprintf("%s[%d]", at, i), errs)
			}
		case "uniqueItems":
			arr, ok := v.([]any)
			if !ok || kv != true {
				continue
			}
			for i := range arr {
				for j := range i {
					if reflect.DeepEqual(arr[i], arr[j]) {
						fail("items %d and %d are equal", j, i)
					}
				}
			}
		case "pattern":
			if str, ok := v.(string); ok && !regexp.MustCompile(kv.(string)).MatchString(str) {
				fail("%q does not match %s", str, kv)
			}
		case "minLength":
			if str, ok := v.(string); ok && float64(len([]rune(str))) < kv.(float64) {
				fail("%q is shorter than %v", str, kv)
			}
		case "enum":
			if !slices.ContainsFunc(kv.([]any), func(e any) bool { return reflect.DeepEqual(e, v) }) {
				fail("%v is not one of %v", v, kv)
			}
		case "const":
			if !reflect.DeepEqual(kv, v) {
				fail("%v is not %v", v, kv)
			}
		case "anyOf", "oneOf":
			n := 0
			for _, sub := range kv.([]any) {
				var subErrs []string
				m.check(sub.(map[string]any), v, at, &subErrs)
				if len(subErrs) == 0 {
					n++
				}
			}
			if (k == "anyOf" && n == 0) || (k == "oneOf" && n != 1) {
				fail("%s: %d alternatives match", k, n)
			}
		case "not":
			var subErrs []string
			m.check(kv.(map[string]any), v, at, &subErrs)
			if len(subErrs) == 0 {
				fail("matches a schema it must not")
			}
		default:
			if !slices.Contains(ignoredKeywords, k) {
				fail("miniSchema does not know keyword %q; teach it or keep the schema simpler", k)
			}
		}
	}
}

func jsonType(want string, v any) bool {
	switch want {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == float64(int64(f))
	}
	return false
}
