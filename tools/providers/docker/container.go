package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ai-trading/pluginkit"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// container: docker:index/container:Container. Implemented inputs: see containerInputs; every other
// input is rejected by Check. Outputs: the inputs plus exitCode, containerLogs (attach/logs),
// networkDatas and external ports chosen by the engine.
//
// uploads are copied into the created container before it starts (PUT /containers/{id}/archive).
// The engine refuses that for a read-only root file system, so for readOnly containers each upload
// is written below uploadsDir() on this host and bind-mounted read-only at its path instead (the
// engine must then be local: DOCKER_HOST unix://).
//
// An upload's owner and group (numeric uid and gid, as in @pulumi/docker's ContainerUpload; default
// 0, root) own the file inside the container, so a 0400 secret can belong to the container's
// non-root user. The archive carries them in its tar headers: without copyUIDGID the engine
// extracts each entry with the header's uid/gid (through its user-namespace mapping, if any; moby
// daemon containerExtractToDir -> archive createTarFile, Lchown to hdr.Uid/hdr.Gid); copyUIDGID
// would instead give every entry the container's user, looked up by name. A bind-mounted upload is chowned on this host, which is the owner the
// container sees only when the engine maps no user IDs (no userns-remap, not rootless): otherwise
// Create refuses it. Its directory is then private to root (0700): the host account that happens
// to have the same uid must not read a secret meant for the container (runc, as root, still
// mounts it; the container never walks the host path).
type container struct{ eng *engine }

func containerType(eng *engine) *pluginkit.Type {
	return &pluginkit.Type{
		Token: "docker:index/container:Container",
		Inputs: pluginkit.Props{
			"name":                strProp().Doc("Required by this provider."),
			"hostname":            strProp(),
			"image":               strProp().Doc("Image ID or reference."),
			"command":             stringList(),
			"entrypoints":         stringList(),
			"envs":                stringList().Doc("NAME=value entries."),
			"networksAdvanced":    pluginkit.ArrayOf(ref(tokContainerNetworksAdvance)).Doc("The first is the network mode; the others are connected before start."),
			"ports":               pluginkit.ArrayOf(ref(tokContainerPort)),
			"volumes":             pluginkit.ArrayOf(ref(tokContainerVolume)),
			"uploads":             pluginkit.ArrayOf(ref(tokContainerUpload)).Doc("Copied in before start with their owner and group; bind-mounted read-only for readOnly containers."),
			"tmpfs":               stringMap().Doc("Mount path -> options."),
			"healthcheck":         ref(tokContainerHealthcheck),
			"memory":              intProp().Doc("Memory limit in MB."),
			"cpus":                strProp().Doc(`CPU limit, e.g. "0.5".`),
			"pidsLimit":           intProp().Doc("Most processes and threads the container may run (HostConfig.PidsLimit), positive. Not in @pulumi/docker 5.x: components/runtime/docker-container.ts declares it."),
			"user":                strProp(),
			"readOnly":            boolProp(),
			"capabilities":        ref(tokContainerCapabilities),
			"securityOpts":        stringList(),
			"privileged":          boolProp(),
			"labels":              pluginkit.ArrayOf(ref(tokContainerLabel)),
			"logDriver":           strProp().Doc("Default json-file."),
			"logOpts":             stringMap(),
			"restart":             strProp().Doc("no (default), on-failure, always, unless-stopped."),
			"maxRetryCount":       intProp(),
			"mustRun":             boolProp().Doc("Default true: create fails unless the container runs."),
			"start":               boolProp().Doc("Default true."),
			"attach":              boolProp().Doc("Wait for the exit; a non-zero exit code fails the create."),
			"attachTimeout":       intProp().Doc("With attach: most seconds the run may last, positive; past it the container is stopped (destroyGraceSeconds) and removed and the create fails. Unset: no limit. Not in @pulumi/docker 5.x: components/runtime/docker-container.ts declares it."),
			"logs":                boolProp().Doc("With attach: keep the output in containerLogs."),
			"wait":                boolProp().Doc("Wait until the health check reports healthy."),
			"waitTimeout":         intProp().Doc("Seconds (default 60)."),
			"destroyGraceSeconds": intProp().Doc("Stop timeout at delete (default 10)."),
			"workingDir":          strProp(),
			"init":                boolProp(),
			"stopSignal":          strProp(),
			"stopTimeout":         intProp(),
			"removeVolumes":       boolProp().Doc("Remove anonymous volumes at delete (default true)."),
			"rm":                  boolProp().Doc("Accepted and ignored."),
		},
		Outputs: pluginkit.Props{
			"exitCode":      intProp().Doc("With attach."),
			"containerLogs": strProp().Doc("With attach and logs."),
			"networkDatas":  pluginkit.ArrayOf(ref(tokContainerNetworkData)),
		},
		RequiredInputs:      []string{"image", "name"},
		RequiredOutputs:     []string{"networkDatas"},
		Hidden:              []string{resolvedImageKey},
		StateHeld:           []string{resolvedImageKey},
		DeleteBeforeReplace: true,
		Resource:            &container{eng},
	}
}

