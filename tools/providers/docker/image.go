package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ai-trading/pluginkit"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// image: docker:index/image:Image (imageName, build {context, dockerfile, args, platform, target},
// skipPush, buildOnPreview, registry) -> imageName, repoDigest (empty: never pushed), baseImageName,
// context, dockerfile, platform, registryServer.
// Builds with the engine's classic builder (POST /build with a context tar that honours
// .dockerignore). Pushing is not implemented: skipPush must be true. Check stores the hash of the
// context files that .dockerignore keeps as the hidden input "contextDigest", so editing a file in
// the context replaces (rebuilds) the image. Delete leaves the local image in place (as upstream).
type image struct{ eng *engine }

const digestKey = "contextDigest"

func imageType(eng *engine) *pluginkit.Type {
	return &pluginkit.Type{
		Token: "docker:index/image:Image",
		Inputs: pluginkit.Props{
			"imageName":      strProp().Doc("Tag of the built image."),
			"build":          ref(tokDockerBuild),
			"skipPush":       boolProp().Doc("Must be true: pushing is not implemented."),
			"buildOnPreview": boolProp().Doc("Accepted; the build runs at create."),
			"registry":       ref(tokRegistry).Doc("Accepted and ignored (no push)."),
		},
		Outputs: pluginkit.Props{
			"imageName":      strProp(),
			"baseImageName":  strProp(),
			"context":        strProp(),
			"dockerfile":     strProp(),
			"platform":       strProp(),
			"registryServer": strProp().Doc(`Always "" (no push).`),
			"repoDigest":     strProp().Doc(`Always "" (no push).`),
		},
		OutputsOnly:     true,
		RequiredInputs:  []string{"imageName"},
		RequiredOutputs: []string{"baseImageName", "context", "dockerfile", "imageName", "registryServer", "repoDigest"},
		Hidden:          []string{digestKey},
		Resource:        &image{eng},
	}
}

// buildPaths resolves the context (default ".") and the Dockerfile (default <context>/Dockerfile;
// a relative path is taken from the working directory, the program's, else from the context).
func buildPaths(in resource.PropertyMap) (ctxDir, dockerfile string, err error) {
	b, _ := pluginkit.Object(in, "build")
	ctxDir = pluginkit.GetString(b, "context", ".")
	if ctxDir, err = filepath.Abs(ctxDir); err != nil {
		return "", "", err
	}
	dockerfile = pluginkit.GetString(b, "dockerfile", "")
	switch {
	case dockerfile == "":
		dockerfile = filepath.Join(ctxDir, "Dockerfile")
	case !filepath.IsAbs(dockerfile):
		if _, serr := os.Stat(dockerfile); serr == nil {
			dockerfile, _ = filepath.Abs(dockerfile)
		} else {
			dockerfile = filepath.Join(ctxDir, dockerfile)
		}
	}
	return ctxDir, dockerfile, nil
}

func (i *image) Check(_ context.Context, m resource.PropertyMap) []*pulumirpc.CheckFailure {
	var f []*pulumirpc.CheckFailure
	if v, ok := pluginkit.PV(m, "skipPush"); ok && v.IsBool() && !v.BoolValue() {
		f = append(f, &pulumirpc.CheckFailure{Property: "skipPush", Reason: "pushing images is not supported by this repo's pulumi-resource-docker: set skipPush: true"})
	}
	if bv, ok := m["build"]; ok && bv.ContainsUnknowns() {
		m[digestKey] = pluginkit.Computed()
		return f
	}
	ctxDir, dockerfile, err := buildPaths(m)
	if err == nil {
		var digest string
		if digest, err = hashContext(ctxDir, dockerfile); err == nil {
			m[digestKey] = str(digest)
		}
	}
	if err != nil {
		f = append(f, &pulumirpc.CheckFailure{Property: "build.context", Reason: err.Error()})
	}
	return f
}

