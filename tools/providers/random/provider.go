package main

// pulumi-resource-random: the two resources of @pulumi/random 4.21.2 that this project uses,
// with the upstream type tokens and property names:
//   random:index/randomPassword:RandomPassword  length, special, upper, lower, numeric (number),
//       minUpper, minLower, minNumeric, minSpecial, overrideSpecial, keepers -> result, bcryptHash
//   random:index/randomBytes:RandomBytes        length, keepers -> hex, base64
// Every input change replaces (as upstream). The SDK marks result/bcryptHash/hex/base64 as
// additionalSecretOutputs, so the engine stores them encrypted.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/ai-trading/pluginkit"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

const (
	pluginVersion    = "4.21.2"
	tokenPassword    = "random:index/randomPassword:RandomPassword"
	tokenBytes       = "random:index/randomBytes:RandomBytes"
	passwordBcryptOK = 72 // bcrypt hashes at most 72 bytes
)

var outputKeys = map[string][]string{
	tokenPassword: {"result", "bcryptHash"},
	tokenBytes:    {"hex", "base64"},
}

type randomProvider struct {
	pulumirpc.UnimplementedResourceProviderServer
}

func typeOf(urn string) string { return string(resource.URN(urn).Type()) }

func (p *randomProvider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: pluginVersion}, nil
}

func (p *randomProvider) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	return &pulumirpc.GetSchemaResponse{Schema: `{"name":"random","version":"` + pluginVersion + `"}`}, nil
}

func (p *randomProvider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (p *randomProvider) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (p *randomProvider) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: false, SupportsPreview: true}, nil
}

func (p *randomProvider) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

// applyDefaults fills the inputs as upstream's Check does.
func applyDefaults(typ string, m resource.PropertyMap) {
	if typ != tokenPassword {
		return
	}
	// "number" is the deprecated alias of "numeric".
	if v, ok := m["number"]; ok && !v.IsNull() {
		pluginkit.SetDefault(m, "numeric", v)
	}
	for _, k := range []string{"upper", "lower", "numeric", "special"} {
		pluginkit.SetDefault(m, k, resource.NewBoolProperty(true))
	}
	if v, ok := m["numeric"]; ok {
		pluginkit.SetDefault(m, "number", v)
	}
	for _, k := range []string{"minUpper", "minLower", "minNumeric", "minSpecial"} {
		pluginkit.SetDefault(m, k, resource.NewNumberProperty(0))
	}
}

func checkInputs(typ string, m resource.PropertyMap) []*pulumirpc.CheckFailure {
	var failures []*pulumirpc.CheckFailure
	l, ok := m["length"]
	switch {
	case !ok || l.IsNull():
		failures = append(failures, &pulumirpc.CheckFailure{Property: "length", Reason: "missing required property 'length'"})
	case l.IsNumber() && l.NumberValue() < 1:
		failures = append(failures, &pulumirpc.CheckFailure{Property: "length", Reason: "length must be at least 1"})
	}
	if typ == tokenPassword && !m.ContainsUnknowns() {
		if _, err := generatePassword(specOf(m)); err != nil {
			failures = append(failures, &pulumirpc.CheckFailure{Property: "length", Reason: err.Error()})
		}
	}
	return failures
}

func (p *randomProvider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	typ := typeOf(req.GetUrn())
	if _, ok := outputKeys[typ]; !ok {
		return nil, fmt.Errorf("unknown resource type %q", typ)
	}
	news, err := pluginkit.Unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	applyDefaults(typ, news)
	inputs, err := pluginkit.Marshal(news)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CheckResponse{Inputs: inputs, Failures: checkInputs(typ, news)}, nil
}

// inputsOf drops the outputs (and id) from a state map.
func inputsOf(typ string, state resource.PropertyMap) resource.PropertyMap {
	in := state.Copy()
	for _, k := range outputKeys[typ] {
		delete(in, resource.PropertyKey(k))
	}
	delete(in, "id")
	return in
}

func diff(typ string, oldInputs, news resource.PropertyMap) *pulumirpc.DiffResponse {
	changed := pluginkit.ChangedKeys(oldInputs, news)
	if len(changed) == 0 {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}
	}
	detailed := map[string]*pulumirpc.PropertyDiff{}
	for _, k := range changed {
		detailed[k] = &pulumirpc.PropertyDiff{Kind: pulumirpc.PropertyDiff_UPDATE_REPLACE}
	}
	return &pulumirpc.DiffResponse{
		Changes:         pulumirpc.DiffResponse_DIFF_SOME,
		Replaces:        changed,
		Diffs:           changed,
		DetailedDiff:    detailed,
		HasDetailedDiff: true,
	}
}

