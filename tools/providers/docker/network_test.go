package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/ai-trading/pluginkit"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func pools(cs ...map[string]any) []any {
	out := make([]any, len(cs))
	for i, c := range cs {
		out[i] = c
	}
	return out
}

func TestNetworkIpamCheck(t *testing.T) {
	_, f := check(t, "docker:index/network:Network", props("name", "n", "ipamConfigs",
		pools(map[string]any{"subnet": "172.28.0.0/24", "gateway": "172.28.0.1", "ipRange": "172.28.0.128/25"})))
	if len(f) != 0 {
		t.Fatalf("a valid pool is accepted: %v", f)
	}
	_, f = check(t, "docker:index/network:Network", props("name", "n", "ipamConfigs", pools(
		map[string]any{"subnet": "not-a-cidr"},
		map[string]any{"subnet": "172.28.0.5/24", "gateway": "10.0.0.1", "ipRange": "10.0.0.0/25"},
		map[string]any{"gateway": "172.28.0.1"},
		map[string]any{"subnet": "172.29.0.0/24", "auxAddress": map[string]any{"h": "172.29.0.9"}},
	)))
	got := map[string]bool{}
	for _, x := range f {
		got[x.Property] = true
	}
	want := map[string]bool{
		"ipamConfigs[0].subnet": true, "ipamConfigs[1].subnet": true, "ipamConfigs[1].gateway": true,
		"ipamConfigs[1].ipRange": true, "ipamConfigs[2].subnet": true, "ipamConfigs[3].auxAddress": true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("failures %v", f)
	}
}

func TestNetworkIpamChangeReplaces(t *testing.T) {
	n := typeOf(t, "docker:index/network:Network")
	olds := props("name", "n", "driver", "bridge", "ipamConfigs", pools(map[string]any{"subnet": "172.28.0.0/24"}))
	if d := n.Diff(olds, olds.Copy()); d.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("no change expected: %v", d)
	}
	news := olds.Copy()
	news["ipamConfigs"] = resource.NewPropertyValue(pools(map[string]any{"subnet": "172.29.0.0/24"}))
	if d := n.Diff(olds, news); !reflect.DeepEqual(d.Replaces, []string{"ipamConfigs"}) || !d.DeleteBeforeReplace {
		t.Fatalf("a changed subnet replaces the network: %v", d)
	}
	delete(news, "ipamConfigs")
	if d := n.Diff(olds, news); !reflect.DeepEqual(d.Replaces, []string{"ipamConfigs"}) {
		t.Fatalf("dropping the pool replaces the network: %v", d)
	}
}

// A fake engine on loopback: the create body carries the pool, Read reports the engine's pool in
// the declared shape (the gateway the engine picked is not a drift).
func TestNetworkIpamCreateAndRead(t *testing.T) {
	var created map[string]any
	subnet := "172.28.0.0/24"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "POST" && r.URL.Path == "/networks/create":
			_ = json.NewDecoder(r.Body).Decode(&created)
			_, _ = w.Write([]byte(`{"Id":"abc"}`))
		case r.Method == "GET" && r.URL.Path == "/networks/abc":
			_ = json.NewEncoder(w).Encode(map[string]any{"Id": "abc", "Name": "n", "Driver": "bridge", "Scope": "local",
				"IPAM": map[string]any{"Driver": "default", "Config": []any{map[string]any{"Subnet": subnet, "Gateway": "172.28.0.1"}}}})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	t.Setenv("DOCKER_HOST", "tcp://"+srv.Listener.Addr().String())
	eng, err := newEngine()
	if err != nil {
		t.Fatal(err)
	}
	n := &network{eng}
	in := props("name", "n", "driver", "bridge", "ipamConfigs", pools(map[string]any{"subnet": "172.28.0.0/24"}))
	id, out, err := n.Create(context.Background(), in)
	if err != nil || id != "abc" {
		t.Fatal(id, err)
	}
	wantIpam := map[string]any{"Driver": "default", "Config": []any{map[string]any{"Subnet": "172.28.0.0/24"}}}
	if !reflect.DeepEqual(created["IPAM"], wantIpam) {
		t.Fatalf("create body IPAM = %#v", created["IPAM"])
	}
	typ := typeOf(t, "docker:index/network:Network")
	if d := typ.Diff(typ.InputsOf(out), in); d.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("read back as declared: %v (%v)", d, out)
	}
	subnet = "10.9.0.0/24" // changed behind Pulumi's back: a refresh shows it
	_, out, err = n.Read(context.Background(), "abc", out)
	if err != nil {
		t.Fatal(err)
	}
	if got := pluginkit.GetString(pluginkit.ObjectList(out, "ipamConfigs")[0], "subnet", ""); got != subnet {
		t.Fatalf("refresh subnet %q", got)
	}
}
