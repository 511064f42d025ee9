package main

import (
	"context"
	"fmt"
	"net/url"

	"github.com/ai-trading/pluginkit"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// network: docker:index/network:Network -> id, name, driver, scope.
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
		},
		Outputs:             pluginkit.Props{"name": strProp(), "driver": strProp(), "scope": strProp()},
		RequiredInputs:      []string{"name"},
		RequiredOutputs:     []string{"driver", "scope"},
		DeleteBeforeReplace: true,
		Resource:            &network{eng},
	}
}

func (n *network) Check(context.Context, resource.PropertyMap) []*pulumirpc.CheckFailure { return nil }

type networkInfo struct {
	ID, Name, Driver, Scope string
	Internal                bool
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
	return true, out, nil
}

func (n *network) Delete(ctx context.Context, id string, _ resource.PropertyMap) error {
	if err := n.eng.call(ctx, "DELETE", "/networks/"+url.PathEscape(id), nil, nil, nil); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}
