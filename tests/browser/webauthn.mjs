// Real-browser WebAuthn end-to-end test for sigild (API.md sections 0, 1, 3.1-3.6).
//
// A headless Debian Chromium (driven by playwright-core, never a downloaded browser) with a CDP virtual
// authenticator plays the user's browser: it loads a blank page from a tiny local page server at
// http://localhost:PAGE_PORT/ (an origin the app allows), calls the start endpoints of sigild cross-origin
// (CORS), and runs navigator.credentials.create/get. This script plays the app's backend too: it completes
// the ceremonies with client/user access tokens and verifies the ID tokens with jose.
//
// usage:
//   node webauthn.mjs --sigil-port P --page-port Q --data-dir DIR --client-id ID --client-secret SECRET
//                     [--chromium PATH]
//   node webauthn.mjs --plumbing [--page-port Q] [--chromium PATH]
//       no server: checks that the browser launches and that the virtual authenticator creates and uses
//       ES256, EdDSA and RS256 credentials for rpId localhost.
//
// Prints one line per check, "ok - N. NAME" or "not ok - N. NAME: DETAILS", and "# ..." notes. Exit status 0
// only when every check passed.
import { chromium } from 'playwright-core';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';

// ------------------------------------------------------------------------------------------------------------
// Arguments

const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
  const name = a.slice(2);
  if (name === 'plumbing') args.plumbing = true;
  else args[name] = process.argv[++i];
}
const PLUMBING = !!args.plumbing;
const SIGIL_PORT = args['sigil-port'];
const PAGE_PORT = Number(args['page-port'] || 0);
const DATA_DIR = args['data-dir'];
const CLIENT_ID = args['client-id'];
const CLIENT_SECRET = args['client-secret'];
if (!PLUMBING && (!SIGIL_PORT || !PAGE_PORT || !DATA_DIR || !CLIENT_ID || !CLIENT_SECRET)) {
  console.error('usage: node webauthn.mjs --sigil-port P --page-port Q --data-dir DIR --client-id ID ' +
    '--client-secret SECRET [--chromium PATH]   |   node webauthn.mjs --plumbing');
  process.exit(2);
}

function findChromium() {
  if (args.chromium) return args.chromium;
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      const p = execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
      if (p) return p;
    } catch { /* not found */ }
  }
  return '';
}

// The browser reaches both servers by the name localhost (WebAuthn refuses the rpId 127.0.0.1); node talks
// to sigild on 127.0.0.1 (sigild listens there only; "localhost" may resolve to ::1 first in node).
const BROWSER_BASE = `http://localhost:${SIGIL_PORT}`;
const NODE_BASE = `http://127.0.0.1:${SIGIL_PORT}`;
let ORIGIN = `http://localhost:${PAGE_PORT}`;
let REDIRECT_URI = `${ORIGIN}/cb`;

// Overall watchdog: never hang a ctest run.
const WATCHDOG_MS = Number(process.env.BROWSER_TEST_TIMEOUT_MS || 240000);

// ------------------------------------------------------------------------------------------------------------
// Reporting

let checkNo = 0;
let failures = 0;
const oneLine = (s) => String(s).replace(/\s+/g, ' ').trim();
const trunc = (s, n = 400) => {
  const t = oneLine(typeof s === 'string' ? s : JSON.stringify(s));
  return t.length > n ? `${t.slice(0, n)}...` : t;
};
function pass(name) {
  checkNo++;
  console.log(`ok - ${checkNo}. ${name}`);
  return true;
}
function fail(name, details) {
  checkNo++;
  failures++;
  console.log(`not ok - ${checkNo}. ${name}: ${oneLine(details)}`);
  return false;
}
function note(s) { console.log(`# ${oneLine(s)}`); }
function check(name, cond, details) { return cond ? pass(name) : fail(name, details()); }
// A failed step that the rest of a flow depends on: report it and abort the flow.
class FlowAbort extends Error {}
function must(name, cond, details) {
  if (!check(name, cond, details)) throw new FlowAbort(name);
}

// ------------------------------------------------------------------------------------------------------------
// Base64 helpers (node side)

const B64_ANY = /^[A-Za-z0-9+/_-]*={0,2}$/;
function b64bytes(s) {
  if (typeof s !== 'string' || !B64_ANY.test(s)) return null;
  return Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}
// Canonical form (base64url, no padding) of a base64 string in either alphabet; null if not base64.
function b64norm(s) {
  const b = b64bytes(s);
  return b ? b.toString('base64url') : null;
}
const b64std = (s) => b64bytes(s).toString('base64');
const b64encode = (obj) => Buffer.from(JSON.stringify(obj), 'utf8').toString('base64');
const isStdB64Padded = (s) => typeof s === 'string' && s.length > 0 && s.length % 4 === 0 &&
  /^[A-Za-z0-9+/]+={0,2}$/.test(s);
