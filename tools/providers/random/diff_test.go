package main

import (
	"path/filepath"
	"testing"

	"github.com/ai-trading/pluginkit"
	"github.com/ai-trading/pluginkit/sdktest"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func typeOf(t *testing.T, token string) *pluginkit.Type {
	t.Helper()
	typ, err := newProvider().TypeOf("urn:pulumi:s::p::" + token + "::r")
	if err != nil {
		t.Fatal(err)
	}
	return typ
}

func TestDiffNoChange(t *testing.T) {
	olds := resource.PropertyMap{"length": resource.NewNumberProperty(44), "special": resource.NewBoolProperty(false)}
	applyPasswordDefaults(olds)
	news := olds.Copy()
	news["keepers"] = resource.NewNullProperty()
	if d := typeOf(t, tokenPassword).Diff(olds, news); d.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("expected no change, got %v", d)
	}
}

func TestDiffReplaceOnChange(t *testing.T) {
	olds := resource.PropertyMap{"length": resource.NewNumberProperty(44), "keepers": resource.NewObjectProperty(resource.PropertyMap{"a": resource.NewStringProperty("1")})}
	news := olds.Copy()
	news["keepers"] = resource.NewObjectProperty(resource.PropertyMap{"a": resource.NewStringProperty("2")})
	d := typeOf(t, tokenBytes).Diff(olds, news)
	if d.Changes != pulumirpc.DiffResponse_DIFF_SOME || len(d.Replaces) != 1 || d.Replaces[0] != "keepers" {
		t.Fatalf("expected keepers replace, got %v", d)
	}
	news = olds.Copy()
	news["length"] = resource.MakeComputed(resource.NewStringProperty(""))
	if d := typeOf(t, tokenBytes).Diff(olds, news); len(d.Replaces) != 1 || d.Replaces[0] != "length" {
		t.Fatalf("unknown input must replace, got %v", d)
	}
}

func TestSecretMarkersIgnoredInDiff(t *testing.T) {
	olds := resource.PropertyMap{"length": resource.NewNumberProperty(8)}
	news := resource.PropertyMap{"length": resource.MakeSecret(resource.NewNumberProperty(8))}
	if d := typeOf(t, tokenBytes).Diff(olds, news); d.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("secret wrapper counted as change: %v", d)
	}
}

func TestRoundTripMarshal(t *testing.T) {
	m := resource.PropertyMap{"length": resource.NewNumberProperty(8), "upper": resource.NewBoolProperty(true), "x": resource.MakeComputed(resource.NewStringProperty(""))}
	s, err := pluginkit.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := pluginkit.Unmarshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if pluginkit.GetInt(back, "length", 0) != 8 || !pluginkit.GetBool(back, "upper", false) || !back["x"].IsComputed() {
		t.Fatalf("round trip: %v", back)
	}
}

func TestSchemaMatchesTheSDK(t *testing.T) {
	s, err := newProvider().Schema()
	if err != nil {
		t.Fatal(err)
	}
	sdktest.Check(t, s, filepath.Join("..", "..", "..", "node_modules", "@pulumi", "random"))
}

// schema.json is the provider's schema as committed: tests/unit/provider-inputs.test.ts checks
// every input the dev program sets against it (the Pulumi mocks accept anything).
func TestSchemaFileIsCurrent(t *testing.T) {
	s, err := newProvider().Schema()
	if err != nil {
		t.Fatal(err)
	}
	sdktest.Golden(t, s, "schema.json")
}
