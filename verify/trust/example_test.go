package trust_test

import (
	"errors"
	"fmt"

	"github.com/verifyd/verifyd/verify/jwt"
	"github.com/verifyd/verifyd/verify/trust"
)

// A key set as an identity provider publishes it: an RSA key, which is
// skipped, beside the P-256 key of RFC 7515 Appendix A.3.
func ExampleParseJWKS() {
	set := []byte(`{"keys":[
		{"kty":"RSA","kid":"rsa-1","use":"sig","alg":"RS256","e":"AQAB","n":"kqGboBfAWttWPCA-0cGRgsY6SaYoIARt0B_PkaEcIq9HPYNdu9n6UuWHuuTHrjF_ZoQW97r5HaAorNvrMEGTGdxCHZdEtkHvNVVmrtxTBLiQCbCozXhFoIrVcr3qUBrdGnNn_M3jJi7Wg7p_-x62nS5gNG875oyheRkutHsQXikFZwsN3q_TsPNOVlCiHy8mxzaFTUQGm-X8UYexFyAivlDSjgDJLAZSWfxd7k9Gxuwa3AUfQqQcVcegmgKGCaErQ3qQbh1x7WB6iopE3_-GZ8HMAVtR9AmrVscqYsnjhaCehfAI0iKKs8zXr8tISc0ORbaalrkk03H1ZrsEnDKEWQ"},
		{"kty":"EC","kid":"es-1","use":"sig","crv":"P-256",
		 "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
		 "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
	]}`)
	keys, err := trust.ParseJWKS(set, &jwt.Profile{Source: "idp", Issuer: "https://idp.example"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, k := range keys {
		fmt.Println(k.ID(), k.Alg(), k.Profile().Source)
	}

	// The same key published with its private part rejects the whole set.
	_, err = trust.ParseJWKS([]byte(`{"keys":[{"kty":"EC","kid":"es-1","crv":"P-256",
		"x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
		"y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
		"d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"}]}`), &jwt.Profile{Source: "idp"})
	fmt.Println(err)
	// Output:
	// es-1 ES256 idp
	// trust: key set: keys[0]: holds a private key ("d")
}

func ExampleParseSecret() {
	_, err := trust.ParseSecret([]byte("c2hvcnQ\n"), "proxy", &jwt.Profile{Source: "proxy"})
	fmt.Println(err)
	k, err := trust.ParseSecret([]byte("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n"), "proxy", &jwt.Profile{Source: "proxy"})
	fmt.Println(k.ID(), k.Alg(), err)
	// Output:
	// trust: secret is 5 bytes, need at least 32
	// proxy HS256 <nil>
}

func ExampleNew() {
	cfg := trust.Config{Sources: []trust.Source{{
		Name:   "proxy",
		Issuer: "aviso-proxy",
		HS256:  []trust.Secret{{Kid: "proxy-1", SecretEnv: "PROXY_SECRET"}},
	}}}
	env := map[string]string{"PROXY_SECRET": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"}
	r, err := trust.New(cfg, &trust.Options{Getenv: func(name string) string { return env[name] }})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	k, err := r.ResolveKey(jwt.HS256, "proxy-1")
	fmt.Println(k.Profile().Source, k.Profile().Issuer, err)
	_, err = r.ResolveKey(jwt.ES256, "proxy-1") // an HMAC secret never verifies ES256
	fmt.Println(errors.Is(err, jwt.ErrUntrustedKey))
	for _, s := range r.Status() {
		fmt.Println(s.Name, s.Type, s.Keys)
	}
	// Output:
	// proxy aviso-proxy <nil>
	// true
	// proxy hs256 1
}
