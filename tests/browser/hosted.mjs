// Real-browser test of sigil's hosted login (API.md 4.1-4.3, 3.7) and of its OpenID Provider surface (1.1, 1.4,
// 1.5) with real clients only:
//   - a headless Debian Chromium (playwright-core, never a downloaded browser) with a CDP virtual authenticator
//     walks the hosted pages (email code from DATA_DIR/outbox, passkey registration, usernameless sign-in);
//   - a node HTTP server on http://localhost:Q/callback plays the relying party's redirect URI;
//   - codes are exchanged at /oidc/token (and /cis/v1/token), ID tokens verified with npm jose;
//   - npm openid-client (v5, see oidc_client.mjs) runs the authorization-code flow with PKCE S256 from
//     discovery, then refresh and userinfo;
//   - every hosted page is rendered at desktop (1280x800) and phone (390x844) width; PNGs go to --screens-dir.
//
// usage: node hosted.mjs --sigil-port P --page-port Q --data-dir DIR --client-id ID --client-secret SECRET
//                        --app-name NAME [--screens-dir DIR] [--chromium PATH]
//
// Prints one line per check, "ok - N. NAME" or "not ok - N. NAME: DETAILS", and "# ..." notes. Exit status 0
// only when every check passed.
import { chromium } from 'playwright-core';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import * as rp from './oidc_client.mjs';

// ------------------------------------------------------------------------------------------------------------
// Arguments