// resolvedImageKey: hidden input that Check sets to the local image ID that "image" names (unless
// "image" already is an ID). A rebuilt or re-tagged image (e.g. docker.Image with the same
// imageName, or a local image rebuilt by scripts/images) then replaces the container.
const resolvedImageKey = "resolvedImageId"

func (c *container) Check(ctx context.Context, m resource.PropertyMap) []*pulumirpc.CheckFailure {
	var f []*pulumirpc.CheckFailure
	resolveImageID(ctx, c.eng, m, "image")
	pluginkit.SetDefault(m, "mustRun", resource.NewBoolProperty(true))
	pluginkit.SetDefault(m, "start", resource.NewBoolProperty(true))
	pluginkit.SetDefault(m, "restart", str("no"))
	pluginkit.SetDefault(m, "logDriver", str("json-file"))
	pluginkit.SetDefault(m, "attach", resource.NewBoolProperty(false))
	pluginkit.SetDefault(m, "logs", resource.NewBoolProperty(false))
	pluginkit.SetDefault(m, "wait", resource.NewBoolProperty(false))
	pluginkit.SetDefault(m, "waitTimeout", resource.NewNumberProperty(60))
	pluginkit.SetDefault(m, "removeVolumes", resource.NewBoolProperty(true))
	if pvv, ok := pluginkit.PV(m, "ports"); ok && pvv.IsArray() {
		arr := make([]resource.PropertyValue, 0, len(pvv.ArrayValue()))
		for _, p := range pvv.ArrayValue() {
			if p.IsObject() {
				o := p.ObjectValue().Copy()
				pluginkit.SetDefault(o, "ip", str("0.0.0.0"))
				pluginkit.SetDefault(o, "protocol", str("tcp"))
				p = resource.NewObjectProperty(o)
			}
			arr = append(arr, p)
		}
		m["ports"] = resource.NewArrayProperty(arr)
	}
	if v, ok := pluginkit.PV(m, "cpus"); ok && v.IsString() {
		if _, err := strconv.ParseFloat(v.StringValue(), 64); err != nil {
			f = append(f, &pulumirpc.CheckFailure{Property: "cpus", Reason: fmt.Sprintf("cpus %q is not a number", v.StringValue())})
		}
	}
	// The engine reads 0 and -1 as "unlimited": an explicit value that lifts the limit is refused.
	if v, ok := pluginkit.PV(m, "pidsLimit"); ok && v.IsNumber() && v.NumberValue() < 1 {
		f = append(f, &pulumirpc.CheckFailure{Property: "pidsLimit", Reason: fmt.Sprintf("pidsLimit must be a positive integer, got %v (leave it unset for the engine's default)", v.NumberValue())})
	}
	if hc, ok := pluginkit.Object(m, "healthcheck"); ok {
		for _, k := range []string{"interval", "timeout", "startPeriod", "startInterval"} {
			if s := pluginkit.GetString(hc, k, ""); s != "" {
				if _, err := time.ParseDuration(s); err != nil {
					f = append(f, &pulumirpc.CheckFailure{Property: "healthcheck." + k, Reason: err.Error()})
				}
			}
		}
	}
	if pvv, ok := pluginkit.PV(m, "uploads"); ok && pvv.IsArray() {
		for i, e := range pvv.ArrayValue() {
			if e = pluginkit.Unwrap(e); !e.IsObject() {
				continue // unknown at preview
			}
			for _, k := range []string{"owner", "group"} {
				if v, ok := pluginkit.PV(e.ObjectValue(), k); ok && v.IsString() {
					if _, err := parseID(k, v.StringValue()); err != nil {
						f = append(f, &pulumirpc.CheckFailure{Property: fmt.Sprintf("uploads[%d].%s", i, k), Reason: err.Error()})
					}
				}
			}
		}
	}
	if pluginkit.GetBool(m, "attach", false) && pluginkit.GetBool(m, "wait", false) {
		f = append(f, &pulumirpc.CheckFailure{Property: "wait", Reason: "attach and wait cannot both be set"})
	}
	// A limit that is no limit (0, negative) or bounds nothing (no attach) is a mistake, not a default.
	if v, ok := pluginkit.PV(m, "attachTimeout"); ok && v.IsNumber() {
		if v.NumberValue() < 1 {
			f = append(f, &pulumirpc.CheckFailure{Property: "attachTimeout", Reason: fmt.Sprintf("attachTimeout must be a positive integer of seconds, got %v (leave it unset for no limit)", v.NumberValue())})
		} else if av, ok := pluginkit.PV(m, "attach"); ok && av.IsBool() && !av.BoolValue() {
			f = append(f, &pulumirpc.CheckFailure{Property: "attachTimeout", Reason: "attachTimeout bounds the wait of attach, which is not set"})
		}
	}
	return f
}

