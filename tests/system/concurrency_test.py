#!/usr/bin/env python3
"""System test (e): concurrency. 8 parallel redemptions (released together by a barrier, each on its own
connection) of one mobile-biometrics challenge with the same signature, of one WebAuthn assertion, of one
authorization code on /oidc/token and on /cis/v1/token, and of one refresh token: exactly one succeeds
each time. For the refresh token the others fail with invalid_grant and, per the reuse rule (API.md 1.5),
the family is then revoked (the winner's new refresh token is refused too); for codes, a second use
revokes what the code produced (API.md 1.1). SIGIL_CONCURRENCY_ROUNDS (default 5) rounds of each.

usage: concurrency_test.py SIGILD
"""

import collections
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sigil_sys import (check_clean_exit, Client, EcKey, Results, Server, Sigil, main_args, unique_email, webauthn_register,  # noqa: E402
                       webauthn_start)

PARALLEL = 8
ROUNDS = int(os.environ.get("SIGIL_CONCURRENCY_ROUNDS", "5"))


def race(port, send):
    """Runs send(client) on PARALLEL threads released together; returns the list of Resp."""
    clients = [Client(port) for _ in range(PARALLEL)]
    for c in clients:
        c.request("GET", "/healthz")  # connect before the barrier
    barrier = threading.Barrier(PARALLEL)
    out = [None] * PARALLEL

    def run(i):
        barrier.wait()
        out[i] = send(clients[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(PARALLEL)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in clients:
        c.close()
    return out


def summary(resps):
    return dict(collections.Counter(r.status for r in resps))


def main():
    sigild = main_args("concurrency_test.py SIGILD")
    res = Results("concurrency")
    server = Server(sigild, name="concurrency")
    try:
        if not server.start():
            res.fail("setup: sigild starts")
            return res.finish(server)
        api = Sigil(server)
        c = api.client()
        api.get_client_token(c)
        user = api.otp_login(unique_email("race"), c)
        uid, ut = user["sub"], user["access_token"]
        key = EcKey()
        res.check(api.register_key(ut, key.spki_der(), "race-key", c).status == 200, "setup: register a device key")
        auth, r = webauthn_register(api, c, "race-wa", "race-ext")
        res.check(r.status == 200, "setup: register a WebAuthn credential", repr(r))

        for rnd in range(1, ROUNDS + 1):
            # Mobile challenge: same challenge, same signature.
            challenge = api.start(uid, c).json()["challenge"]
            sig = key.sign(challenge)
            out = race(server.port, lambda cl: api.authenticate(uid, "race-key", challenge, sig, cl, retry=False))
            wins = sum(r.status == 200 for r in out)
            others_ok = all(r.status == 401 and r.get("ts_error_code") == "auth_invalid_signature"
                            for r in out if r.status != 200)
            res.check(wins == 1 and others_ok, f"round {rnd}: one mobile challenge redeemed 8x in parallel -> exactly one 200",
                      f"statuses {summary(out)}")

            # WebAuthn: one assertion (same encoded result) 8x.
            st = webauthn_start(api, c, "race-wa").json()
            result = auth.get(st["webauthn_session_id"], st["credential_request_options"])
            out = race(server.port, lambda cl: cl.request("POST", "/cis/v1/auth/webauthn/authenticate",
                                                          token=api.client_token,
                                                          json_body={"webauthn_encoded_result": result}, retry=False))
            wins = sum(r.status == 200 for r in out)
            res.check(wins == 1 and all(r.status == 401 for r in out if r.status != 200),
                      f"round {rnd}: one WebAuthn assertion redeemed 8x in parallel -> exactly one 200",
                      f"statuses {summary(out)}")

            # Authorization code on /oidc/token.
            code = api.otp_code(unique_email("race-code"), c)
            form = {"grant_type": "authorization_code", "code": code, "redirect_uri": api.redirect_uri,
                    "client_id": api.client_id, "client_secret": api.client_secret}
            out = race(server.port, lambda cl: cl.request("POST", "/oidc/token", form=form, retry=False))
            winners = [r for r in out if r.status == 200]
            losers_ok = all(r.status == 400 and r.get("error") == "invalid_grant" for r in out if r.status != 200)
            res.check(len(winners) <= 1 and losers_ok,
                      f"round {rnd}: one authorization code redeemed 8x in parallel on /oidc/token -> at most one 200, "
                      "others invalid_grant", f"statuses {summary(out)}")
            res.check(len(winners) == 1,
                      f"round {rnd}: code race on /oidc/token: exactly one 200",
                      f"statuses {summary(out)}; {[r.body[:90] for r in out if r.status != 200][:1]}")
            if len(winners) == 1:
                w = winners[0].json()
                res.check(api.session_alive(w["access_token"], c) == 401,
                          f"round {rnd}: code reuse revoked the winner's session (access token -> 401)")
                r = api.refresh(w["refresh_token"], c)
                res.check(r.status == 400 and r.get("error") == "invalid_grant",
                          f"round {rnd}: code reuse revoked the winner's refresh token", repr(r))

            # Authorization code on /cis/v1/token (API.md 4.2).
            code = api.otp_code(unique_email("race-v1"), c)
            body = {"code": code, "client_id": api.client_id, "client_secret": api.client_secret}
            out = race(server.port, lambda cl: cl.request("POST", "/cis/v1/token", json_body=body, retry=False))
            wins = sum(r.status == 200 for r in out)
            res.check(wins <= 1 and all(r.status == 400 for r in out if r.status != 200),
                      f"round {rnd}: one authorization code redeemed 8x in parallel on /cis/v1/token -> at most one 200, "
                      "others 400", f"statuses {summary(out)}")
            res.check(wins == 1, f"round {rnd}: code race on /cis/v1/token: exactly one 200", f"statuses {summary(out)}")

            # Refresh token.
            login = api.bio_login(uid, "race-key", key, c)
            rt = login.json()["refresh_token"]
            out = race(server.port, lambda cl: api.refresh(rt, cl, retry=False))
            winners = [r for r in out if r.status == 200]
            losers_ok = all(r.status == 400 and r.get("error") == "invalid_grant" for r in out if r.status != 200)
            res.check(len(winners) == 1 and losers_ok,
                      f"round {rnd}: one refresh token redeemed 8x in parallel -> exactly one 200, others invalid_grant",
                      f"statuses {summary(out)}")
            if len(winners) == 1:
                r = api.refresh(winners[0].json()["refresh_token"], c)
                res.check(r.status == 400 and r.get("error") == "invalid_grant",
                          f"round {rnd}: after the reuse the family is revoked (the winner's new refresh token is refused)",
                          repr(r))
                res.check(api.session_alive(winners[0].json()["access_token"], c) == 401,
                          f"round {rnd}: after the reuse the session is revoked (the winner's access token -> 401)")
        res.check(server.alive() and server.healthz() == 200, "sigild alive after the races")
        check_clean_exit(res, server)
    finally:
        server.stop()
    status = res.finish(server)
    server.cleanup()
    return status


if __name__ == "__main__":
    sys.exit(main())
