package pluginkit

// The package schema a plugin returns from GetSchema, in Pulumi's package schema format (the
// subset these plugins need: resources with input and output properties, object types, refs).
// pkg/v3/codegen/schema has these types, but pkg/v3 is the whole CLI's module graph (see serve.go).
// Each plugin declares exactly the properties it implements, under the upstream type tokens and
// property names; Check rejects every other input (validate.go).

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Property is one property of a resource or object type.
type Property struct {
	Type                 string    `json:"type,omitempty"` // string, integer, number, boolean, array, object
	Ref                  string    `json:"$ref,omitempty"` // "#/types/<token>"
	Items                *Property `json:"items,omitempty"`
	AdditionalProperties *Property `json:"additionalProperties,omitempty"`
	Description          string    `json:"description,omitempty"`
	Secret               bool      `json:"secret,omitempty"`
}

// Props maps property names to their schema.
type Props map[string]Property

func String() Property  { return Property{Type: "string"} }
func Integer() Property { return Property{Type: "integer"} }
func Number() Property  { return Property{Type: "number"} }
func Boolean() Property { return Property{Type: "boolean"} }

// ArrayOf is a list of items; MapOf a string-keyed map of values; Ref an object type by token.
func ArrayOf(items Property) Property { return Property{Type: "array", Items: &items} }
func MapOf(values Property) Property  { return Property{Type: "object", AdditionalProperties: &values} }
func Ref(token string) Property       { return Property{Ref: "#/types/" + token} }

// Doc sets the description.
func (p Property) Doc(description string) Property {
	p.Description = description
	return p
}

// AsSecret marks the property secret (the engine stores it encrypted).
func (p Property) AsSecret() Property {
	p.Secret = true
	return p
}

// ObjectType is a named object type (nested inputs and outputs), referenced by Ref(token).
type ObjectType struct {
	Token       string
	Description string
	Properties  Props
	Required    []string
}

type objectTypeSpec struct {
	Type        string   `json:"type"`
	Description string   `json:"description,omitempty"`
	Properties  Props    `json:"properties"`
	Required    []string `json:"required,omitempty"`
}

type resourceSpec struct {
	Description     string   `json:"description,omitempty"`
	Properties      Props    `json:"properties"`
	Required        []string `json:"required,omitempty"`
	InputProperties Props    `json:"inputProperties"`
	RequiredInputs  []string `json:"requiredInputs,omitempty"`
}

type packageSpec struct {
	Name        string                    `json:"name"`
	Version     string                    `json:"version"`
	Description string                    `json:"description,omitempty"`
	Meta        map[string]string         `json:"meta"`
	Config      struct{}                  `json:"config"`
	Provider    resourceSpec              `json:"provider"`
	Resources   map[string]resourceSpec   `json:"resources"`
	Types       map[string]objectTypeSpec `json:"types,omitempty"`
}

// Schema renders the package schema as JSON.
func (p *Provider) Schema() (string, error) {
	pkg := packageSpec{
		Name:        p.name,
		Version:     p.version,
		Description: p.description,
		// As upstream: the module of "pkg:index/member:Name" is "index" (member names the file).
		Meta: map[string]string{"moduleFormat": "(.*)(?:/[^/]*)"},
		Provider: resourceSpec{
			Description:     "Provider configuration is accepted and ignored by this plugin.",
			Properties:      Props{},
			InputProperties: Props{},
		},
		Resources: map[string]resourceSpec{},
		Types:     map[string]objectTypeSpec{},
	}
	for token, t := range p.types {
		props := Props{}
		if !t.OutputsOnly {
			for k, v := range t.Inputs {
				props[k] = v
			}
		}
		for k, v := range t.Outputs {
			props[k] = v
		}
		pkg.Resources[token] = resourceSpec{
			Description:     t.Description,
			Properties:      props,
			Required:        t.required(),
			InputProperties: t.Inputs,
			RequiredInputs:  t.RequiredInputs,
		}
	}
	for token, o := range p.objectTypes {
		pkg.Types[token] = objectTypeSpec{Type: "object", Description: o.Description, Properties: o.Properties, Required: o.Required}
	}
	b, err := json.MarshalIndent(pkg, "", "  ")
	return string(b), err
}

// required lists the output properties always present: the required inputs (when the outputs
// include the inputs) and RequiredOutputs.
func (t *Type) required() []string {
	all := append([]string{}, t.RequiredOutputs...)
	if !t.OutputsOnly {
		all = append(all, t.RequiredInputs...)
	}
	seen := map[string]bool{}
	var out []string
	for _, s := range all {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// checkSchema reports declaration mistakes: refs to undeclared types, required names that are not
// properties, types that are not Pulumi schema types. NewProvider panics on them (a programming
// error, found by every test that builds the provider).
func (p *Provider) checkSchema() error {
	var errs []string
	var walk func(where string, prop Property)
	walk = func(where string, prop Property) {
		switch {
		case prop.Ref != "":
			if _, ok := p.objectTypes[strings.TrimPrefix(prop.Ref, "#/types/")]; !ok || !strings.HasPrefix(prop.Ref, "#/types/") {
				errs = append(errs, fmt.Sprintf("%s: $ref %q is not a declared type", where, prop.Ref))
			}
		case prop.Type == "array":
			if prop.Items == nil {
				errs = append(errs, where+": array without items")
			} else {
				walk(where+"[]", *prop.Items)
			}
		case prop.Type == "object":
			if prop.AdditionalProperties == nil {
				errs = append(errs, where+": object without additionalProperties (declare an ObjectType)")
			} else {
				walk(where+"{}", *prop.AdditionalProperties)
			}
		case prop.Type == "string", prop.Type == "integer", prop.Type == "number", prop.Type == "boolean":
		default:
			errs = append(errs, fmt.Sprintf("%s: unknown type %q", where, prop.Type))
		}
	}
	requiredIn := func(where string, names []string, props ...Props) {
		for _, n := range names {
			found := false
			for _, ps := range props {
				_, ok := ps[n]
				found = found || ok
			}
			if !found {
				errs = append(errs, fmt.Sprintf("%s: required %q is not a property", where, n))
			}
		}
	}
	for token, t := range p.types {
		for k, v := range t.Inputs {
			walk(token+"."+k, v)
		}
		for k, v := range t.Outputs {
			walk(token+"."+k, v)
		}
		requiredIn(token+" requiredInputs", t.RequiredInputs, t.Inputs)
		if t.OutputsOnly {
			requiredIn(token+" required", t.RequiredOutputs, t.Outputs)
		} else {
			requiredIn(token+" required", t.RequiredOutputs, t.Inputs, t.Outputs)
		}
	}
	for token, o := range p.objectTypes {
		for k, v := range o.Properties {
			walk(token+"."+k, v)
		}
		requiredIn(token+" required", o.Required, o.Properties)
	}
	sort.Strings(errs)
	if len(errs) > 0 {
		return fmt.Errorf("schema of %s: %s", p.name, strings.Join(errs, "; "))
	}
	return nil
}