// Preview: the engine chooses the external ports that are not given, so given ports are unknown too.
func (c *container) Preview(in resource.PropertyMap) resource.PropertyMap {
	out := resource.PropertyMap{"networkDatas": pluginkit.Computed(), "exitCode": pluginkit.Computed(), "containerLogs": pluginkit.Computed()}
	if pvv, ok := pluginkit.PV(in, "ports"); ok && pvv.ContainsUnknowns() || ok && len(pluginkit.ObjectList(in, "ports")) > 0 {
		out["ports"] = pluginkit.Computed()
	}
	return out
}

func dur(s string) int64 {
	d, _ := time.ParseDuration(s)
	return int64(d)
}

// createBody maps the inputs to the engine's container create request.
func createBody(in resource.PropertyMap) (map[string]any, []string) {
	cfg := map[string]any{"Image": pluginkit.GetString(in, "image", "")}
	if v := pluginkit.GetString(in, "hostname", ""); v != "" {
		cfg["Hostname"] = v
	}
	if v := pluginkit.GetString(in, "user", ""); v != "" {
		cfg["User"] = v
	}
	if v := pluginkit.GetString(in, "workingDir", ""); v != "" {
		cfg["WorkingDir"] = v
	}
	if v := pluginkit.GetString(in, "stopSignal", ""); v != "" {
		cfg["StopSignal"] = v
	}
	if v := pluginkit.GetInt(in, "stopTimeout", -1); v >= 0 {
		cfg["StopTimeout"] = v
	}
	if v := pluginkit.StringList(in, "envs"); v != nil {
		cfg["Env"] = v
	}
	if v := pluginkit.StringList(in, "command"); v != nil {
		cfg["Cmd"] = v
	}
	if v := pluginkit.StringList(in, "entrypoints"); v != nil {
		cfg["Entrypoint"] = v
	}
	cfg["Labels"] = labelsOf(in, "labels")
	if hc, ok := pluginkit.Object(in, "healthcheck"); ok {
		cfg["Healthcheck"] = map[string]any{
			"Test":          pluginkit.StringList(hc, "tests"),
			"Interval":      dur(pluginkit.GetString(hc, "interval", "0s")),
			"Timeout":       dur(pluginkit.GetString(hc, "timeout", "0s")),
			"StartPeriod":   dur(pluginkit.GetString(hc, "startPeriod", "0s")),
			"StartInterval": dur(pluginkit.GetString(hc, "startInterval", "0s")),
			"Retries":       pluginkit.GetInt(hc, "retries", 0),
		}
	}
	host := map[string]any{
		"Privileged":     pluginkit.GetBool(in, "privileged", false),
		"ReadonlyRootfs": pluginkit.GetBool(in, "readOnly", false),
		"SecurityOpt":    pluginkit.StringList(in, "securityOpts"),
		"RestartPolicy":  map[string]any{"Name": pluginkit.GetString(in, "restart", "no"), "MaximumRetryCount": pluginkit.GetInt(in, "maxRetryCount", 0)},
		"LogConfig":      map[string]any{"Type": pluginkit.GetString(in, "logDriver", "json-file"), "Config": pluginkit.StringMap(in, "logOpts")},
	}
	if v, ok := pluginkit.PV(in, "init"); ok && v.IsBool() {
		host["Init"] = v.BoolValue()
	}
	if v := pluginkit.GetInt(in, "memory", 0); v > 0 {
		host["Memory"] = int64(v) * 1024 * 1024
	}
	if v := pluginkit.GetInt(in, "pidsLimit", 0); v > 0 {
		host["PidsLimit"] = int64(v)
	}
	if v := pluginkit.GetString(in, "cpus", ""); v != "" {
		cpus, _ := strconv.ParseFloat(v, 64)
		host["NanoCpus"] = int64(cpus * 1e9)
	}
	if caps, ok := pluginkit.Object(in, "capabilities"); ok {
		host["CapAdd"] = pluginkit.StringList(caps, "adds")
		host["CapDrop"] = pluginkit.StringList(caps, "drops")
	}
	if v := pluginkit.StringMap(in, "tmpfs"); len(v) > 0 {
		host["Tmpfs"] = v
	}
	var mounts []map[string]any
	for _, v := range pluginkit.ObjectList(in, "volumes") {
		m := map[string]any{"Target": pluginkit.GetString(v, "containerPath", ""), "ReadOnly": pluginkit.GetBool(v, "readOnly", false)}
		if hp := pluginkit.GetString(v, "hostPath", ""); hp != "" {
			m["Type"], m["Source"] = "bind", hp
		} else {
			m["Type"], m["Source"] = "volume", pluginkit.GetString(v, "volumeName", "")
		}
		mounts = append(mounts, m)
	}
	exposed := map[string]any{}
	bindings := map[string][]map[string]string{}
	for _, p := range pluginkit.ObjectList(in, "ports") {
		key := fmt.Sprintf("%d/%s", pluginkit.GetInt(p, "internal", 0), pluginkit.GetString(p, "protocol", "tcp"))
		exposed[key] = map[string]any{}
		hp := ""
		if e := pluginkit.GetInt(p, "external", 0); e > 0 {
			hp = strconv.Itoa(e)
		}
		bindings[key] = append(bindings[key], map[string]string{"HostIp": pluginkit.GetString(p, "ip", "0.0.0.0"), "HostPort": hp})
	}
	if len(exposed) > 0 {
		cfg["ExposedPorts"] = exposed
		host["PortBindings"] = bindings
	}
	var extraNets []string
	nets := pluginkit.ObjectList(in, "networksAdvanced")
	if len(nets) > 0 {
		first := nets[0]
		host["NetworkMode"] = pluginkit.GetString(first, "name", "")
		ep := map[string]any{"Aliases": pluginkit.StringList(first, "aliases")}
		cfg["NetworkingConfig"] = map[string]any{"EndpointsConfig": map[string]any{pluginkit.GetString(first, "name", ""): ep}}
		for _, n := range nets[1:] {
			extraNets = append(extraNets, pluginkit.GetString(n, "name", ""))
		}
	}
	if mounts != nil {
		host["Mounts"] = mounts
	}
	cfg["HostConfig"] = host
	return cfg, extraNets
}

