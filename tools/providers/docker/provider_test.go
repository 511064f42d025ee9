package main

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ai-trading/pluginkit"
	"github.com/ai-trading/pluginkit/sdktest"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func TestDockerignore(t *testing.T) {
	patterns, err := ignorefile.ReadAll(strings.NewReader("# c\nnode_modules\ndist\n*.log\n.env.*\n**/tmp\n!keep.log\ndocs/**/*.md\n"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := contextMatcher(patterns, "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{
		"node_modules":            true,
		"node_modules/x/index.js": true,
		"src/node_modules/x":      false, // "node_modules" is anchored at the context root
		"dist/main.js":            true,
		"a.log":                   true,
		"src/a.log":               false, // "*" does not cross "/"
		"keep.log":                false,
		".env.local":              true,
		".env":                    false,
		"tmp":                     true,
		"a/b/tmp/c":               true,
		"docs/a/b/c.md":           true,
		"docs/c.md":               true,
		"docs/c.txt":              false,
		"src/main.ts":             false,
	}
	for p, want := range cases {
		if got, err := m.MatchesOrParentMatches(p); err != nil || got != want {
			t.Errorf("excluded(%q) = %v, want %v", p, got, want)
		}
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestContextHash(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		".dockerignore":       "node_modules\n*.log\nDockerfile\n",
		"Dockerfile":          "FROM x\n",
		"src/a.ts":            "a",
		"node_modules/m/i.js": "m",
		"x.log":               "log",
	})
	df := filepath.Join(dir, "Dockerfile")
	h1, err := hashContext(dir, df)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := contextFiles(dir, "Dockerfile")
	var names []string
	for _, f := range files {
		names = append(names, f.rel)
	}
	if want := []string{".dockerignore", "Dockerfile", "src", "src/a.ts"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("context files %v, want %v", names, want)
	}
	writeFiles(t, dir, map[string]string{"x.log": "changed", "node_modules/m/i.js": "changed"})
	if h2, _ := hashContext(dir, df); h2 != h1 {
		t.Fatal("ignored files changed the hash")
	}
	writeFiles(t, dir, map[string]string{"src/a.ts": "b"})
	h3, _ := hashContext(dir, df)
	if h3 == h1 {
		t.Fatal("a kept file's change did not change the hash")
	}
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM y\n"})
	if h4, _ := hashContext(dir, df); h4 == h3 {
		t.Fatal("a Dockerfile change (excluded by .dockerignore, but always sent) did not change the hash")
	}
	// A Dockerfile outside the context counts too.
	out := filepath.Join(t.TempDir(), "Dockerfile.x")
	writeFiles(t, filepath.Dir(out), map[string]string{"Dockerfile.x": "FROM z\n"})
	h5, _ := hashContext(dir, out)
	writeFiles(t, filepath.Dir(out), map[string]string{"Dockerfile.x": "FROM w\n"})
	if h6, _ := hashContext(dir, out); h6 == h5 {
		t.Fatal("outside Dockerfile change not hashed")
	}
}

// A Dockerfile and .dockerignore that .dockerignore excludes are still sent (also in an excluded
// directory); "!" re-includes below an excluded directory; an excluded directory without such an
// exception is not walked.
func TestContextFilesKeepBuildFiles(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		".dockerignore":              "build\n.dockerignore\nassets\n!assets/keep.txt\n  # not a comment: a pattern\n",
		"build/Dockerfile":           "FROM x\n",
		"build/other":                "o",
		"assets/keep.txt":            "k",
		"assets/drop.txt":            "d",
		"# not a comment: a pattern": "p",
		"main.go":                    "m",
	})
	files, err := contextFiles(dir, "build/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.rel)
	}
	want := []string{".dockerignore", "assets/keep.txt", "build/Dockerfile", "main.go"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("context files %v, want %v", names, want)
	}
	writeFiles(t, dir, map[string]string{".dockerignore": "[\n"})
	if _, err := contextFiles(dir, "Dockerfile"); err == nil || !strings.Contains(err.Error(), ".dockerignore") {
		t.Fatalf("a bad pattern must be an error naming .dockerignore, got %v", err)
	}
}

func props(kv ...any) resource.PropertyMap {
	m := resource.PropertyMap{}
	for i := 0; i < len(kv); i += 2 {
		m[resource.PropertyKey(kv[i].(string))] = resource.NewPropertyValue(kv[i+1])
	}
	return m
}

// testProvider has no engine: Check resolves no image IDs.
var testProvider = newProvider(nil)

func typeOf(t *testing.T, token string) *pluginkit.Type {
	t.Helper()
	typ, err := testProvider.TypeOf("urn:pulumi:s::p::" + token + "::r")
	if err != nil {
		t.Fatal(err)
	}
	return typ
}

