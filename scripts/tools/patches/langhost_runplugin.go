// RunPlugin for the pulumi-language-nodejs host built from sdk/v3 v3.68.0 (see
// scripts/tools/build-pulumi-tools.sh). That host predates RunPlugin ("not supported"), but
// CLI >= ~3.221 starts Node policy packs (kind "analyzer") and Node plugins through it.
//
// The v3.68.0 protobuf types lack the fields newer CLIs send (info = 5, kind = 6), so they are
// read from the message's unknown fields. Written for this repo; not upstream code.

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

type runPluginExtras struct {
	programDir string
	kind       string
	typescript bool
	tsconfig   string
	nodeargs   string
}

// fieldsOf returns the length-delimited fields of a protobuf message, by field number.
func fieldsOf(raw []byte) map[protowire.Number][][]byte {
	out := map[protowire.Number][][]byte{}
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return out
		}
		raw = raw[n:]
		if typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(raw)
			if m < 0 {
				return out
			}
			out[num] = append(out[num], v)
			raw = raw[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, raw)
		if m < 0 {
			return out
		}
		raw = raw[m:]
	}
	return out
}

func parseRunPluginExtras(unknown []byte) runPluginExtras {
	x := runPluginExtras{typescript: true}
	f := fieldsOf(unknown)
	if v := f[6]; len(v) > 0 { // RunPluginRequest.kind
		x.kind = string(v[0])
	}
	if v := f[5]; len(v) > 0 { // RunPluginRequest.info (ProgramInfo)
		info := fieldsOf(v[0])
		if d := info[2]; len(d) > 0 { // ProgramInfo.program_directory
			x.programDir = string(d[0])
		}
		if o := info[4]; len(o) > 0 { // ProgramInfo.options (google.protobuf.Struct)
			var s structpb.Struct
			if err := proto.Unmarshal(o[0], &s); err == nil {
				m := s.AsMap()
				if b, ok := m["typescript"].(bool); ok {
					x.typescript = b
				}
				if t, ok := m["tsconfig"].(string); ok {
					x.tsconfig = t
				}
				if a, ok := m["nodeargs"].(string); ok {
					x.nodeargs = a
				}
			}
		}
	}
	return x
}

type runPluginStream struct {
	mu     *sync.Mutex
	server pulumirpc.LanguageRuntime_RunPluginServer
	stderr bool
}

func (w runPluginStream) Write(p []byte) (int, error) {
	buf := append([]byte(nil), p...)
	resp := &pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stdout{Stdout: buf}}
	if w.stderr {
		resp = &pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stderr{Stderr: buf}}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.server.Send(resp); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (host *nodeLanguageHost) RunPlugin(
	req *pulumirpc.RunPluginRequest, server pulumirpc.LanguageRuntime_RunPluginServer,
) error {
	x := parseRunPluginExtras(req.ProtoReflect().GetUnknown())
	dir := x.programDir
	if dir == "" {
		dir = req.GetProgram()
	}
	if dir == "" {
		dir = req.GetPwd()
	}
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		return err
	}

	module := "@pulumi/pulumi/cmd/run-plugin"
	if x.kind == "analyzer" {
		module = "@pulumi/pulumi/cmd/run-policy-pack"
	}
	resolve := exec.Command(nodeBin, "-e",
		"console.log(require.resolve(process.argv[1], { paths: [process.argv[2]] }))", module, dir)
	resolve.Dir = dir
	out, err := resolve.Output()
	if err != nil {
		return fmt.Errorf("could not find %s from %s (run npm install there): %w", module, dir, err)
	}
	runPath := strings.TrimSpace(string(out))

	args := []string{}
	if x.nodeargs != "" {
		args = append(args, strings.Fields(x.nodeargs)...)
	}
	args = append(args, runPath)
	if x.kind == "analyzer" {
		// run-policy-pack: <engine-address> <policy pack directory>
		args = append(args, req.GetArgs()...)
		args = append(args, dir)
	} else {
		args = append(args, dir)
		args = append(args, req.GetArgs()...)
	}

	env := append(os.Environ(), req.GetEnv()...)
	if x.typescript {
		env = append(env, "PULUMI_NODEJS_TYPESCRIPT=true")
	}
	if x.tsconfig != "" {
		env = append(env, "PULUMI_NODEJS_TSCONFIG_PATH="+x.tsconfig)
	}

	mu := &sync.Mutex{}
	cmd := exec.CommandContext(server.Context(), nodeBin, args...)
	if x.kind == "analyzer" {
		cmd.Dir = dir // policy packs always ran from their own directory
	} else if req.GetPwd() != "" {
		cmd.Dir = req.GetPwd()
	}
	cmd.Env = env
	cmd.Stdout = runPluginStream{mu: mu, server: server}
	cmd.Stderr = runPluginStream{mu: mu, server: server, stderr: true}

	code := int32(0)
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) {
			return fmt.Errorf("could not run plugin %s: %w", dir, err)
		}
		code = -1
		if status, ok := exitErr.Sys().(syscall.WaitStatus); ok {
			code = int32(status.ExitStatus())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return server.Send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: code}})
}
