package pluginkit

// The one gRPC ResourceProvider both plugins serve: it maps a type token to the resource that
// implements it and does everything around the resource's own work (unmarshalling, schema
// validation, defaults of a preview, diffing inputs, in-place updates, import refusal, errors
// naming the resource). A plugin only declares its types (Type) and implements Resource per type.

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Resource is the work of one resource type. Inputs arrive validated against the schema.
type Resource interface {
	// Check applies defaults and validates what the schema cannot say; news may contain unknowns.
	// It may set the type's Hidden inputs.
	Check(ctx context.Context, news resource.PropertyMap) []*pulumirpc.CheckFailure
	// Create makes the resource from known inputs and returns its id and state (inputs + outputs).
	Create(ctx context.Context, in resource.PropertyMap) (string, resource.PropertyMap, error)
	// Read returns the current state, or found=false when the resource is gone.
	Read(ctx context.Context, id string, state resource.PropertyMap) (found bool, out resource.PropertyMap, err error)
	Delete(ctx context.Context, id string, state resource.PropertyMap) error
}

// Previewer is implemented by a Resource whose preview outputs differ from the default: every
// output property whose value is not a known input is unknown.
type Previewer interface {
	Preview(in resource.PropertyMap) resource.PropertyMap
}

// OldInputsNormalizer is implemented by a Resource whose stored inputs may predate a default
// that Check now applies, so that Diff compares like with like.
type OldInputsNormalizer interface {
	NormalizeOldInputs(olds resource.PropertyMap)
}

// Type declares one resource type: its token, schema and update behaviour.
type Type struct {
	Token       string
	Description string
	// Inputs are the input properties; Outputs the properties of the state beyond the inputs (an
	// output may repeat an input that the provider fills in when it is absent, e.g. a name).
	Inputs, Outputs Props
	// OutputsOnly: the schema's output properties are Outputs alone, not the inputs too (as for
	// upstream's native docker Image, whose class exposes no inputs); the state still holds them.
	OutputsOnly     bool
	RequiredInputs  []string
	RequiredOutputs []string
	// Hidden inputs are set by Check itself (not in the schema; accepted when the engine sends them back).
	Hidden []string
	// StateHeld hidden inputs are compared with the value recorded in the state, not in the old
	// inputs, and count as a change only when the state has one.
	StateHeld []string
	// InPlace inputs are updated without replacing the resource (Update copies them into the state).
	InPlace             []string
	DeleteBeforeReplace bool
	Resource            Resource
}

func (t *Type) has(list []string, k string) bool {
	for _, s := range list {
		if s == k {
			return true
		}
	}
	return false
}

// outputOnly reports keys of the state that are not inputs.
func (t *Type) outputOnly(k string) bool {
	_, out := t.Outputs[k]
	_, in := t.Inputs[k]
	return out && !in
}

// InputsOf drops the output-only keys (and id) from a state.
func (t *Type) InputsOf(state resource.PropertyMap) resource.PropertyMap {
	in := state.Copy()
	for k := range in {
		if t.outputOnly(string(k)) {
			delete(in, k)
		}
	}
	delete(in, "id")
	return in
}

// Preview is the state a preview shows for inputs in.
func (t *Type) Preview(in resource.PropertyMap) resource.PropertyMap {
	out := in.Copy()
	if pv, ok := t.Resource.(Previewer); ok {
		for k, v := range pv.Preview(in) {
			out[k] = v
		}
		return out
	}
	for k := range t.Outputs {
		if v, ok := in[resource.PropertyKey(k)]; !ok || v.IsNull() {
			out[resource.PropertyKey(k)] = Computed()
		}
	}
	return out
}

// Diff compares the old inputs (with StateHeld values already taken from the state) with news.
func (t *Type) Diff(olds, news resource.PropertyMap) *pulumirpc.DiffResponse {
	changed := ChangedKeys(olds, news)
	kept := changed[:0]
	for _, k := range changed {
		if t.has(t.StateHeld, k) {
			if _, ok := PV(olds, k); !ok {
				continue
			}
		}
		kept = append(kept, k)
	}
	changed = kept
	if len(changed) == 0 {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}
	}
	var replaces []string
	detailed := map[string]*pulumirpc.PropertyDiff{}
	for _, k := range changed {
		if t.has(t.InPlace, k) {
			detailed[k] = &pulumirpc.PropertyDiff{Kind: pulumirpc.PropertyDiff_UPDATE}
			continue
		}
		replaces = append(replaces, k)
		detailed[k] = &pulumirpc.PropertyDiff{Kind: pulumirpc.PropertyDiff_UPDATE_REPLACE}
	}
	return &pulumirpc.DiffResponse{
		Changes:             pulumirpc.DiffResponse_DIFF_SOME,
		Replaces:            replaces,
		Diffs:               changed,
		DetailedDiff:        detailed,
		HasDetailedDiff:     true,
		DeleteBeforeReplace: len(replaces) > 0 && t.DeleteBeforeReplace,
	}
}

// Provider serves the ResourceProvider protocol for a set of Types.
type Provider struct {
	pulumirpc.UnimplementedResourceProviderServer
	name, version, description string
	types                      map[string]*Type
	objectTypes                map[string]ObjectType
}

