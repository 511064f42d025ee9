// Package pluginkit is what both provider plugins share: property helpers and the plugin's
// gRPC entry point.
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

// setDefault sets k when it is absent or null (unknowns are left alone).
func SetDefault(m resource.PropertyMap, k string, v resource.PropertyValue) {
	if cur, ok := m[resource.PropertyKey(k)]; !ok || cur.IsNull() {
		m[resource.PropertyKey(k)] = v
	}
}

// changedKeys lists the top-level keys whose values differ (null == absent; unknown != anything).
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

// unwrap removes secret markers recursively so that equal values compare equal.
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
