package main

import (
	"context"
	"fmt"
	"net/url"

	"github.com/ai-trading/pluginkit"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// volume: docker:index/volume:Volume (name, labels, driver, driverOpts) -> name, driver, mountpoint; id = name.
type volume struct{ eng *engine }

var volumeInputs = set("name", "labels", "driver", "driverOpts")

func (v *volume) check(_ context.Context, m resource.PropertyMap) []*pulumirpc.CheckFailure {
	return unsupported(m, volumeInputs)
}

func (v *volume) outputs(in resource.PropertyMap) resource.PropertyMap {
	out := resource.PropertyMap{"mountpoint": computed()}
	if _, ok := pluginkit.PV(in, "name"); !ok {
		out["name"] = computed()
	}
	if _, ok := pluginkit.PV(in, "driver"); !ok {
		out["driver"] = computed()
	}
	return out
}

func (v *volume) deleteBeforeReplace() bool { return true }
func (v *volume) inPlace() map[string]bool  { return nil }

type volumeInfo struct{ Name, Driver, Mountpoint string }

func (v *volume) create(ctx context.Context, in resource.PropertyMap) (string, resource.PropertyMap, error) {
	req := map[string]any{
		"Name":       pluginkit.GetString(in, "name", ""),
		"Driver":     pluginkit.GetString(in, "driver", "local"),
		"DriverOpts": getStringMap(in, "driverOpts"),
		"Labels":     labelsOf(in, "labels"),
	}
	var info volumeInfo
	if err := v.eng.call(ctx, "POST", "/volumes/create", nil, req, &info); err != nil {
		return "", nil, err
	}
	ok, out, err := v.read(ctx, info.Name, in)
	if err == nil && !ok {
		err = fmt.Errorf("volume %s vanished after create", info.Name)
	}
	return info.Name, out, err
}

func (v *volume) read(ctx context.Context, id string, state resource.PropertyMap) (bool, resource.PropertyMap, error) {
	var info volumeInfo
	if err := v.eng.call(ctx, "GET", "/volumes/"+url.PathEscape(id), nil, nil, &info); err != nil {
		if isNotFound(err) {
			return false, nil, nil
		}
		return false, nil, err
	}
	out := state.Copy()
	out["name"] = str(info.Name)
	out["driver"] = str(info.Driver)
	out["mountpoint"] = str(info.Mountpoint)
	return true, out, nil
}

func (v *volume) delete(ctx context.Context, id string, _ resource.PropertyMap) error {
	if err := v.eng.call(ctx, "DELETE", "/volumes/"+url.PathEscape(id), nil, nil, nil); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}
