package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/ai-trading/pluginkit"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// remoteImage: docker:index/remoteImage:RemoteImage (name, keepLocally) -> imageId, repoDigest.
// The local image is used when present (no pull); a missing one is pulled. keepLocally=true never
// removes the image; keepLocally=false removes it on delete (errors such as "in use" are returned).
type remoteImage struct{ eng *engine }

func remoteImageType(eng *engine) *pluginkit.Type {
	return &pluginkit.Type{
		Token: "docker:index/remoteImage:RemoteImage",
		Inputs: pluginkit.Props{
			"name":        strProp().Doc("Image reference; the local image is used when present, else it is pulled."),
			"keepLocally": boolProp().Doc("Never remove the image on delete."),
		},
		Outputs:         pluginkit.Props{"imageId": strProp(), "repoDigest": strProp()},
		RequiredInputs:  []string{"name"},
		RequiredOutputs: []string{"imageId", "repoDigest"},
		Hidden:          []string{resolvedImageKey},
		StateHeld:       []string{resolvedImageKey},
		InPlace:         []string{"keepLocally"},
		Resource:        &remoteImage{eng},
	}
}

// resolveImageID sets the hidden input resolvedImageId to the ID of the local image named by
// m[key] (nothing when the name is unknown, already an ID, or not present locally).
func resolveImageID(ctx context.Context, eng *engine, m resource.PropertyMap, key string) {
	delete(m, resolvedImageKey)
	v, ok := m[resource.PropertyKey(key)]
	if !ok || !v.IsString() || eng == nil {
		return
	}
	name := v.StringValue()
	if name == "" || strings.HasPrefix(name, "sha256:") {
		return
	}
	if info, err := inspectImage(ctx, eng, name); err == nil {
		m[resolvedImageKey] = str(info.Id)
	}
}

// Check: a local image whose ID changed since the last update (rebuilt, re-tagged, removed)
// replaces the resource, so imageId follows it and the containers using it are replaced too.
func (r *remoteImage) Check(ctx context.Context, m resource.PropertyMap) []*pulumirpc.CheckFailure {
	resolveImageID(ctx, r.eng, m, "name")
	return nil
}

type imageInfo struct {
	Id           string
	RepoTags     []string
	RepoDigests  []string
	Os           string
	Architecture string
	Config       struct{ Labels map[string]string }
}

func inspectImage(ctx context.Context, eng *engine, name string) (*imageInfo, error) {
	var info imageInfo
	if err := eng.call(ctx, "GET", "/images/"+name+"/json", nil, nil, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// splitRef splits "repo[:tag][@digest]" into repo and tag (default latest, empty with a digest).
func splitRef(ref string) (repo, tag string) {
	if i := strings.Index(ref, "@"); i >= 0 {
		return ref, ""
	}
	slash := strings.LastIndex(ref, "/")
	if i := strings.LastIndex(ref, ":"); i > slash {
		return ref[:i], ref[i+1:]
	}
	return ref, "latest"
}

func pullImage(ctx context.Context, eng *engine, ref string) error {
	repo, tag := splitRef(ref)
	q := url.Values{"fromImage": {repo}}
	if tag != "" {
		q.Set("tag", tag)
	}
	resp, err := eng.do(ctx, "POST", "/images/create", q, nil, "")
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	defer resp.Body.Close()
	tail, _, err := jsonStream(resp.Body)
	if err != nil {
		return fmt.Errorf("pull %s: %w\n%s", ref, err, strings.Join(tail, "\n"))
	}
	return nil
}

func (r *remoteImage) Create(ctx context.Context, in resource.PropertyMap) (string, resource.PropertyMap, error) {
	name := pluginkit.GetString(in, "name", "")
	info, err := inspectImage(ctx, r.eng, name)
	if isNotFound(err) {
		if err = pullImage(ctx, r.eng, name); err == nil {
			info, err = inspectImage(ctx, r.eng, name)
		}
	}
	if err != nil {
		return "", nil, err
	}
	out := r.fill(in, info)
	if _, ok := in[resolvedImageKey]; ok {
		out[resolvedImageKey] = str(info.Id)
	}
	return info.Id + name, out, nil
}

func (r *remoteImage) fill(state resource.PropertyMap, info *imageInfo) resource.PropertyMap {
	out := state.Copy()
	out["imageId"] = str(info.Id)
	digest := ""
	if len(info.RepoDigests) > 0 {
		digest = info.RepoDigests[0]
	}
	out["repoDigest"] = str(digest)
	return out
}

func (r *remoteImage) Read(ctx context.Context, _ string, state resource.PropertyMap) (bool, resource.PropertyMap, error) {
	info, err := inspectImage(ctx, r.eng, pluginkit.GetString(state, "name", ""))
	if isNotFound(err) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, err
	}
	return true, r.fill(state, info), nil
}

func (r *remoteImage) Delete(ctx context.Context, _ string, state resource.PropertyMap) error {
	if pluginkit.GetBool(state, "keepLocally", false) {
		return nil
	}
	err := r.eng.call(ctx, "DELETE", "/images/"+pluginkit.GetString(state, "name", ""), nil, nil, nil)
	if err != nil && !isNotFound(err) {
		return err
	}
	return nil
}
