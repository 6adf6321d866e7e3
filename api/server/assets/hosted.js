// Hosted login and passkey registration pages of sigil. Same-origin JSON calls to /cis/hosted/api/...;
// the page holds only its ticket (or registration token): ceremonies and codes live on the server.
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('page-data').textContent);
  var S = data.strings;
  var $ = function (id) { return document.getElementById(id); };
  var conditional = null;  // AbortController of a pending conditional-mediation request

  function b64uToBuf(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function bufToB64u(buf) {
    var b = new Uint8Array(buf), s = '';
    for (var i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function withIds(list) {
    return (list || []).map(function (c) { return Object.assign({}, c, { id: b64uToBuf(c.id) }); });
  }
  function requestOptions(pk) {
    return Object.assign({}, pk, { challenge: b64uToBuf(pk.challenge), allowCredentials: withIds(pk.allowCredentials) });
  }
  function creationOptions(pk) {
    return Object.assign({}, pk, {
      challenge: b64uToBuf(pk.challenge),
      user: Object.assign({}, pk.user, { id: b64uToBuf(pk.user.id) }),
      excludeCredentials: withIds(pk.excludeCredentials)
    });
  }
  function credentialJSON(cred) {
    var r = cred.response;
    var out = {
      id: cred.id, rawId: bufToB64u(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || null,
      response: { clientDataJSON: bufToB64u(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = bufToB64u(r.attestationObject);
      out.response.transports = typeof r.getTransports === 'function' ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = bufToB64u(r.authenticatorData);
      out.response.signature = bufToB64u(r.signature);
      out.response.userHandle = r.userHandle ? bufToB64u(r.userHandle) : null;
    }
    return out;
  }

  function showError(text) {
    var e = $('error');
    e.textContent = text;
    e.hidden = false;
    status('');
  }
  function clearError() { $('error').hidden = true; $('error').textContent = ''; }
  function status(text) { var s = $('status'); if (s) s.textContent = text; }
  function busy(on) {
    var buttons = document.querySelectorAll('button');
    for (var i = 0; i < buttons.length; i++) buttons[i].disabled = on;
    status(on ? S.working : '');
  }
  // A failed call: the server's reason, in the page's language where the reason is known.
  function describe(err) {
    var code = err && err.code, st = err && err.status;
    if (code === 'auth_invalid_credentials') return S.otp_wrong;
    if (code === 'auth_otp_passcode_expired') return S.otp_expired;
    if (code === 'rate_limited') return S.too_many;
    if (code === 'auth_webauthn_failed') return S.error_passkey;
    if (code === 'auth_credential_exists') return S.passkey_exists;
    if (st === 404) return err.op === 'identify' ? S.no_account : S.error_expired;
    if (st === 400 && err.op === 'identify') return S.email_invalid;
    if (err && err.name === 'NotAllowedError') return S.error_passkey;
    if (err && err.name === 'InvalidStateError') return S.passkey_exists;
    if (err && err.name === 'TypeError') return S.error_network;
    return (err && err.serverMessage) || S.error_generic;
  }

  function api(op, body) {
    var payload = Object.assign(data.page === 'login' ? { ticket: data.ticket } : { token: data.token }, body || {});
    return fetch('/cis/hosted/api/' + op, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(payload)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (j && j.location) {
          window.location.assign(j.location);
          return new Promise(function () {});  // the page is leaving
        }
        if (!r.ok) {
          var e = new Error(j.message || S.error_generic);
          e.status = r.status; e.code = j.ts_error_code || ''; e.op = op; e.serverMessage = j.message;
          throw e;
        }
        return j;
      });
    });
  }

  function supported() { return !!(window.PublicKeyCredential && navigator.credentials); }

  function stopConditional() {
    if (conditional) { conditional.abort(); conditional = null; }
  }

  function assert(publicKey) {
    return navigator.credentials.get({ publicKey: requestOptions(publicKey) }).then(function (cred) {
      return api('passkey/finish', { credential: credentialJSON(cred) });
    });
  }

  function run(promise) {
    clearError();
    busy(true);
    return promise.then(function () { busy(false); }, function (err) { busy(false); showError(describe(err)); });
  }

  function show(step) {
    ['step-identify', 'step-otp', 'step-register'].forEach(function (id) { $(id).hidden = id !== step; });
  }

  function startConditional() {
    if (!supported() || typeof PublicKeyCredential.isConditionalMediationAvailable !== 'function') return;
    PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
      if (!ok) return;
      return api('passkey/start').then(function (j) {
        conditional = new AbortController();
        return navigator.credentials.get({
          publicKey: requestOptions(j.publicKey), mediation: 'conditional', signal: conditional.signal
        }).then(function (cred) {
          conditional = null;
          return run(api('passkey/finish', { credential: credentialJSON(cred) }));
        });
      });
    }).catch(function () { /* aborted or not available: the buttons remain */ });
  }

  function initLogin() {
    var identifier = $('identifier');
    if (!identifier.value) identifier.focus(); else $('continue').focus();
    $('identify-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      stopConditional();
      var value = identifier.value.trim();
      if (!value) { showError(S.email_invalid); identifier.focus(); return; }
      run(api('identify', { identifier: value }).then(function (j) {
        if (j.next === 'passkey') {
          if (!supported()) throw Object.assign(new Error(S.error_unsupported), { serverMessage: S.error_unsupported });
          return assert(j.publicKey);
        }
        $('otp-help').textContent = S.otp_help.replace('{email}', value);
        show('step-otp');
        setTimeout(function () { $('otp').focus(); }, 0);
      }));
    });
    $('passkey-button').addEventListener('click', function () {
      stopConditional();
      if (!supported()) { showError(S.error_unsupported); return; }
      run(api('passkey/start').then(function (j) { return assert(j.publicKey); }));
    });
    $('otp-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      run(api('otp/verify', { otp: $('otp').value.trim() }).then(function () {
        show('step-register');
        setTimeout(function () { $('register-button').focus(); }, 0);
      }));
    });
    $('otp-resend').addEventListener('click', function () {
      run(api('identify', { identifier: identifier.value.trim() }).then(function () { status(S.otp_resent); }));
    });
    $('register-button').addEventListener('click', function () {
      if (!supported()) { showError(S.error_unsupported); return; }
      run(api('register/start').then(function (j) {
        return navigator.credentials.create({ publicKey: creationOptions(j.publicKey) });
      }).then(function (cred) {
        return api('register/finish', { credential: credentialJSON(cred) });
      }));
    });
    $('cancel').addEventListener('click', function () { stopConditional(); run(api('cancel')); });
    startConditional();
  }

  function initRegistration() {
    $('register-button').focus();
    $('register-button').addEventListener('click', function () {
      if (!supported()) { showError(S.error_unsupported); return; }
      run(api('registration/start').then(function (j) {
        return navigator.credentials.create({ publicKey: creationOptions(j.publicKey) });
      }).then(function (cred) {
        return api('registration/finish', { credential: credentialJSON(cred) });
      }));
    });
    $('cancel').addEventListener('click', function () { run(api('registration/cancel')); });
  }

  if (data.page === 'login') initLogin(); else initRegistration();
})();