const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
  args[a.slice(2)] = process.argv[++i];
}
const SIGIL_PORT = args['sigil-port'];
const PAGE_PORT = Number(args['page-port'] || 0);
const DATA_DIR = args['data-dir'];
const CLIENT_ID = args['client-id'];
const CLIENT_SECRET = args['client-secret'];
const APP_NAME = args['app-name'] || '';
const SCREENS_DIR = args['screens-dir'] || '';
if (!SIGIL_PORT || !PAGE_PORT || !DATA_DIR || !CLIENT_ID || !CLIENT_SECRET) {
  console.error('usage: node hosted.mjs --sigil-port P --page-port Q --data-dir DIR --client-id ID ' +
    '--client-secret SECRET --app-name NAME [--screens-dir DIR] [--chromium PATH]');
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

// The browser reaches sigild as http://localhost:P (its public URL: the hosted pages' origin, rpId localhost);
// node talks to it on 127.0.0.1 (sigild listens there only).
const SIGIL = `http://localhost:${SIGIL_PORT}`;
const NODE_BASE = `http://127.0.0.1:${SIGIL_PORT}`;
const REDIRECT_URI = `http://localhost:${PAGE_PORT}/callback`;
const WATCHDOG_MS = Number(process.env.BROWSER_TEST_TIMEOUT_MS || 170000);
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

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
class FlowAbort extends Error {}
function must(name, cond, details) {
  if (!check(name, cond, details)) throw new FlowAbort(name);
}
async function flow(name, fn) {
  note(`flow: ${name}`);
  try {
    await fn();
  } catch (e) {
    if (e instanceof FlowAbort) note(`flow '${name}' stopped after: ${e.message}`);
    else fail(`${name}: unexpected error`, e.stack || e.message);
  }
}
const uniq = (p) => `${p}-${randomBytes(4).toString('hex')}`;

// ------------------------------------------------------------------------------------------------------------
// HTTP from node (the relying party's backend)

async function call(method, urlPath, { token, json, form, headers = {} } = {}) {
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
    res = await fetch(url, { method, headers: h, body, redirect: 'manual', signal: AbortSignal.timeout(15000) });
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

// Mails in the outbox ($DATA_DIR/outbox/<epoch-ms>-<random>.json), by file name.
function outboxFiles() {
  try { return readdirSync(path.join(DATA_DIR, 'outbox')).filter((f) => f.endsWith('.json')).sort(); } catch { return []; }
}
// The code of the newest mail to `email` not in `before` (a list of file names).
async function outboxOtp(email, before = []) {
  const seen = new Set(before);
  for (let i = 0; i < 50; i++) {
    for (const f of outboxFiles().reverse()) {
      if (seen.has(f)) continue;
      try {
        const m = JSON.parse(readFileSync(path.join(DATA_DIR, 'outbox', f), 'utf8'));
        if (String(m.to).toLowerCase() === email.toLowerCase() && m.otp) return String(m.otp);
      } catch { /* partially written */ }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return '';
}

// ------------------------------------------------------------------------------------------------------------
// The relying party's redirect URI: http://localhost:Q/callback records each hit.

const callbacks = { queue: [], waiters: [] };
function startCallbackServer(port) {
  const srv = http.createServer((req, res) => {
    const url = new URL(req.url, `http://localhost:${port}`);
    if (url.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end('<!doctype html><html><head><meta charset="utf-8"><title>callback</title></head>' +
      '<body><p id="callback">callback received</p></body></html>');
    const full = `http://localhost:${port}${req.url}`;
    const w = callbacks.waiters.shift();
    if (w) w(full); else callbacks.queue.push(full);
  });
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve(srv));
  });
}
// Forget earlier hits; the next one (within ms) as a URL string, or '' on timeout.
function drainCallbacks() { callbacks.queue.length = 0; callbacks.waiters.length = 0; }
function nextCallback(ms = 30000) {
  if (callbacks.queue.length) return Promise.resolve(callbacks.queue.shift());
  return new Promise((resolve) => {
    let done = false;
    const w = (u) => { if (!done) { done = true; clearTimeout(t); resolve(u); } };
    const t = setTimeout(() => {
      if (done) return;
      done = true;
      const i = callbacks.waiters.indexOf(w);
      if (i >= 0) callbacks.waiters.splice(i, 1);
      resolve('');
    }, ms);
    callbacks.waiters.push(w);
  });
}

// The next callback hit, or '' as soon as the page shows #error (then the page's message is in `pageError`), or
// '' after ms. When a callback came, waits until the page itself is on the redirect URI (so that the next
// navigation does not interrupt it).
async function arrival(page, cb, ms = 30000) {
  let stop = false;
  const err = (async () => {
    const deadline = Date.now() + ms;
    while (!stop && Date.now() < deadline) {
      try {
        const e = page.locator('#error');
        if ((await e.count()) === 1 && (await e.isVisible())) return `page shows #error: ${await e.textContent()}`;
      } catch { /* navigating */ }
      await new Promise((r) => setTimeout(r, 200));
    }
    return '';
  })();
  const url = await Promise.race([cb, err.then((m) => ({ error: m }))]);
  stop = true;
  if (typeof url === 'string' && url) {
    await page.waitForURL((u) => u.toString().startsWith(REDIRECT_URI), { timeout: 10000 }).catch(() => {});
    return { url };
  }
  return { url: '', error: (url && url.error) || 'no request reached the callback server' };
}

// ------------------------------------------------------------------------------------------------------------
// Browser

const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// A fresh browser profile (context) with one page; with `authenticator`, a CDP virtual authenticator
// (ctap2, internal, resident keys, UV, automatic presence) holding `credentials` (exported from another one).
async function newBrowserContext(browser, { authenticator = true, credentials = [], noConditional = false,
  viewport = DESKTOP, locale = 'en-US' } = {}) {
  const context = await browser.newContext({ viewport, locale });
  if (noConditional) {
    // A browser without conditional mediation (passkey autofill): the page must offer #passkey-button.
    await context.addInitScript(() => {
      if (window.PublicKeyCredential) {
        Object.defineProperty(window.PublicKeyCredential, 'isConditionalMediationAvailable',
          { value: () => Promise.resolve(false), configurable: true });
      }
    });
  }
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  const nav = [];
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) nav.push(f.url()); });
  const s = { context, page, errors, nav };
  if (authenticator) {
    s.cdp = await context.newCDPSession(page);
    await s.cdp.send('WebAuthn.enable');
    const { authenticatorId } = await s.cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true,
        isUserVerified: true, automaticPresenceSimulation: true },
    });
    s.authId = authenticatorId;
    for (const credential of credentials) await s.cdp.send('WebAuthn.addCredential', { authenticatorId, credential });
  }
  return s;
}
async function credentialsOf(s) {
  return (await s.cdp.send('WebAuthn.getCredentials', { authenticatorId: s.authId })).credentials;
}

const v1Url = (params) => `${SIGIL}/cis/v1/auth/webauthn?${new URLSearchParams({ client_id: CLIENT_ID,
  redirect_uri: REDIRECT_URI, ...params })}`;
const onHostedLogin = (u) => u.startsWith(`${SIGIL}/cis/hosted/login?ticket=`);
const visible = (page, sel) => page.locator(sel).isVisible();

// New user on the hosted login page: (identifier typed unless pre-filled) -> #continue -> email code from the
// outbox -> #otp-submit -> #register-button. Leaves the page on its way to the redirect URI.
async function signUp(s, label, email, { typeEmail = true, shots } = {}) {
  const { page } = s;
  const before = outboxFiles();
  if (typeEmail) await page.fill('#identifier', email);
  await page.click('#continue');
  await page.locator('#step-otp').waitFor({ state: 'visible' });
  pass(`${label}: #continue -> email code step (#step-otp)`);
  const help = await page.locator('#otp-help').textContent();
  check(`${label}: #otp-help names the address`, help.includes(email), () => `#otp-help '${help}'`);
  if (shots) await shots('otp');
  const otp = await outboxOtp(email, before);
  must(`${label}: the code reached DATA_DIR/outbox`, /^[0-9]{6}$/.test(otp), () => `no new outbox mail to ${email}`);
  await page.fill('#otp', otp);
  await page.click('#otp-submit');
  await page.locator('#step-register').waitFor({ state: 'visible' });
  pass(`${label}: correct code -> passkey registration step (#step-register)`);
  if (shots) await shots('register-passkey');
  await page.click('#register-button');
}