type upload struct {
	file     string
	mode     int64
	data     []byte
	uid, gid int  // owner and group in the container
	owned    bool // owner or group given (else both 0, root)
}

// maxID: the largest uid or gid accepted. Linux IDs are 32-bit and (uid_t)-1 is reserved: chown(2)
// reads it as "leave unchanged".
const maxID = 1<<32 - 2

// parseID reads an upload's owner (what: "owner") or group ("group"): a decimal uid or gid only.
// A name would be resolved on the wrong side (this host's /etc/passwd, or the engine's), never in
// the image the container runs.
func parseID(what, s string) (int, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		id := "uid"
		if what == "group" {
			id = "gid"
		}
		return 0, fmt.Errorf("%s %q must be a numeric %s (e.g. \"101\"): names are not resolved, this host's user database is not the image's", what, s, id)
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > maxID {
		return 0, fmt.Errorf("%s %q is out of range (at most %d)", what, s, uint64(maxID))
	}
	return int(n), nil
}

func uploadsOf(in resource.PropertyMap) ([]upload, error) {
	var out []upload
	for _, u := range pluginkit.ObjectList(in, "uploads") {
		up := upload{file: pluginkit.GetString(u, "file", ""), mode: 0o644}
		if p := pluginkit.GetString(u, "permissions", ""); p != "" {
			m, err := strconv.ParseInt(p, 8, 32)
			if err != nil {
				return nil, fmt.Errorf("upload %s: permissions %q: %w", up.file, p, err)
			}
			up.mode = m
		} else if pluginkit.GetBool(u, "executable", false) {
			up.mode = 0o755
		}
		for _, id := range []struct {
			key string
			to  *int
		}{{"owner", &up.uid}, {"group", &up.gid}} {
			if v, ok := pluginkit.PV(u, id.key); ok && v.IsString() {
				n, err := parseID(id.key, v.StringValue())
				if err != nil {
					return nil, fmt.Errorf("upload %s: %w", up.file, err)
				}
				*id.to, up.owned = n, true
			}
		}
		switch {
		case pluginkit.GetString(u, "contentBase64", "") != "":
			b, err := base64.StdEncoding.DecodeString(pluginkit.GetString(u, "contentBase64", ""))
			if err != nil {
				return nil, fmt.Errorf("upload %s: contentBase64: %w", up.file, err)
			}
			up.data = b
		case pluginkit.GetString(u, "source", "") != "":
			b, err := os.ReadFile(pluginkit.GetString(u, "source", ""))
			if err != nil {
				return nil, fmt.Errorf("upload %s: %w", up.file, err)
			}
			up.data = b
		default:
			up.data = []byte(pluginkit.GetString(u, "content", ""))
		}
		if !path.IsAbs(up.file) {
			return nil, fmt.Errorf("upload %q: the path must be absolute", up.file)
		}
		out = append(out, up)
	}
	return out, nil
}

