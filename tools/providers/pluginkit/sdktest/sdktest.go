// Package sdktest checks a plugin's schema against the npm SDK that drives it: every resource
// token is the SDK's, every property exists in the SDK under the same name with the same kind
// (string, number, boolean, list, map, object type), and the version is the SDK's. The SDK is read
// from the repo's node_modules (the TypeScript declarations the program is compiled against).
package sdktest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/ai-trading/pluginkit"
)

type property struct {
	Type                 string    `json:"type"`
	Ref                  string    `json:"$ref"`
	Items                *property `json:"items"`
	AdditionalProperties *property `json:"additionalProperties"`
}

type schema struct {
	Name      string `json:"name"`
	Version   string `json:"version"`
	Resources map[string]struct {
		Properties      map[string]property `json:"properties"`
		InputProperties map[string]property `json:"inputProperties"`
	} `json:"resources"`
	Types map[string]struct {
		Properties map[string]property `json:"properties"`
	} `json:"types"`
}

// kind is the property's shape as TypeScript declares it.
func (p property) kind() string {
	switch {
	case p.Ref != "":
		return "ref:" + p.Ref[strings.LastIndex(p.Ref, ":")+1:]
	case p.Type == "array":
		return "array<" + p.Items.kind() + ">"
	case p.Type == "object":
		return "map"
	case p.Type == "integer":
		return "number"
	}
	return p.Type
}

// tsKind is the shape of a TypeScript property type (pulumi.Input/Output wrappers dropped).
func tsKind(t string) string {
	t = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(t), ";"))
	for changed := true; changed; {
		changed = false
		t = strings.TrimSpace(strings.TrimSuffix(t, "| undefined"))
		for _, w := range []string{"pulumi.Input<", "pulumi.Output<"} {
			if strings.HasPrefix(t, w) && strings.HasSuffix(t, ">") {
				t, changed = t[len(w):len(t)-1], true
			}
		}
	}
	switch {
	case strings.HasPrefix(t, "{") || strings.HasSuffix(t, "<{"):
		return "map"
	case strings.HasSuffix(t, "[]"):
		return "array<" + tsKind(t[:len(t)-2]) + ">"
	case strings.HasPrefix(t, "inputs.") || strings.HasPrefix(t, "outputs."):
		return "ref:" + t[strings.LastIndex(t, ".")+1:]
	}
	return t
}

// member is one property line of an interface or class: "<indent>[readonly ]name[?]: type".
var member = regexp.MustCompile(`^(\s+)(?:readonly )?(\w+)\??: (.*)$`)

// block returns the members (name -> TypeScript type) of "export <header> {" ... "}" in file: the
// lines at the indentation of the block's first line (the SDK's declarations indent by 4, the
// repo's own sources by 2), so the members of nested object types are not taken for its own.
func block(t *testing.T, file, header string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "export "+header+" ") || i+1 >= len(lines) {
			continue
		}
		indent := lines[i+1][:len(lines[i+1])-len(strings.TrimLeft(lines[i+1], " "))]
		out := map[string]string{}
		for _, m := range lines[i+1:] {
			if m == "}" {
				return out
			}
			if g := member.FindStringSubmatch(m); g != nil && g[1] == indent {
				out[g[2]] = g[3]
			}
		}
	}
	t.Fatalf("%s: no %q", file, header)
	return nil
}

// Extension: inputs a plugin implements beyond the SDK, declared by the program's own TypeScript
// (an exported interface extending the SDK's args, used by a CustomResource of the same token).
type Extension struct {
	Token     string // e.g. docker:index/container:Container
	File      string // the TypeScript file declaring the interface
	Interface string // e.g. ContainerArgs
}

func compare(t *testing.T, where string, ours map[string]property, sdk map[string]string) {
	t.Helper()
	names := make([]string, 0, len(ours))
	for k := range ours {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		ts, ok := sdk[k]
		if !ok {
			t.Errorf("%s: property %q is not in the SDK", where, k)
			continue
		}
		if got, want := ours[k].kind(), tsKind(ts); got != want {
			t.Errorf("%s: property %q is %s in the schema, %s in the SDK (%s)", where, k, got, want, ts)
		}
	}
}

