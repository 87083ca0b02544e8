package httpapi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/credential"
	"github.com/verifyd/verifyd/verify/jwt"
	"github.com/verifyd/verifyd/verify/trust"
)

// The introspection clients of the tests. The second one's id and secret
// need form-urlencoding in Basic credentials: a space, '+', '/', '%', ':'.
var (
	rsClient  = IntrospectionClient{ID: "rs", Secret: "rs-secret-0123456789"}
	oddClient = IntrospectionClient{ID: "svc acct:1", Secret: "s3cr+t/with space%-~"}
)

// introspectServer is a real Server with introspection clients and an
// HS256 trust source, over a real store, with a settable clock.
type introspectServer struct {
	*testServer
	now      atomic.Int64 // Unix seconds of the verifier's and manager's clock
	hsSecret []byte
	store    *keystore.Store
}

func (s *introspectServer) clock() time.Time { return time.Unix(s.now.Load(), 0).UTC() }

func newIntrospectServer(t *testing.T, clients ...IntrospectionClient) *introspectServer {
	t.Helper()
	s := &introspectServer{hsSecret: []byte("introspection test secret, 32+ bytes long")}
	s.now.Store(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC).Unix())
	reg := prometheus.NewRegistry()
	store, err := keystore.Open(t.TempDir(), &keystore.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	s.store = store
	ck, _ := credential.NewChecksumKey()
	minter, err := credential.NewMinter(ck)
	if err != nil {
		t.Fatal(err)
	}
	registry, err := trust.New(trust.Config{Sources: []trust.Source{{
		Name: "proxy", HS256: []trust.Secret{{Kid: "hs-1", SecretEnv: "HS"}},
		Issuer: "https://issuer.example", Audience: []string{"verifyd"},
	}}}, &trust.Options{Getenv: func(string) string { return base64.RawURLEncoding.EncodeToString(s.hsSecret) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { registry.Close() })
	front, err := jwt.NewVerifier(registry, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(store, minter, &verify.Options{Registerer: reg, JWT: front, Now: s.clock})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{
		Verifier:      v,
		Manager:       verify.NewManager(store, minter, keystore.Sum(adminKey), s.clock),
		Gatherer:      reg,
		Registerer:    reg,
		Trust:         registry,
		Introspection: clients,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve after Shutdown: %v", err)
		}
	})
	s.testServer = &testServer{t: t, base: "http://" + ln.Addr().String(), v: v}
	return s
}

// introspected is one answer of POST /v1/introspect.
type introspected struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// introspect posts form with the Authorization header auth (none when
// empty) and decodes the answer.
func (s *introspectServer) introspect(auth string, form url.Values) introspected {
	s.t.Helper()
	return s.post("application/x-www-form-urlencoded", auth, form.Encode())
}

func (s *introspectServer) post(contentType, auth, body string) introspected {
	s.t.Helper()
	req, err := http.NewRequest("POST", s.base+"/v1/introspect", strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return s.send(req)
}

func (s *introspectServer) send(req *http.Request) introspected {
	s.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := introspected{status: resp.StatusCode, header: resp.Header, raw: raw}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		s.t.Fatalf("answer %d %q is not a JSON object: %v", resp.StatusCode, raw, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		s.t.Errorf("Content-Type %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		s.t.Errorf("Cache-Control %q, want no-store", cc)
	}
	return a
}

// basic is client_secret_basic as RFC 6749 §2.3.1 spells it: id and
// secret form-urlencoded, then base64.
func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// basicRaw is Basic credentials as most HTTP clients make them, without
// the form-urlencoding.
func basicRaw(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

func tokenForm(token string, kv ...string) url.Values {
	f := url.Values{"token": {token}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Add(kv[i], kv[i+1])
	}
	return f
}

func (a introspected) isInactive() bool {
	return a.status == 200 && string(bytes.TrimSuffix(a.raw, []byte("\n"))) == `{"active":false}`
}

// checkOAuthError requires an OAuth error answer: status, error code, a
// description, and on 401 the Basic challenge.
func checkOAuthError(t *testing.T, name string, a introspected, status int, code string) {
	t.Helper()
	if a.status != status || a.body["error"] != code || a.body["error_description"] == "" {
		t.Errorf("%s: %d %s, want %d error %q", name, a.status, a.raw, status, code)
	}
	if got := a.header.Get("WWW-Authenticate"); (status == 401) != (got == `Basic realm="verifyd"`) {
		t.Errorf("%s: WWW-Authenticate %q on a %d", name, got, a.status)
	}
}

// TestIntrospectClientAuthentication: both client authentication methods,
// with credentials that need form-urlencoding, and every way of failing.
func TestIntrospectClientAuthentication(t *testing.T) {
	s := newIntrospectServer(t, rsClient, oddClient)
	token := strings.Repeat("z", 43) // unknown: inactive, but answered 200
	ok := map[string]struct {
		auth string
		form url.Values
	}{
		"basic":                          {basic(rsClient.ID, rsClient.Secret), tokenForm(token)},
		"basic, '-' percent-encoded":     {"Basic " + base64.StdEncoding.EncodeToString([]byte("rs:rs%2Dsecret%2D0123456789")), tokenForm(token)},
		"basic, not encoded":             {basicRaw(rsClient.ID, rsClient.Secret), tokenForm(token)},
		"basic, odd characters":          {basic(oddClient.ID, oddClient.Secret), tokenForm(token)},
		"basic, lower-case scheme":       {"basic " + base64.StdEncoding.EncodeToString([]byte("rs:"+rsClient.Secret)), tokenForm(token)},
		"basic and the same client_id":   {basic(rsClient.ID, rsClient.Secret), tokenForm(token, "client_id", "rs")},
		"post":                           {"", tokenForm(token, "client_id", rsClient.ID, "client_secret", rsClient.Secret)},
		"post, odd characters":           {"", tokenForm(token, "client_id", oddClient.ID, "client_secret", oddClient.Secret)},
		"post, with a hint":              {"", tokenForm(token, "client_id", "rs", "client_secret", rsClient.Secret, "token_type_hint", "access_token")},
		"post, with another hint":        {"", tokenForm(token, "client_id", "rs", "client_secret", rsClient.Secret, "token_type_hint", "refresh_token")},
		"post, with a URN hint":          {"", tokenForm(token, "client_id", "rs", "client_secret", rsClient.Secret, "token_type_hint", "urn:ietf:params:oauth:token-type:jwt")},
		"post, empty hint counts absent": {"", tokenForm(token, "client_id", "rs", "client_secret", rsClient.Secret, "token_type_hint", "")},
	}
	for name, c := range ok {
		if a := s.introspect(c.auth, c.form); !a.isInactive() {
			t.Errorf("%s: %d %s, want 200 {\"active\":false}", name, a.status, a.raw)
		}
	}

	unauthorized := map[string]struct {
		auth string
		form url.Values
	}{
		"no credentials":              {"", tokenForm(token)},
		"client_id without secret":    {"", tokenForm(token, "client_id", "rs")},
		"post, wrong secret":          {"", tokenForm(token, "client_id", "rs", "client_secret", rsClient.Secret+"x")},
		"post, unknown client":        {"", tokenForm(token, "client_id", "nobody", "client_secret", rsClient.Secret)},
		"post, another's secret":      {"", tokenForm(token, "client_id", "rs", "client_secret", oddClient.Secret)},
		"basic, wrong secret":         {basic("rs", "rs-secret-012345678"), tokenForm(token)},
		"basic, unknown client":       {basic("nobody", rsClient.Secret), tokenForm(token)},
		"basic, odd secret unencoded": {basicRaw(oddClient.ID, oddClient.Secret), tokenForm(token)},
		"basic, not base64":           {"Basic !!!", tokenForm(token)},
		"basic, no colon":             {"Basic " + base64.StdEncoding.EncodeToString([]byte("rs")), tokenForm(token)},
		"basic, empty secret":         {basic("rs", ""), tokenForm(token)},
		"basic, bad percent-encoding": {"Basic " + base64.StdEncoding.EncodeToString([]byte("rs:%zz")), tokenForm(token)},
		"bearer scheme":               {"Bearer " + rsClient.Secret, tokenForm(token)},
	}
	for name, c := range unauthorized {
		a := s.introspect(c.auth, c.form)
		checkOAuthError(t, name, a, 401, "invalid_client")
		if bytes.Contains(a.raw, []byte(rsClient.Secret)) || bytes.Contains(a.raw, []byte("secret-0123")) {
			t.Errorf("%s: the answer quotes a secret: %s", name, a.raw)
		}
	}

	for name, c := range map[string]struct {
		auth string
		form url.Values
	}{
		"both methods":           {basic(rsClient.ID, rsClient.Secret), tokenForm(token, "client_id", "rs", "client_secret", rsClient.Secret)},
		"both, secret only":      {basic(rsClient.ID, rsClient.Secret), tokenForm(token, "client_secret", rsClient.Secret)},
		"basic and another id":   {basic(rsClient.ID, rsClient.Secret), tokenForm(token, "client_id", oddClient.ID)},
		"client_secret repeated": {"", tokenForm(token, "client_id", "rs", "client_secret", rsClient.Secret, "client_secret", rsClient.Secret)},
		"client_id repeated":     {"", tokenForm(token, "client_id", "rs", "client_id", "rs", "client_secret", rsClient.Secret)},
		"both, wrong basic":      {basic(rsClient.ID, "wrong-secret-0123456789"), tokenForm(token, "client_id", "rs", "client_secret", rsClient.Secret)},
		"both, unknown basic":    {basic("nobody", "x"), tokenForm(token, "client_id", "rs", "client_secret", rsClient.Secret)},
	} {
		checkOAuthError(t, name, s.introspect(c.auth, c.form), 400, "invalid_request")
	}
}

// TestIntrospectBadRequests: malformed requests from an authenticated
// client get 400 invalid_request; a GET gets 405.
func TestIntrospectBadRequests(t *testing.T) {
	s := newIntrospectServer(t, rsClient)
	auth := basic(rsClient.ID, rsClient.Secret)
	const form = "application/x-www-form-urlencoded"
	for name, c := range map[string]struct{ contentType, body string }{
		"no token":                {form, ""},
		"empty token":             {form, "token="},
		"only a hint":             {form, "token_type_hint=access_token"},
		"token repeated":          {form, "token=a&token=b"},
		"hint repeated":           {form, "token=a&token_type_hint=access_token&token_type_hint=refresh_token"},
		"hint not a name":         {form, "token=a&token_type_hint=" + url.QueryEscape("access token")},
		"hint too long":           {form, "token=a&token_type_hint=" + strings.Repeat("a", 129)},
		"hint not ASCII":          {form, "token=a&token_type_hint=" + url.QueryEscape("accès")},
		"JSON body":               {"application/json", `{"token":"a"}`},
		"no Content-Type":         {"", "token=a"},
		"bad form encoding":       {form, "token=%zz"},
		"semicolon separator":     {form, "token=a;b=c"},
		"form with a charset":     {form + "; charset=utf-8", ""},
		"multipart":               {"multipart/form-data; boundary=x", "--x--"},
		"Content-Type is garbage": {"=", "token=a"},
	} {
		checkOAuthError(t, name, s.post(c.contentType, auth, c.body), 400, "invalid_request")
	}
	// The charset parameter is allowed.
	if a := s.post(form+"; charset=UTF-8", auth, "token=a"); !a.isInactive() {
		t.Errorf("form with a charset: %d %s", a.status, a.raw)
	}
	req, _ := http.NewRequest("GET", s.base+"/v1/introspect?token=a", nil)
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d Allow %q, want 405 POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestIntrospectStoredKeys: an active stored key answers every member,
// exactly; one without scopes, roles or expiry omits them; an unknown,
// malformed, revoked or expired key answers {"active":false} and nothing
// more.
func TestIntrospectStoredKeys(t *testing.T) {
	s := newIntrospectServer(t, rsClient)
	auth := basic(rsClient.ID, rsClient.Secret)
	created := s.clock()
	k := s.create(`{"subject":"alice","kind":"pat","scopes":["tool:data:*","mailbox:alice:*"],"roles":["publisher","viewer"],"expires_in":"1h"}`)
	bare := s.create(`{"subject":"bob"}`)
	s.now.Add(60)

	a := s.introspect(auth, tokenForm(k.Secret, "token_type_hint", "access_token"))
	want := map[string]any{
		"active":     true,
		"sub":        "alice",
		"scope":      "tool:data:* mailbox:alice:*",
		"client_id":  k.ID,
		"token_type": "Bearer",
		"exp":        float64(created.Add(time.Hour).Unix()),
		"iat":        float64(created.Unix()),
		"kind":       "pat",
		"roles":      []any{"publisher", "viewer"},
	}
	if a.status != 200 || !reflect.DeepEqual(a.body, want) {
		t.Errorf("active key: %d %s\nwant %v", a.status, a.raw, want)
	}
	a = s.introspect(auth, tokenForm(bare.Secret))
	want = map[string]any{"active": true, "sub": "bob", "client_id": bare.ID, "token_type": "Bearer", "iat": float64(created.Unix()), "kind": "api_key"}
	if a.status != 200 || !reflect.DeepEqual(a.body, want) {
		t.Errorf("key without scopes, roles or expiry: %d %s\nwant %v", a.status, a.raw, want)
	}

	revoked := s.create(`{"subject":"carol"}`)
	if code := s.do("DELETE", "/v1/admin/keys/"+revoked.ID, adminKey, "", nil); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	s.introspect(auth, tokenForm(k.Secret)) // cached before it expires
	s.now.Add(3600)
	for name, token := range map[string]string{
		"unknown":   strings.Repeat("q", 43),
		"malformed": "x",
		"forged":    "vk_" + strings.Repeat("A", 40),
		"revoked":   revoked.Secret,
		"expired":   k.Secret,
	} {
		if a := s.introspect(auth, tokenForm(token)); !a.isInactive() {
			t.Errorf("%s: %d %s, want exactly {\"active\":false}", name, a.status, a.raw)
		}
	}
}

// hs256 signs claims with the server's HS256 trust secret.
func (s *introspectServer) hs256(claims map[string]any) string {
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"hs-1","typ":"JWT"}`))
	c, err := json.Marshal(claims)
	if err != nil {
		s.t.Fatal(err)
	}
	in := h + "." + base64.RawURLEncoding.EncodeToString(c)
	m := hmac.New(sha256.New, s.hsSecret)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// TestIntrospectJWT: an active JWT answers its registered claims (azp as
// client_id) and the extensions; a bad, expired or revoked one answers
// {"active":false} only.
func TestIntrospectJWT(t *testing.T) {
	s := newIntrospectServer(t, rsClient)
	auth := basic(rsClient.ID, rsClient.Secret)
	now := s.clock().Unix()
	claims := func(sub string) map[string]any {
		return map[string]any{
			"iss": "https://issuer.example", "aud": []string{"verifyd", "billing"}, "sub": sub, "azp": "gateway-7",
			"iat": now - 30, "exp": now + 600, "jti": "jti-" + sub,
			"scope": "mailbox:" + sub + ":* tool:data:read", "roles": []string{"agent"}, "realm": "emea",
		}
	}
	tok := s.hs256(claims("alice"))
	want := map[string]any{
		"active": true, "sub": "alice", "scope": "mailbox:alice:* tool:data:read", "client_id": "gateway-7",
		"token_type": "Bearer", "exp": float64(now + 600), "iat": float64(now - 30),
		"iss": "https://issuer.example", "aud": []any{"verifyd", "billing"}, "jti": "jti-alice",
		"kind": "jwt", "roles": []any{"agent"}, "realm": "emea",
	}
	for _, pass := range []string{"cold", "cached"} {
		if a := s.introspect(auth, tokenForm(tok)); a.status != 200 || !reflect.DeepEqual(a.body, want) {
			t.Errorf("%s: %d %s\nwant %v", pass, a.status, a.raw, want)
		}
	}

	// One audience answers a string; no azp, no client_id; no scope claim,
	// no scope member.
	c := claims("bob")
	c["aud"] = "verifyd"
	delete(c, "azp")
	delete(c, "scope")
	delete(c, "roles")
	delete(c, "realm")
	a := s.introspect(auth, tokenForm(s.hs256(c)))
	want = map[string]any{
		"active": true, "sub": "bob", "token_type": "Bearer", "exp": float64(now + 600), "iat": float64(now - 30),
		"iss": "https://issuer.example", "aud": "verifyd", "jti": "jti-bob", "kind": "jwt",
	}
	if a.status != 200 || !reflect.DeepEqual(a.body, want) {
		t.Errorf("minimal token: %d %s\nwant %v", a.status, a.raw, want)
	}

	expired := claims("carol")
	expired["exp"] = now - 3600
	wrongAud := claims("dave")
	wrongAud["aud"] = "other"
	revoked := s.hs256(claims("erin"))
	if a := s.introspect(auth, tokenForm(revoked)); a.body["active"] != true {
		t.Fatalf("erin before revocation: %s", a.raw)
	}
	if code := s.do("POST", "/v1/admin/revocations", adminKey, `{"jti":"jti-erin"}`, nil); code != 201 {
		t.Fatalf("revoke jti-erin: %d", code)
	}
	for name, token := range map[string]string{
		"expired":        s.hs256(expired),
		"wrong audience": s.hs256(wrongAud),
		"bad signature":  tok[:len(tok)-4] + "AAAA",
		"revoked":        revoked,
		"not a JWT":      "eyJ.x.y",
	} {
		if a := s.introspect(auth, tokenForm(token)); !a.isInactive() {
			t.Errorf("%s: %d %s, want exactly {\"active\":false}", name, a.status, a.raw)
		}
	}
}

// TestIntrospectClosedWithoutClients: without configured clients every
// caller gets 401, whatever it sends.
func TestIntrospectClosedWithoutClients(t *testing.T) {
	s := newIntrospectServer(t)
	k := s.create(`{"subject":"alice"}`)
	for name, c := range map[string]struct {
		auth string
		form url.Values
	}{
		"basic":    {basic(rsClient.ID, rsClient.Secret), tokenForm(k.Secret)},
		"post":     {"", tokenForm(k.Secret, "client_id", "rs", "client_secret", rsClient.Secret)},
		"nothing":  {"", url.Values{}},
		"admin id": {basic("admin", adminKey), tokenForm(k.Secret)},
	} {
		checkOAuthError(t, name, s.introspect(c.auth, c.form), 401, "invalid_client")
	}
}

// TestIntrospectMetrics: outcomes are counted with their bounded labels,
// and the route with its own label.
func TestIntrospectMetrics(t *testing.T) {
	s := newIntrospectServer(t, rsClient)
	auth := basic(rsClient.ID, rsClient.Secret)
	k := s.create(`{"subject":"alice"}`)
	s.introspect(auth, tokenForm(k.Secret))
	s.introspect(auth, tokenForm(k.Secret))
	s.introspect(auth, tokenForm("x"))
	s.introspect(basic("rs", "nope"), tokenForm(k.Secret))
	s.introspect(auth, url.Values{})
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`verifyd_introspection_requests_total{outcome="active"} 2`,
		`verifyd_introspection_requests_total{outcome="inactive"} 1`,
		`verifyd_introspection_requests_total{outcome="bad_client"} 1`,
		`verifyd_introspection_requests_total{outcome="bad_request"} 1`,
		`verifyd_introspection_requests_total{outcome="unavailable"} 0`,
		`verifyd_http_requests_total{code="200",route="introspect"} 3`,
		`verifyd_http_requests_total{code="401",route="introspect"} 1`,
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if bytes.Contains(b, []byte(k.ID)) || bytes.Contains(b, []byte("alice")) {
		t.Error("a metric names a key id or a subject")
	}
}

// TestIntrospectUnavailable: when the store cannot be read, the answer is
// 503 temporarily_unavailable, never {"active":false}.
func TestIntrospectUnavailable(t *testing.T) {
	s := newIntrospectServer(t, rsClient)
	k := s.create(`{"subject":"alice"}`)
	s.store.Close()
	a := s.introspect(basic(rsClient.ID, rsClient.Secret), tokenForm(k.Secret))
	checkOAuthError(t, "closed store", a, 503, "temporarily_unavailable")
}

// TestIntrospectionConfig: Validate and Load report every problem at once,
// name no secret, and read secrets from the environment and from files.
func TestIntrospectionConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := IntrospectionConfig{Clients: []IntrospectionClientConfig{
		{ID: "rs", SecretEnv: "RS_SECRET"},
		{ID: "apache", SecretFile: write("apache.key", "file-secret-0123456789\n")},
		{ID: "crlf", SecretFile: write("crlf.key", "crlf-secret-0123456789\r\n")},
	}}
	env := map[string]string{"RS_SECRET": "env-secret-0123456789", "SHORT": "short-secret"}
	getenv := func(k string) string { return env[k] }
	clients, err := good.Load(getenv)
	want := []IntrospectionClient{{"rs", "env-secret-0123456789"}, {"apache", "file-secret-0123456789"}, {"crlf", "crlf-secret-0123456789"}}
	if err != nil || !reflect.DeepEqual(clients, want) {
		t.Fatalf("Load: %v %v, want %v", clients, err, want)
	}
	var none IntrospectionConfig
	if clients, err := none.Load(getenv); err != nil || len(clients) != 0 {
		t.Errorf("empty section: %v %v", clients, err)
	}

	bad := IntrospectionConfig{Clients: []IntrospectionClientConfig{
		{ID: "", SecretEnv: "RS_SECRET"},
		{ID: "rs", SecretEnv: "RS_SECRET"},
		{ID: "rs", SecretEnv: "RS_SECRET"},
		{ID: "both", SecretEnv: "RS_SECRET", SecretFile: "/x"},
		{ID: "neither"},
		{ID: "short", SecretEnv: "SHORT"},
		{ID: "unset", SecretEnv: "UNSET"},
		{ID: "nofile", SecretFile: filepath.Join(dir, "missing.key")},
		{ID: "shortfile", SecretFile: write("short.key", "0123456789abcde\n")},
		{ID: "long", SecretFile: write("long.key", strings.Repeat("s", 2000))},
		{ID: "ctl\x01", SecretEnv: "RS_SECRET"},
	}}
	_, err = bad.Load(getenv)
	if err == nil {
		t.Fatal("Load accepted a bad section")
	}
	msg := err.Error()
	for _, want := range []string{
		"clients[0]: id is empty",
		`clients[2]: id "rs" is used by an earlier client`,
		"clients[3] (both): exactly one of secret_env and secret_file",
		"clients[4] (neither): exactly one of secret_env and secret_file",
		"clients[5] (short): the secret in environment variable SHORT is 12 bytes, shorter than 16",
		"clients[6] (unset): environment variable UNSET is not set or empty",
		"clients[7] (nofile): secret_file: open " + filepath.Join(dir, "missing.key"),
		"clients[8] (shortfile): the secret in file " + filepath.Join(dir, "short.key") + " is 15 bytes",
		"clients[9] (long): the secret in file " + filepath.Join(dir, "long.key") + " is longer than 1024 bytes",
		"clients[10]: id must be 1 to 256 bytes of printable UTF-8",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error lacks %q:\n%s", want, msg)
		}
	}
	if n := strings.Count(msg, "\n") + 1; n != 10 {
		t.Errorf("%d problems reported, want 10:\n%s", n, msg)
	}
	for _, secret := range []string{"env-secret", "short-secret", "0123456789abcde", "sssss"} {
		if strings.Contains(msg, secret) {
			t.Errorf("the error quotes the secret %q", secret)
		}
	}
	if err := bad.Validate(); err == nil || strings.Count(err.Error(), "\n")+1 != 5 {
		t.Errorf("Validate: %v, want the 5 problems found without reading secrets", err)
	}
}