func uploadTar(ups []upload) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, u := range ups {
		// Uid/Gid: the owner and group the engine gives the extracted file (0, root, unless given).
		hdr := &tar.Header{Name: strings.TrimPrefix(path.Clean(u.file), "/"), Mode: u.mode, Size: int64(len(u.data)), Typeflag: tar.TypeReg, ModTime: time.Now(), Uid: u.uid, Gid: u.gid}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(u.data); err != nil {
			return nil, err
		}
	}
	err := tw.Close()
	return buf.Bytes(), err
}

// writeBindUploads writes the uploads of a readOnly container below dir (emptied first) and returns
// their read-only bind mounts. Owned files are chowned, in a dir made private (0700) before any of
// them is written: see the comment on container.
func writeBindUploads(dir string, ups []upload) ([]map[string]any, error) {
	_ = os.RemoveAll(dir)
	perm := os.FileMode(0o755)
	for _, u := range ups {
		if u.owned {
			perm = 0o700
		}
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	if err := os.Mkdir(dir, perm); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, perm); err != nil { // the umask is not the mode
		return nil, err
	}
	var mounts []map[string]any
	for i, u := range ups {
		src := filepath.Join(dir, strconv.Itoa(i), filepath.Base(u.file))
		if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(src, u.data, os.FileMode(u.mode)); err != nil {
			return nil, err
		}
		if u.owned {
			if err := os.Chown(src, u.uid, u.gid); err != nil {
				return nil, fmt.Errorf("upload %s: owner %d, group %d of the bind-mounted file (%s): %w (the plugin must run as root to hand a file to another user)", u.file, u.uid, u.gid, src, err)
			}
		}
		// After the chown, which may clear setuid/setgid bits.
		if err := os.Chmod(src, os.FileMode(u.mode)); err != nil {
			return nil, err
		}
		mounts = append(mounts, map[string]any{"Type": "bind", "Source": src, "Target": u.file, "ReadOnly": true})
	}
	return mounts, nil
}

// idRemapping names how the engine maps user IDs ("userns", "rootless"), "" when it does not: then
// a host file's owner is the owner the container sees.
func (c *container) idRemapping(ctx context.Context) (string, error) {
	var info struct{ SecurityOptions []string }
	if err := c.eng.call(ctx, "GET", "/info", nil, nil, &info); err != nil {
		return "", err
	}
	return idRemappingOf(info.SecurityOptions), nil
}

// idRemappingOf reads GET /info's SecurityOptions, e.g. ["name=seccomp,profile=default", "name=userns"].
func idRemappingOf(securityOptions []string) string {
	for _, o := range securityOptions {
		for _, kv := range strings.Split(o, ",") {
			if kv == "name=userns" || kv == "name=rootless" {
				return strings.TrimPrefix(kv, "name=")
			}
		}
	}
	return ""
}

