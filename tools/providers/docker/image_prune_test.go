package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"
)

// A fake engine on loopback records the prune call: only dangling images with the built image's
// source label, older than leftoverAge; no call at all for an image without that label.
func TestPruneBuildLeftovers(t *testing.T) {
	var calls []map[string][]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/images/prune" {
			http.NotFound(w, r)
			return
		}
		var f map[string][]string
		if err := json.Unmarshal([]byte(r.URL.Query().Get("filters")), &f); err != nil {
			t.Errorf("filters: %v", err)
		}
		calls = append(calls, f)
		_, _ = w.Write([]byte(`{"ImagesDeleted":null,"SpaceReclaimed":0}`))
	}))
	defer srv.Close()
	t.Setenv("DOCKER_HOST", "tcp://"+srv.Listener.Addr().String())
	eng, err := newEngine()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	if err := pruneBuildLeftovers(context.Background(), eng, "ai-trading", now); err != nil {
		t.Fatal(err)
	}
	if err := pruneBuildLeftovers(context.Background(), eng, "", now); err != nil {
		t.Fatal(err)
	}
	want := []map[string][]string{{
		"dangling": {"true"},
		"label":    {"org.opencontainers.image.source=ai-trading"},
		"until":    {"2026-11-30T05:30:00Z"},
	}}
	if !reflect.DeepEqual(calls, want) {
		t.Fatalf("prune calls %v, want %v", calls, want)
	}
}
