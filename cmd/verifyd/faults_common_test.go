package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The failure tests of SECURITY.md §3.3 that drive the daemon binary live
// in the faults_*_test.go files; their names start with TestFault, so that
// make faults runs them (with the fault tests of the packages) by name.
// What fits in make test's time runs by default; VERIFYD_FAULTS_LONG=1
// runs the long versions and measures (make faults does, as a CI step
// after make test).

// faultAdminKey is the admin key of the daemons of the fault tests.
const faultAdminKey = "fault-tests-admin-key-0001"

func faultsLong() bool { return os.Getenv("VERIFYD_FAULTS_LONG") == "1" }

// faultRace keeps a daemon built with -race from sleeping a second on
// exit (the race runtime's default), which every stop would pay.
var faultRace = strings.TrimSpace("GORACE=" + os.Getenv("GORACE") + " atexit_sleep_ms=0")

// faultHS256 is the HS256 secret of the trust source "proxy" of
// faultConfig, and faultHS256Env the environment that hands it over.
var (
	faultHS256    = randomBytes(32)
	faultHS256Env = "FAULT_HS256=" + b64url.EncodeToString(faultHS256)
)

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// faultConfig is a configuration with an HS256 trust source, followed by
// extra (more YAML). The throttle is off: the tests present refused
// credentials on purpose (rotated-out PAT secrets among them, which would
// cool their PAT id down), and the throttle has tests of its own.
func faultConfig(extra string) string {
	return `
throttle:
  enabled: false
trust:
  sources:
    - name: proxy
      hs256:
        - kid: hs-1
          secret_env: FAULT_HS256
      issuer: https://issuer.example
      audience: [verifyd]
` + extra
}

// startFaultDaemon runs verifyd on dataDir with the configuration cfg (YAML),
// the admin key faultAdminKey and the HS256 secret, and env.
func startFaultDaemon(t *testing.T, dataDir, cfg string, env ...string) *daemon {
	t.Helper()
	file := filepath.Join(t.TempDir(), "verifyd.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return startDaemon(t, dataDir, append([]string{"VERIFYD_CONFIG=" + file, "VERIFYD_ADMIN_KEY=" + faultAdminKey, faultHS256Env, faultRace}, env...)...)
}

// faultJWT returns an HS256 token of the trust source "proxy" for sub, with
// the jti given and valid for a day.
func faultJWT(t *testing.T, sub, jti string) string {
	c := jwtClaims(sub, 24*time.Hour)
	c["jti"] = jti
	return hs256(t, faultHS256, "hs-1", c)
}

// faultHTTP is an HTTP client for the fault tests that reports errors
// instead of failing the test, so that goroutines can use it while the
// daemon is killed under them.
var faultHTTP = &http.Client{Timeout: 30 * time.Second}

// adminCall sends body (JSON-encoded unless nil) to the daemon at addr with the
// admin key and decodes a 2xx answer into out (when not nil). An error
// means no complete answer came.
func adminCall(addr, method, path string, body, out any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+addr+path, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Admin-Key", faultAdminKey)
	resp, err := faultHTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, b, fmt.Errorf("%s %s: answer %q: %w", method, path, b, err)
		}
	}
	return resp.StatusCode, b, nil
}

// verifyStatus calls POST /v1/verify and returns the HTTP status and the
// answer's status ("ok", "revoked", ...).
func verifyStatus(addr, token, scope string) (int, string, error) {
	var a struct {
		Status string `json:"status"`
	}
	code, b, err := adminCall(addr, "POST", "/v1/verify", map[string]string{"token": token, "scope": scope}, nil)
	if err != nil {
		return 0, "", err
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return code, "", fmt.Errorf("verify answer %q: %w", b, err)
	}
	return code, a.Status, nil
}

// metricValue returns the value of the series of /metrics whose line starts
// with series (name and labels), or -1 when there is none.
func metricValue(t *testing.T, addr, series string) float64 {
	t.Helper()
	_, b, err := adminCall(addr, "GET", "/metrics", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	return -1
}