// NewProvider registers the types of plugin pulumi-resource-<name>. A schema that refers to an
// undeclared type or requires an undeclared property is a programming error: it panics.
func NewProvider(name, version, description string, objectTypes []ObjectType, types ...*Type) *Provider {
	p := &Provider{name: name, version: version, description: description, types: map[string]*Type{}, objectTypes: map[string]ObjectType{}}
	for _, o := range objectTypes {
		p.objectTypes[o.Token] = o
	}
	for _, t := range types {
		if _, dup := p.types[t.Token]; dup {
			panic("pluginkit: type " + t.Token + " registered twice")
		}
		p.types[t.Token] = t
	}
	if err := p.checkSchema(); err != nil {
		panic("pluginkit: " + err.Error())
	}
	return p
}

// Tokens lists the registered resource type tokens, sorted.
func (p *Provider) Tokens() []string {
	var out []string
	for k := range p.types {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TypeOf returns the Type that handles a resource URN.
func (p *Provider) TypeOf(urn string) (*Type, error) {
	tok := string(resource.URN(urn).Type())
	if t, ok := p.types[tok]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("resource type %q is not supported by this repo's pulumi-resource-%s", tok, p.name)
}

func (p *Provider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: p.version}, nil
}

func (p *Provider) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	s, err := p.Schema()
	if err != nil {
		return nil, err
	}
	return &pulumirpc.GetSchemaResponse{Schema: s}, nil
}

func (p *Provider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (p *Provider) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

// Configure: provider config is accepted and ignored. Secrets are not accepted: the engine sends
// plain values and marks outputs whose inputs were secret as secret again.
func (p *Provider) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: false, SupportsPreview: true}, nil
}

func (p *Provider) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func (p *Provider) Invoke(_ context.Context, req *pulumirpc.InvokeRequest) (*pulumirpc.InvokeResponse, error) {
	return nil, status.Errorf(codes.Unimplemented, "function %q is not supported by this repo's pulumi-resource-%s", req.GetTok(), p.name)
}

func (p *Provider) Check(ctx context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	t, err := p.TypeOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	news, err := Unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	failures := p.validate(t, news)
	failures = append(failures, t.Resource.Check(ctx, news)...)
	inputs, err := Marshal(news)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: inputs, Failures: failures}, nil
}

func (p *Provider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	t, err := p.TypeOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	news, err := Unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	state, err := Unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	olds := t.InputsOf(state)
	if req.GetOldInputs() != nil && len(req.GetOldInputs().GetFields()) > 0 {
		if olds, err = Unmarshal(req.GetOldInputs()); err != nil {
			return nil, err
		}
	}
	if n, ok := t.Resource.(OldInputsNormalizer); ok {
		n.NormalizeOldInputs(olds)
	}
	// A StateHeld input describes what the resource was created from; the stored inputs are
	// rewritten by every update, also when the resource itself stays the same.
	for _, k := range t.StateHeld {
		delete(olds, resource.PropertyKey(k))
		if v, ok := state[resource.PropertyKey(k)]; ok {
			olds[resource.PropertyKey(k)] = v
		}
	}
	return t.Diff(olds, news), nil
}

func (p *Provider) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	t, err := p.TypeOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	in, err := Unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	var id string
	var out resource.PropertyMap
	if req.GetPreview() {
		out = t.Preview(in)
	} else {
		if in.ContainsUnknowns() {
			return nil, fmt.Errorf("%s: inputs still unknown at create", req.GetUrn())
		}
		if id, out, err = t.Resource.Create(ctx, in); err != nil {
			return nil, fmt.Errorf("%s: %w", resource.URN(req.GetUrn()).Name(), err)
		}
	}
	props, err := Marshal(out)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: props}, nil
}

func (p *Provider) Read(ctx context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	t, err := p.TypeOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	state, err := Unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	if len(state) == 0 {
		return nil, status.Errorf(codes.Unimplemented, "import is not supported by this repo's pulumi-resource-%s", p.name)
	}
	found, out, err := t.Resource.Read(ctx, req.GetId(), state)
	if err != nil {
		return nil, err
	}
	if !found {
		return &pulumirpc.ReadResponse{}, nil // gone
	}
	props, err := Marshal(out)
	if err != nil {
		return nil, err
	}
	inputs := req.GetInputs()
	if inputs == nil || len(inputs.GetFields()) == 0 {
		if inputs, err = Marshal(t.InputsOf(out)); err != nil {
			return nil, err
		}
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: props, Inputs: inputs}, nil
}

// Update is reached only when Diff reports in-place changes: it copies the InPlace inputs into the
// state (none of them needs work by the resource itself).
func (p *Provider) Update(_ context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	t, err := p.TypeOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	olds, err := Unmarshal(req.GetOlds())
	if err != nil {
		return nil, err
	}
	news, err := Unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	var bad []string
	for _, k := range ChangedKeys(t.InputsOf(olds), news) {
		if !t.has(t.InPlace, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("cannot update %s in place", strings.Join(bad, ", "))
	}
	out := olds.Copy()
	for _, k := range t.InPlace {
		if v, ok := news[resource.PropertyKey(k)]; ok {
			out[resource.PropertyKey(k)] = v
		} else {
			delete(out, resource.PropertyKey(k))
		}
	}
	props, err := Marshal(out)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

func (p *Provider) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	t, err := p.TypeOf(req.GetUrn())
	if err != nil {
		return nil, err
	}
	state, err := Unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	if err := t.Resource.Delete(ctx, req.GetId(), state); err != nil {
		return nil, fmt.Errorf("%s: %w", resource.URN(req.GetUrn()).Name(), err)
	}
	return &emptypb.Empty{}, nil
}
