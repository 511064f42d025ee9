// Package pluginkit is what both provider plugins share: the gRPC entry point (serve.go), the
// dispatch of the ResourceProvider protocol to per-type resources (provider.go), the package
// schema (schema.go) and Check's validation against it (validate.go), and property helpers.
package pluginkit

// Small helpers over resource.PropertyMap (inputs arrive with secrets stripped: the provider
// does not accept secrets, so the engine unwraps them and re-marks matching outputs secret).

import (
	"sort"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"google.golang.org/protobuf/types/known/structpb"
)

var rpcOpts = plugin.MarshalOptions{KeepUnknowns: true, SkipNulls: true}

func Unmarshal(s *structpb.Struct) (resource.PropertyMap, error) {
	return plugin.UnmarshalProperties(s, rpcOpts)
}

func Marshal(m resource.PropertyMap) (*structpb.Struct, error) {
	return plugin.MarshalProperties(m, rpcOpts)
}

func PV(m resource.PropertyMap, k string) (resource.PropertyValue, bool) {
	v, ok := m[resource.PropertyKey(k)]
	if !ok || v.IsNull() {
		return resource.PropertyValue{}, false
	}
	if v.IsSecret() {
		v = v.SecretValue().Element
	}
	return v, true
}

func GetBool(m resource.PropertyMap, k string, def bool) bool {
	if v, ok := PV(m, k); ok && v.IsBool() {
		return v.BoolValue()
	}
	return def
}

func GetInt(m resource.PropertyMap, k string, def int) int {
	if v, ok := PV(m, k); ok && v.IsNumber() {
		return int(v.NumberValue())
	}
	return def
}

func GetString(m resource.PropertyMap, k string, def string) string {
	if v, ok := PV(m, k); ok && v.IsString() {
		return v.StringValue()
	}
	return def
}

// SetDefault sets k when it is absent or null (unknowns are left alone).
func SetDefault(m resource.PropertyMap, k string, v resource.PropertyValue) {
	if cur, ok := m[resource.PropertyKey(k)]; !ok || cur.IsNull() {
		m[resource.PropertyKey(k)] = v
	}
}

// ChangedKeys lists the top-level keys whose values differ (null == absent; unknown != anything).
func ChangedKeys(olds, news resource.PropertyMap) []string {
	seen := map[resource.PropertyKey]bool{}
	var out []string
	check := func(k resource.PropertyKey) {
		if seen[k] {
			return
		}
		seen[k] = true
		o, oOK := olds[k]
		n, nOK := news[k]
		oNull := !oOK || o.IsNull()
		nNull := !nOK || n.IsNull()
		if oNull && nNull {
			return
		}
		if oNull != nNull || n.ContainsUnknowns() || !Unwrap(o).DeepEquals(Unwrap(n)) {
			out = append(out, string(k))
		}
	}
	for k := range olds {
		check(k)
	}
	for k := range news {
		check(k)
	}
	sort.Strings(out)
	return out
}

// Unwrap removes secret markers recursively so that equal values compare equal.
func Unwrap(v resource.PropertyValue) resource.PropertyValue {
	switch {
	case v.IsSecret():
		return Unwrap(v.SecretValue().Element)
	case v.IsArray():
		arr := make([]resource.PropertyValue, len(v.ArrayValue()))
		for i, e := range v.ArrayValue() {
			arr[i] = Unwrap(e)
		}
		return resource.NewArrayProperty(arr)
	case v.IsObject():
		obj := resource.PropertyMap{}
		for k, e := range v.ObjectValue() {
			if !e.IsNull() {
				obj[k] = Unwrap(e)
			}
		}
		return resource.NewObjectProperty(obj)
	}
	return v
}

// Computed is an unknown value (shown as "output<string>" until known).
func Computed() resource.PropertyValue { return resource.MakeComputed(resource.NewStringProperty("")) }

// Str is a string property value.
func Str(s string) resource.PropertyValue { return resource.NewStringProperty(s) }

// StringList returns the strings of a list input (nil when absent or not a list).
func StringList(m resource.PropertyMap, k string) []string {
	v, ok := PV(m, k)
	if !ok || !v.IsArray() {
		return nil
	}
	var out []string
	for _, e := range v.ArrayValue() {
		e = Unwrap(e)
		if e.IsString() {
			out = append(out, e.StringValue())
		}
	}
	return out
}

// ObjectList returns the objects of a list input (nil when absent or not a list).
func ObjectList(m resource.PropertyMap, k string) []resource.PropertyMap {
	v, ok := PV(m, k)
	if !ok || !v.IsArray() {
		return nil
	}
	var out []resource.PropertyMap
	for _, e := range v.ArrayValue() {
		e = Unwrap(e)
		if e.IsObject() {
			out = append(out, e.ObjectValue())
		}
	}
	return out
}

// Object returns an object input.
func Object(m resource.PropertyMap, k string) (resource.PropertyMap, bool) {
	v, ok := PV(m, k)
	if !ok {
		return nil, false
	}
	v = Unwrap(v)
	if !v.IsObject() {
		return nil, false
	}
	return v.ObjectValue(), true
}

// StringMap returns the string values of a map input (nil when absent).
func StringMap(m resource.PropertyMap, k string) map[string]string {
	obj, ok := Object(m, k)
	if !ok {
		return nil
	}
	out := map[string]string{}
	for kk, v := range obj {
		if v.IsString() {
			out[string(kk)] = v.StringValue()
		}
	}
	return out
}