func uploadsDir(name string) string {
	base := os.Getenv("PULUMI_DOCKER_UPLOADS_DIR")
	if base == "" {
		base = "/var/lib/pulumi-resource-docker/uploads"
	}
	return filepath.Join(base, name)
}

type containerState struct {
	Id           string
	Name         string
	RestartCount int
	State        struct {
		Status     string
		Running    bool
		Restarting bool
		ExitCode   int
		Health     *struct {
			Status string
			Log    []struct {
				ExitCode int
				Output   string
			}
		}
	}
	NetworkSettings struct {
		Ports    map[string][]struct{ HostIp, HostPort string }
		Networks map[string]struct {
			IPAddress, Gateway, MacAddress, GlobalIPv6Address, IPv6Gateway string
			IPPrefixLen, GlobalIPv6PrefixLen                               int
		}
	}
}

func (c *container) inspect(ctx context.Context, id string) (*containerState, error) {
	var st containerState
	err := c.eng.call(ctx, "GET", "/containers/"+url.PathEscape(id)+"/json", nil, nil, &st)
	return &st, err
}

func (c *container) logs(ctx context.Context, id string) (string, error) {
	resp, err := c.eng.do(ctx, "GET", "/containers/"+url.PathEscape(id)+"/logs", url.Values{"stdout": {"1"}, "stderr": {"1"}}, nil, "")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return demuxLogs(b), err
}

func (c *container) Create(ctx context.Context, in resource.PropertyMap) (id string, out resource.PropertyMap, err error) {
	name := pluginkit.GetString(in, "name", "")
	body, extraNets := createBody(in)
	ups, err := uploadsOf(in)
	if err != nil {
		return "", nil, err
	}
	readOnly := pluginkit.GetBool(in, "readOnly", false)
	if readOnly && len(ups) > 0 {
		if !c.eng.local {
			return "", nil, fmt.Errorf("uploads into a readOnly container need a local engine (bind mounts)")
		}
		for _, u := range ups {
			if !u.owned {
				continue
			}
			remap, err := c.idRemapping(ctx)
			if err != nil {
				return "", nil, err
			}
			if remap != "" {
				return "", nil, fmt.Errorf("upload %s of readOnly container %s: owner %d, group %d cannot be kept: the engine remaps user IDs (%s), so the container would not see the bind-mounted host file's owner (drop readOnly, whose uploads the engine extracts with their owner, or use an engine without ID remapping)", u.file, name, u.uid, u.gid, remap)
			}
			break
		}
		bound, err := writeBindUploads(uploadsDir(name), ups)
		if err != nil {
			return "", nil, err
		}
		host := body["HostConfig"].(map[string]any)
		mounts, _ := host["Mounts"].([]map[string]any)
		host["Mounts"] = append(mounts, bound...)
	}
	var created struct{ Id string }
	if err := c.eng.call(ctx, "POST", "/containers/create", url.Values{"name": {name}}, body, &created); err != nil {
		return "", nil, fmt.Errorf("create container %s: %w", name, err)
	}
	id = created.Id
	// Any failure from here on removes the container: the resource is not recorded, the next up
	// retries. (The error names the container and carries its log tail.) Note: a return sets id to "".
	createdID := created.Id
	defer func() {
		if err != nil {
			_ = c.remove(context.Background(), createdID, name, 0, true)
		}
	}()
	for _, n := range extraNets {
		if err := c.eng.call(ctx, "POST", "/networks/"+url.PathEscape(n)+"/connect", nil, map[string]any{"Container": id}, nil); err != nil {
			return "", nil, fmt.Errorf("connect %s to network %s: %w", name, n, err)
		}
	}
	if len(ups) > 0 && !readOnly {
		tb, err := uploadTar(ups)
		if err != nil {
			return "", nil, err
		}
		if _, err := c.eng.do(ctx, "PUT", "/containers/"+url.PathEscape(id)+"/archive", url.Values{"path": {"/"}}, bytes.NewReader(tb), "application/x-tar"); err != nil {
			return "", nil, fmt.Errorf("upload files into %s: %w", name, err)
		}
	}
	out = in.Copy()
	if pluginkit.GetBool(in, "start", true) {
		if err := c.eng.call(ctx, "POST", "/containers/"+url.PathEscape(id)+"/start", nil, nil, nil); err != nil {
			return "", nil, fmt.Errorf("start %s: %w", name, err)
		}
		switch {
		case pluginkit.GetBool(in, "attach", false):
			code, werr := c.waitExit(ctx, id, name, time.Duration(pluginkit.GetInt(in, "attachTimeout", 0))*time.Second, pluginkit.GetInt(in, "destroyGraceSeconds", 10))
			if werr != nil {
				return "", nil, werr
			}
			logs, lerr := c.logs(ctx, id)
			if code != 0 {
				return "", nil, fmt.Errorf("container %s exited with code %d; last log lines:\n%s", name, code, tailLines(logs, 30))
			}
			if lerr != nil {
				return "", nil, lerr
			}
			out["exitCode"] = resource.NewNumberProperty(float64(code))
			if pluginkit.GetBool(in, "logs", false) {
				out["containerLogs"] = str(logs)
			}
		case pluginkit.GetBool(in, "wait", false):
			if err := c.waitHealthy(ctx, id, name, time.Duration(pluginkit.GetInt(in, "waitTimeout", 60))*time.Second); err != nil {
				return "", nil, err
			}
		case pluginkit.GetBool(in, "mustRun", true):
			st, err := c.inspect(ctx, id)
			if err != nil {
				return "", nil, err
			}
			if !st.State.Running {
				logs, _ := c.logs(ctx, id)
				return "", nil, fmt.Errorf("container %s is not running (%s, exit code %d); last log lines:\n%s", name, st.State.Status, st.State.ExitCode, tailLines(logs, 30))
			}
		}
	}
	st, err := c.inspect(ctx, id)
	if err != nil {
		return "", nil, err
	}
	fillRuntime(out, st)
	return id, out, nil
}