// ------------------------------------------------------------------------------------------------------------
// Tokens

const ctx = {};
async function verifyIdToken(label, idToken, { nonce, audience = CLIENT_ID } = {}) {
  try {
    const { payload } = await jwtVerify(idToken, ctx.jwks, { issuer: ctx.issuer, audience });
    pass(`${label}: ID token verifies (jose: JWKS signature, iss, aud)`);
    if (nonce !== undefined) {
      check(`${label}: ID token nonce = the request's nonce`, payload.nonce === nonce,
        () => `nonce ${JSON.stringify(payload.nonce)} != ${nonce}`);
    }
    return payload;
  } catch (e) {
    let p = idToken;
    try { p = decodeJwt(idToken); } catch { /* not a JWT */ }
    fail(`${label}: ID token verifies (jose: JWKS signature, iss, aud)`, `${e.code || ''} ${e.message}; ${trunc(p)}`);
    throw new FlowAbort(label);
  }
}

// The redirect that reached the callback server: must carry a code and the state.
function mustCode(label, arrived, state) {
  const cbUrl = arrived.url;
  must(`${label}: browser redirected to ${REDIRECT_URI} with a code`, cbUrl !== '' &&
    cbUrl.startsWith(`${REDIRECT_URI}?`) && new URL(cbUrl).searchParams.get('code'),
  () => (cbUrl === '' ? arrived.error : `callback ${cbUrl}`));
  const q = new URL(cbUrl).searchParams;
  if (state !== undefined) check(`${label}: state echoed`, q.get('state') === state, () => `state ${q.get('state')} != ${state}`);
  return q.get('code');
}

async function exchangeOidc(label, code) {
  const r = await call('POST', '/oidc/token', { form: { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI,
    client_id: CLIENT_ID, client_secret: CLIENT_SECRET } });
  return mustResp(`${label}: POST /oidc/token (authorization_code, client_secret_post) -> tokens`, r, 200,
    (j) => typeof j.id_token === 'string' && typeof j.access_token === 'string' && j.token_type === 'Bearer' &&
      typeof j.refresh_token === 'string');
}

// ------------------------------------------------------------------------------------------------------------
// Screenshots: each state at desktop and phone width (same page, resized). Written as <name>-<desktop|phone>.png
// under --screens-dir; at phone width the page must not scroll sideways.

async function screenshots(page, name) {
  const out = {};
  for (const [kind, size] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewportSize(size);
    await page.evaluate(() => document.fonts.ready);
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    if (kind === 'phone') {
      const w = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
      check(`${name}: no horizontal overflow at phone width (390 px)`, w.scroll <= w.inner,
        () => `scrollWidth ${w.scroll} > ${w.inner}`);
    }
    if (SCREENS_DIR) {
      const file = path.join(SCREENS_DIR, `${name}-${kind}.png`);
      await page.screenshot({ path: file, fullPage: false });
      out[kind] = file;
    }
  }
  await page.setViewportSize(DESKTOP);
  if (SCREENS_DIR) note(`screenshots: ${out.desktop}, ${out.phone}`);
}

// ------------------------------------------------------------------------------------------------------------
// The test