// check runs the provider's Check as the engine calls it.
func check(t *testing.T, token string, news resource.PropertyMap) (resource.PropertyMap, []*pulumirpc.CheckFailure) {
	t.Helper()
	s, err := pluginkit.Marshal(news)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := testProvider.Check(context.Background(), &pulumirpc.CheckRequest{Urn: "urn:pulumi:s::p::" + token + "::r", News: s})
	if err != nil {
		t.Fatal(err)
	}
	out, err := pluginkit.Unmarshal(resp.GetInputs())
	if err != nil {
		t.Fatal(err)
	}
	return out, resp.GetFailures()
}

func TestDiff(t *testing.T) {
	c := typeOf(t, "docker:index/container:Container")
	olds := props("name", "c1", "image", "sha256:1", "envs", []any{"A=1"}, "mustRun", true)
	if d := c.Diff(olds, olds.Copy()); d.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("no change expected: %v", d)
	}
	news := olds.Copy()
	news["envs"] = resource.MakeSecret(resource.NewPropertyValue([]any{"A=1"}))
	if d := c.Diff(olds, news); d.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("secret wrapper is no change: %v", d)
	}
	news["envs"] = resource.NewPropertyValue([]any{"A=2"})
	d := c.Diff(olds, news)
	if d.Changes != pulumirpc.DiffResponse_DIFF_SOME || !reflect.DeepEqual(d.Replaces, []string{"envs"}) || !d.DeleteBeforeReplace {
		t.Fatalf("replace with deleteBeforeReplace expected: %v", d)
	}
	news = olds.Copy()
	news["image"] = pluginkit.Computed()
	if d := c.Diff(olds, news); !reflect.DeepEqual(d.Replaces, []string{"image"}) {
		t.Fatalf("unknown image must replace: %v", d)
	}
	r := typeOf(t, "docker:index/remoteImage:RemoteImage")
	ro := props("name", "x:1", "keepLocally", true)
	rn := props("name", "x:1", "keepLocally", false)
	if d := r.Diff(ro, rn); d.Changes != pulumirpc.DiffResponse_DIFF_SOME || len(d.Replaces) != 0 {
		t.Fatalf("keepLocally is in place: %v", d)
	}
	ro[resolvedImageKey] = resource.NewStringProperty("sha256:1")
	rn = ro.Copy()
	rn[resolvedImageKey] = resource.NewStringProperty("sha256:2")
	if d := r.Diff(ro, rn); !reflect.DeepEqual(d.Replaces, []string{resolvedImageKey}) {
		t.Fatalf("a changed local image must replace: %v", d)
	}
	delete(ro, resolvedImageKey)
	if d := r.Diff(ro, rn); d.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("an image pulled at create is no change: %v", d)
	}
	i := typeOf(t, "docker:index/image:Image")
	io := props("imageName", "a:1", digestKey, "sha256:a")
	in := props("imageName", "a:1", digestKey, "sha256:b")
	if d := i.Diff(io, in); !reflect.DeepEqual(d.Replaces, []string{digestKey}) || d.DeleteBeforeReplace {
		t.Fatalf("context change must rebuild: %v", d)
	}
}

func TestContainerCheckDefaultsAndUnsupported(t *testing.T) {
	m, f := check(t, "docker:index/container:Container", props("name", "n", "image", "i", "ports", []any{map[string]any{"internal": 80.0}}, "gpus", "all"))
	if len(f) != 1 || f[0].Property != "gpus" || !strings.Contains(f[0].Reason, "not supported by this repo's pulumi-resource-docker") {
		t.Fatalf("failures %v", f)
	}
	if !pluginkit.GetBool(m, "mustRun", false) || pluginkit.GetString(m, "restart", "") != "no" {
		t.Fatalf("defaults: %v", m)
	}
	p := pluginkit.ObjectList(m, "ports")[0]
	if pluginkit.GetString(p, "ip", "") != "0.0.0.0" || pluginkit.GetString(p, "protocol", "") != "tcp" {
		t.Fatalf("port defaults: %v", p)
	}
}

