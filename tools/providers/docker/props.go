package main

// Small helpers over resource.PropertyMap (inputs arrive with secrets stripped: the provider
// does not accept secrets, so the engine unwraps them and re-marks matching outputs secret).

import (
	"sort"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"google.golang.org/protobuf/types/known/structpb"
)

var rpcOpts = plugin.MarshalOptions{KeepUnknowns: true, SkipNulls: true}

func unmarshal(s *structpb.Struct) (resource.PropertyMap, error) {
	return plugin.UnmarshalProperties(s, rpcOpts)
}

func marshal(m resource.PropertyMap) (*structpb.Struct, error) {
	return plugin.MarshalProperties(m, rpcOpts)
}

func pv(m resource.PropertyMap, k string) (resource.PropertyValue, bool) {
	v, ok := m[resource.PropertyKey(k)]
	if !ok || v.IsNull() {
		return resource.PropertyValue{}, false
	}
	if v.IsSecret() {
		v = v.SecretValue().Element
	}
	return v, true
}

func getBool(m resource.PropertyMap, k string, def bool) bool {
	if v, ok := pv(m, k); ok && v.IsBool() {
		return v.BoolValue()
	}
	return def
}

func getInt(m resource.PropertyMap, k string, def int) int {
	if v, ok := pv(m, k); ok && v.IsNumber() {
		return int(v.NumberValue())
	}
	return def
}

func getString(m resource.PropertyMap, k string, def string) string {
	if v, ok := pv(m, k); ok && v.IsString() {
		return v.StringValue()
	}
	return def
}

// setDefault sets k when it is absent or null (unknowns are left alone).
func setDefault(m resource.PropertyMap, k string, v resource.PropertyValue) {
	if cur, ok := m[resource.PropertyKey(k)]; !ok || cur.IsNull() {
		m[resource.PropertyKey(k)] = v
	}
}

// changedKeys lists the top-level keys whose values differ (null == absent; unknown != anything).
func changedKeys(olds, news resource.PropertyMap) []string {
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
		if oNull != nNull || n.ContainsUnknowns() || !unwrap(o).DeepEquals(unwrap(n)) {
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
func unwrap(v resource.PropertyValue) resource.PropertyValue {
	switch {
	case v.IsSecret():
		return unwrap(v.SecretValue().Element)
	case v.IsArray():
		arr := make([]resource.PropertyValue, len(v.ArrayValue()))
		for i, e := range v.ArrayValue() {
			arr[i] = unwrap(e)
		}
		return resource.NewArrayProperty(arr)
	case v.IsObject():
		obj := resource.PropertyMap{}
		for k, e := range v.ObjectValue() {
			if !e.IsNull() {
				obj[k] = unwrap(e)
			}
		}
		return resource.NewObjectProperty(obj)
	}
	return v
}
