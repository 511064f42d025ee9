package main

import (
	"github.com/ai-trading/pluginkit"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// labelsOf turns [{label, value}] into a map.
func labelsOf(m resource.PropertyMap, k string) map[string]string {
	out := map[string]string{}
	for _, l := range pluginkit.ObjectList(m, k) {
		out[pluginkit.GetString(l, "label", "")] = pluginkit.GetString(l, "value", "")
	}
	return out
}

func str(s string) resource.PropertyValue { return pluginkit.Str(s) }
