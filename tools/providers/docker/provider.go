package main

// pulumi-resource-docker: the resources of @pulumi/docker 5.2.0 that this project uses, with the
// upstream type tokens and property names (network, volume, remoteImage, image, container). Each
// resource file declares its Type (schema and update behaviour); pluginkit does the protocol and
// rejects in Check every input the schema does not declare, rather than silently ignoring it.
// Every input change replaces the resource (fixed names: delete before replace), except
// RemoteImage.keepLocally, which is updated in place.

import "github.com/ai-trading/pluginkit"

const pluginVersion = "5.2.0"

var (
	strProp  = pluginkit.String
	intProp  = pluginkit.Integer
	boolProp = pluginkit.Boolean
	ref      = pluginkit.Ref
)

func stringList() pluginkit.Property { return pluginkit.ArrayOf(strProp()) }
func stringMap() pluginkit.Property  { return pluginkit.MapOf(strProp()) }

// Object types (nested inputs and outputs), upstream tokens, only the properties implemented.
const (
	tokContainerCapabilities    = "docker:index/ContainerCapabilities:ContainerCapabilities"
	tokContainerHealthcheck     = "docker:index/ContainerHealthcheck:ContainerHealthcheck"
	tokContainerLabel           = "docker:index/ContainerLabel:ContainerLabel"
	tokContainerNetworkData     = "docker:index/ContainerNetworkData:ContainerNetworkData"
	tokContainerNetworksAdvance = "docker:index/ContainerNetworksAdvanced:ContainerNetworksAdvanced"
	tokContainerPort            = "docker:index/ContainerPort:ContainerPort"
	tokContainerUpload          = "docker:index/ContainerUpload:ContainerUpload"
	tokContainerVolume          = "docker:index/ContainerVolume:ContainerVolume"
	tokNetworkLabel             = "docker:index/NetworkLabel:NetworkLabel"
	tokNetworkIpamConfig        = "docker:index/NetworkIpamConfig:NetworkIpamConfig"
	tokVolumeLabel              = "docker:index/VolumeLabel:VolumeLabel"
	tokDockerBuild              = "docker:index/dockerBuild:DockerBuild"
	tokRegistry                 = "docker:index/registry:Registry"
)

func label(token string) pluginkit.ObjectType {
	return pluginkit.ObjectType{Token: token, Properties: pluginkit.Props{"label": strProp(), "value": strProp()}, Required: []string{"label", "value"}}
}

var objectTypes = []pluginkit.ObjectType{
	label(tokContainerLabel), label(tokNetworkLabel), label(tokVolumeLabel),
	{Token: tokNetworkIpamConfig, Properties: pluginkit.Props{
		"subnet":  strProp().Doc("CIDR, e.g. 172.28.0.0/24."),
		"gateway": strProp().Doc("Chosen by the engine when absent."),
		"ipRange": strProp().Doc("CIDR inside subnet that containers get addresses from."),
	}, Required: []string{"subnet"}},
	{Token: tokContainerCapabilities, Properties: pluginkit.Props{"adds": stringList(), "drops": stringList()}},
	{Token: tokContainerHealthcheck, Properties: pluginkit.Props{
		"tests":         stringList().Doc(`Exec form, e.g. ["CMD", "true"] or ["CMD-SHELL", "..."].`),
		"interval":      strProp().Doc("Go duration, e.g. 15s."),
		"timeout":       strProp().Doc("Go duration."),
		"startPeriod":   strProp().Doc("Go duration."),
		"startInterval": strProp().Doc("Go duration."),
		"retries":       intProp(),
	}},
	{Token: tokContainerNetworksAdvance, Properties: pluginkit.Props{"name": strProp(), "aliases": stringList()}, Required: []string{"name"}},
	{Token: tokContainerPort, Properties: pluginkit.Props{
		"internal": intProp(),
		"external": intProp().Doc("Host port; chosen by the engine when absent."),
		"ip":       strProp().Doc("Host address (default 0.0.0.0)."),
		"protocol": strProp().Doc("tcp (default) or udp."),
	}, Required: []string{"internal"}},
	{Token: tokContainerVolume, Properties: pluginkit.Props{
		"volumeName": strProp(), "hostPath": strProp(), "containerPath": strProp(), "readOnly": boolProp(),
	}},
	{Token: tokContainerUpload, Properties: pluginkit.Props{
		"file":          strProp().Doc("Absolute path in the container."),
		"content":       strProp(),
		"contentBase64": strProp(),
		"source":        strProp().Doc("A file on the plugin's host."),
		"permissions":   strProp().Doc("Octal mode, e.g. 0444 (default 0644)."),
		"executable":    boolProp().Doc("Mode 0755 when permissions is absent."),
		"owner":         strProp().Doc("Numeric uid owning the file in the container (default 0, root), e.g. the container's user for a 0400 secret. User names are refused: they would be looked up on this host, not in the image."),
		"group":         strProp().Doc("Numeric gid of the file in the container (default 0). Group names are refused, as for owner."),
	}, Required: []string{"file"}},
	{Token: tokContainerNetworkData, Properties: pluginkit.Props{
		"networkName": strProp(), "ipAddress": strProp(), "ipPrefixLength": intProp(), "gateway": strProp(), "macAddress": strProp(),
		"globalIpv6Address": strProp(), "globalIpv6PrefixLength": intProp(), "ipv6Gateway": strProp(),
	}},
	{Token: tokDockerBuild, Properties: pluginkit.Props{
		"context":    strProp().Doc(`Build context directory (default "."); .dockerignore is honoured.`),
		"dockerfile": strProp().Doc("Default <context>/Dockerfile; relative to the working directory, else to the context."),
		"args":       stringMap(),
		"platform":   strProp(),
		"target":     strProp(),
	}},
	{Token: tokRegistry, Properties: pluginkit.Props{
		"server": strProp(), "username": strProp(), "password": strProp().AsSecret(),
	}, Description: "Accepted and ignored: this plugin never pushes."},
}

func newProvider(eng *engine) *pluginkit.Provider {
	return pluginkit.NewProvider("docker", pluginVersion,
		"This repo's own docker provider (tools/providers/docker), on the Docker Engine HTTP API.",
		objectTypes,
		networkType(eng), volumeType(eng), remoteImageType(eng), imageType(eng), containerType(eng))
}
