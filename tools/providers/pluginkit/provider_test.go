package pluginkit

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// thing records what the provider hands it.
type thing struct {
	created, deleted []resource.PropertyMap
	gone             bool
	failCreate       error
}

func (r *thing) Check(_ context.Context, m resource.PropertyMap) []*pulumirpc.CheckFailure {
	SetDefault(m, "size", resource.NewNumberProperty(1))
	m["fingerprint"] = Str("f-" + GetString(m, "name", ""))
	return nil
}

func (r *thing) Create(_ context.Context, in resource.PropertyMap) (string, resource.PropertyMap, error) {
	if r.failCreate != nil {
		return "", nil, r.failCreate
	}
	r.created = append(r.created, in)
	out := in.Copy()
	out["serial"] = Str("s1")
	return "id-1", out, nil
}

func (r *thing) Read(_ context.Context, _ string, state resource.PropertyMap) (bool, resource.PropertyMap, error) {
	return !r.gone, state, nil
}

func (r *thing) Delete(_ context.Context, _ string, state resource.PropertyMap) error {
	r.deleted = append(r.deleted, state)
	return nil
}

const tok = "test:index/thing:Thing"
const urn = "urn:pulumi:dev::proj::" + tok + "::t1"

func newTestProvider(r *thing) *Provider {
	return NewProvider("test", "1.2.3", "a test package",
		[]ObjectType{{Token: "test:index/Port:Port", Properties: Props{"internal": Integer(), "ip": String()}, Required: []string{"internal"}}},
		&Type{
			Token: tok,
			Inputs: Props{
				"name":   String(),
				"size":   Integer(),
				"ratio":  Number(),
				"keep":   Boolean(),
				"tags":   MapOf(String()),
				"ports":  ArrayOf(Ref("test:index/Port:Port")),
				"labels": ArrayOf(String()),
			},
			Outputs:             Props{"serial": String().AsSecret()},
			RequiredInputs:      []string{"name"},
			Hidden:              []string{"fingerprint"},
			StateHeld:           []string{"fingerprint"},
			InPlace:             []string{"keep"},
			DeleteBeforeReplace: true,
			Resource:            r,
		})
}