// waitExit waits until the started container exits and returns its exit code. With a limit
// (attachTimeout), a run still going at it is stopped (SIGTERM, SIGKILL grace seconds later) and an
// error names the limit and the run's last log lines; Create's cleanup then removes the container.
// Without one, a run that never ends holds the update, and the stack's lock, until the engine or
// the operator stops it: a one-shot job always sets one (components/runtime/docker.ts).
func (c *container) waitExit(ctx context.Context, id, name string, limit time.Duration, grace int) (exitCode int, err error) {
	waitCtx, cancel := ctx, context.CancelFunc(func() {})
	if limit > 0 {
		waitCtx, cancel = context.WithTimeout(ctx, limit)
	}
	defer cancel()
	var w struct{ StatusCode int }
	err = c.eng.call(waitCtx, "POST", "/containers/"+url.PathEscape(id)+"/wait", url.Values{"condition": {"not-running"}}, nil, &w)
	if err == nil {
		return w.StatusCode, nil
	}
	if limit <= 0 || ctx.Err() != nil || !errors.Is(waitCtx.Err(), context.DeadlineExceeded) {
		return 0, fmt.Errorf("wait for %s: %w", name, err)
	}
	stopErr := c.eng.call(ctx, "POST", "/containers/"+url.PathEscape(id)+"/stop", url.Values{"t": {strconv.Itoa(grace)}}, nil, nil)
	if stopErr != nil && !isNotFound(stopErr) && !isStatus(stopErr, 304) {
		return 0, fmt.Errorf("container %s ran past its time limit (attachTimeout %s), and stopping it failed: %w", name, limit, stopErr)
	}
	logs, _ := c.logs(ctx, id)
	return 0, fmt.Errorf("container %s ran past its time limit (attachTimeout %s): stopped (SIGTERM, SIGKILL %ds later) and removed; last log lines:\n%s", name, limit, grace, tailLines(logs, 30))
}