const isAlnum = (s) => typeof s === 'string' && /^[A-Za-z0-9]+$/.test(s);

// AAGUID (UUID text) from the authenticator data of an attestation (toJSON().response.authenticatorData).
function aaguidOf(authDataB64) {
  const h = b64bytes(authDataB64).subarray(37, 53).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// Canonical JSON of a flat string map (API.md 2.1): keys sorted by byte order, no whitespace.
function canonicalJson(obj) {
  const keys = Object.keys(obj).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return `{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(obj[k])}`).join(',')}}`;
}

// ------------------------------------------------------------------------------------------------------------
// HTTP (node side = the app's backend)

async function call(method, urlPath, { token, json, form, headers = {}, redirect = 'manual' } = {}) {
  const url = urlPath.startsWith('http') ? urlPath.replace(`//localhost:${SIGIL_PORT}`, `//127.0.0.1:${SIGIL_PORT}`)
    : NODE_BASE + urlPath;
  const h = { ...headers };
  let body;
  if (token) h.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    h['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    h['Content-Type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(form).toString();
  }
  let res;
  try {
    res = await fetch(url, { method, headers: h, body, redirect, signal: AbortSignal.timeout(15000) });
  } catch (e) {
    return { status: 0, text: `fetch failed: ${e.cause?.message || e.message}`, json: null, headers: new Headers(),
      what: `${method} ${url}` };
  }
  const text = await res.text();
  let parsed = null;
  try { parsed = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, text, json: parsed, headers: res.headers, what: `${method} ${url}` };
}
const desc = (r) => `${r.what} -> HTTP ${r.status}: ${trunc(r.text)}`;

function mustResp(name, r, status, pred = () => true) {
  must(name, r.status === status && r.json !== null && pred(r.json), () => `${desc(r)} (want ${status})`);
  return r.json;
}
function checkResp(name, r, status, pred = () => true) {
  return check(name, r.status === status && r.json !== null && pred(r.json), () => `${desc(r)} (want ${status})`);
}

const FAILED_BODY = (j) => j.message === 'Authentication failed' && j.error_code === 401 &&
  j.ts_error_code === 'auth_webauthn_failed';
const TOKENS_OK = (j) => typeof j.access_token === 'string' && typeof j.id_token === 'string' &&
  typeof j.refresh_token === 'string' && j.token_type === 'Bearer' && typeof j.expires_in === 'number' &&
  typeof j.session_id === 'string';

async function clientToken() {
  const r = await call('POST', '/oidc/token', {
    form: { grant_type: 'client_credentials', client_id: CLIENT_ID, client_secret: CLIENT_SECRET },
  });
  return mustResp('client_credentials token for the browser app', r, 200,
    (j) => typeof j.access_token === 'string').access_token;
}

