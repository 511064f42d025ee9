package sdktest

import (
	"os"
	"testing"
)

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

func TestBlockReadsTheBlocksOwnIndentation(t *testing.T) {
	file := t.TempDir() + "/x.ts"
	src := "export interface XArgs extends sdk.XArgs {\n  /** doc: not a member */\n  size?: pulumi.Input<number>;\n  tags?: pulumi.Input<{\n    nested: string;\n  }>;\n}\n"
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got := block(t, file, "interface XArgs")
	if len(got) != 2 || tsKind(got["size"]) != "number" || tsKind(got["tags"]) != "map" {
		t.Fatalf("members %v", got)
	}
}
