package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ai-trading/pluginkit"
)

// A name the engine already has is refused, naming it and how to free it; Docker's create would
// have answered with the existing volume and its data (session 46). A new name is created.
func TestVolumeCreateRefusesAnExistingName(t *testing.T) {
	have := map[string]bool{"ai-trading-dev-postgres-data": true}
	creates := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/volumes/")
		switch {
		case r.Method == "POST" && r.URL.Path == "/volumes/create":
			var body map[string]any
			_ = json.NewDecoder(r.Body).Decode(&body)
			creates++
			have[body["Name"].(string)] = true
			_ = json.NewEncoder(w).Encode(map[string]any{"Name": body["Name"], "Driver": "local", "Mountpoint": "/var/lib/docker/volumes/x/_data"})
		case r.Method == "GET" && have[name]:
			_ = json.NewEncoder(w).Encode(map[string]any{"Name": name, "Driver": "local", "Mountpoint": "/var/lib/docker/volumes/x/_data", "CreatedAt": "2026-12-05T10:00:00Z"})
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"message":"get ` + name + `: no such volume"}`))
		}
	}))
	defer srv.Close()
	t.Setenv("DOCKER_HOST", "tcp://"+srv.Listener.Addr().String())
	eng, err := newEngine()
	if err != nil {
		t.Fatal(err)
	}
	v := &volume{eng}
	_, _, err = v.Create(context.Background(), props("name", "ai-trading-dev-postgres-data"))
	if err == nil || !strings.Contains(err.Error(), "volume ai-trading-dev-postgres-data already exists (created 2026-12-05T10:00:00Z") ||
		!strings.Contains(err.Error(), "docker volume rm ai-trading-dev-postgres-data") {
		t.Fatalf("existing name: %v", err)
	}
	if creates != 0 {
		t.Fatalf("the existing volume was asked for again: %d creates", creates)
	}
	id, out, err := v.Create(context.Background(), props("name", "ai-trading-dev-redis-data"))
	if err != nil || id != "ai-trading-dev-redis-data" || pluginkit.GetString(out, "driver", "") != "local" || creates != 1 {
		t.Fatalf("new name: %q %v %v (%d creates)", id, out, err, creates)
	}
}
