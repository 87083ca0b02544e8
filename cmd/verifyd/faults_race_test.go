package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verifyd/verifyd/ipc"
)

// raceCred is a credential of TestFaultRevocationRace: a stored key or a
// JWT, with what the adapters that remember a login hold for it.
type raceCred struct {
	token, subject string
	keyID          string // "" for a JWT, revoked by jti
	jti            string
	rabbitTag      string // its RabbitMQ login's binding tag
	mqttClient     string // the client id of its MQTT login
	revoked        atomic.Bool
}

// raceProbe asks one interface whether c is valid now.
type raceProbe struct {
	name string
	ask  func(c *raceCred) (bool, error)
}

// daemonPost sends body to the daemon and returns the status and answer.
func daemonPost(d *daemon, path, contentType string, body []byte, header map[string]string) (int, []byte, error) {
	req, err := http.NewRequest("POST", "http://"+d.addr+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := faultHTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func b64std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func daemonPostJSON(d *daemon, path string, v any) (int, []byte, error) {
	b, _ := json.Marshal(v)
	return daemonPost(d, path, "application/json", b, nil)
}

// raceProbes returns a probe for every interface that answers whether a
// credential is valid: POST /v1/verify, the socket, GET /v1/authz, POST
// /v1/introspect, the RabbitMQ user endpoint and a vhost check of a login
// made before, mosquitto-go-auth's user endpoint and an ACL check of a
// login made before, and EMQX's authn.
func raceProbes(t *testing.T, d *daemon, sock *ipc.Client, rsSecret string) []raceProbe {
	return []raceProbe{
		{"POST /v1/verify", func(c *raceCred) (bool, error) {
			code, _, err := verifyStatus(d.addr, c.token, "tool:data:read")
			return code == 200, err
		}},
		{"socket", func(c *raceCred) (bool, error) {
			r, err := sock.Verify(context.Background(), c.token, "tool:data:read")
			return r.Allowed(), err
		}},
		{"GET /v1/authz", func(c *raceCred) (bool, error) {
			req, _ := http.NewRequest("GET", "http://"+d.addr+"/v1/authz?scope=tool:data:read", nil)
			req.Header.Set("Authorization", "Bearer "+c.token)
			resp, err := faultHTTP.Do(req)
			if err != nil {
				return false, err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode == 200, nil
		}},
		{"POST /v1/introspect", func(c *raceCred) (bool, error) {
			code, b, err := daemonPost(d, "/v1/introspect", "application/x-www-form-urlencoded", []byte("token="+url.QueryEscape(c.token)),
				map[string]string{"Authorization": "Basic " + b64std("rs:"+rsSecret)})
			var a struct {
				Active bool `json:"active"`
			}
			if err == nil && (code != 200 || json.Unmarshal(b, &a) != nil) {
				err = fmt.Errorf("introspect: %d %s", code, b)
			}
			return a.Active, err
		}},
		{"RabbitMQ user", func(c *raceCred) (bool, error) {
			code, b, err := daemonPost(d, "/v1/compat/rabbitmq/user", "application/x-www-form-urlencoded",
				[]byte("username="+url.QueryEscape(c.subject)+"&password="+url.QueryEscape(c.token)), nil)
			return code == 200 && strings.HasPrefix(string(b), "allow"), err
		}},
		{"RabbitMQ vhost of an earlier login", func(c *raceCred) (bool, error) {
			code, b, err := daemonPost(d, "/v1/compat/rabbitmq/vhost", "application/x-www-form-urlencoded",
				[]byte("username="+url.QueryEscape(c.subject)+"&vhost=%2F&ip=127.0.0.1&tags="+url.QueryEscape(c.rabbitTag)), nil)
			return code == 200 && string(b) == "allow", err
		}},
		{"mosquitto-go-auth user", func(c *raceCred) (bool, error) {
			code, _, err := daemonPostJSON(d, "/v1/compat/mqtt/user", map[string]any{"username": c.subject, "password": c.token, "clientid": c.mqttClient + "-probe"})
			return code == 200, err
		}},
		{"mosquitto-go-auth ACL of an earlier login", func(c *raceCred) (bool, error) {
			code, _, err := daemonPostJSON(d, "/v1/compat/mqtt/acl", map[string]any{"username": c.subject, "clientid": c.mqttClient, "topic": "race/t", "acc": 2})
			return code == 200, err
		}},
		{"EMQX authn", func(c *raceCred) (bool, error) {
			code, b, err := daemonPostJSON(d, "/v1/compat/emqx/authn", map[string]any{"username": c.subject, "password": c.token, "clientid": c.mqttClient + "-emqx"})
			var a struct {
				Result string `json:"result"`
			}
			json.Unmarshal(b, &a)
			return code == 200 && a.Result == "allow", err
		}},
	}
}

// TestFaultRevocationRace revokes keys and JWTs (by jti) one by one while
// readers ask every interface about them. A reader notes whether the
// revoke call had returned before its question started. Pass (SECURITY.md
// §3.3.9): no question that started after the revoke call returned is
// answered "valid", whatever the interface, including the adapters'
// checks of logins made before the revocation; before their revocation
// every credential is valid on every interface.
func TestFaultRevocationRace(t *testing.T) {
	creds, readers, after := 24, 6, 300
	if faultsLong() {
		creds, readers, after = 400, 8, 5000
	}
	rsSecret := b64url.EncodeToString(randomBytes(32))
	d := startFaultDaemon(t, t.TempDir(), faultConfig(`
introspection:
  clients:
    - id: rs
      secret_env: FAULT_RS_SECRET
rabbitmq:
  enabled: true
mqtt:
  enabled: true
`), "FAULT_RS_SECRET="+rsSecret)
	sock, err := ipc.Dial(context.Background(), d.socket, &ipc.ClientOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()

	cs := make([]*raceCred, creds)
	for i := range cs {
		c := &raceCred{subject: fmt.Sprint("race-", i), mqttClient: fmt.Sprint("client-", i)}
		if i%2 == 0 {
			var k keyAnswer
			if code, b, err := adminCall(d.addr, "POST", "/v1/admin/keys", map[string]any{"subject": c.subject, "scopes": []string{"*"}}, &k); err != nil || code != 201 {
				t.Fatalf("create: %d %s %v", code, b, err)
			}
			c.token, c.keyID = k.Secret, k.ID
		} else {
			c.jti = fmt.Sprint("race-jti-", i)
			claims := jwtClaims(c.subject, time.Hour)
			claims["jti"], claims["scope"] = c.jti, "*"
			c.token = hs256(t, faultHS256, "hs-1", claims)
		}
		// The logins the adapters remember.
		code, b, err := daemonPost(d, "/v1/compat/rabbitmq/user", "application/x-www-form-urlencoded",
			[]byte("username="+url.QueryEscape(c.subject)+"&password="+url.QueryEscape(c.token)), nil)
		if err != nil || code != 200 || !strings.HasPrefix(string(b), "allow") {
			t.Fatalf("RabbitMQ login: %d %s %v", code, b, err)
		}
		fields := strings.Fields(string(b))
		c.rabbitTag = fields[len(fields)-1]
		if code, b, err := daemonPostJSON(d, "/v1/compat/mqtt/user", map[string]any{"username": c.subject, "password": c.token, "clientid": c.mqttClient}); err != nil || code != 200 {
			t.Fatalf("MQTT login: %d %s %v", code, b, err)
		}
		cs[i] = c
	}
	probes := raceProbes(t, d, sock, rsSecret)
	for _, p := range probes {
		for _, c := range cs[:4] {
			if ok, err := p.ask(c); err != nil || !ok {
				t.Fatalf("%s: a valid credential is refused (%v)", p.name, err)
			}
		}
	}

	var checked, violations atomic.Int64
	perProbe := make([]atomic.Int64, len(probes))
	var allDone atomic.Bool
	var wg sync.WaitGroup
	for r := range readers {
		rng := rand.New(rand.NewPCG(uint64(r), 9))
		wg.Go(func() {
			for n := 0; n < after; {
				if allDone.Load() {
					n++
				}
				c := cs[rng.IntN(len(cs))]
				pi := rng.IntN(len(probes))
				done := c.revoked.Load() // before the question starts
				ok, err := probes[pi].ask(c)
				if err != nil {
					t.Errorf("%s: %v", probes[pi].name, err)
					return
				}
				if !done {
					continue
				}
				checked.Add(1)
				perProbe[pi].Add(1)
				if ok && violations.Add(1) <= 10 {
					t.Errorf("%s: %s answered valid to a question that started after its revocation returned", probes[pi].name, c.subject)
				}
			}
		})
	}
	for _, i := range rand.Perm(len(cs)) {
		c := cs[i]
		var code int
		var err error
		if c.keyID != "" {
			code, _, err = adminCall(d.addr, "DELETE", "/v1/admin/keys/"+c.keyID, nil, nil)
		} else {
			code, _, err = adminCall(d.addr, "POST", "/v1/admin/revocations", map[string]any{"jti": c.jti}, nil)
		}
		if err != nil || code/100 != 2 {
			t.Fatalf("revoke %s: %d %v", c.subject, code, err)
		}
		c.revoked.Store(true)
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
	}
	allDone.Store(true)
	wg.Wait()
	var per []string
	for i, p := range probes {
		if perProbe[i].Load() == 0 {
			t.Errorf("%s: no question started after a revocation returned", p.name)
		}
		per = append(per, fmt.Sprintf("%s %d", p.name, perProbe[i].Load()))
	}
	t.Logf("%d credentials revoked under %d readers: %d questions started after a revocation returned (%s), %d answered valid",
		creds, readers, checked.Load(), strings.Join(per, ", "), violations.Load())
}