// OTP from the sigild outbox ($DATA_DIR/outbox/<epoch-ms>-<random>.json; "to" compared lower-cased).
async function outboxOtp(email) {
  const dir = path.join(DATA_DIR, 'outbox');
  for (let i = 0; i < 50; i++) {
    let files = [];
    try { files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort().reverse(); } catch { /* none yet */ }
    for (const f of files) {
      try {
        const m = JSON.parse(readFileSync(path.join(dir, f), 'utf8'));
        if (String(m.to).toLowerCase() === email.toLowerCase() && m.otp) return String(m.otp);
      } catch { /* partially written */ }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return '';
}

// Email-OTP login (API.md 5.3/5.4 + code exchange): returns {userId, accessToken}.
async function otpLogin(label, client, email) {
  let r = await call('POST', '/cis/v1/auth/otp/email', {
    token: client, json: { email, redirect_uri: REDIRECT_URI, create_new_user: true },
  });
  mustResp(`${label}: send email OTP`, r, 200);
  const otp = await outboxOtp(email);
  must(`${label}: OTP in the outbox`, otp !== '', () => `no outbox mail to ${email} in ${DATA_DIR}/outbox`);
  r = await call('POST', '/cis/v1/auth/otp/email/validation', { token: client, json: { email, passcode: otp } });
  const result = mustResp(`${label}: validate OTP`, r, 200, (j) => typeof j.result === 'string').result;
  r = await call('GET', result);
  const loc = r.headers.get('location') || '';
  must(`${label}: result URI redirects to redirect_uri with a code`,
    (r.status === 302 || r.status === 303) && loc.startsWith(`${REDIRECT_URI}?`) &&
      new URL(loc).searchParams.get('code'),
    () => `${desc(r)}; Location '${loc}'`);
  const code = new URL(loc).searchParams.get('code');
  r = await call('POST', '/oidc/token', {
    form: { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET },
  });
  const tok = mustResp(`${label}: exchange the code for user tokens`, r, 200,
    (j) => typeof j.access_token === 'string');
  const userId = decodeJwt(tok.access_token).sub;
  must(`${label}: user access token has sub`, typeof userId === 'string' && userId !== '', () => tok.access_token);
  return { userId, accessToken: tok.access_token };
}

// ------------------------------------------------------------------------------------------------------------
// Page server and browser

function startPageServer(port) {
  const html = '<!doctype html><html><head><meta charset="utf-8"><title>sigil browser test</title></head>' +
    '<body></body></html>';
  const srv = http.createServer((req, res) => {
    if (req.url === '/favicon.ico') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(html);
  });
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}

// Runs in the page: helpers for the ceremonies. `T.create`/`T.get` fetch the start endpoint cross-origin,
// edit the options as asked, run the ceremony and return {start, credential} or {start, error}.
const PAGE_LIB = `
window.T = (() => {
  const toBuf = (s) => {
    s = String(s).replace(/-/g, '+').replace(/_/g, '/').replace(/=+$/, '');
    while (s.length % 4) s += '=';
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  };
  async function start(url, body) {
    let r;
    try {
      r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' },
                             body: JSON.stringify(body) });
    } catch (e) {
      return { status: 0, text: 'fetch failed in the browser (CORS or network): ' + e.message, json: null };
    }
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch (e) {}
    return { status: r.status, text, json };
  }
  const ceremonyTimeout = 15000;
  async function create(url, body, edit) {
    const s = await start(url, body);
    if (s.status !== 200 || !s.json || !s.json.credential_creation_options) return { start: s };
    const o = JSON.parse(JSON.stringify(s.json.credential_creation_options));
    if (edit.alg !== undefined) o.pubKeyCredParams = (o.pubKeyCredParams || []).filter((p) => p.alg === edit.alg);
    if (edit.residentKey) {
      o.authenticatorSelection = Object.assign({}, o.authenticatorSelection || {},
        { residentKey: edit.residentKey, requireResidentKey: edit.residentKey === 'required' });
    }
    const publicKey = Object.assign({}, o, {
      challenge: toBuf(o.challenge),
      user: Object.assign({}, o.user, { id: toBuf(o.user.id) }),
      excludeCredentials: (o.excludeCredentials || []).map((c) => Object.assign({}, c, { id: toBuf(c.id) })),
      timeout: ceremonyTimeout,
    });
    try {
      const cred = await navigator.credentials.create({ publicKey });
      return { start: s, sent: o, credential: cred.toJSON() };
    } catch (e) {
      return { start: s, sent: o, error: e.name + ': ' + e.message };
    }
  }
  async function get(url, body, edit) {
    const s = await start(url, body);
    if (s.status !== 200 || !s.json || !s.json.credential_request_options) return { start: s };
    const o = JSON.parse(JSON.stringify(s.json.credential_request_options));
    if (edit.onlyCredential) o.allowCredentials = [{ type: 'public-key', id: edit.onlyCredential }];
    const publicKey = Object.assign({}, o, {
      challenge: toBuf(o.challenge),
      allowCredentials: (o.allowCredentials || []).map((c) => Object.assign({}, c, { id: toBuf(c.id) })),
      timeout: ceremonyTimeout,
    });
    delete publicKey.rawChallenge;
    try {
      const cred = await navigator.credentials.get({ publicKey });
      return { start: s, sent: o, credential: cred.toJSON() };
    } catch (e) {
      return { start: s, sent: o, error: e.name + ': ' + e.message };
    }
  }
  return { create, get, toBuf };
})();
`;

const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

async function launchBrowser(executablePath) {
  // playwright adds --headless and manages a fresh --user-data-dir of its own.
  const browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_FLAGS, timeout: 60000 });
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${ORIGIN}/`);
  await page.addScriptTag({ content: PAGE_LIB });
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  return { browser, page, cdp, pageErrors };
}

async function addAuthenticator(cdp) {
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
      isUserVerified: true, automaticPresenceSimulation: true },
  });
  return authenticatorId;
}

// Bounded page.evaluate (a hung ceremony must not hang the test).
async function inPage(page, fn, arg, ms = 30000) {
  let timer;
  const t = new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`page call timed out after ${ms} ms`)), ms); });
  try {
    return await Promise.race([page.evaluate(fn, arg), t]);
  } finally {
    clearTimeout(timer);
  }
}
const pageCreate = (page, url, body, edit = {}) =>
  inPage(page, ([u, b, e]) => window.T.create(u, b, e), [url, body, edit]);
const pageGet = (page, url, body, edit = {}) =>
  inPage(page, ([u, b, e]) => window.T.get(u, b, e), [url, body, edit]);

// ------------------------------------------------------------------------------------------------------------
// webauthn_encoded_result forms

// "Newer reference" form: base64 of the credential's toJSON() itself.
const encodeToJson = (cred) => b64encode(cred);

// SDK envelope form (API.md 3.1), members in standard base64.
function encodeEnvelope(sessionId, cred, userAgent) {
  const r = cred.response;
  const response = { clientDataJSON: b64std(r.clientDataJSON) };
  if (r.attestationObject !== undefined) {
    response.attestationObject = b64std(r.attestationObject);
  } else {
    response.authenticatorData = b64std(r.authenticatorData);
    response.signature = b64std(r.signature);
    response.userHandle = r.userHandle ? b64std(r.userHandle) : '';
  }
  return b64encode({
    webauthnSessionId: sessionId,
    publicKeyCredential: {
      id: cred.id,
      rawId: b64std(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment ?? null,
      response,
    },
    userAgent,
  });
}

// ------------------------------------------------------------------------------------------------------------
// Plumbing mode (no server)

async function plumbing(executablePath) {
  const srv = await startPageServer(PAGE_PORT);
  ORIGIN = `http://localhost:${srv.address().port}`;
  let browser;
  try {
    const b = await launchBrowser(executablePath);
    browser = b.browser;
    pass(`chromium ${browser.version()} launched headless from ${executablePath}; page ${ORIGIN}/ loaded`);
    const authId = await addAuthenticator(b.cdp);
    pass('CDP virtual authenticator added (ctap2, internal, resident keys, UV)');
    const made = [];
    for (const [name, alg] of [['ES256', -7], ['EdDSA', -8], ['RS256', -257]]) {
      const res = await inPage(b.page, async ([alg]) => {
        const rnd = (n) => crypto.getRandomValues(new Uint8Array(n));
        try {
          const c = await navigator.credentials.create({ publicKey: {
            rp: { id: 'localhost', name: 'plumbing' }, user: { id: rnd(32), name: `u${alg}`, displayName: `u${alg}` },
            challenge: rnd(32), pubKeyCredParams: [{ type: 'public-key', alg }], timeout: 15000,
            authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' } } });
          return { credential: c.toJSON() };
        } catch (e) { return { error: `${e.name}: ${e.message}` }; }
      }, [alg]);
      if (check(`create a ${name} credential for rpId localhost`,
        res.credential && res.credential.response.publicKeyAlgorithm === alg, () => trunc(res))) {
        made.push(res.credential.id);
      }
    }
    const res = await inPage(b.page, async () => {
      try {
        const c = await navigator.credentials.get({ publicKey: { challenge: crypto.getRandomValues(new Uint8Array(32)),
          rpId: 'localhost', allowCredentials: [], timeout: 15000 } });
        return { credential: c.toJSON() };
      } catch (e) { return { error: `${e.name}: ${e.message}` }; }
    });
    check('usernameless assertion picks one of the discoverable credentials',
      res.credential && made.includes(res.credential.id) && res.credential.response.userHandle, () => trunc(res));
    const creds = (await b.cdp.send('WebAuthn.getCredentials', { authenticatorId: authId })).credentials;
    check('authenticator holds the three credentials', creds.length === 3, () => trunc(creds.map((c) => c.credentialId)));
  } finally {
    if (browser) await browser.close().catch(() => {});
    srv.close();
  }
}

// ------------------------------------------------------------------------------------------------------------
// The test against sigild

const START_REG = () => `${BROWSER_BASE}/cis/v1/auth/webauthn/register/start`;
const START_AUTH = () => `${BROWSER_BASE}/cis/v1/auth/webauthn/authenticate/start`;
const ALGS = { ES256: -7, EdDSA: -8, RS256: -257 };
const uniq = (p) => `${p}-${randomBytes(5).toString('hex')}`;

function checkCreationOptions(label, o) {
  const probs = [];
  if (!isAlnum(o.challenge)) probs.push(`challenge '${o.challenge}' is not [A-Za-z0-9]+`);
  if (!o.user || !isAlnum(o.user.id)) probs.push(`user.id '${o.user?.id}' is not [A-Za-z0-9]+`);
  if (!o.rp || o.rp.id !== 'localhost') probs.push(`rp.id ${JSON.stringify(o.rp?.id)} != localhost`);
  const algs = (o.pubKeyCredParams || []).map((p) => p.alg);
  for (const a of [-7, -8, -257]) if (!algs.includes(a)) probs.push(`pubKeyCredParams lacks ${a}`);
  if (typeof o.timeout !== 'number' || o.timeout < 30000) probs.push(`timeout ${o.timeout} not in ms`);
  if (!Array.isArray(o.excludeCredentials)) probs.push('excludeCredentials is not an array');
  if (typeof o.authenticatorSelection !== 'object' || o.authenticatorSelection === null) {
    probs.push('authenticatorSelection is not an object');
  }
  return check(`${label}: credential_creation_options per 3.1`, probs.length === 0,
    () => `${probs.join('; ')}; options ${trunc(o)}`);
}

function checkRequestOptions(label, o, { emptyAllow }) {
  const probs = [];
  if (!isAlnum(o.challenge)) probs.push(`challenge '${o.challenge}' is not [A-Za-z0-9]+`);
  if (o.rpId !== 'localhost') probs.push(`rpId ${JSON.stringify(o.rpId)} != localhost`);
  if (typeof o.timeout !== 'number' || o.timeout < 30000) probs.push(`timeout ${o.timeout} not in ms`);
  if (!Array.isArray(o.allowCredentials)) {
    probs.push('allowCredentials is not an array');
  } else {
    if (emptyAllow && o.allowCredentials.length !== 0) probs.push('allowCredentials not empty (usernameless)');
    if (!emptyAllow && o.allowCredentials.length === 0) probs.push('allowCredentials empty (username given)');
    for (const c of o.allowCredentials) {
      if (c.type !== 'public-key' || !isStdB64Padded(c.id)) probs.push(`bad allowCredentials entry ${JSON.stringify(c)}`);
    }
  }
  return check(`${label}: credential_request_options per 3.1`, probs.length === 0,
    () => `${probs.join('; ')}; options ${trunc(o)}`);
}

// Registration ceremony in the browser + completion by the backend.
// kind: 'user' (3.5, user token) or 'external' (3.6, client token); form: 'tojson' | 'envelope'.
async function register(ctx, { label, alg, username, kind, token, form, residentKey, externalUserId, email }) {
  const res = await pageCreate(ctx.page, START_REG(), { client_id: CLIENT_ID, username, display_name: `${username} (browser)` },
    { alg: ALGS[alg], residentKey });
  must(`${label}: register/start from the page (cross-origin)`,
    res.start.status === 200 && typeof res.start.json?.webauthn_session_id === 'string' &&
      typeof res.start.json?.credential_creation_options === 'object',
    () => `POST ${START_REG()} -> ${res.start.status}: ${trunc(res.start.text)}`);
  const opts = res.start.json.credential_creation_options;
  checkCreationOptions(label, opts);
  must(`${label}: navigator.credentials.create with only ${alg}`, res.credential && !res.error,
    () => `${res.error}; sent options ${trunc(res.sent)}`);
  const cred = res.credential;
  must(`${label}: authenticator made a ${alg} key`, cred.response.publicKeyAlgorithm === ALGS[alg],
    () => `publicKeyAlgorithm ${cred.response.publicKeyAlgorithm}`);
  const sessionId = res.start.json.webauthn_session_id;
  const encoded = form === 'envelope' ? encodeEnvelope(sessionId, cred, ctx.userAgent) : encodeToJson(cred);
  let r;
  if (kind === 'user') {
    r = await call('POST', '/cis/v1/auth/webauthn/register', { token, json: { webauthn_encoded_result: encoded } });
  } else {
    r = await call('POST', '/cis/v1/auth/webauthn/external/register', {
      token, json: { webauthn_encoded_result: encoded, external_user_id: externalUserId, user_email: email },
    });
  }
  const j = mustResp(`${label}: ${kind === 'user' ? 'register (3.5, user token)' : 'external/register (3.6, client token)'}` +
    ` with the ${form === 'envelope' ? 'SDK envelope' : 'toJSON()'} form`, r, 200);
  const probs = [];
  if (j.webauthn_session_id !== sessionId) probs.push(`webauthn_session_id ${j.webauthn_session_id} != ${sessionId}`);
  if (typeof j.user_id !== 'string' || !j.user_id) probs.push('no user_id');
  if (j.webauthn_username !== username) probs.push(`webauthn_username ${j.webauthn_username} != ${username}`);
  if (j.credential_id !== cred.id) probs.push(`credential_id ${j.credential_id} != ${cred.id} (PublicKeyCredential.id)`);
  if (j.authenticator_attachment !== 'platform') probs.push(`authenticator_attachment ${j.authenticator_attachment}`);
  const aaguid = aaguidOf(cred.response.authenticatorData);
  if (String(j.aaguid).toLowerCase() !== aaguid) probs.push(`aaguid ${j.aaguid} != ${aaguid}`);
  if (kind === 'external') {
    if (j.external_user_id !== externalUserId) probs.push(`external_user_id ${j.external_user_id}`);
    if (typeof j.is_user_created !== 'boolean') probs.push(`is_user_created ${j.is_user_created}`);
  }
  check(`${label}: registration response fields`, probs.length === 0, () => `${probs.join('; ')}; body ${trunc(j)}`);
  return { id: cred.id, alg, username, userId: j.user_id, userHandle: opts.user.id, resp: j };
}

async function verifyIdToken(ctx, label, idToken) {
  try {
    const { payload } = await jwtVerify(idToken, ctx.jwks, { issuer: ctx.issuer, audience: CLIENT_ID });
    pass(`${label}: ID token verifies (jose, JWKS, iss, aud = client_id)`);
    return payload;
  } catch (e) {
    fail(`${label}: ID token verifies (jose, JWKS, iss, aud = client_id)`,
      `${e.code || ''} ${e.message}; payload ${trunc(decodeJwtSafe(idToken))}`);
    throw new FlowAbort(label);
  }
}
function decodeJwtSafe(t) { try { return decodeJwt(t); } catch { return t; } }

// Login ceremony: browser start + get, backend completion. Returns {tokens, claims, encoded, credential}.
// startBody: extra fields of authenticate/start; only: force this credential (allowCredentials edit).
async function login(ctx, { label, startBody, only, form = 'tojson', expectUser, expectCred, expectUsername,
  expectApproval, usernameless = false }) {
  const res = await pageGet(ctx.page, START_AUTH(), { client_id: CLIENT_ID, ...startBody }, only ? { onlyCredential: only } : {});
  must(`${label}: authenticate/start from the page (cross-origin)`,
    res.start.status === 200 && typeof res.start.json?.webauthn_session_id === 'string' &&
      typeof res.start.json?.credential_request_options === 'object',
    () => `POST ${START_AUTH()} -> ${res.start.status}: ${trunc(res.start.text)}`);
  const opts = res.start.json.credential_request_options;
  checkRequestOptions(label, opts, { emptyAllow: usernameless });
  must(`${label}: navigator.credentials.get`, res.credential && !res.error,
    () => `${res.error}; sent options ${trunc(res.sent)}`);
  const cred = res.credential;
  const encoded = form === 'envelope' ? encodeEnvelope(res.start.json.webauthn_session_id, cred, ctx.userAgent)
    : encodeToJson(cred);
  const r = await call('POST', '/cis/v1/auth/webauthn/authenticate', {
    token: ctx.client, json: { webauthn_encoded_result: encoded },
  });
  const tokens = mustResp(`${label}: authenticate (3.3, client token, ${form === 'envelope' ? 'SDK envelope' : 'toJSON()'} form)`
    + ' -> backend token response', r, 200, TOKENS_OK);
  const claims = await verifyIdToken(ctx, label, tokens.id_token);
  const want = typeof expectCred === 'function' ? expectCred(cred) : expectCred;
  const probs = [];
  if (!Array.isArray(claims.amr) || !claims.amr.includes('webauthn')) probs.push(`amr ${JSON.stringify(claims.amr)}`);
  if (claims.sub !== want.userId) probs.push(`sub ${claims.sub} != ${want.userId}`);
  if (claims.webauthn_username !== (expectUsername ?? want.username)) {
    probs.push(`webauthn_username ${claims.webauthn_username} != ${expectUsername ?? want.username}`);
  }
  if (typeof claims.webauthn !== 'object' || claims.webauthn === null) {
    probs.push(`webauthn claim ${JSON.stringify(claims.webauthn)} is not an object`);
  } else if (b64norm(claims.webauthn.credential_id) !== b64norm(want.id)) {
    probs.push(`webauthn.credential_id ${claims.webauthn.credential_id} != ${want.id}`);
  }
  if (expectApproval !== undefined && !isDeepStrictEqual(claims.approval_data, expectApproval)) {
    probs.push(`approval_data ${JSON.stringify(claims.approval_data)} != ${JSON.stringify(expectApproval)}`);
  }
  if (expectApproval === undefined && claims.approval_data !== undefined) {
    probs.push(`unexpected approval_data ${JSON.stringify(claims.approval_data)}`);
  }
  check(`${label}: ID token claims (sub, amr webauthn, webauthn_username, webauthn.credential_id` +
    `${expectApproval ? ', approval_data' : ''})`, probs.length === 0, () => `${probs.join('; ')}; claims ${trunc(claims)}`);
  return { tokens, claims, encoded, credential: cred, options: opts };
}

// Runs one flow; a FlowAbort (a failed prerequisite) ends that flow only.
async function flow(name, fn) {
  note(`flow: ${name}`);
  try {
    await fn();
  } catch (e) {
    if (e instanceof FlowAbort) {
      note(`flow '${name}' stopped after: ${e.message}`);
    } else {
      fail(`${name}: unexpected error`, e.stack || e.message);
    }
  }
}

async function mainTest(executablePath) {
  const srv = await startPageServer(PAGE_PORT);
  let browser;
  try {
    const ctx = {};
    // --- setup: OIDC metadata, client token, CORS, browser -------------------------------------------------
    let r = await call('GET', '/.well-known/openid-configuration');
    const meta = mustResp('GET /.well-known/openid-configuration has issuer', r, 200, (j) => typeof j.issuer === 'string');
    ctx.issuer = meta.issuer;
    ctx.jwks = createRemoteJWKSet(new URL(`${NODE_BASE}/cis/oidc/jwks`));
    ctx.client = await clientToken();

    for (const p of ['register/start', 'authenticate/start']) {
      const url = `/cis/v1/auth/webauthn/${p}`;
      r = await call('OPTIONS', url, { headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type' } });
      const acao = r.headers.get('access-control-allow-origin');
      const methods = (r.headers.get('access-control-allow-methods') || '').toUpperCase();
      const hdrs = (r.headers.get('access-control-allow-headers') || '').toLowerCase();
      check(`CORS preflight of ${p} for the app origin ${ORIGIN}`,
        r.status >= 200 && r.status < 300 && acao === ORIGIN && (methods.includes('POST') || methods === '*') &&
          (hdrs.includes('content-type') || hdrs === '*'),
        () => `${r.what} -> ${r.status}; ACAO ${acao}; methods ${methods}; headers ${hdrs}`);
      r = await call('OPTIONS', url, { headers: { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type' } });
      const bad = r.headers.get('access-control-allow-origin');
      check(`CORS preflight of ${p} does not allow a foreign origin`, bad !== 'http://evil.example' && bad !== '*',
        () => `${r.what} -> ${r.status}; Access-Control-Allow-Origin: ${bad}`);
    }

    const b = await launchBrowser(executablePath);
    browser = b.browser;
    ctx.page = b.page;
    ctx.userAgent = await b.page.evaluate(() => navigator.userAgent);
    pass(`chromium ${browser.version()} launched; blank page ${ORIGIN}/ loaded`);
    ctx.authId = await addAuthenticator(b.cdp);
    pass('CDP virtual authenticator added (ctap2, internal, resident keys, UV)');

    // --- users and registrations -----------------------------------------------------------------------
    const email = `${uniq('browser-u1')}@example.com`;
    const u1 = await otpLogin('user U1 (email OTP)', ctx.client, email);
    const u1name = uniq('u1');
    const creds = {};

    await flow('register ES256 (3.5, toJSON form, discoverable)', async () => {
      creds.es = await register(ctx, { label: 'ES256 register', alg: 'ES256', username: u1name, kind: 'user',
        token: u1.accessToken, form: 'tojson' });
      check('ES256 register: credential bound to the logged-in user', creds.es.userId === u1.userId,
        () => `user_id ${creds.es.userId} != ${u1.userId}`);
    });
    await flow('register RS256 (3.5, toJSON form, same username, non-discoverable)', async () => {
      // residentKey "discouraged": a second discoverable credential for the same user.id would replace the
      // ES256 one on the authenticator (CTAP2 rule).
      creds.rs = await register(ctx, { label: 'RS256 register', alg: 'RS256', username: u1name, kind: 'user',
        token: u1.accessToken, form: 'tojson', residentKey: 'discouraged' });
      check('RS256 register: credential bound to the logged-in user', creds.rs.userId === u1.userId,
        () => `user_id ${creds.rs.userId} != ${u1.userId}`);
      if (creds.es) {
        check('RS256 register: register/start reused the user handle of the username', creds.rs.userHandle === creds.es.userHandle,
          () => `user.id ${creds.rs.userHandle} != ${creds.es.userHandle}`);
      }
    });
    const extId = uniq('ext');
    const extName = uniq('ext-user');
    await flow('register EdDSA (3.6 external, SDK envelope form, discoverable)', async () => {
      creds.ed = await register(ctx, { label: 'EdDSA external register', alg: 'EdDSA', username: extName, kind: 'external',
        token: ctx.client, form: 'envelope', externalUserId: extId, email: `${extId}@example.com` });
      check('EdDSA external register: a new user was created', creds.ed.resp.is_user_created === true,
        () => `is_user_created ${creds.ed.resp.is_user_created}`);
    });

    // --- logins ----------------------------------------------------------------------------------------
    let esLogin;
    if (creds.es) {
      await flow('username login with ES256', async () => {
        esLogin = await login(ctx, { label: 'ES256 login', startBody: { username: u1name }, only: creds.es.id, expectCred: creds.es });
        const allow = esLogin.options.allowCredentials.map((c) => b64norm(c.id));
        const mine = [creds.es, creds.rs].filter(Boolean).map((c) => c.id);
        check('ES256 login: allowCredentials lists the user\'s credentials (standard base64)',
          mine.every((id) => allow.includes(id)), () => `allow ${JSON.stringify(allow)}; want ${JSON.stringify(mine)}`);
      });
    }
    if (creds.rs) {
      await flow('username login with RS256', async () => {
        await login(ctx, { label: 'RS256 login', startBody: { username: u1name }, only: creds.rs.id, expectCred: creds.rs });
      });
    }
    if (creds.ed) {
      await flow('username login with EdDSA (SDK envelope form)', async () => {
        await login(ctx, { label: 'EdDSA login', startBody: { username: extName }, only: creds.ed.id, expectCred: creds.ed,
          form: 'envelope' });
      });
    }
    if (creds.es || creds.ed) {
      await flow('usernameless login (discoverable credential chosen by the authenticator)', async () => {
        const known = [creds.es, creds.ed].filter(Boolean);
        const res = await login(ctx, { label: 'usernameless login', startBody: {}, usernameless: true,
          expectCred: (c) => known.find((k) => k.id === c.id) || { id: c.id, userId: '(unknown credential)', username: '' } });
        check('usernameless login: assertion carries the user handle of the registration',
          b64norm(res.credential.response.userHandle || '') ===
            b64norm(known.find((k) => k.id === res.credential.id)?.userHandle || 'x'),
          () => `userHandle ${res.credential.response.userHandle}`);
        note(`usernameless login used credential ${res.credential.id}`);
      });
    }
    if (creds.es) {
      await flow('approval_data ceremony', async () => {
        const approval = { amount: '100', payee: 'bob' };
        const res = await login(ctx, { label: 'approval login', startBody: { username: u1name, approval_data: approval },
          only: creds.es.id, expectCred: creds.es, expectApproval: approval });
        const o = res.options;
        const raw = b64bytes(o.rawChallenge);
        const want = raw && createHash('sha256').update(Buffer.concat([raw, Buffer.from(canonicalJson(approval))])).digest();
        check('approval login: challenge = SHA-256(rawChallenge || canonical_json(approval_data))',
          raw && raw.length === 32 && b64bytes(o.challenge)?.equals(want),
          () => `rawChallenge ${o.rawChallenge}; challenge ${o.challenge}`);
      });
    }
    if (esLogin) {
      await flow('replay of a used assertion', async () => {
        r = await call('POST', '/cis/v1/auth/webauthn/authenticate', {
          token: ctx.client, json: { webauthn_encoded_result: esLogin.encoded },
        });
        checkResp('replayed ES256 assertion -> 401 auth_webauthn_failed', r, 401, FAILED_BODY);
      });
    }
    if (creds.rs && creds.es) {
      await flow('login with a deleted credential', async () => {
        r = await call('DELETE', `/cis/v1/auth/webauthn/credentials/${encodeURIComponent(creds.rs.resp.credential_id)}`,
          { token: u1.accessToken });
        mustResp('delete the RS256 credential (owner\'s user token)', r, 200, (j) => j.message === 'Credential deleted');
        const res = await pageGet(ctx.page, START_AUTH(), { client_id: CLIENT_ID, username: u1name },
          { onlyCredential: creds.rs.id });
        must('deleted credential: authenticate/start', res.start.status === 200 && res.credential,
          () => `start ${res.start.status} ${trunc(res.start.text)}; ${res.error || ''}`);
        const allow = (res.start.json.credential_request_options.allowCredentials || []).map((c) => b64norm(c.id));
        check('deleted credential: no longer in allowCredentials', !allow.includes(creds.rs.id),
          () => `allowCredentials ${JSON.stringify(allow)}`);
        r = await call('POST', '/cis/v1/auth/webauthn/authenticate', {
          token: ctx.client, json: { webauthn_encoded_result: encodeToJson(res.credential) },
        });
        checkResp('assertion by the deleted RS256 credential -> 401 auth_webauthn_failed', r, 401, FAILED_BODY);
        await login(ctx, { label: 'ES256 login after the deletion', startBody: { username: u1name }, only: creds.es.id,
          expectCred: creds.es });
      });
    }
    if (b.pageErrors.length) note(`page errors: ${b.pageErrors.join(' | ')}`);
  } finally {
    if (browser) await browser.close().catch(() => {});
    srv.close();
  }
}

// ------------------------------------------------------------------------------------------------------------

const watchdog = setTimeout(() => {
  fail('webauthn.mjs finished in time', `still running after ${WATCHDOG_MS} ms`);
  process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();

const executablePath = findChromium();
try {
  if (!executablePath) {
    fail('chromium found', 'no chromium on PATH (apt-get install chromium, or pass --chromium PATH)');
  } else if (PLUMBING) {
    await plumbing(executablePath);
  } else {
    await mainTest(executablePath);
  }
} catch (e) {
  if (!(e instanceof FlowAbort)) fail('webauthn.mjs: unexpected error', e.stack || e.message);
}
console.log(`# webauthn.mjs: ${checkNo - failures} passed, ${failures} failed`);
process.exit(failures === 0 && checkNo > 0 ? 0 : 1);
