#!/usr/bin/env node
// Verify a JWT issued by sigild against its published JWKS, using the `jose` library.
//
// usage: node verify_tokens.mjs BASE_URL ISSUER TOKEN AUDIENCE [TYP]
//   BASE_URL  where sigild is reachable, e.g. http://127.0.0.1:8080 (JWKS at BASE_URL/cis/oidc/jwks)
//   ISSUER    expected `iss`
//   TOKEN     the compact JWT
//   AUDIENCE  expected `aud` (string, or one member of an `aud` array)
//   TYP       optional expected header `typ` (e.g. "at+jwt" for access tokens, "JWT" for ID tokens)
//
// Checks: signature with a key from the JWKS (header `kid` required), `iss`, `aud`, `exp`/`nbf` (jose's
// built-in time checks, 5 s tolerance), presence of `exp`, `iat`, `sub`, and `typ` when given.
// On success prints the verified payload as one line of JSON on stdout and exits 0; otherwise prints the
// reason on stderr and exits 1 (2 for bad usage).
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [base, issuer, token, audience, typ] = process.argv.slice(2);
if (!base || !issuer || !token || !audience) {
  console.error('usage: verify_tokens.mjs BASE_URL ISSUER TOKEN AUDIENCE [TYP]');
  process.exit(2);
}

const jwks = createRemoteJWKSet(new URL(base.replace(/\/+$/, '') + '/cis/oidc/jwks'), {
  timeoutDuration: 5000,
});

const options = {
  issuer,
  audience,
  algorithms: ['ES256', 'RS256'],
  requiredClaims: ['exp', 'iat', 'sub'],
  clockTolerance: 5,
};
if (typ) options.typ = typ;

try {
  const { payload, protectedHeader } = await jwtVerify(token, jwks, options);
  if (!protectedHeader.kid) throw new Error('JWT header has no "kid"');
  process.stdout.write(JSON.stringify(payload) + '\n');
} catch (err) {
  console.error(`verification failed: ${err.code ?? err.name}: ${err.message}`);
  process.exit(1);
}
