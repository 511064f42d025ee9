package main

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"

	"github.com/ai-trading/pluginkit"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// network: docker:index/network:Network -> id, name, driver, scope. ipamConfigs pins the subnet
// (and optionally the gateway and the range containers are given addresses from): the dev stack
// relies on a known subnet (the gateway's TRUST_PROXY). Like every input, a change replaces it.
type network struct{ eng *engine }

func networkType(eng *engine) *pluginkit.Type {
	return &pluginkit.Type{
		Token: "docker:index/network:Network",
		Inputs: pluginkit.Props{
			"name":       strProp().Doc("Required by this provider."),
			"driver":     strProp().Doc("Default bridge."),
			"labels":     pluginkit.ArrayOf(ref(tokNetworkLabel)),
			"internal":   boolProp(),
			"attachable": boolProp(),
			"options":    stringMap(),
			"ipamConfigs": pluginkit.ArrayOf(ref(tokNetworkIpamConfig)).Doc(
				"IPv4 or IPv6 pools (the default IPAM driver); subnet required, gateway and ipRange inside it."),
		},
		Outputs:             pluginkit.Props{"name": strProp(), "driver": strProp(), "scope": strProp()},
		RequiredInputs:      []string{"name"},
		RequiredOutputs:     []string{"driver", "scope"},
		DeleteBeforeReplace: true,
		Resource:            &network{eng},
	}
}

func (n *network) Check(_ context.Context, in resource.PropertyMap) []*pulumirpc.CheckFailure {
	var fs []*pulumirpc.CheckFailure
	fail := func(i int, k, reason string) {
		fs = append(fs, &pulumirpc.CheckFailure{Property: fmt.Sprintf("ipamConfigs[%d].%s", i, k), Reason: reason})
	}
	for i, c := range pluginkit.ObjectList(in, "ipamConfigs") {
		if v, ok := pluginkit.PV(c, "subnet"); ok && v.IsComputed() {
			continue // known at apply time only: the engine refuses a bad one then
		}
		subnet, err := netip.ParsePrefix(pluginkit.GetString(c, "subnet", ""))
		if err != nil {
			fail(i, "subnet", fmt.Sprintf("a CIDR such as 172.28.0.0/24 is required: %v", err))
			continue
		}
		if subnet != subnet.Masked() {
			fail(i, "subnet", fmt.Sprintf("%s has host bits set (the network is %s)", subnet, subnet.Masked()))
		}
		if g := pluginkit.GetString(c, "gateway", ""); g != "" {
			if a, err := netip.ParseAddr(g); err != nil || !subnet.Contains(a) {
				fail(i, "gateway", fmt.Sprintf("%q is not an address inside %s", g, subnet))
			}
		}
		if r := pluginkit.GetString(c, "ipRange", ""); r != "" {
			if p, err := netip.ParsePrefix(r); err != nil || !subnet.Contains(p.Addr()) || p.Bits() < subnet.Bits() {
				fail(i, "ipRange", fmt.Sprintf("%q is not a CIDR inside %s", r, subnet))
			}
		}
	}
	return fs
}

// ipamConfig is one pool as the engine takes and reports it.
type ipamConfig struct {
	Subnet  string `json:",omitempty"`
	Gateway string `json:",omitempty"`
	IPRange string `json:",omitempty"`
}

func ipamConfigsOf(in resource.PropertyMap) []ipamConfig {
	var out []ipamConfig
	for _, c := range pluginkit.ObjectList(in, "ipamConfigs") {
		out = append(out, ipamConfig{
			Subnet:  pluginkit.GetString(c, "subnet", ""),
			Gateway: pluginkit.GetString(c, "gateway", ""),
			IPRange: pluginkit.GetString(c, "ipRange", ""),
		})
	}
	return out
}

type networkInfo struct {
	ID, Name, Driver, Scope string
	Internal                bool
	IPAM                    struct{ Config []ipamConfig }
}

// observedIpam is the engine's pools in the shape of the declared ones: only the keys declared
// (the engine picks a gateway when none is given), so a refresh shows a real drift and nothing else.
func observedIpam(declared []resource.PropertyMap, engine []ipamConfig) resource.PropertyValue {
	var out []resource.PropertyValue
	for i, e := range engine {
		m := resource.PropertyMap{"subnet": str(e.Subnet)}
		if i < len(declared) {
			if _, ok := pluginkit.PV(declared[i], "gateway"); ok {
				m["gateway"] = str(e.Gateway)
			}
			if _, ok := pluginkit.PV(declared[i], "ipRange"); ok {
				m["ipRange"] = str(e.IPRange)
			}
		}
		out = append(out, resource.NewObjectProperty(m))
	}
	return resource.NewArrayProperty(out)
}

func (n *network) Create(ctx context.Context, in resource.PropertyMap) (string, resource.PropertyMap, error) {
	name := pluginkit.GetString(in, "name", "")
	req := map[string]any{
		"Name":           name,
		"CheckDuplicate": true,
		"Driver":         pluginkit.GetString(in, "driver", "bridge"),
		"Internal":       pluginkit.GetBool(in, "internal", false),
		"Attachable":     pluginkit.GetBool(in, "attachable", false),
		"Labels":         labelsOf(in, "labels"),
		"Options":        pluginkit.StringMap(in, "options"),
	}
	if pools := ipamConfigsOf(in); len(pools) > 0 {
		req["IPAM"] = map[string]any{"Driver": "default", "Config": pools}
	}
	var resp struct{ Id string }
	if err := n.eng.call(ctx, "POST", "/networks/create", nil, req, &resp); err != nil {
		return "", nil, err
	}
	ok, out, err := n.Read(ctx, resp.Id, in)
	if err == nil && !ok {
		err = fmt.Errorf("network %s vanished after create", name)
	}
	return resp.Id, out, err
}

func (n *network) Read(ctx context.Context, id string, state resource.PropertyMap) (bool, resource.PropertyMap, error) {
	var info networkInfo
	if err := n.eng.call(ctx, "GET", "/networks/"+url.PathEscape(id), nil, nil, &info); err != nil {
		if isNotFound(err) {
			return false, nil, nil
		}
		return false, nil, err
	}
	out := state.Copy()
	out["name"] = str(info.Name)
	out["driver"] = str(info.Driver)
	out["scope"] = str(info.Scope)
	if declared := pluginkit.ObjectList(state, "ipamConfigs"); len(declared) > 0 {
		out["ipamConfigs"] = observedIpam(declared, info.IPAM.Config)
	}
	return true, out, nil
}

func (n *network) Delete(ctx context.Context, id string, _ resource.PropertyMap) error {
	if err := n.eng.call(ctx, "DELETE", "/networks/"+url.PathEscape(id), nil, nil, nil); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}