func (i *image) Create(ctx context.Context, in resource.PropertyMap) (string, resource.PropertyMap, error) {
	name := pluginkit.GetString(in, "imageName", "")
	ctxDir, dockerfile, err := buildPaths(in)
	if err != nil {
		return "", nil, err
	}
	b, _ := pluginkit.Object(in, "build")
	dfName := relInside(ctxDir, dockerfile)
	extra := ".dockerfile.pulumi-resource-docker"
	if dfName == "" {
		dfName = extra
	}
	q := url.Values{"t": {name}, "dockerfile": {dfName}, "rm": {"1"}, "forcerm": {"1"}}
	if args := pluginkit.StringMap(b, "args"); len(args) > 0 {
		j, _ := json.Marshal(args)
		q.Set("buildargs", string(j))
	}
	if t := pluginkit.GetString(b, "target", ""); t != "" {
		q.Set("target", t)
	}
	platform := pluginkit.GetString(b, "platform", "")
	if platform != "" {
		// The classic builder of older engines rejects "platform"; the engine's own platform needs none.
		var v struct{ Os, Arch string }
		if err := i.eng.call(ctx, "GET", "/version", nil, nil, &v); err != nil || platform != v.Os+"/"+v.Arch {
			q.Set("platform", platform)
		}
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeContextTar(pw, ctxDir, dockerfile, extra)) }()
	resp, err := i.eng.do(ctx, "POST", "/build", q, pr, "application/x-tar")
	if err != nil {
		pr.CloseWithError(err)
		return "", nil, fmt.Errorf("build %s: %w", name, err)
	}
	tail, _, err := jsonStream(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", nil, fmt.Errorf("build %s (context %s): %w\n%s", name, ctxDir, err, strings.Join(tail, "\n"))
	}
	info, err := inspectImage(ctx, i.eng, name)
	if err != nil {
		return "", nil, fmt.Errorf("build %s: image not found after build: %w", name, err)
	}
	// Best effort: a failed clean-up never fails the build that succeeded.
	_ = pruneBuildLeftovers(ctx, i.eng, info.Config.Labels[sourceLabel], time.Now())
	out := in.Copy()
	out["imageName"] = str(name)
	out["baseImageName"] = str(name)
	out["context"] = str(ctxDir)
	out["dockerfile"] = str(dockerfile)
	out["platform"] = str(platform)
	out["registryServer"] = str("")
	out["repoDigest"] = str("")
	return info.Id, out, nil
}

// read: gone when the tag no longer exists locally (the next up rebuilds it).
func (i *image) Read(ctx context.Context, _ string, state resource.PropertyMap) (bool, resource.PropertyMap, error) {
	_, err := inspectImage(ctx, i.eng, pluginkit.GetString(state, "imageName", ""))
	if isNotFound(err) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, err
	}
	return true, state, nil
}

func (i *image) Delete(context.Context, string, resource.PropertyMap) error { return nil }

// The classic builder keeps every multi-stage build's intermediate stages, and the previous image
// when a tag moves, as dangling images: about 1.5 GB per build of the services image, 14 GB after a
// day of deploys on this machine. After a build, the dangling images that carry the built image's
// source label and are older than leftoverAge are removed. Younger ones stay: another build still
// running may COPY --from one of its stages, and the latest stages are the next build's layer cache.
// Images without that label (someone else's) are never touched.
const (
	sourceLabel = "org.opencontainers.image.source"
	leftoverAge = 30 * time.Minute
)

func pruneFilters(source string, now time.Time) string {
	f, _ := json.Marshal(map[string][]string{
		"dangling": {"true"},
		"label":    {sourceLabel + "=" + source},
		"until":    {now.Add(-leftoverAge).UTC().Format(time.RFC3339)},
	})
	return string(f)
}

func pruneBuildLeftovers(ctx context.Context, eng *engine, source string, now time.Time) error {
	if source == "" {
		return nil
	}
	return eng.call(ctx, "POST", "/images/prune", url.Values{"filters": {pruneFilters(source, now)}}, nil, nil)
}
