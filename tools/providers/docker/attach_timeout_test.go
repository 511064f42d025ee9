package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ai-trading/pluginkit"
)

// attachTimeout: a positive whole number of seconds, and only beside attach (it bounds that wait).
func TestContainerAttachTimeoutCheck(t *testing.T) {
	const token = "docker:index/container:Container"
	for _, bad := range []float64{0, -5} {
		_, f := check(t, token, props("name", "n", "image", "i", "attach", true, "mustRun", false, "attachTimeout", bad))
		if len(f) != 1 || f[0].Property != "attachTimeout" || !strings.Contains(f[0].Reason, "positive integer") {
			t.Errorf("attachTimeout %v: failures %v", bad, f)
		}
	}
	if _, f := check(t, token, props("name", "n", "image", "i", "attach", true, "mustRun", false, "attachTimeout", 1.5)); len(f) != 1 || f[0].Property != "attachTimeout" {
		t.Errorf("attachTimeout 1.5: failures %v", f)
	}
	if _, f := check(t, token, props("name", "n", "image", "i", "attachTimeout", 60.0)); len(f) != 1 || !strings.Contains(f[0].Reason, "attach, which is not set") {
		t.Errorf("attachTimeout without attach: failures %v", f)
	}
	in, f := check(t, token, props("name", "n", "image", "i", "attach", true, "mustRun", false, "attachTimeout", 3600.0))
	if len(f) != 0 || pluginkit.GetInt(in, "attachTimeout", 0) != 3600 {
		t.Fatalf("attachTimeout 3600: %v %v", f, in)
	}
}

// fakeRun: an engine on loopback whose one container runs until it is stopped (runForever) or exits
// at once with code 0; it records the stop's grace period and whether the container was removed.
type fakeRun struct {
	mu         sync.Mutex
	runForever bool
	stopGrace  string
	removed    bool
	exited     chan struct{}
}

func (f *fakeRun) serve(t *testing.T) {
	t.Helper()
	f.exited = make(chan struct{})
	var once sync.Once
	exit := func() { once.Do(func() { close(f.exited) }) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		forever, removed := f.runForever, f.removed
		f.mu.Unlock()
		switch {
		case r.Method == "POST" && r.URL.Path == "/containers/create":
			_, _ = w.Write([]byte(`{"Id":"c1"}`))
		case r.Method == "POST" && r.URL.Path == "/containers/c1/start":
			w.WriteHeader(http.StatusNoContent)
			if !forever {
				exit()
			}
		case r.Method == "POST" && r.URL.Path == "/containers/c1/wait":
			select {
			case <-f.exited:
				_, _ = w.Write([]byte(`{"StatusCode":0}`))
			case <-r.Context().Done(): // the provider gave up waiting
			}
		case r.Method == "POST" && r.URL.Path == "/containers/c1/stop":
			f.mu.Lock()
			if f.stopGrace == "" { // the first stop, the provider's; Create's cleanup then stops it again
				f.stopGrace = r.URL.Query().Get("t")
			}
			f.mu.Unlock()
			exit()
			w.WriteHeader(http.StatusNoContent)
		case r.Method == "GET" && r.URL.Path == "/containers/c1/logs":
			_, _ = w.Write([]byte("migrating: waiting for the lock\n"))
		case r.Method == "DELETE" && r.URL.Path == "/containers/c1":
			f.mu.Lock()
			f.removed = true
			f.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		case r.Method == "GET" && r.URL.Path == "/containers/c1/json" && !removed:
			_ = json.NewEncoder(w).Encode(map[string]any{"Id": "c1", "State": map[string]any{"Status": "exited"}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	t.Setenv("DOCKER_HOST", "tcp://"+srv.Listener.Addr().String())
}

// A one-shot run past its attachTimeout is stopped with the container's grace period and removed,
// and the create fails naming the limit and the run's last lines; a run within it is created.
func TestContainerAttachTimeoutStopsTheRun(t *testing.T) {
	run := &fakeRun{runForever: true}
	run.serve(t)
	eng, err := newEngine()
	if err != nil {
		t.Fatal(err)
	}
	c := &container{eng}
	in := props("name", "svc-migrate", "image", "sha256:1", "restart", "no", "mustRun", false, "attach", true, "logs", true, "attachTimeout", 1.0, "destroyGraceSeconds", 30.0)
	start := time.Now()
	id, _, err := c.Create(context.Background(), in)
	took := time.Since(start)
	if err == nil || id != "" {
		t.Fatalf("a run past its limit must fail the create: id %q, err %v", id, err)
	}
	for _, want := range []string{"svc-migrate ran past its time limit (attachTimeout 1s)", "SIGKILL 30s later", "migrating: waiting for the lock"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if took < time.Second || took > 10*time.Second {
		t.Errorf("the create gave up after %s, not at its 1 s limit", took)
	}
	run.mu.Lock()
	grace, removed := run.stopGrace, run.removed
	run.mu.Unlock()
	if grace != "30" || !removed {
		t.Fatalf("stopped with grace %q (want 30), removed %v", grace, removed)
	}

	quick := &fakeRun{}
	quick.serve(t)
	if eng, err = newEngine(); err != nil {
		t.Fatal(err)
	}
	c = &container{eng}
	id, out, err := c.Create(context.Background(), in)
	if err != nil || id != "c1" || pluginkit.GetInt(out, "exitCode", -1) != 0 {
		t.Fatalf("a run within its limit: id %q, err %v, out %v", id, err, out)
	}
}

// Against a real engine (opt-in, as TestEngineUploadOwner): a container sleeping past a 2 s
// attachTimeout is stopped and removed, and the create fails within its limit plus the grace.
//
//	DOCKER_PROVIDER_TEST_IMAGE=localhost/ai-trading/debian:bookworm go test -run EngineAttachTimeout .
func TestEngineAttachTimeout(t *testing.T) {
	image := os.Getenv("DOCKER_PROVIDER_TEST_IMAGE")
	if image == "" {
		t.Skip("DOCKER_PROVIDER_TEST_IMAGE is not set: engine-backed attachTimeout test skipped")
	}
	eng, err := newEngine()
	if err != nil {
		t.Fatal(err)
	}
	c := &container{eng}
	name := "provider-test-attach-timeout"
	in := props(
		"name", name, "image", image, "entrypoints", []any{"sleep", "600"},
		"networksAdvanced", []any{map[string]any{"name": "none"}},
		"restart", "no", "mustRun", false, "attach", true, "logs", true, "attachTimeout", 2.0, "destroyGraceSeconds", 1.0,
	)
	start := time.Now()
	id, _, err := c.Create(context.Background(), in)
	took := time.Since(start)
	if id != "" {
		_ = c.remove(context.Background(), id, name, 0, true)
	}
	if err == nil || !strings.Contains(err.Error(), "ran past its time limit (attachTimeout 2s)") {
		t.Fatalf("sleep 600 under a 2 s limit: %v", err)
	}
	if took < 2*time.Second || took > 30*time.Second {
		t.Errorf("the create gave up after %s", took)
	}
	if _, err := c.inspect(context.Background(), name); !isNotFound(err) {
		t.Fatalf("the stopped run's container is left behind: %v", err)
	}
}