async function main(executablePath) {
  const srv = await startCallbackServer(PAGE_PORT);
  let browser;
  try {
    let r = await call('GET', '/.well-known/openid-configuration');
    const meta = mustResp('GET /.well-known/openid-configuration', r, 200, (j) => typeof j.issuer === 'string');
    ctx.issuer = meta.issuer;
    check('discovery: issuer is the public URL http://localhost:P', meta.issuer === SIGIL, () => `issuer ${meta.issuer}`);
    ctx.jwks = createRemoteJWKSet(new URL(`${NODE_BASE}/cis/oidc/jwks`));
    r = await call('POST', '/oidc/token', { form: { grant_type: 'client_credentials', client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET } });
    ctx.client = mustResp('client access token (client_credentials)', r, 200, (j) => typeof j.access_token === 'string')
      .access_token;

    browser = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_FLAGS, timeout: 60000 });
    pass(`chromium ${browser.version()} launched headless from ${executablePath}`);

    const email = 'new@example.com';
    const user = {};

    // --- 1. new user: hosted page, email code, passkey registration, code exchange -----------------------------
    const A = await newBrowserContext(browser);
    await flow('hosted login, new user (4.1): email code + passkey registration', async () => {
      const state = uniq('state');
      const nonce = uniq('nonce');
      drainCallbacks();
      const cb = nextCallback();
      const res = await A.page.goto(v1Url({ state, nonce, login_hint: email }));
      must('new user: GET /cis/v1/auth/webauthn -> hosted login page', onHostedLogin(A.page.url()) && res.status() === 200,
        () => `landed on ${A.page.url()} (HTTP ${res.status()})`);
      const hint = await A.page.inputValue('#identifier');
      check('login_hint pre-fills #identifier', hint === email, () => `#identifier value '${hint}'`);
      check('new user: the page starts at #step-identify, #signup-note shown',
        (await visible(A.page, '#step-identify')) && (await visible(A.page, '#signup-note')) &&
          !(await visible(A.page, '#step-otp')), () => 'steps not as expected');
      await signUp(A, 'new user', email, { typeEmail: false });
      const code = mustCode('new user', await arrival(A.page, cb), state);
      const creds = await credentialsOf(A);
      check('new user: the authenticator holds one discoverable passkey for rpId localhost',
        creds.length === 1 && creds[0].isResidentCredential && creds[0].rpId === 'localhost',
        () => trunc(creds.map((c) => ({ rpId: c.rpId, resident: c.isResidentCredential }))));
      user.credentials = creds;
      user.firstExport = creds;
      const tok = await exchangeOidc('new user', code);
      const claims = await verifyIdToken('new user', tok.id_token, { nonce });
      user.sub = claims.sub;
      const probs = [];
      if (typeof claims.sub !== 'string' || !claims.sub) probs.push('no sub');
      if (!Array.isArray(claims.amr) || !claims.amr.includes('eotp')) probs.push(`amr ${JSON.stringify(claims.amr)}`);
      if (claims.new_user !== true) probs.push(`new_user ${JSON.stringify(claims.new_user)}`);
      if (typeof claims.auth_time !== 'number') probs.push(`auth_time ${claims.auth_time}`);
      check('new user: ID token claims (sub, amr has eotp, new_user true, auth_time)', probs.length === 0,
        () => `${probs.join('; ')}; claims ${trunc(claims)}`);
      r = await call('GET', '/oidc/userinfo', { token: tok.access_token });
      mustResp('new user: /oidc/userinfo names the verified email', r, 200,
        (j) => j.sub === user.sub && j.email === email && j.email_verified === true);
      r = await call('POST', '/oidc/token', { form: { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI,
        client_id: CLIENT_ID, client_secret: CLIENT_SECRET } });
      check('new user: the code is single use (second exchange -> 400 invalid_grant)',
        r.status === 400 && r.json?.error === 'invalid_grant', () => desc(r));
    });

    if (user.sub) {
      await flow('second login in the same browser: session, then prompt=login (usernameless, no code)', async () => {
        let state = uniq('state');
        let nonce = uniq('nonce');
        drainCallbacks();
        let cb = nextCallback();
        A.nav.length = 0;
        await A.page.goto(v1Url({ state, nonce }), { waitUntil: 'commit' });
        let code = mustCode('same browser, no prompt', await arrival(A.page, cb), state);
        check('same browser, no prompt: the browser session skips the hosted page',
          !A.nav.some(onHostedLogin), () => `navigations ${trunc(A.nav)}`);
        let tok = await exchangeOidc('same browser, no prompt', code);
        let claims = await verifyIdToken('same browser, no prompt', tok.id_token, { nonce });
        check('same browser, no prompt: same sub', claims.sub === user.sub, () => `sub ${claims.sub} != ${user.sub}`);

        state = uniq('state');
        nonce = uniq('nonce');
        const mails = outboxFiles().length;
        drainCallbacks();
        cb = nextCallback();
        A.nav.length = 0;
        await A.page.goto(v1Url({ state, nonce, prompt: 'login' }), { waitUntil: 'commit' });
        code = mustCode('prompt=login', await arrival(A.page, cb), state);
        check('prompt=login: the hosted page was shown', A.nav.some(onHostedLogin), () => `navigations ${trunc(A.nav)}`);
        check('prompt=login: no email code was sent (passkey only)', outboxFiles().length === mails,
          () => `${outboxFiles().length - mails} new outbox mails`);
        tok = await exchangeOidc('prompt=login', code);
        claims = await verifyIdToken('prompt=login', tok.id_token, { nonce });
        check('prompt=login: conditional-mediation passkey sign-in (same sub, amr [webauthn], not new)',
          claims.sub === user.sub && JSON.stringify(claims.amr) === '["webauthn"]' && claims.new_user !== true,
          () => `claims ${trunc(claims)}`);
        // The passkey as it is now (its signature counter moved on): what another browser gets below.
        user.credentials = await credentialsOf(A);
      });
    }

    // --- 2. openid-client: discovery, PKCE S256, state, nonce; refresh; userinfo --------------------------------
    if (user.credentials) {
      await flow('openid-client (v5): authorization code + PKCE S256 via the hosted page, refresh, userinfo', async () => {
        const { issuer, client } = await rp.discover(SIGIL, { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET,
          redirectUri: REDIRECT_URI });
        check('openid-client: Issuer.discover(http://localhost:P) (authorization, token, userinfo, jwks endpoints)',
          issuer.issuer === SIGIL && issuer.authorization_endpoint && issuer.token_endpoint &&
            issuer.userinfo_endpoint && issuer.jwks_uri &&
            (issuer.code_challenge_methods_supported || []).includes('S256'),
          () => trunc(issuer.metadata));
        const req = rp.authorizationRequest(client);
        const au = new URL(req.url);
        check('openid-client: authorization URL has code_challenge (S256), state, nonce',
          au.searchParams.get('code_challenge_method') === 'S256' && au.searchParams.get('code_challenge') &&
            au.searchParams.get('state') === req.state && au.searchParams.get('nonce') === req.nonce,
          () => req.url);
        // Another browser with the same passkey (and no session): the hosted page's conditional mediation.
        const B = await newBrowserContext(browser, { credentials: user.credentials });
        try {
          drainCallbacks();
          const cb = nextCallback();
          await B.page.goto(req.url, { waitUntil: 'commit' });
          const arrived = await arrival(B.page, cb);
          mustCode('openid-client', arrived, req.state);
          const cbUrl = arrived.url;
          check('openid-client: the browser went through the hosted login page', B.nav.some(onHostedLogin),
            () => `navigations ${trunc(B.nav)}`);
          let ts;
          try {
            ts = await rp.callback(client, REDIRECT_URI, cbUrl, req);
          } catch (e) {
            fail('openid-client: client.callback (code exchange with code_verifier; ID token signature, iss, aud, ' +
              'nonce, at_hash)', `${e.name}: ${e.message} ${e.error_description || ''}`);
            throw new FlowAbort('callback');
          }
          pass('openid-client: client.callback (code exchange with code_verifier; ID token signature, iss, aud, ' +
            'nonce, at_hash)');
          const claims = ts.claims();
          check('openid-client: ID token sub = the passkey\'s user, nonce as sent', claims.sub === user.sub &&
            claims.nonce === req.nonce, () => trunc(claims));
          check('openid-client: token set has access, refresh and ID tokens',
            ts.access_token && ts.refresh_token && ts.id_token && ts.token_type?.toLowerCase() === 'bearer',
            () => trunc(Object.keys(ts)));
          let rts;
          try {
            rts = await client.refresh(ts.refresh_token);
          } catch (e) {
            fail('openid-client: client.refresh', `${e.name}: ${e.message} ${e.error_description || ''}`);
            throw new FlowAbort('refresh');
          }
          check('openid-client: client.refresh -> new access token, rotated refresh token, ID token for the same sub',
            rts.access_token && rts.access_token !== ts.access_token && rts.refresh_token &&
              rts.refresh_token !== ts.refresh_token && rts.claims().sub === user.sub,
            () => trunc({ ...rts, claims: rts.id_token ? rts.claims() : null }));
          try {
            const info = await client.userinfo(rts);
            check('openid-client: client.userinfo (refreshed access token) -> sub and verified email',
              info.sub === user.sub && info.email === email && info.email_verified === true, () => trunc(info));
          } catch (e) {
            fail('openid-client: client.userinfo', `${e.name}: ${e.message}`);
          }
          // 1.5: presenting a rotated refresh token is theft: it fails and the whole family goes.
          try {
            await client.refresh(ts.refresh_token);
            fail('openid-client: reusing the rotated refresh token fails (invalid_grant)', 'refresh succeeded');
          } catch (e) {
            check('openid-client: reusing the rotated refresh token fails (invalid_grant)', e.error === 'invalid_grant',
              () => `${e.name}: ${e.message}`);
          }
          try {
            await client.refresh(rts.refresh_token);
            fail('openid-client: ... and revokes its family (the current refresh token fails too)', 'refresh succeeded');
          } catch (e) {
            check('openid-client: ... and revokes its family (the current refresh token fails too)',
              e.error === 'invalid_grant', () => `${e.name}: ${e.message}`);
          }
          try {
            await rp.callback(client, REDIRECT_URI, cbUrl, req);
            fail('openid-client: replaying the code fails with invalid_grant', 'second exchange succeeded');
          } catch (e) {
            check('openid-client: replaying the code fails with invalid_grant', e.error === 'invalid_grant',
              () => `${e.name}: ${e.message}`);
          }
        } finally {
          user.credentials = await credentialsOf(B).catch(() => user.credentials);
          await B.context.close().catch(() => {});
        }
      });

      // --- #passkey-button (no conditional mediation), username login, /cis/v1/token, /cis/v1/auth/logout ------
      await flow('#passkey-button in a browser without conditional mediation; 4.2 exchange; 4.3 logout', async () => {
        const C = await newBrowserContext(browser, { credentials: user.credentials, noConditional: true });
        try {
          let state = uniq('state');
          let nonce = uniq('nonce');
          drainCallbacks();
          let cb = nextCallback();
          await C.page.goto(v1Url({ state, nonce }));
          must('#passkey-button: hosted page shown', onHostedLogin(C.page.url()), () => C.page.url());
          await C.page.click('#passkey-button');
          let code = mustCode('#passkey-button', await arrival(C.page, cb), state);
          r = await call('POST', '/cis/v1/token', { json: { code, client_id: CLIENT_ID, client_secret: CLIENT_SECRET } });
          const v1 = mustResp('#passkey-button: POST /cis/v1/token (4.2) -> all four fields, is_user_created false', r, 200,
            (j) => typeof j.id_token === 'string' && typeof j.access_token === 'string' &&
              typeof j.refresh_token === 'string' && j.is_user_created === false);
          const claims = await verifyIdToken('#passkey-button', v1.id_token, { nonce });
          check('#passkey-button: usernameless sign-in as the same user', claims.sub === user.sub, () => trunc(claims));

          r = await call('POST', '/cis/v1/auth/logout', { token: v1.access_token });
          mustResp('POST /cis/v1/auth/logout (4.3) -> sessions_count 1', r, 200, (j) => j.sessions_count === 1);
          r = await call('GET', '/oidc/userinfo', { token: v1.access_token });
          check('after logout: the access token is refused (401)', r.status === 401, () => desc(r));
          r = await call('POST', '/oidc/token', { form: { grant_type: 'refresh_token', refresh_token: v1.refresh_token,
            client_id: CLIENT_ID, client_secret: CLIENT_SECRET } });
          check('after logout: the refresh token is refused (invalid_grant)',
            r.status === 400 && r.json?.error === 'invalid_grant', () => desc(r));

          // Username login: the identifier of a user with a passkey -> passkey ceremony, no email code.
          state = uniq('state');
          nonce = uniq('nonce');
          const mails = outboxFiles().length;
          drainCallbacks();
          cb = nextCallback();
          await C.page.goto(v1Url({ state, nonce, prompt: 'login' }));
          must('username login: hosted page shown (prompt=login)', onHostedLogin(C.page.url()), () => C.page.url());
          await C.page.fill('#identifier', email.toUpperCase());
          await C.page.click('#continue');
          code = mustCode('username login', await arrival(C.page, cb), state);
          check('username login: no email code was sent', outboxFiles().length === mails,
            () => `${outboxFiles().length - mails} new mails`);
          const tok = await exchangeOidc('username login', code);
          const c2 = await verifyIdToken('username login', tok.id_token, { nonce });
          check('username login: same user', c2.sub === user.sub, () => trunc(c2));
          if (C.errors.length) note(`page errors: ${C.errors.join(' | ')}`);
        } finally {
          await C.context.close().catch(() => {});
        }
      });

      // Last (it flags the credential): a copy of the passkey taken right after its registration, whose
      // signature counter is now behind the server's: a cloned authenticator.
      await flow('a stale copy of the passkey (sign-count regression) is refused', async () => {
        const E = await newBrowserContext(browser, { credentials: user.firstExport, noConditional: true });
        try {
          drainCallbacks();
          const cb = nextCallback(15000);
          await E.page.goto(v1Url({ state: uniq('state') }));
          await E.page.click('#passkey-button');
          const arrived = await arrival(E.page, cb, 15000);
          check('stale passkey copy: refused on the page (#error), no code', arrived.url === '' &&
            arrived.error.startsWith('page shows #error'), () => `${arrived.url} ${arrived.error}`);
        } finally {
          await E.context.close().catch(() => {});
        }
      });
    }
    if (A.errors.length) note(`page errors: ${A.errors.join(' | ')}`);
    await A.context.close().catch(() => {});

    // --- 4. ui_locales, custom_message, cancel, unvetted redirect_uri -------------------------------------------
    await flow('ui_locales=fr, custom_message, cancel, invalid redirect_uri', async () => {
      const D = await newBrowserContext(browser, { authenticator: false });
      try {
        const frMsg = 'Connectez-vous pour suivre vos commandes.';
        await D.page.goto(v1Url({ state: uniq('state'), ui_locales: 'fr-CA fr en', custom_message: frMsg }));
        must('ui_locales=fr: hosted page shown', onHostedLogin(D.page.url()), () => D.page.url());
        const t = await D.page.evaluate(() => ({
          lang: document.documentElement.lang, heading: document.getElementById('heading').textContent,
          cont: document.getElementById('continue').textContent, passkey: document.getElementById('passkey-button').textContent,
          label: document.querySelector('label[for=identifier]').textContent,
        }));
        check('ui_locales=fr: French page (lang fr, "Connexion à APP", "Continuer", "Se connecter avec une clé d’accès")',
          t.lang === 'fr' && t.heading === `Connexion à ${APP_NAME}` && t.cont.trim() === 'Continuer' &&
            t.passkey.trim() === 'Se connecter avec une clé d’accès' && t.label.trim() === 'Adresse e-mail',
          () => trunc(t));
        const message = () => D.page.evaluate(() => {
          const e = document.getElementById('message');
          return { text: e.textContent, hidden: e.hidden, children: e.children.length };
        });
        let m = await message();
        check('custom_message appears in #message', m.text === frMsg && !m.hidden && (await visible(D.page, '#message')),
          () => trunc(m));
        await screenshots(D.page, 'login-fr');
        const msg = '<b>Welcome</b> & "thanks" <script>x</script>';
        const state = uniq('state');
        await D.page.goto(v1Url({ state, custom_message: msg }));
        m = await message();
        check('custom_message with markup is shown as text (escaped)', m.text === msg && m.children === 0, () => trunc(m));
        const en = await D.page.evaluate(() => ({ lang: document.documentElement.lang,
          heading: document.getElementById('heading').textContent }));
        check('no ui_locales: English page', en.lang === 'en' && en.heading === `Sign in to ${APP_NAME}`, () => trunc(en));
        drainCallbacks();
        const cb = nextCallback();
        await D.page.click('#cancel');
        const cbUrl = (await arrival(D.page, cb)).url;
        const q = cbUrl ? new URL(cbUrl).searchParams : new URLSearchParams();
        check('#cancel -> redirect_uri?error=access_denied&error_description=...&state=...',
          q.get('error') === 'access_denied' && q.get('error_description') && q.get('state') === state && !q.get('code'),
          () => `callback '${cbUrl}'`);

        drainCallbacks();
        const bad = await D.page.goto(`${SIGIL}/cis/v1/auth/webauthn?${new URLSearchParams({ client_id: CLIENT_ID,
          redirect_uri: `${REDIRECT_URI}/other`, state })}`);
        const body = await bad.text();
        let j = null;
        try { j = JSON.parse(body); } catch { /* not JSON */ }
        check('unregistered redirect_uri -> 400 {"message":"Invalid redirect_uri"}, no redirect',
          bad.status() === 400 && j?.message === 'Invalid redirect_uri' && j?.error_code === 400 &&
            D.page.url().startsWith(`${SIGIL}/`) && callbacks.queue.length === 0,
          () => `HTTP ${bad.status()} at ${D.page.url()}: ${trunc(body)}`);
        if (D.errors.length) note(`page errors: ${D.errors.join(' | ')}`);
      } finally {
        await D.context.close().catch(() => {});
      }
    });

    // --- 3. screenshots of every hosted page (and functional checks on the way) ----------------------------------
    await flow('hosted pages rendered at desktop and phone width', async () => {
      const S = await newBrowserContext(browser);
      try {
        const shots = (name) => screenshots(S.page, name);
        // Login page, identify step (custom_message shown).
        await S.page.goto(v1Url({ state: uniq('state'), custom_message: 'Sign in to see your orders and saved items.' }));
        must('screenshots: hosted login page', onHostedLogin(S.page.url()), () => S.page.url());
        await shots('login');
        // OTP and register steps of a new user (the passkey is not created here).
        const shotEmail = 'jane@example.com';  // fixed names: stable screenshots (fresh data dir)
        await S.page.fill('#identifier', shotEmail);
        await S.page.click('#continue');
        await S.page.locator('#step-otp').waitFor({ state: 'visible' });
        await shots('otp');
        const otp = await outboxOtp(shotEmail);
        must('screenshots: code in the outbox', otp !== '', () => shotEmail);
        await S.page.fill('#otp', '000000' === otp ? '111111' : '000000');
        await S.page.click('#otp-submit');
        await S.page.locator('#error').waitFor({ state: 'visible' });
        const errText = await S.page.locator('#error').textContent();
        check('wrong code -> #error "This code is not correct."', errText === 'This code is not correct.',
          () => `#error '${errText}'`);
        await shots('otp-error');
        await S.page.fill('#otp', otp);
        await S.page.click('#otp-submit');
        await S.page.locator('#step-register').waitFor({ state: 'visible' });
        await shots('register-passkey');

        // Error page: an unknown (expired) ticket.
        const res = await S.page.goto(`${SIGIL}/cis/hosted/login?ticket=${'x'.repeat(43)}`);
        const et = await S.page.locator('#error').textContent();
        check('expired ticket -> 400 error page with #error', res.status() === 400 &&
          et.includes('This sign-in request has expired'), () => `HTTP ${res.status()}: #error '${et}'`);
        await shots('error');

        // Demo relying party: /demo -> /oidc/auth -> hosted page (new user) -> /demo/callback.
        const dres = await S.page.goto(`${SIGIL}/demo`);
        if (dres.status() === 200 && (await S.page.locator('#demo-signin').count()) === 1) {
          await shots('demo');
          await S.page.click('#demo-signin');
          await S.page.waitForURL((u) => onHostedLogin(u.toString()));
          pass('demo: #demo-signin -> /oidc/auth -> hosted login page');
          const demoEmail = 'alex@example.com';
          await signUp(S, 'demo', demoEmail);
          await S.page.waitForURL((u) => u.toString().startsWith(`${SIGIL}/demo/callback`));
          await S.page.locator('#demo-sub').waitFor({ state: 'visible' });
          const d = await S.page.evaluate(() => ({
            sub: document.getElementById('demo-sub').textContent, email: document.getElementById('demo-email').textContent,
            amr: document.getElementById('demo-amr').textContent,
            errorShown: !document.getElementById('error').hidden,
            userinfo: document.getElementById('demo-userinfo').textContent,
          }));
          check('demo: /demo/callback shows the user (sub, email, amr, userinfo), no error',
            d.sub && d.email === demoEmail && d.amr.includes('eotp') && !d.errorShown && d.userinfo.includes(demoEmail),
            () => trunc(d));
          await shots('demo-callback');
          // Sign out returns to /demo.
          await S.page.click('#demo-logout');
          await S.page.waitForURL((u) => u.toString().replace(/[?#].*/, '') === `${SIGIL}/demo`);
          pass('demo: #demo-logout (GET /oidc/logout) returns to /demo');
        } else {
          fail('demo: GET /demo serves the demo relying party (sigild --demo-rp)', `HTTP ${dres.status()}`);
        }

        // Hosted passkey registration (3.7): token from the hint endpoint (client token), then the page.
        const ident = 'sam@example.com';
        const ext = 'acme-customer-42';
        const r2 = await call('POST', '/cis/v1/auth/webauthn/external/register/hosted/hint', { token: ctx.client,
          json: { webauthn_identifier: ident, webauthn_display_name: 'Jane Doe', external_user_id: ext,
            redirect_uri: REDIRECT_URI } });
        const hint = mustResp('3.7: POST .../external/register/hosted/hint (client token) -> register_webauthn_cred_token',
          r2, 200, (j) => typeof j.register_webauthn_cred_token === 'string');
        const regToken = hint.register_webauthn_cred_token;
        const rres = await S.page.goto(`${SIGIL}/cis/hosted/passkey/passkey-registration?${new URLSearchParams({
          register_webauthn_cred_token: regToken })}`);
        const help = await S.page.locator('#message').textContent();
        must('3.7: hosted registration page names the identifier and the app', rres.status() === 200 &&
          help.includes(ident) && help.includes(APP_NAME), () => `HTTP ${rres.status()}: #message '${help}'`);
        await shots('registration');
        drainCallbacks();
        const cb = nextCallback();
        await S.page.click('#register-button');
        const cbUrl = (await arrival(S.page, cb)).url;
        const q = cbUrl ? new URL(cbUrl).searchParams : new URLSearchParams();
        check('3.7: registration -> redirect_uri with user_identifier, external_user_id, credential_id, token',
          q.get('user_identifier') === ident && q.get('external_user_id') === ext && q.get('credential_id') &&
            q.get('register_webauthn_cred_token') === regToken && !q.get('error'), () => `callback '${cbUrl}'`);
        const again = await S.page.goto(`${SIGIL}/cis/hosted/passkey/passkey-registration?${new URLSearchParams({
          register_webauthn_cred_token: regToken })}`);
        check('3.7: the registration token is single use (page answers 400 afterwards)', again.status() === 400,
          () => `HTTP ${again.status()}`);
        if (S.errors.length) note(`page errors: ${S.errors.join(' | ')}`);
      } finally {
        await S.context.close().catch(() => {});
      }
    });
  } finally {
    if (browser) await browser.close().catch(() => {});
    srv.close();
  }
}

// ------------------------------------------------------------------------------------------------------------

const watchdog = setTimeout(() => {
  fail('hosted.mjs finished in time', `still running after ${WATCHDOG_MS} ms`);
  process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();

if (SCREENS_DIR) mkdirSync(SCREENS_DIR, { recursive: true });
const executablePath = findChromium();
try {
  if (!executablePath) fail('chromium found', 'no chromium on PATH (apt-get install chromium, or pass --chromium PATH)');
  else await main(executablePath);
} catch (e) {
  if (!(e instanceof FlowAbort)) fail('hosted.mjs: unexpected error', e.stack || e.message);
}
console.log(`# hosted.mjs: ${checkNo - failures} passed, ${failures} failed`);
process.exit(failures === 0 && checkNo > 0 ? 0 : 1);