func TestCreateBody(t *testing.T) {
	in := props(
		"name", "svc", "hostname", "h", "image", "sha256:abc",
		"command", []any{"api"}, "entrypoints", []any{"node", "dist/main.js"},
		"envs", []any{"A=1", "B=2"},
		"networksAdvanced", []any{map[string]any{"name": "net1", "aliases": []any{"svc"}}, map[string]any{"name": "net2"}},
		"ports", []any{map[string]any{"internal": 6379.0, "external": 16379.0, "ip": "127.0.0.1", "protocol": "tcp"}},
		"volumes", []any{map[string]any{"volumeName": "v1", "containerPath": "/data"}},
		"tmpfs", map[string]any{"/tmp": "rw,noexec"},
		"healthcheck", map[string]any{"tests": []any{"CMD", "true"}, "interval": "15s", "timeout": "5s", "retries": 3.0, "startPeriod": "1m"},
		"memory", 256.0, "cpus", "0.5", "pidsLimit", 128.0, "user", "10001:10001", "readOnly", true,
		"capabilities", map[string]any{"drops": []any{"ALL"}, "adds": []any{"NET_BIND_SERVICE"}},
		"securityOpts", []any{"no-new-privileges:true"},
		"labels", []any{map[string]any{"label": "a", "value": "b"}},
		"logDriver", "json-file", "logOpts", map[string]any{"max-size": "10m"},
		"restart", "unless-stopped",
	)
	b, extra := createBody(in)
	host := b["HostConfig"].(map[string]any)
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", what, got, want)
		}
	}
	check("Entrypoint", b["Entrypoint"], []string{"node", "dist/main.js"})
	check("Cmd", b["Cmd"], []string{"api"})
	check("Env", b["Env"], []string{"A=1", "B=2"})
	check("Memory", host["Memory"], int64(256*1024*1024))
	check("NanoCpus", host["NanoCpus"], int64(500000000))
	check("PidsLimit", host["PidsLimit"], int64(128))
	check("NetworkMode", host["NetworkMode"], "net1")
	check("extra networks", extra, []string{"net2"})
	check("PortBindings", host["PortBindings"], map[string][]map[string]string{"6379/tcp": {{"HostIp": "127.0.0.1", "HostPort": "16379"}}})
	check("Mounts", host["Mounts"], []map[string]any{{"Type": "volume", "Source": "v1", "Target": "/data", "ReadOnly": false}})
	check("CapDrop", host["CapDrop"], []string{"ALL"})
	check("ReadonlyRootfs", host["ReadonlyRootfs"], true)
	check("Tmpfs", host["Tmpfs"], map[string]string{"/tmp": "rw,noexec"})
	check("RestartPolicy", host["RestartPolicy"], map[string]any{"Name": "unless-stopped", "MaximumRetryCount": 0})
	hc := b["Healthcheck"].(map[string]any)
	check("Healthcheck.Test", hc["Test"], []string{"CMD", "true"})
	check("Healthcheck.Interval", hc["Interval"], int64(15e9))
	check("Healthcheck.StartPeriod", hc["StartPeriod"], int64(60e9))
	check("Labels", b["Labels"], map[string]string{"a": "b"})
	nc := b["NetworkingConfig"].(map[string]any)["EndpointsConfig"].(map[string]any)["net1"].(map[string]any)
	check("Aliases", nc["Aliases"], []string{"svc"})
}

// pidsLimit: the engine's HostConfig.PidsLimit; only a positive value is accepted (0 and -1 mean
// "unlimited" to the engine), a non-integer is refused by the schema, and a change replaces the
// container like every other container input (memory, cpus) does.
func TestContainerPidsLimit(t *testing.T) {
	for _, bad := range []float64{0, -1} {
		_, f := check(t, "docker:index/container:Container", props("name", "n", "image", "i", "pidsLimit", bad))
		if len(f) != 1 || f[0].Property != "pidsLimit" || !strings.Contains(f[0].Reason, "positive integer") {
			t.Errorf("pidsLimit %v: failures %v", bad, f)
		}
	}
	if _, f := check(t, "docker:index/container:Container", props("name", "n", "image", "i", "pidsLimit", 2.5)); len(f) != 1 || f[0].Property != "pidsLimit" {
		t.Errorf("pidsLimit 2.5: failures %v", f)
	}
	in, f := check(t, "docker:index/container:Container", props("name", "n", "image", "i", "pidsLimit", 64.0))
	if len(f) != 0 || pluginkit.GetInt(in, "pidsLimit", 0) != 64 {
		t.Fatalf("pidsLimit 64: %v %v", f, in)
	}
	if b, _ := createBody(props("name", "n", "image", "i")); b["HostConfig"].(map[string]any)["PidsLimit"] != nil {
		t.Fatal("no pidsLimit: the engine's default, nothing sent")
	}
	c := typeOf(t, "docker:index/container:Container")
	olds := props("name", "n", "image", "sha256:1", "pidsLimit", 64.0)
	news := props("name", "n", "image", "sha256:1", "pidsLimit", 128.0)
	if d := c.Diff(olds, news); !reflect.DeepEqual(d.Replaces, []string{"pidsLimit"}) || !d.DeleteBeforeReplace {
		t.Fatalf("a changed pidsLimit replaces the container: %v", d)
	}
	delete(news, "pidsLimit")
	if d := c.Diff(olds, news); !reflect.DeepEqual(d.Replaces, []string{"pidsLimit"}) {
		t.Fatalf("a removed pidsLimit replaces the container: %v", d)
	}
}

