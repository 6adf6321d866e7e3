// A relying party built on the npm `openid-client` library (v5), used by hosted.mjs: discovery, an
// authorization URL with PKCE S256, state and nonce, the callback (code exchange and ID-token validation by the
// library: signature, iss, aud, nonce, at_hash), refresh and userinfo.
//
// Why v5 (5.7.1) and not v6: v5 runs on node >= 12 (this suite says node >= 18), talks plain http:// issuers
// without any opt-out, and takes its HTTP defaults from custom.setHttpOptionsDefaults (used here for a
// timeout and an IPv4-only lookup: sigild listens on 127.0.0.1 while the issuer is http://localhost:PORT).
// v6 is built on jose 6 / WebCrypto globals (node >= 20) and refuses http:// unless every call passes
// allowInsecureRequests, which its own documentation marks as deprecated for production use.
import { custom, generators, Issuer } from 'openid-client';
import dns from 'node:dns';

// Every request openid-client makes: bounded, and "localhost" resolved to IPv4 (127.0.0.1).
custom.setHttpOptionsDefaults({
  timeout: 15000,
  lookup: (host, opts, cb) => dns.lookup(host, { ...(typeof opts === 'object' ? opts : {}), family: 4 }, cb),
});

// discover(issuerUrl, {clientId, clientSecret, redirectUri}) -> {issuer, client}
export async function discover(issuerUrl, { clientId, clientSecret, redirectUri }) {
  const issuer = await Issuer.discover(issuerUrl);
  const algs = issuer.metadata.id_token_signing_alg_values_supported || ['RS256'];
  const client = new issuer.Client({
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: algs[0],
  });
  return { issuer, client };
}

// A fresh authorization request: {url, codeVerifier, state, nonce}.
export function authorizationRequest(client, extra = {}) {
  const codeVerifier = generators.codeVerifier();
  const state = generators.state();
  const nonce = generators.nonce();
  const url = client.authorizationUrl({
    scope: 'openid email',
    code_challenge: generators.codeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  return { url, codeVerifier, state, nonce };
}

// The callback: exchanges the code (redirect URL as received) and validates the tokens. Returns the TokenSet.
export async function callback(client, redirectUri, receivedUrl, { codeVerifier, state, nonce }) {
  const params = client.callbackParams(receivedUrl);
  return client.callback(redirectUri, params, { code_verifier: codeVerifier, state, nonce, response_type: 'code' });
}
