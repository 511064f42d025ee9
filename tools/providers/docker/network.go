package main

import (
	"context"
	"fmt"
	"net/url"

	"github.com/ai-trading/pluginkit"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// network: docker:index/network:Network (name, driver, labels, internal, attachable, options) -> id, name, driver, scope.
type network struct{ eng *engine }

var networkInputs = set("name", "driver", "labels", "internal", "attachable", "options")

func (n *network) check(_ context.Context, m resource.PropertyMap) []*pulumirpc.CheckFailure {
	return unsupported(m, networkInputs)
}

func (n *network) outputs(in resource.PropertyMap) resource.PropertyMap {
	out := resource.PropertyMap{"scope": computed()}
	if _, ok := pluginkit.PV(in, "name"); !ok {
		out["name"] = computed()
	}
	if _, ok := pluginkit.PV(in, "driver"); !ok {
		out["driver"] = computed()
	}
	return out
}

func (n *network) deleteBeforeReplace() bool { return true }
func (n *network) inPlace() map[string]bool  { return nil }

type networkInfo struct {
	ID, Name, Driver, Scope string
	Internal                bool
}

func (n *network) create(ctx context.Context, in resource.PropertyMap) (string, resource.PropertyMap, error) {
	name := pluginkit.GetString(in, "name", "")
	if name == "" {
		return "", nil, fmt.Errorf("network name is required by this provider")
	}
	req := map[string]any{
		"Name":           name,
		"CheckDuplicate": true,
		"Driver":         pluginkit.GetString(in, "driver", "bridge"),
		"Internal":       pluginkit.GetBool(in, "internal", false),
		"Attachable":     pluginkit.GetBool(in, "attachable", false),
		"Labels":         labelsOf(in, "labels"),
		"Options":        getStringMap(in, "options"),
	}
	var resp struct{ Id string }
	if err := n.eng.call(ctx, "POST", "/networks/create", nil, req, &resp); err != nil {
		return "", nil, err
	}
	ok, out, err := n.read(ctx, resp.Id, in)
	if err == nil && !ok {
		err = fmt.Errorf("network %s vanished after create", name)
	}
	return resp.Id, out, err
}

func (n *network) read(ctx context.Context, id string, state resource.PropertyMap) (bool, resource.PropertyMap, error) {
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

func (n *network) delete(ctx context.Context, id string, _ resource.PropertyMap) error {
	if err := n.eng.call(ctx, "DELETE", "/networks/"+url.PathEscape(id), nil, nil, nil); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}