func (p *randomProvider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	typ := typeOf(req.GetUrn())
	news, err := pluginkit.Unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	var olds resource.PropertyMap
	if req.GetOldInputs() != nil {
		olds, err = pluginkit.Unmarshal(req.GetOldInputs())
	} else {
		olds, err = pluginkit.Unmarshal(req.GetOlds())
		olds = inputsOf(typ, olds)
	}
	if err != nil {
		return nil, err
	}
	// "number" mirrors "numeric"; states written before that default carry only one of them.
	if typ == tokenPassword {
		applyDefaults(typ, olds)
	}
	return diff(typ, olds, news), nil
}

func specOf(m resource.PropertyMap) passwordSpec {
	s := passwordSpec{
		Length:     pluginkit.GetInt(m, "length", 0),
		Upper:      pluginkit.GetBool(m, "upper", true),
		Lower:      pluginkit.GetBool(m, "lower", true),
		Numeric:    pluginkit.GetBool(m, "numeric", pluginkit.GetBool(m, "number", true)),
		Special:    pluginkit.GetBool(m, "special", true),
		MinUpper:   pluginkit.GetInt(m, "minUpper", 0),
		MinLower:   pluginkit.GetInt(m, "minLower", 0),
		MinNumeric: pluginkit.GetInt(m, "minNumeric", 0),
		MinSpecial: pluginkit.GetInt(m, "minSpecial", 0),
	}
	if v, ok := pluginkit.PV(m, "overrideSpecial"); ok && v.IsString() {
		o := v.StringValue()
		s.OverrideSpecial = &o
	}
	return s
}

// generate computes the outputs of a resource from its (known) inputs.
func generate(typ string, in resource.PropertyMap) (resource.PropertyMap, error) {
	out := in.Copy()
	switch typ {
	case tokenPassword:
		pw, err := generatePassword(specOf(in))
		if err != nil {
			return nil, err
		}
		out["result"] = resource.NewStringProperty(pw)
		if len(pw) <= passwordBcryptOK {
			h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
			if err != nil {
				return nil, err
			}
			out["bcryptHash"] = resource.NewStringProperty(string(h))
		}
	case tokenBytes:
		n := pluginkit.GetInt(in, "length", 0)
		if n < 1 {
			return nil, fmt.Errorf("length must be at least 1")
		}
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		out["hex"] = resource.NewStringProperty(hex.EncodeToString(b))
		out["base64"] = resource.NewStringProperty(base64.StdEncoding.EncodeToString(b))
	default:
		return nil, fmt.Errorf("unknown resource type %q", typ)
	}
	return out, nil
}

func (p *randomProvider) Create(_ context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	typ := typeOf(req.GetUrn())
	in, err := pluginkit.Unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	var out resource.PropertyMap
	if req.GetPreview() || in.ContainsUnknowns() {
		out = in.Copy()
		for _, k := range outputKeys[typ] {
			out[resource.PropertyKey(k)] = resource.MakeComputed(resource.NewStringProperty(""))
		}
	} else if out, err = generate(typ, in); err != nil {
		return nil, err
	}
	props, err := pluginkit.Marshal(out)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: "none", Properties: props}, nil
}

// Read: the values exist only in the state, so the state is returned as it is.
func (p *randomProvider) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	if len(req.GetProperties().GetFields()) == 0 {
		return nil, status.Error(codes.Unimplemented, "import of random resources is not supported by this provider")
	}
	inputs := req.GetInputs()
	if inputs == nil {
		state, err := pluginkit.Unmarshal(req.GetProperties())
		if err != nil {
			return nil, err
		}
		if inputs, err = pluginkit.Marshal(inputsOf(typeOf(req.GetUrn()), state)); err != nil {
			return nil, err
		}
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: inputs}, nil
}

// Update is only reached when Diff reports an in-place change, which it never does.
func (p *randomProvider) Update(_ context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	return &pulumirpc.UpdateResponse{Properties: req.GetOlds()}, nil
}

func (p *randomProvider) Delete(context.Context, *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}
