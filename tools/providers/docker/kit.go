package main

// The property helpers and the plugin entry point shared by both plugins (tools/providers/pluginkit).

import "github.com/ai-trading/pluginkit"

var (
	unmarshal   = pluginkit.Unmarshal
	marshal     = pluginkit.Marshal
	pv          = pluginkit.PV
	getBool     = pluginkit.GetBool
	getInt      = pluginkit.GetInt
	getString   = pluginkit.GetString
	setDefault  = pluginkit.SetDefault
	changedKeys = pluginkit.ChangedKeys
	unwrap      = pluginkit.Unwrap
	serve       = pluginkit.Serve
)
