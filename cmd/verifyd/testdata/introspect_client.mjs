// Introspects tokens at verifyd's POST /v1/introspect with two RFC 7662
// client libraries: oauth4webapi (v3) and openid-client (v6), each with
// client_secret_basic and client_secret_post. Reads a JSON request on
// stdin:
//
//   {"endpoint": "http://127.0.0.1:PORT/v1/introspect",
//    "clients": [{"id": "...", "secret": "..."}, ...],
//    "tokens": {"name": "token", ...}}
//
// and prints one JSON array on stdout: for every client, method, library
// and token, {"client", "method", "lib", "token", "result"} when the
// library accepted the answer, or {..., "error": {"name", "code",
// "status"}} when it threw. The last client's secret is also sent wrong,
// once per library and method, under the token name "wrong_secret".
import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const req = JSON.parse(input);
const issuer = new URL(req.endpoint).origin;
const as = { issuer, introspection_endpoint: req.endpoint };

const auth = {
  basic: { o4w: oauth.ClientSecretBasic, oc: client.ClientSecretBasic },
  post: { o4w: oauth.ClientSecretPost, oc: client.ClientSecretPost },
};

const libs = {
  // oauth4webapi: the request and the strict processing of the answer.
  async oauth4webapi(id, secret, method, token) {
    const c = { client_id: id };
    const resp = await oauth.introspectionRequest(as, c, auth[method].o4w(secret), token, {
      [oauth.allowInsecureRequests]: true,
      additionalParameters: { token_type_hint: 'access_token' },
    });
    return oauth.processIntrospectionResponse(as, c, resp);
  },
  // openid-client: a Configuration without discovery. A string secret
  // alone means client_secret_post, its default; basic is asked for.
  async 'openid-client'(id, secret, method, token) {
    const config = method === 'post'
      ? new client.Configuration(as, id, secret)
      : new client.Configuration(as, id, secret, auth[method].oc(secret));
    client.allowInsecureRequests(config);
    return client.tokenIntrospection(config, token);
  },
};

function describe(e) {
  return {
    name: e?.name ?? String(e),
    code: e?.code ?? '',
    status: e?.status ?? e?.response?.status ?? e?.cause?.status ?? 0,
    message: String(e?.message ?? ''),
  };
}

const out = [];
const last = req.clients[req.clients.length - 1];
for (const lib of Object.keys(libs)) {
  for (const method of Object.keys(auth)) {
    const runs = [];
    for (const c of req.clients) {
      for (const [name, token] of Object.entries(req.tokens)) runs.push([c.id, c.secret, name, token]);
    }
    runs.push([last.id, last.secret + 'x', 'wrong_secret', Object.values(req.tokens)[0]]);
    for (const [id, secret, name, token] of runs) {
      const rec = { client: id, method, lib, token: name };
      try {
        rec.result = await libs[lib](id, secret, method, token);
      } catch (e) {
        rec.error = describe(e);
      }
      out.push(rec);
    }
  }
}
process.stdout.write(JSON.stringify(out) + '\n');
