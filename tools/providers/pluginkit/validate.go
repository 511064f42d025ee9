package pluginkit

// Check's schema validation: an input that the schema does not declare (at any depth) is
// rejected with an error naming it, never silently ignored; a declared one must have the declared
// type; required inputs must be present. Unknown values (preview) pass.

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func (p *Provider) unsupported(path string) *pulumirpc.CheckFailure {
	return &pulumirpc.CheckFailure{Property: path, Reason: fmt.Sprintf(
		"property %q is not supported by this repo's pulumi-resource-%s (tools/providers/%s)", path, p.name, p.name)}
}

func missing(path string) *pulumirpc.CheckFailure {
	return &pulumirpc.CheckFailure{Property: path, Reason: fmt.Sprintf("missing required property '%s'", path)}
}

func sortedKeys(m resource.PropertyMap) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	return keys
}

// validate checks the inputs of a resource against its Type.
func (p *Provider) validate(t *Type, m resource.PropertyMap) []*pulumirpc.CheckFailure {
	var f []*pulumirpc.CheckFailure
	for _, k := range sortedKeys(m) {
		v := m[resource.PropertyKey(k)]
		if v.IsNull() || strings.HasPrefix(k, "__") || t.has(t.Hidden, k) {
			continue
		}
		prop, ok := t.Inputs[k]
		if !ok {
			f = append(f, p.unsupported(k))
			continue
		}
		f = append(f, p.validateValue(k, prop, v)...)
	}
	for _, k := range t.RequiredInputs {
		if v, ok := m[resource.PropertyKey(k)]; !ok || v.IsNull() {
			f = append(f, missing(k))
		}
	}
	return f
}

var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// child is the property path of a key below path, in the engine's syntax (a.b, a["x/y"]).
func child(path, key string) string {
	if plainKey.MatchString(key) {
		return path + "." + key
	}
	return fmt.Sprintf("%s[%q]", path, key)
}

func (p *Provider) validateValue(path string, prop Property, v resource.PropertyValue) []*pulumirpc.CheckFailure {
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	if v.IsOutput() {
		if !v.OutputValue().Known {
			return nil
		}
		v = v.OutputValue().Element
	}
	if v.IsNull() || v.IsComputed() {
		return nil
	}
	wrong := func(want string) []*pulumirpc.CheckFailure {
		return []*pulumirpc.CheckFailure{{Property: path, Reason: fmt.Sprintf("%s must be %s, got %s", path, want, v.TypeString())}}
	}
	if prop.Ref != "" {
		ot := p.objectTypes[strings.TrimPrefix(prop.Ref, "#/types/")]
		if !v.IsObject() {
			return wrong("an object")
		}
		var f []*pulumirpc.CheckFailure
		obj := v.ObjectValue()
		for _, k := range sortedKeys(obj) {
			e := obj[resource.PropertyKey(k)]
			if e.IsNull() {
				continue
			}
			sub, ok := ot.Properties[k]
			if !ok {
				f = append(f, p.unsupported(child(path, k)))
				continue
			}
			f = append(f, p.validateValue(child(path, k), sub, e)...)
		}
		for _, k := range ot.Required {
			if e, ok := obj[resource.PropertyKey(k)]; !ok || e.IsNull() {
				f = append(f, missing(child(path, k)))
			}
		}
		return f
	}
	switch prop.Type {
	case "string":
		if !v.IsString() {
			return wrong("a string")
		}
	case "boolean":
		if !v.IsBool() {
			return wrong("a boolean")
		}
	case "number":
		if !v.IsNumber() {
			return wrong("a number")
		}
	case "integer":
		if !v.IsNumber() || v.NumberValue() != math.Trunc(v.NumberValue()) {
			return wrong("an integer")
		}
	case "array":
		if !v.IsArray() {
			return wrong("a list")
		}
		var f []*pulumirpc.CheckFailure
		for i, e := range v.ArrayValue() {
			f = append(f, p.validateValue(fmt.Sprintf("%s[%d]", path, i), *prop.Items, e)...)
		}
		return f
	case "object":
		if !v.IsObject() {
			return wrong("a map")
		}
		var f []*pulumirpc.CheckFailure
		obj := v.ObjectValue()
		for _, k := range sortedKeys(obj) {
			f = append(f, p.validateValue(child(path, k), *prop.AdditionalProperties, obj[resource.PropertyKey(k)])...)
		}
		return f
	}
	return nil
}