func mustStruct(t *testing.T, m resource.PropertyMap) *structpb.Struct {
	t.Helper()
	s, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustMap(t *testing.T, s *structpb.Struct) resource.PropertyMap {
	t.Helper()
	m, err := Unmarshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func props(kv ...any) resource.PropertyMap {
	m := resource.PropertyMap{}
	for i := 0; i < len(kv); i += 2 {
		m[resource.PropertyKey(kv[i].(string))] = resource.NewPropertyValue(kv[i+1])
	}
	return m
}

func failures(fs []*pulumirpc.CheckFailure) map[string]string {
	out := map[string]string{}
	for _, f := range fs {
		out[f.GetProperty()] = f.GetReason()
	}
	return out
}

func TestCheckValidatesAgainstTheSchema(t *testing.T) {
	p := newTestProvider(&thing{})
	news := props(
		"size", "big", // wrong type
		"ratio", 0.5,
		"keep", resource.MakeSecret(resource.NewBoolProperty(true)), // secrets are checked inside
		"tags", map[string]any{"a/b": 1.0}, // map value of the wrong type
		"ports", []any{map[string]any{"internal": 80.5, "ipv6": "::"}, map[string]any{"ip": "127.0.0.1"}},
		"labels", resource.MakeComputed(resource.NewStringProperty("")), // unknown: passes
		"gpus", "all", // not declared
		"__defaults", []any{}, // engine metadata: ignored
		"fingerprint", "old", // hidden: accepted
	)
	resp, err := p.Check(context.Background(), &pulumirpc.CheckRequest{Urn: urn, News: mustStruct(t, news)})
	if err != nil {
		t.Fatal(err)
	}
	got := failures(resp.GetFailures())
	want := map[string]string{
		"size":              "size must be an integer, got string",
		`tags["a/b"]`:       `tags["a/b"] must be a string, got number`,
		"ports[0].internal": "ports[0].internal must be an integer, got number",
		"ports[0].ipv6":     `property "ports[0].ipv6" is not supported by this repo's pulumi-resource-test (tools/providers/test)`,
		"ports[1].internal": "missing required property 'ports[1].internal'",
		"gpus":              `property "gpus" is not supported by this repo's pulumi-resource-test (tools/providers/test)`,
		"name":              "missing required property 'name'",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("failures\n got %v\nwant %v", got, want)
	}
	// The resource's own Check ran on the inputs: defaults and hidden inputs are returned.
	in := mustMap(t, resp.GetInputs())
	if in["fingerprint"].StringValue() != "f-" || !in["labels"].IsComputed() {
		t.Fatalf("inputs %v", in)
	}
	if _, err := p.Check(context.Background(), &pulumirpc.CheckRequest{Urn: "urn:pulumi:dev::proj::test:index/other:Other::x"}); err == nil ||
		!strings.Contains(err.Error(), `resource type "test:index/other:Other" is not supported by this repo's pulumi-resource-test`) {
		t.Fatalf("unknown type: %v", err)
	}
}

func TestCreatePreviewAndErrors(t *testing.T) {
	r := &thing{}
	p := newTestProvider(r)
	in := props("name", "a", "size", 2.0)
	resp, err := p.Create(context.Background(), &pulumirpc.CreateRequest{Urn: urn, Properties: mustStruct(t, in), Preview: true})
	if err != nil {
		t.Fatal(err)
	}
	if out := mustMap(t, resp.GetProperties()); !out["serial"].IsComputed() || out["name"].StringValue() != "a" || len(r.created) != 0 {
		t.Fatalf("preview: %v (created %d)", out, len(r.created))
	}
	unknown := props("name", "a")
	unknown["size"] = Computed()
	if _, err := p.Create(context.Background(), &pulumirpc.CreateRequest{Urn: urn, Properties: mustStruct(t, unknown)}); err == nil {
		t.Fatal("create with unknown inputs must fail")
	}
	resp, err = p.Create(context.Background(), &pulumirpc.CreateRequest{Urn: urn, Properties: mustStruct(t, in)})
	if err != nil || resp.GetId() != "id-1" || mustMap(t, resp.GetProperties())["serial"].StringValue() != "s1" {
		t.Fatalf("create: %v %v", resp, err)
	}
	r.failCreate = errors.New("engine said no")
	if _, err := p.Create(context.Background(), &pulumirpc.CreateRequest{Urn: urn, Properties: mustStruct(t, in)}); err == nil || err.Error() != "t1: engine said no" {
		t.Fatalf("a create error names the resource: %v", err)
	}
}

func TestDiffUsesStateHeldAndInPlace(t *testing.T) {
	p := newTestProvider(&thing{})
	state := props("name", "a", "size", 1.0, "keep", false, "serial", "s1", "fingerprint", "f1")
	oldInputs := props("name", "a", "size", 1.0, "keep", false, "fingerprint", "f0") // rewritten by an update: not what was created
	diff := func(news resource.PropertyMap, withOldInputs bool) *pulumirpc.DiffResponse {
		t.Helper()
		req := &pulumirpc.DiffRequest{Urn: urn, Olds: mustStruct(t, state), News: mustStruct(t, news)}
		if withOldInputs {
			req.OldInputs = mustStruct(t, oldInputs)
		}
		d, err := p.Diff(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := diff(props("name", "a", "size", 1.0, "keep", false, "fingerprint", "f1"), true); d.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("the state's fingerprint counts, not the old inputs': %v", d)
	}
	if d := diff(props("name", "a", "size", 1.0, "keep", false, "fingerprint", "f1"), false); d.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("inputs from the state (output-only serial dropped): %v", d)
	}
	d := diff(props("name", "a", "size", 1.0, "keep", true, "fingerprint", "f1"), true)
	if d.GetChanges() != pulumirpc.DiffResponse_DIFF_SOME || len(d.GetReplaces()) != 0 || d.GetDetailedDiff()["keep"].GetKind() != pulumirpc.PropertyDiff_UPDATE {
		t.Fatalf("keep is in place: %v", d)
	}
	d = diff(props("name", "b", "size", 1.0, "keep", false, "fingerprint", "f2"), true)
	if !reflect.DeepEqual(d.GetReplaces(), []string{"fingerprint", "name"}) || !d.GetDeleteBeforeReplace() {
		t.Fatalf("replace, delete first: %v", d)
	}
	delete(state, "fingerprint")
	if d := diff(props("name", "a", "size", 1.0, "keep", false, "fingerprint", "f2"), true); d.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("a state-held input absent from the state is no change: %v", d)
	}
}

func TestReadUpdateDelete(t *testing.T) {
	r := &thing{}
	p := newTestProvider(r)
	ctx := context.Background()
	state := props("name", "a", "keep", false, "serial", "s1")
	if _, err := p.Read(ctx, &pulumirpc.ReadRequest{Urn: urn, Id: "x"}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("import must be refused: %v", err)
	}
	resp, err := p.Read(ctx, &pulumirpc.ReadRequest{Urn: urn, Id: "id-1", Properties: mustStruct(t, state)})
	if err != nil || resp.GetId() != "id-1" {
		t.Fatal(resp, err)
	}
	if in := mustMap(t, resp.GetInputs()); !reflect.DeepEqual(in, props("name", "a", "keep", false)) {
		t.Fatalf("inputs of a read: %v", in)
	}
	r.gone = true
	if resp, err := p.Read(ctx, &pulumirpc.ReadRequest{Urn: urn, Id: "id-1", Properties: mustStruct(t, state)}); err != nil || resp.GetId() != "" {
		t.Fatalf("gone: %v %v", resp, err)
	}
	up, err := p.Update(ctx, &pulumirpc.UpdateRequest{Urn: urn, Olds: mustStruct(t, state), News: mustStruct(t, props("name", "a", "keep", true))})
	if err != nil || !reflect.DeepEqual(mustMap(t, up.GetProperties()), props("name", "a", "keep", true, "serial", "s1")) {
		t.Fatalf("in-place update: %v %v", up, err)
	}
	if _, err := p.Update(ctx, &pulumirpc.UpdateRequest{Urn: urn, Olds: mustStruct(t, state), News: mustStruct(t, props("name", "b"))}); err == nil {
		t.Fatal("a replacing change must not be updated in place")
	}
	if _, err := p.Delete(ctx, &pulumirpc.DeleteRequest{Urn: urn, Id: "id-1", Properties: mustStruct(t, state)}); err != nil || len(r.deleted) != 1 {
		t.Fatalf("delete: %v", err)
	}
}

func TestSchema(t *testing.T) {
	p := newTestProvider(&thing{})
	resp, err := p.GetSchema(context.Background(), &pulumirpc.GetSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Name, Version string
		Meta          map[string]string
		Resources     map[string]struct {
			Properties      map[string]map[string]any
			InputProperties map[string]map[string]any
			RequiredInputs  []string
		}
		Types map[string]struct {
			Type       string
			Properties map[string]map[string]any
			Required   []string
		}
	}
	if err := json.Unmarshal([]byte(resp.GetSchema()), &s); err != nil {
		t.Fatal(err)
	}
	r := s.Resources[tok]
	// Without moduleFormat the CLI rejects "test:index/thing:Thing" ("nested modules under index").
	if s.Name != "test" || s.Version != "1.2.3" || s.Meta["moduleFormat"] != "(.*)(?:/[^/]*)" || len(r.InputProperties) != 7 || len(r.Properties) != 8 {
		t.Fatalf("schema %+v", s)
	}
	if r.Properties["serial"]["secret"] != true || r.InputProperties["ports"]["items"].(map[string]any)["$ref"] != "#/types/test:index/Port:Port" {
		t.Fatalf("properties %v", r.Properties)
	}
	if _, hidden := r.InputProperties["fingerprint"]; hidden || !reflect.DeepEqual(r.RequiredInputs, []string{"name"}) {
		t.Fatalf("inputs %v required %v", r.InputProperties, r.RequiredInputs)
	}
	if pt := s.Types["test:index/Port:Port"]; pt.Type != "object" || pt.Properties["internal"]["type"] != "integer" {
		t.Fatalf("types %v", s.Types)
	}
}

func TestSchemaMistakesPanic(t *testing.T) {
	for name, typ := range map[string]*Type{
		"undeclared ref":     {Token: "a:b:C", Inputs: Props{"x": Ref("a:index/Nope:Nope")}},
		"required not input": {Token: "a:b:C", Inputs: Props{"x": String()}, RequiredInputs: []string{"y"}},
		"bare object":        {Token: "a:b:C", Inputs: Props{"x": {Type: "object"}}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			NewProvider("a", "1", "", nil, typ)
		}()
	}
}
