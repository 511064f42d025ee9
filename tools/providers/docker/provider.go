package main

// pulumi-resource-docker: the resources of @pulumi/docker 5.2.0 that this project uses, with the
// upstream type tokens and property names (network, volume, remoteImage, image, container).
// Inputs that are not implemented are rejected in Check rather than silently ignored.
// Every input change replaces the resource (fixed names: delete before replace), except
// RemoteImage.keepLocally, which is updated in place.

import (
	"context"
	"fmt"
	"strings"

	"github.com/ai-trading/pluginkit"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

const pluginVersion = "5.2.0"

type kind interface {
	// check applies defaults and validates the inputs (which may contain unknowns).
	check(ctx context.Context, news resource.PropertyMap) []*pulumirpc.CheckFailure
	// create makes the resource from known inputs; returns its id and outputs (inputs + outputs).
	create(ctx context.Context, in resource.PropertyMap) (string, resource.PropertyMap, error)
	// read returns false when the resource is gone.
	read(ctx context.Context, id string, state resource.PropertyMap) (bool, resource.PropertyMap, error)
	delete(ctx context.Context, id string, state resource.PropertyMap) error
	// outputs: keys only in the state, unknown during preview.
	outputs(in resource.PropertyMap) resource.PropertyMap
	deleteBeforeReplace() bool
	// inPlace: input keys whose change is an update rather than a replacement.
	inPlace() map[string]bool
}

type dockerProvider struct {
	pulumirpc.UnimplementedResourceProviderServer
	eng   *engine
	kinds map[string]kind
}

func newProvider() (*dockerProvider, error) {
	eng, err := newEngine()
	if err != nil {
		return nil, err
	}
	return &dockerProvider{eng: eng, kinds: map[string]kind{
		"docker:index/network:Network":         &network{eng},
		"docker:index/volume:Volume":           &volume{eng},
		"docker:index/remoteImage:RemoteImage": &remoteImage{eng},
		"docker:index/image:Image":             &image{eng},
		"docker:index/container:Container":     &container{eng},
	}}, nil
}

func (p *dockerProvider) kindOf(urn string) (kind, error) {
	t := string(resource.URN(urn).Type())
	if k, ok := p.kinds[t]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("resource type %q is not supported by this repo's pulumi-resource-docker", t)
}

func (p *dockerProvider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: pluginVersion}, nil
}

func (p *dockerProvider) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: `{"name":"docker","version":"` + pluginVersion + `"}`}, nil
}

func (p *dockerProvider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (p *dockerProvider) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

// Configure: provider config (host, registryAuth, ...) is accepted and ignored; the engine is
// found through DOCKER_HOST. Secrets are not accepted: the engine sends plain values and marks
// outputs whose inputs were secret as secret again.
func (p *dockerProvider) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: false, SupportsPreview: true}, nil
}

func (p *dockerProvider) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func (p *dockerProvider) Invoke(_ context.Context, req *pulumirpc.InvokeRequest) (*pulumirpc.InvokeResponse, error) {
	return nil, status.Errorf(codes.Unimplemented, "function %q is not supported by this repo's pulumi-resource-docker", req.GetTok())
}

func (p *dockerProvider) Check(ctx context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	k, err := p.kindOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	news, err := pluginkit.Unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	failures := k.check(ctx, news)
	inputs, err := pluginkit.Marshal(news)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: inputs, Failures: failures}, nil
}

func inputsOf(k kind, state resource.PropertyMap) resource.PropertyMap {
	in := state.Copy()
	for key := range k.outputs(state) {
		delete(in, key)
	}
	delete(in, "id")
	return in
}

