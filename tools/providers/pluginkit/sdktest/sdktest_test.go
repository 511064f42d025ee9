package sdktest

import "testing"

func TestTSKind(t *testing.T) {
	for ts, want := range map[string]string{
		"pulumi.Input<boolean | undefined>;":                              "boolean",
		"pulumi.Input<number>;":                                           "number",
		"pulumi.Input<pulumi.Input<string>[] | undefined>;":               "array<string>",
		"pulumi.Input<pulumi.Input<inputs.ContainerPort>[] | undefined>;": "array<ref:ContainerPort>",
		"pulumi.Input<inputs.ContainerHealthcheck | undefined>;":          "ref:ContainerHealthcheck",
		"pulumi.Input<{": "map",
		"pulumi.Output<outputs.ContainerNetworkData[]>;": "array<ref:ContainerNetworkData>",
		"pulumi.Output<string | undefined>;":             "string",
		"string[];":                                      "array<string>",
		"outputs.ContainerLabel[];":                      "array<ref:ContainerLabel>",
	} {
		if got := tsKind(ts); got != want {
			t.Errorf("tsKind(%q) = %q, want %q", ts, got, want)
		}
	}
}
