package main

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/ai-trading/pluginkit"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// An upload's owner and group are numeric IDs; names, signs, "uid:gid" and out-of-range values are
// refused by Check, naming the property, and by Create (uploadsOf) for an input Check never saw.
func TestUploadOwnerParsing(t *testing.T) {
	for s, want := range map[string]int{"0": 0, "101": 101, "0999": 999, "4294967294": 4294967294} {
		if got, err := parseID("owner", s); err != nil || got != want {
			t.Errorf("parseID(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for s, reason := range map[string]string{
		"":                     "must be a numeric uid",
		"nginx":                "must be a numeric uid",
		"101:101":              "must be a numeric uid",
		"-1":                   "must be a numeric uid",
		"+5":                   "must be a numeric uid",
		" 101":                 "must be a numeric uid",
		"1e3":                  "must be a numeric uid",
		"4294967295":           "out of range",
		"99999999999999999999": "out of range",
	} {
		if _, err := parseID("owner", s); err == nil || !strings.Contains(err.Error(), reason) {
			t.Errorf("parseID(%q): error %v, want one saying %q", s, err, reason)
		}
	}
	if _, err := parseID("group", "www-data"); err == nil || !strings.Contains(err.Error(), `group "www-data" must be a numeric gid`) {
		t.Errorf("group name: %v", err)
	}

	_, f := check(t, "docker:index/container:Container", props("name", "n", "image", "i", "uploads", []any{
		map[string]any{"file": "/ok", "content": "c", "owner": "101", "group": "101"},
		map[string]any{"file": "/a", "content": "c", "owner": "nginx"},
		map[string]any{"file": "/b", "content": "c", "owner": "101:101", "group": "x"},
		map[string]any{"file": "/c", "content": "c", "owner": 101.0},
	}))
	got := map[string]string{}
	for _, x := range f {
		got[x.Property] = x.Reason
	}
	if len(got) != 4 || !strings.Contains(got["uploads[1].owner"], "numeric uid") || !strings.Contains(got["uploads[2].owner"], "numeric uid") ||
		!strings.Contains(got["uploads[2].group"], "numeric gid") || !strings.Contains(got["uploads[3].owner"], "must be a string") {
		t.Fatalf("failures %v", f)
	}
	// Unknown at preview: nothing to check yet.
	unknown := props("name", "n", "image", "i")
	unknown["uploads"] = resource.NewArrayProperty([]resource.PropertyValue{
		resource.NewObjectProperty(resource.PropertyMap{"file": pluginkit.Str("/x"), "owner": pluginkit.Computed()}),
		pluginkit.Computed(),
	})
	if _, f := check(t, "docker:index/container:Container", unknown); len(f) != 0 {
		t.Fatalf("unknown owner: %v", f)
	}
	if _, err := uploadsOf(props("uploads", []any{map[string]any{"file": "/x", "owner": "root"}})); err == nil || !strings.Contains(err.Error(), "upload /x: owner \"root\"") {
		t.Fatalf("uploadsOf: %v", err)
	}
}

// The archive the engine extracts carries each file's owner, group and mode in its tar header
// (root, 0:0, unless given): the engine keeps them when copyUIDGID is not set.
func TestUploadTarHeaders(t *testing.T) {
	ups, err := uploadsOf(props("uploads", []any{
		map[string]any{"file": "/etc/nginx/tls/tls.key", "content": "key", "permissions": "0400", "owner": "101", "group": "102"},
		map[string]any{"file": "/etc/nginx/nginx.conf", "content": "conf", "permissions": "0444"},
		map[string]any{"file": "/big", "content": "b", "owner": "4294967294", "group": "3000000"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	b, err := uploadTar(ups)
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		name     string
		uid, gid int
		mode     int64
		data     string
	}
	var got []entry
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		got = append(got, entry{h.Name, h.Uid, h.Gid, h.Mode, string(data)})
	}
	want := []entry{
		{"etc/nginx/tls/tls.key", 101, 102, 0o400, "key"},
		{"etc/nginx/nginx.conf", 0, 0, 0o444, "conf"},
		{"big", 4294967294, 3000000, 0o644, "b"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("tar entries %+v, want %+v", got, want)
	}
}

// A readOnly container's uploads are host files, bind-mounted: an owned one is chowned, mode kept,
// in a directory private to root; without owned uploads the directory stays 0755 as before.
func TestBindUploadsOwner(t *testing.T) {
	base := t.TempDir()
	ups, err := uploadsOf(props("uploads", []any{
		map[string]any{"file": "/etc/nginx/tls/tls.key", "content": "key", "permissions": "0400", "owner": "101", "group": "102"},
		map[string]any{"file": "/etc/nginx/nginx.conf", "content": "conf", "permissions": "0444"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "edge")
	mounts, err := writeBindUploads(dir, ups)
	if os.Geteuid() != 0 {
		// Only root hands a file to another user: the error says so.
		if err == nil || !strings.Contains(err.Error(), "must run as root") {
			t.Fatalf("as uid %d: %v", os.Geteuid(), err)
		}
		t.Skip("chown needs root: ownership not checked")
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 2 || mounts[0]["Target"] != "/etc/nginx/tls/tls.key" || mounts[0]["ReadOnly"] != true || mounts[0]["Type"] != "bind" {
		t.Fatalf("mounts %v", mounts)
	}
	stat := func(p string) (os.FileMode, uint32, uint32) {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		return fi.Mode().Perm(), st.Uid, st.Gid
	}
	if m, u, g := stat(mounts[0]["Source"].(string)); m != 0o400 || u != 101 || g != 102 {
		t.Errorf("tls.key: mode %o owner %d:%d, want 400 101:102", m, u, g)
	}
	if m, u, g := stat(mounts[1]["Source"].(string)); m != 0o444 || u != 0 || g != 0 {
		t.Errorf("nginx.conf: mode %o owner %d:%d, want 444 0:0", m, u, g)
	}
	if m, u, _ := stat(dir); m != 0o700 || u != 0 {
		t.Errorf("dir: mode %o owner %d, want 700 root", m, u)
	}
	// Again without an owned upload (a replaced container): the old files are gone, the dir is 0755.
	mounts, err = writeBindUploads(dir, ups[1:])
	if err != nil || len(mounts) != 1 {
		t.Fatal(mounts, err)
	}
	if m, _, _ := stat(dir); m != 0o755 {
		t.Errorf("dir without owned uploads: mode %o, want 755", m)
	}
	if _, err := os.Stat(filepath.Join(dir, "1")); !os.IsNotExist(err) {
		t.Errorf("the previous uploads were not removed: %v", err)
	}
}

func TestIDRemappingOf(t *testing.T) {
	for want, opts := range map[string][]string{
		"":         {"name=apparmor", "name=seccomp,profile=default"},
		"userns":   {"name=apparmor", "name=seccomp,profile=default", "name=userns"},
		"rootless": {"name=seccomp,profile=default", "name=rootless", "name=cgroupns"},
	} {
		if got := idRemappingOf(opts); got != want {
			t.Errorf("idRemappingOf(%q) = %q, want %q", opts, got, want)
		}
	}
}

// Against a real engine: a container running as a non-root user reads a 0400 upload it owns, both
// where the engine extracts the archive and where the file is bind-mounted (readOnly), and cannot
// read it without the owner (the defect). Opt-in: DOCKER_PROVIDER_TEST_IMAGE names a local image
// with /bin/sh and cat (e.g. localhost/ai-trading/debian:bookworm); the engine is DOCKER_HOST's.
//
//	DOCKER_PROVIDER_TEST_IMAGE=localhost/ai-trading/debian:bookworm go test -run EngineUploadOwner .
func TestEngineUploadOwner(t *testing.T) {
	image := os.Getenv("DOCKER_PROVIDER_TEST_IMAGE")
	if image == "" {
		t.Skip("DOCKER_PROVIDER_TEST_IMAGE is not set: engine-backed upload test skipped")
	}
	eng, err := newEngine()
	if err != nil {
		t.Fatal(err)
	}
	c := &container{eng}
	t.Setenv("PULUMI_DOCKER_UPLOADS_DIR", t.TempDir())
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		readOnly bool
		owner    bool
	}{{"archive", false, true}, {"bind", true, true}, {"archive-root-owned", false, false}, {"bind-root-owned", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			up := map[string]any{"file": "/run/owned/secret.txt", "content": "the secret " + tc.name + "\n", "permissions": "0400"}
			if tc.owner {
				up["owner"], up["group"] = "4242", "4243"
			}
			in := props(
				"name", "provider-test-upload-owner-"+tc.name, "image", image,
				"entrypoints", []any{"/bin/sh", "-c"},
				"command", []any{"stat -c '%u:%g %a' /run/owned/secret.txt && cat /run/owned/secret.txt"},
				"networksAdvanced", []any{map[string]any{"name": "none"}},
				"uploads", []any{up},
				"user", "4242:4243", "readOnly", tc.readOnly,
				"restart", "no", "mustRun", false, "attach", true, "logs", true,
			)
			id, out, err := c.Create(ctx, in)
			if id != "" {
				defer func() { _ = c.Delete(ctx, id, out) }()
			}
			if !tc.owner {
				if err == nil || !strings.Contains(err.Error(), "0:0 400") || !strings.Contains(err.Error(), "Permission denied") {
					t.Fatalf("a root-owned 0400 upload must be unreadable to uid 4242: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if logs := pluginkit.GetString(out, "containerLogs", ""); logs != "4242:4243 400\nthe secret "+tc.name+"\n" {
				t.Fatalf("logs %q", logs)
			}
		})
	}
}
