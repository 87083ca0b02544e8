package trust

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxRedirects bounds the redirects followed by one request.
const maxRedirects = 5

// discoveryMaxAge is how long an OIDC source uses the jwks_uri of its last
// discovery before discovering again. A failed refresh discards it at once.
const discoveryMaxAge = time.Hour

// fetchSet fetches the key set of a jwks_url or oidc_issuer source.
//
// An OIDC source keeps the jwks_uri of its last discovery: a refresh costs
// one request, and discovery is repeated when the last refresh failed (the
// key set may have moved) or the discovery is older than discoveryMaxAge.
func (r *Registry) fetchSet(s *source) ([]byte, error) {
	if s.typ == TypeJWKSURL {
		return r.get(s.url)
	}
	now := r.now()
	r.mu.Lock()
	uri := s.jwksURI
	if now.Sub(s.discovered) >= discoveryMaxAge || now.Before(s.discovered) {
		uri = ""
	}
	r.mu.Unlock()
	if uri == "" {
		var err error
		if uri, err = r.discover(s); err != nil {
			return nil, err
		}
		r.mu.Lock()
		s.jwksURI, s.discovered = uri, now
		r.mu.Unlock()
	}
	return r.get(uri)
}

// discover fetches the OpenID Provider configuration of s (OpenID Connect
// Discovery 1.0 §4) and returns its jwks_uri, once its issuer is checked.
func (r *Registry) discover(s *source) (string, error) {
	body, err := r.get(strings.TrimSuffix(s.url, "/") + "/.well-known/openid-configuration")
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	m, err := objectMembers(body)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	issuer, err := stringMember(m, "issuer", true)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	if issuer != s.url {
		return "", fmt.Errorf("discovery: the document's issuer %s is not the configured issuer", safeText(issuer))
	}
	uri, err := stringMember(m, "jwks_uri", true)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	if err := checkURL(uri); err != nil {
		return "", fmt.Errorf("discovery: jwks_uri: %w", err)
	}
	if strings.HasPrefix(s.url, "https:") && !strings.HasPrefix(uri, "https:") {
		return "", errors.New("discovery: jwks_uri is not https although the issuer is")
	}
	return uri, nil
}

// get fetches rawURL with GET and returns its body. The request, body
// included, is bounded by FetchTimeout and aborted by Close; the status
// must be 200 and the body at most MaxJWKSBytes, of which at most one more
// byte is ever read. Errors name the URL without user information, query
// or fragment.
func (r *Registry) get(rawURL string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.FetchTimeout)
	defer cancel()
	go func() { // abort on Close; returns when get does
		select {
		case <-r.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	where := redactURL(rawURL)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: invalid request", where)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %s", where, r.describe(ctx, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d, want 200", where, resp.StatusCode)
	}
	limit := r.cfg.MaxJWKSBytes
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("GET %s: body larger than %d bytes", where, limit)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading the body: %s", where, r.describe(ctx, err))
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("GET %s: body larger than %d bytes", where, limit)
	}
	return body, nil
}

// describe explains a failed request without repeating its URL, which a
// *url.Error would print in full.
func (r *Registry) describe(ctx context.Context, err error) string {
	select {
	case <-r.done:
		return "registry closed"
	default:
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Sprintf("timed out after %v", r.cfg.FetchTimeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// redirectSafe returns a copy of c that follows at most maxRedirects
// redirects and never one from https to http, before applying c's own
// redirect policy.
func redirectSafe(c *http.Client) *http.Client {
	cc := *c
	own := c.CheckRedirect
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		if via[len(via)-1].URL.Scheme == "https" && req.URL.Scheme != "https" {
			return errors.New("refused a redirect from https to http")
		}
		if own != nil {
			return own(req, via)
		}
		return nil
	}
	return &cc
}

// redactURL returns rawURL without user information, query and fragment,
// fit for logs and errors.
func redactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(invalid URL)"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}

// plainHTTP reports whether rawURL is http to a host other than loopback.
func plainHTTP(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}
