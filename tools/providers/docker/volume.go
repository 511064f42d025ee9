package main

import (
	"context"
	"fmt"
	"net/url"

	"github.com/ai-trading/pluginkit"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// volume: docker:index/volume:Volume -> name, driver, mountpoint; id = name.
type volume struct{ eng *engine }

func volumeType(eng *engine) *pluginkit.Type {
	return &pluginkit.Type{
		Token: "docker:index/volume:Volume",
		Inputs: pluginkit.Props{
			"name":       strProp().Doc("Chosen by the engine when absent."),
			"labels":     pluginkit.ArrayOf(ref(tokVolumeLabel)),
			"driver":     strProp().Doc("Default local."),
			"driverOpts": stringMap(),
		},
		Outputs:             pluginkit.Props{"name": strProp(), "driver": strProp(), "mountpoint": strProp()},
		RequiredOutputs:     []string{"name", "driver", "mountpoint"},
		DeleteBeforeReplace: true,
		Resource:            &volume{eng},
	}
}

func (v *volume) Check(context.Context, resource.PropertyMap) []*pulumirpc.CheckFailure { return nil }

type volumeInfo struct{ Name, Driver, Mountpoint string }

// Create refuses a name the engine already has: Docker's create answers with the existing volume,
// so a deploy took over another deployment's data, and the passwords it was written with, without
// a word (a stack whose containers were removed by hand, docker rm -f, or whose state was lost;
// session 46). PostgreSQL then refused the new stack's generated password, and a datastore kept
// whatever the other deployment had stored.
func (v *volume) Create(ctx context.Context, in resource.PropertyMap) (string, resource.PropertyMap, error) {
	name := pluginkit.GetString(in, "name", "")
	if name != "" {
		var existing struct {
			CreatedAt string
			Labels    map[string]string
		}
		err := v.eng.call(ctx, "GET", "/volumes/"+url.PathEscape(name), nil, nil, &existing)
		if err == nil {
			return "", nil, fmt.Errorf("volume %s already exists (created %s, not by this stack's state): it holds another deployment's data, "+
				"written with that deployment's passwords. Take that deployment down where it was deployed (npm run down in its clone), "+
				"or, when its data is not needed, remove the volume (docker volume rm %s); then run again", name, existing.CreatedAt, name)
		}
		if !isNotFound(err) {
			return "", nil, err
		}
	}
	req := map[string]any{
		"Name":       name,
		"Driver":     pluginkit.GetString(in, "driver", "local"),
		"DriverOpts": pluginkit.StringMap(in, "driverOpts"),
		"Labels":     labelsOf(in, "labels"),
	}
	var info volumeInfo
	if err := v.eng.call(ctx, "POST", "/volumes/create", nil, req, &info); err != nil {
		return "", nil, err
	}
	ok, out, err := v.Read(ctx, info.Name, in)
	if err == nil && !ok {
		err = fmt.Errorf("volume %s vanished after create", info.Name)
	}
	return info.Name, out, err
}

func (v *volume) Read(ctx context.Context, id string, state resource.PropertyMap) (bool, resource.PropertyMap, error) {
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

func (v *volume) Delete(ctx context.Context, id string, _ resource.PropertyMap) error {
	if err := v.eng.call(ctx, "DELETE", "/volumes/"+url.PathEscape(id), nil, nil, nil); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}