// Check compares schemaJSON with the npm package in sdkDir (node_modules/@pulumi/<name>). Without
// node_modules (no `npm install` yet) the test is skipped, saying so.
//
// A property the SDK lacks is accepted only when an extension for the resource declares it with the
// same kind; an extension property the SDK has meanwhile gained, or the schema lacks, is an error.
func Check(t *testing.T, schemaJSON, sdkDir string, extensions ...Extension) {
	t.Helper()
	pkgJSON, err := os.ReadFile(filepath.Join(sdkDir, "package.json"))
	if os.IsNotExist(err) {
		t.Skipf("%s is not installed (run scripts/lib/npm-install.sh): schema not compared with the SDK", sdkDir)
	}
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct{ Version string }
	if err := json.Unmarshal(pkgJSON, &pkg); err != nil {
		t.Fatal(err)
	}
	var s schema
	if err := json.Unmarshal([]byte(schemaJSON), &s); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	if s.Version != pkg.Version {
		t.Errorf("schema version %s, SDK %s", s.Version, pkg.Version)
	}
	if len(s.Resources) == 0 {
		t.Fatal("schema has no resources")
	}
	for token, r := range s.Resources {
		parts := strings.Split(token, ":") // pkg:index/<file>:<Class>
		file, class := filepath.Join(sdkDir, strings.TrimPrefix(parts[1], "index/")), parts[2]
		js, err := os.ReadFile(file + ".js")
		if err != nil {
			t.Errorf("%s: no SDK module: %v", token, err)
			continue
		}
		if !strings.Contains(string(js), "__pulumiType = '"+token+"'") {
			t.Errorf("%s: not the SDK's type token (%s.js)", token, file)
		}
		sdkArgs := block(t, file+".d.ts", "interface "+class+"Args")
		args := map[string]string{}
		for k, v := range sdkArgs {
			args[k] = v
		}
		// The plugin's state echoes its inputs: an extension input is an output of the resource too.
		outs := block(t, file+".d.ts", "declare class "+class+" extends pulumi.CustomResource")
		for _, e := range extensions {
			if e.Token != token {
				continue
			}
			for k, v := range block(t, e.File, "interface "+e.Interface) {
				if _, inSDK := sdkArgs[k]; inSDK {
					t.Errorf("%s: %s declares %q, which the SDK now has: drop it there and use the SDK's class", token, e.File, k)
				}
				if _, inSchema := r.InputProperties[k]; !inSchema {
					t.Errorf("%s: %s declares %q, which the plugin's schema lacks", token, e.File, k)
				}
				args[k] = v
				outs[k] = v
			}
		}
		compare(t, token+" input", r.InputProperties, args)
		compare(t, token+" output", r.Properties, outs)
	}
	for token, o := range s.Types {
		name := token[strings.LastIndex(token, ":")+1:]
		members := map[string]string{}
		for _, f := range []string{"input", "output"} {
			file := filepath.Join(sdkDir, "types", f+".d.ts")
			if b, _ := os.ReadFile(file); strings.Contains(string(b), "export interface "+name+" {") {
				for k, v := range block(t, file, "interface "+name) {
					members[k] = v
				}
			}
		}
		if len(members) == 0 {
			t.Errorf("type %s: not in the SDK's types", token)
			continue
		}
		compare(t, "type "+token, o.Properties, members)
	}
}

// Golden compares the schema with the committed file (tools/providers/<name>/schema.json, read by
// the TypeScript tests that check every input the program sets); UPDATE_SCHEMA=1 rewrites it.
func Golden(t *testing.T, schemaJSON, file string) {
	t.Helper()
	want, err := pluginkit.IndentSchema(schemaJSON)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("UPDATE_SCHEMA") == "1" {
		if err := os.WriteFile(file, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(file)
	if err != nil || string(got) != string(want) {
		t.Fatalf("%s is not the provider's schema (run UPDATE_SCHEMA=1 go test ./... in its module and commit it): %v", file, err)
	}
}
