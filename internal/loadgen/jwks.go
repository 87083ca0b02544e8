package loadgen

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"
)

// The claims every token carries, and the trust source that accepts them.
const (
	trustSource  = "verifybench"
	tokenIssuer  = "verifybench"
	tokenAud     = "verifyd"
	jwksPath     = "/jwks.json"
	coldSubject  = "verifybench-cold"
	tokenSubject = "verifybench-jwt-"
	// tokenLifetime is the validity of the minted tokens: longer than any
	// run (MaxWarmup + MaxDuration, or a long run of Requests).
	tokenLifetime = 24 * time.Hour
)

var b64 = base64.RawURLEncoding

// TrustSnippet returns the trust section that makes a daemon accept the
// tokens of runs serving their key set on jwksListen (Options.JWKSListen).
// The daemon fetches the set every second, so a run's new key is trusted
// within about a second of the run's start.
func TrustSnippet(jwksListen string) (string, error) {
	if err := checkLoopback(jwksListen); err != nil {
		return "", fmt.Errorf("loadgen: jwks-listen: %w", err)
	}
	return fmt.Sprintf(`trust:
  sources:
    - name: %s
      jwks_url: http://%s%s
      refresh: 1s
      algorithms: [ES256]
      issuer: %s
      audience: [%s]
`, trustSource, jwksListen, jwksPath, tokenIssuer, tokenAud), nil
}

// signer holds the run's ES256 key. A new key, under a new kid, is made
// for every run; its private part never leaves the process.
type signer struct {
	key    *ecdsa.PrivateKey
	kid    string
	header string // the encoded JWS header
	jwks   []byte // the public key set
	run    string // a random id that makes every jti of the run unique
}

func newSigner() (*signer, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("loadgen: generate the ES256 key: %w", err)
	}
	var id [6]byte
	rand.Read(id[:])
	s := &signer{key: k, kid: "verifybench-" + hex.EncodeToString(id[:3]), run: hex.EncodeToString(id[3:])}
	h, _ := json.Marshal(map[string]string{"alg": "ES256", "kid": s.kid, "typ": "JWT"})
	s.header = b64.EncodeToString(h)
	pt, err := k.PublicKey.Bytes()
	if err != nil {
		return nil, fmt.Errorf("loadgen: encode the ES256 key: %w", err)
	}
	s.jwks, _ = json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "kid": s.kid, "use": "sig", "alg": "ES256",
		"x": b64.EncodeToString(pt[1:33]), "y": b64.EncodeToString(pt[33:]),
	}}})
	return s, nil
}

// claims is the payload of a minted token.
type claims struct {
	Iss   string `json:"iss"`
	Aud   string `json:"aud"`
	Sub   string `json:"sub"`
	Iat   int64  `json:"iat"`
	Exp   int64  `json:"exp"`
	Jti   string `json:"jti"`
	Scope string `json:"scope"`
}

// mint returns a token for subject, with a jti unique to the run and n.
func (s *signer) mint(subject, kind string, n int, now time.Time) (string, error) {
	c, _ := json.Marshal(claims{
		Iss: tokenIssuer, Aud: tokenAud, Sub: subject,
		Iat: now.Unix(), Exp: now.Add(tokenLifetime).Unix(),
		Jti: "vb-" + s.run + "-" + kind + "-" + strconv.Itoa(n), Scope: grantedPattern,
	})
	input := s.header + "." + b64.EncodeToString(c)
	d := sha256.Sum256([]byte(input))
	r, sg, err := ecdsa.Sign(rand.Reader, s.key, d[:])
	if err != nil {
		return "", fmt.Errorf("loadgen: sign a token: %w", err)
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	sg.FillBytes(sig[32:])
	return input + "." + b64.EncodeToString(sig[:]), nil
}

// mintMany mints n tokens on every core. subject(i) names the i-th token's
// subject.
func (s *signer) mintMany(ctx context.Context, n int, kind string, subject func(int) string) ([]string, error) {
	out := make([]string, n)
	now := time.Now()
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if i%1024 == 0 && ctx.Err() != nil {
					errs[w] = ctx.Err()
					return
				}
				t, err := s.mint(subject(i), kind, i, now)
				if err != nil {
					errs[w] = err
					return
				}
				out[i] = t
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// serveJWKS serves the public key set on addr until ctx ends. It returns
// once the listener is bound.
func (s *signer) serveJWKS(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("loadgen: serve the key set on %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != jwksPath {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(s.jwks)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go srv.Serve(ln)
	context.AfterFunc(ctx, func() { srv.Close() })
	return nil
}