func (c *container) waitHealthy(ctx context.Context, id, name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := c.inspect(ctx, id)
		if err != nil {
			return err
		}
		if !st.State.Running && !st.State.Restarting {
			logs, _ := c.logs(ctx, id)
			return fmt.Errorf("container %s stopped (%s, exit code %d) before it was healthy; last log lines:\n%s", name, st.State.Status, st.State.ExitCode, tailLines(logs, 30))
		}
		if st.RestartCount >= 3 && (st.State.Health == nil || st.State.Health.Status != "healthy") {
			logs, _ := c.logs(ctx, id)
			return fmt.Errorf("container %s is restarting in a loop (%d restarts) before it was healthy; last log lines:\n%s", name, st.RestartCount, tailLines(logs, 30))
		}
		if st.State.Health == nil {
			return nil // no health check: running is all there is to wait for
		}
		if st.State.Health.Status == "healthy" {
			return nil
		}
		if time.Now().After(deadline) {
			last := "(no health check has run yet)"
			if n := len(st.State.Health.Log); n > 0 {
				l := st.State.Health.Log[n-1]
				last = fmt.Sprintf("exit code %d: %s", l.ExitCode, strings.TrimSpace(l.Output))
			}
			logs, _ := c.logs(ctx, id)
			return fmt.Errorf("container %s was not healthy after %s (health status %s); last health check %s\nlast log lines:\n%s", name, timeout, st.State.Health.Status, last, tailLines(logs, 20))
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
}

// fillRuntime adds what the engine chose: networkDatas and the host ports of published ports.
func fillRuntime(out resource.PropertyMap, st *containerState) {
	var nds []resource.PropertyValue
	for nname, n := range st.NetworkSettings.Networks {
		nds = append(nds, resource.NewObjectProperty(resource.PropertyMap{
			"networkName":            str(nname),
			"ipAddress":              str(n.IPAddress),
			"ipPrefixLength":         resource.NewNumberProperty(float64(n.IPPrefixLen)),
			"gateway":                str(n.Gateway),
			"macAddress":             str(n.MacAddress),
			"globalIpv6Address":      str(n.GlobalIPv6Address),
			"globalIpv6PrefixLength": resource.NewNumberProperty(float64(n.GlobalIPv6PrefixLen)),
			"ipv6Gateway":            str(n.IPv6Gateway),
		}))
	}
	if nds == nil {
		nds = []resource.PropertyValue{}
	}
	out["networkDatas"] = resource.NewArrayProperty(nds)
	if pvv, ok := pluginkit.PV(out, "ports"); ok && pvv.IsArray() {
		var arr []resource.PropertyValue
		for _, p := range pvv.ArrayValue() {
			if p.IsObject() {
				o := p.ObjectValue().Copy()
				if pluginkit.GetInt(o, "external", 0) == 0 {
					key := fmt.Sprintf("%d/%s", pluginkit.GetInt(o, "internal", 0), pluginkit.GetString(o, "protocol", "tcp"))
					if b := st.NetworkSettings.Ports[key]; len(b) > 0 {
						if hp, err := strconv.Atoi(b[0].HostPort); err == nil {
							o["external"] = resource.NewNumberProperty(float64(hp))
						}
					}
				}
				p = resource.NewObjectProperty(o)
			}
			arr = append(arr, p)
		}
		out["ports"] = resource.NewArrayProperty(arr)
	}
}

// read: gone when the engine no longer has the container.
func (c *container) Read(ctx context.Context, id string, state resource.PropertyMap) (bool, resource.PropertyMap, error) {
	st, err := c.inspect(ctx, id)
	if isNotFound(err) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, err
	}
	out := state.Copy()
	fillRuntime(out, st)
	return true, out, nil
}

// remove stops the container with the grace period, then removes it (also when already exited).
func (c *container) remove(ctx context.Context, id, name string, grace int, removeVolumes bool) error {
	err := c.eng.call(ctx, "POST", "/containers/"+url.PathEscape(id)+"/stop", url.Values{"t": {strconv.Itoa(grace)}}, nil, nil)
	if err != nil && !isNotFound(err) && !isStatus(err, 304) {
		return fmt.Errorf("stop %s: %w", name, err)
	}
	err = c.eng.call(ctx, "DELETE", "/containers/"+url.PathEscape(id), url.Values{"v": {strconv.FormatBool(removeVolumes)}, "force": {"1"}}, nil, nil)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	// Removal of a container is asynchronous in some engines: wait until its name is free.
	for i := 0; i < 100; i++ {
		if _, err := c.inspect(ctx, id); isNotFound(err) {
			break
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	if name != "" {
		_ = os.RemoveAll(uploadsDir(name))
	}
	return nil
}

func (c *container) Delete(ctx context.Context, id string, state resource.PropertyMap) error {
	return c.remove(ctx, id, pluginkit.GetString(state, "name", ""), pluginkit.GetInt(state, "destroyGraceSeconds", 10), pluginkit.GetBool(state, "removeVolumes", true))
}
