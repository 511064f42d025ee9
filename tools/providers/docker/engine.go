package main

// Talks to the Docker Engine HTTP API directly (unix socket, or tcp:// from DOCKER_HOST) with
// net/http instead of the Go client module or the docker CLI:
//   - the CLI cannot express what the SDK's inputs mean exactly (multi-element entrypoints,
//     exec-form ["CMD", ...] health checks, network aliases per network, uploads to a created but
//     not yet started container without a shell round trip);
//   - github.com/docker/docker/client would pull a large module graph through a proxy that only
//     serves already-cached versions; the few endpoints used here are stable since API 1.41
//     (Docker 20.10, the engine of this machine), and unversioned paths use the daemon's own version.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

type engine struct {
	client *http.Client
	base   string
	local  bool // the daemon runs on this host (unix socket): host paths are shared
}

func newEngine() (*engine, error) {
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = "unix:///var/run/docker.sock"
	}
	u, err := url.Parse(host)
	if err != nil {
		return nil, fmt.Errorf("DOCKER_HOST %q: %w", host, err)
	}
	switch u.Scheme {
	case "unix":
		sock := u.Path
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}
		return &engine{client: &http.Client{Transport: tr}, base: "http://docker", local: true}, nil
	case "tcp", "http":
		if os.Getenv("DOCKER_TLS_VERIFY") != "" {
			return nil, errors.New("DOCKER_TLS_VERIFY is not supported by this provider")
		}
		return &engine{client: &http.Client{}, base: "http://" + u.Host}, nil
	}
	return nil, fmt.Errorf("DOCKER_HOST scheme %q is not supported by this provider", u.Scheme)
}

type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("docker engine: %s (HTTP %d)", e.msg, e.status) }

func isStatus(err error, code int) bool {
	var a *apiError
	return errors.As(err, &a) && a.status == code
}

func isNotFound(err error) bool { return isStatus(err, http.StatusNotFound) }

func (e *engine) do(ctx context.Context, method, path string, q url.Values, body io.Reader, ctype string) (*http.Response, error) {
	u := e.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("docker engine %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var m struct{ Message string }
		if json.Unmarshal(b, &m) != nil || m.Message == "" {
			m.Message = strings.TrimSpace(string(b))
		}
		return nil, &apiError{status: resp.StatusCode, msg: m.Message}
	}
	return resp, nil
}

// call sends in (if not nil) as JSON and decodes the answer into out (if not nil).
func (e *engine) call(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	ctype := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ctype = bytes.NewReader(b), "application/json"
	}
	resp, err := e.do(ctx, method, path, q, body, ctype)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// jsonStream reads a pull/build progress stream: returns the last lines of output, the last
// aux.ID and the first error message of the stream.
func jsonStream(r io.Reader) (tail []string, auxID string, err error) {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Stream      string
			Status      string
			Error       string
			ErrorDetail struct{ Message string }
			Aux         struct{ ID string }
		}
		if derr := dec.Decode(&m); derr == io.EOF {
			return tail, auxID, nil
		} else if derr != nil {
			return tail, auxID, derr
		}
		line := strings.TrimRight(m.Stream+m.Status, "\n")
		if line != "" {
			tail = append(tail, strings.Split(line, "\n")...)
			if len(tail) > 40 {
				tail = tail[len(tail)-40:]
			}
		}
		if m.Aux.ID != "" {
			auxID = m.Aux.ID
		}
		if m.Error != "" || m.ErrorDetail.Message != "" {
			msg := m.ErrorDetail.Message
			if msg == "" {
				msg = m.Error
			}
			return tail, auxID, errors.New(msg)
		}
	}
}

// demuxLogs splits Docker's multiplexed stdout/stderr stream (8-byte frame headers) into one text.
func demuxLogs(b []byte) string {
	var out bytes.Buffer
	for len(b) >= 8 && (b[0] == 0 || b[0] == 1 || b[0] == 2) && b[1] == 0 && b[2] == 0 && b[3] == 0 {
		n := int(b[4])<<24 | int(b[5])<<16 | int(b[6])<<8 | int(b[7])
		b = b[8:]
		if n > len(b) {
			n = len(b)
		}
		out.Write(b[:n])
		b = b[n:]
	}
	out.Write(b) // a TTY stream has no frames
	return out.String()
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
