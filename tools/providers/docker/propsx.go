package main

import (
	"fmt"
	"sort"

	"github.com/ai-trading/pluginkit"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func getStringList(m resource.PropertyMap, k string) []string {
	v, ok := pluginkit.PV(m, k)
	if !ok || !v.IsArray() {
		return nil
	}
	var out []string
	for _, e := range v.ArrayValue() {
		e = pluginkit.Unwrap(e)
		if e.IsString() {
			out = append(out, e.StringValue())
		}
	}
	return out
}

func getObjList(m resource.PropertyMap, k string) []resource.PropertyMap {
	v, ok := pluginkit.PV(m, k)
	if !ok || !v.IsArray() {
		return nil
	}
	var out []resource.PropertyMap
	for _, e := range v.ArrayValue() {
		e = pluginkit.Unwrap(e)
		if e.IsObject() {
			out = append(out, e.ObjectValue())
		}
	}
	return out
}

func getObj(m resource.PropertyMap, k string) (resource.PropertyMap, bool) {
	v, ok := pluginkit.PV(m, k)
	if !ok {
		return nil, false
	}
	v = pluginkit.Unwrap(v)
	if !v.IsObject() {
		return nil, false
	}
	return v.ObjectValue(), true
}

func getStringMap(m resource.PropertyMap, k string) map[string]string {
	obj, ok := getObj(m, k)
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

// labelsOf turns [{label, value}] into a map.
func labelsOf(m resource.PropertyMap, k string) map[string]string {
	out := map[string]string{}
	for _, l := range getObjList(m, k) {
		out[pluginkit.GetString(l, "label", "")] = pluginkit.GetString(l, "value", "")
	}
	return out
}

func str(s string) resource.PropertyValue { return resource.NewStringProperty(s) }

func computed() resource.PropertyValue { return resource.MakeComputed(resource.NewStringProperty("")) }

// unsupported reports inputs that this provider does not implement, so that nothing is silently ignored.
func unsupported(m resource.PropertyMap, supported map[string]bool) []*pulumirpc.CheckFailure {
	var keys []string
	for k, v := range m {
		if v.IsNull() || supported[string(k)] || len(k) > 2 && k[:2] == "__" {
			continue
		}
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	var out []*pulumirpc.CheckFailure
	for _, k := range keys {
		out = append(out, &pulumirpc.CheckFailure{Property: k, Reason: fmt.Sprintf("property %q is not supported by this repo's pulumi-resource-docker (tools/providers/docker)", k)})
	}
	return out
}

func set(keys ...string) map[string]bool {
	m := map[string]bool{}
	for _, k := range keys {
		m[k] = true
	}
	return m
}