func diff(k kind, olds, news resource.PropertyMap) *pulumirpc.DiffResponse {
	changed := pluginkit.ChangedKeys(olds, news)
	// resolvedImageId counts only when the old inputs had one: an image that was pulled at create
	// (absent locally at check) or an image input unknown at the last check is no change by itself.
	if _, ok := pluginkit.PV(olds, resolvedImageKey); !ok {
		kept := changed[:0]
		for _, k := range changed {
			if k != resolvedImageKey {
				kept = append(kept, k)
			}
		}
		changed = kept
	}
	if len(changed) == 0 {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}
	}
	var replaces []string
	detailed := map[string]*pulumirpc.PropertyDiff{}
	for _, key := range changed {
		if k.inPlace()[key] {
			detailed[key] = &pulumirpc.PropertyDiff{Kind: pulumirpc.PropertyDiff_UPDATE}
			continue
		}
		replaces = append(replaces, key)
		detailed[key] = &pulumirpc.PropertyDiff{Kind: pulumirpc.PropertyDiff_UPDATE_REPLACE}
	}
	return &pulumirpc.DiffResponse{
		Changes:             pulumirpc.DiffResponse_DIFF_SOME,
		Replaces:            replaces,
		Diffs:               changed,
		DetailedDiff:        detailed,
		HasDetailedDiff:     true,
		DeleteBeforeReplace: len(replaces) > 0 && k.deleteBeforeReplace(),
	}
}

func (p *dockerProvider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	k, err := p.kindOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	news, err := pluginkit.Unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	state, err := pluginkit.Unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	olds := inputsOf(k, state)
	if req.GetOldInputs() != nil && len(req.GetOldInputs().GetFields()) > 0 {
		if olds, err = pluginkit.Unmarshal(req.GetOldInputs()); err != nil {
			return nil, err
		}
	}
	// The image the resource was created from is in its state; the stored inputs are rewritten by
	// every update, also when the resource itself stays the same.
	delete(olds, resolvedImageKey)
	if v, ok := state[resolvedImageKey]; ok {
		olds[resolvedImageKey] = v
	}
	return diff(k, olds, news), nil
}

func (p *dockerProvider) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	k, err := p.kindOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	in, err := pluginkit.Unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	var id string
	var out resource.PropertyMap
	if req.GetPreview() {
		out = in.Copy()
		for key, v := range k.outputs(in) {
			out[key] = v
		}
	} else {
		if in.ContainsUnknowns() {
			return nil, fmt.Errorf("%s: inputs still unknown at create", req.GetUrn())
		}
		if id, out, err = k.create(ctx, in); err != nil {
			return nil, fmt.Errorf("%s: %w", resource.URN(req.GetUrn()).Name(), err)
		}
	}
	props, err := pluginkit.Marshal(out)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: props}, nil
}

func (p *dockerProvider) Read(ctx context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	k, err := p.kindOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	state, err := pluginkit.Unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	if len(state) == 0 {
		return nil, status.Error(codes.Unimplemented, "import is not supported by this repo's pulumi-resource-docker")
	}
	ok, out, err := k.read(ctx, req.GetId(), state)
	if err != nil {
		return nil, err
	}
	if !ok {
		return &pulumirpc.ReadResponse{}, nil // gone
	}
	props, err := pluginkit.Marshal(out)
	if err != nil {
		return nil, err
	}
	inputs := req.GetInputs()
	if inputs == nil || len(inputs.GetFields()) == 0 {
		if inputs, err = pluginkit.Marshal(inputsOf(k, out)); err != nil {
			return nil, err
		}
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: props, Inputs: inputs}, nil
}

// Update: only in-place keys reach it (RemoteImage.keepLocally), which need no engine call.
func (p *dockerProvider) Update(_ context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	k, err := p.kindOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	olds, err := pluginkit.Unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	news, err := pluginkit.Unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	var bad []string
	for _, key := range pluginkit.ChangedKeys(inputsOf(k, olds), news) {
		if !k.inPlace()[key] {
			bad = append(bad, key)
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("cannot update %s in place", strings.Join(bad, ", "))
	}
	out := olds.Copy()
	for key := range k.inPlace() {
		if v, ok := news[resource.PropertyKey(key)]; ok {
			out[resource.PropertyKey(key)] = v
		} else {
			delete(out, resource.PropertyKey(key))
		}
	}
	props, err := pluginkit.Marshal(out)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

func (p *dockerProvider) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	k, err := p.kindOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	state, err := pluginkit.Unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	if err := k.delete(ctx, req.GetId(), state); err != nil {
		return nil, fmt.Errorf("%s: %w", resource.URN(req.GetUrn()).Name(), err)
	}
	return &emptypb.Empty{}, nil
}