func TestUploadsAndLogs(t *testing.T) {
	ups, err := uploadsOf(props("uploads", []any{map[string]any{"file": "/etc/x.conf", "content": "hi", "permissions": "0400"}}))
	if err != nil || len(ups) != 1 || ups[0].mode != 0o400 || string(ups[0].data) != "hi" {
		t.Fatalf("uploads %v %v", ups, err)
	}
	if _, err := uploadTar(ups); err != nil {
		t.Fatal(err)
	}
	frame := func(stream byte, s string) []byte {
		n := len(s)
		return append([]byte{stream, 0, 0, 0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, s...)
	}
	raw := append(frame(1, "out\n"), frame(2, "err\n")...)
	if got := demuxLogs(raw); got != "out\nerr\n" {
		t.Fatalf("demux %q", got)
	}
	if r, tag := splitRef("ai-trading/redis:7.0.15-local"); r != "ai-trading/redis" || tag != "7.0.15-local" {
		t.Fatal(r, tag)
	}
	if r, tag := splitRef("localhost:5000/x"); r != "localhost:5000/x" || tag != "latest" {
		t.Fatal(r, tag)
	}
}

func TestSchemaMatchesTheSDK(t *testing.T) {
	s, err := testProvider.Schema()
	if err != nil {
		t.Fatal(err)
	}
	// pidsLimit: implemented here, absent from @pulumi/docker 5.x, declared by the program's own class.
	ext := sdktest.Extension{Token: "docker:index/container:Container", File: filepath.Join("..", "..", "..", "components", "runtime", "docker-container.ts"), Interface: "ContainerArgs"}
	sdktest.Check(t, s, filepath.Join("..", "..", "..", "node_modules", "@pulumi", "docker"), ext)
}

// Inputs that the schema does not declare are rejected at any depth, never silently ignored.
func TestCheckRejectsWhatIsNotImplemented(t *testing.T) {
	_, f := check(t, "docker:index/container:Container", props(
		"name", "n", "image", "i", "memory", "256m",
		"volumes", []any{map[string]any{"fromContainer": "other", "containerPath": "/d"}},
		"uploads", []any{map[string]any{"file": "/x", "content": "c", "sourceHash": "h"}},
		"networksAdvanced", []any{map[string]any{"aliases": []any{"a"}}},
	))
	got := map[string]bool{}
	for _, x := range f {
		got[x.Property] = true
	}
	want := map[string]bool{"memory": true, "volumes[0].fromContainer": true, "uploads[0].sourceHash": true, "networksAdvanced[0].name": true}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("failures %v", f)
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM x\n"})
	in, f := check(t, "docker:index/image:Image", props("imageName", "a:1", "skipPush", false, "build", map[string]any{"context": dir, "network": "host"}))
	if len(f) != 2 || f[0].Property != "build.network" || f[1].Property != "skipPush" {
		t.Fatalf("image failures %v", f)
	}
	if d := pluginkit.GetString(in, digestKey, ""); !strings.HasPrefix(d, "sha256:") {
		t.Fatalf("the context digest is a hidden input: %v", in)
	}
	if _, f := check(t, "docker:index/network:Network", props("driver", "bridge")); len(f) != 1 || f[0].Property != "name" {
		t.Fatalf("network name is required by this provider: %v", f)
	}
}

// The services image's build context: the repository root, whose .dockerignore excludes "*" and
// re-includes catalog/ and services/ (minus their node_modules). Its walk runs at every Check of
// the Image and again at the build.
//
//	go test -run '^$' -bench ContextFiles .
func BenchmarkContextFilesRepoRoot(b *testing.B) {
	root, _ := filepath.Abs(filepath.Join("..", "..", ".."))
	for i := 0; i < b.N; i++ {
		files, err := contextFiles(root, "services/Dockerfile")
		if err != nil || len(files) == 0 {
			b.Fatal(len(files), err)
		}
	}
}

// schema.json is the provider's schema as committed: tests/unit/provider-inputs.test.ts checks
// every input the dev program sets against it (the Pulumi mocks accept anything).
func TestSchemaFileIsCurrent(t *testing.T) {
	s, err := testProvider.Schema()
	if err != nil {
		t.Fatal(err)
	}
	sdktest.Golden(t, s, "schema.json")
}
