#!/usr/bin/env python3
"""System test (b): crash durability. Three client threads run email-OTP logins, device-key registrations,
biometric logins and refresh-token rotations while sigild is killed with SIGKILL at random moments
(SIGIL_CRASH_CYCLES, default 5) and restarted on the same data dir and port. After every restart:

- every key whose registration was acknowledged (2xx) before the kill logs in (start + authenticate);
- every session whose tokens were acknowledged is alive (its access token passes a harmless authenticated
  call: deleting a key that does not exist -> 404, not 401), and its latest acknowledged refresh token
  refreshes exactly once (200, then invalid_grant);
- nothing half-written is visible: a key registration that was in flight at the kill is either fully there
  (it logs in, and registering it again is a 409) or absent (registering it again is a 200) — never
  "already registered" but unusable; a refresh in flight at the kill left the old token either valid or
  rotated (200 or invalid_grant), nothing else;
- no answer is a 5xx.

At the end the database passes PRAGMA integrity_check and holds exactly the acknowledged keys plus those
in-flight ones that the checks found present.

usage: crash_test.py SIGILD
"""

import os
import random
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sigil_sys import check_clean_exit, EcKey, Results, Server, Sigil, main_args, unique_email  # noqa: E402

CYCLES = int(os.environ.get("SIGIL_CRASH_CYCLES", "5"))
SEED = int(os.environ.get("SIGIL_CRASH_SEED", str(random.randrange(1 << 30))))
WORKERS = 3


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.keys = []             # acknowledged: dict(uid, kid, key, verified)
        self.uncertain_keys = []   # in flight at a kill: dict(uid, at, kid, key)
        self.sessions = []         # acknowledged, to verify once: dict(at, rt, what)
        self.uncertain_rts = []    # refresh in flight at a kill: the presented token
        self.pool = []             # users for key registration: dict(uid, at, n)
        self.five_xx = []
        self.ops = {"otp login": 0, "key registration": 0, "biometric login": 0, "refresh": 0}
        self.in_flight_lost = 0


class Control:
    def __init__(self):
        self.up = threading.Event()
        self.stop = False
        self.parked = 0
        self.cond = threading.Condition()


def note_5xx(state, what, r):
    if r.status >= 500:
        with state.lock:
            state.five_xx.append(f"{what}: {r!r}")


def worker(kind, api, state, ctl, rnd):
    c = api.client()
    while not ctl.stop:
        if not ctl.up.is_set():
            with ctl.cond:
                ctl.parked += 1
                ctl.cond.notify_all()
            ctl.up.wait()
            with ctl.cond:
                ctl.parked -= 1
            c.close()  # the old connection died with the server
            continue
        try:
            if kind == "otp":
                op_otp(api, c, state)
            elif kind == "keys":
                op_key(api, c, state, rnd)
            else:
                op_login_refresh(api, c, state, rnd)
        except RuntimeError:
            pass  # a step failed because the server went away; the op is abandoned
        except Exception as e:  # noqa: BLE001
            print(f"# worker {kind}: {type(e).__name__}: {e}", flush=True)
            time.sleep(0.05)


def op_otp(api, c, state):
    steps = []
    try:
        out = api.otp_login(unique_email("crash"), c, steps)
    except RuntimeError:
        for _, st in steps:
            if st >= 500:
                with state.lock:
                    state.five_xx.append(f"otp login step {steps}")
        raise
    with state.lock:
        state.ops["otp login"] += 1
        state.sessions.append({"at": out["access_token"], "rt": out["refresh_token"], "what": "otp login"})


def op_key(api, c, state, rnd):
    with state.lock:
        candidates = [u for u in state.pool if u["n"] < 9]
    if not candidates:
        out = api.otp_login(unique_email("crash-keys"), c)
        with state.lock:
            state.pool.append({"uid": out["sub"], "at": out["access_token"], "n": 0})
        return
    user = rnd.choice(candidates)
    key = EcKey()
    kid = f"crash-{os.urandom(6).hex()}"
    user["n"] += 1
    r = api.register_key(user["at"], key.spki_der(), kid, c, retry=False)
    note_5xx(state, "key registration", r)
    with state.lock:
        if r.status == 200:
            state.ops["key registration"] += 1
            state.keys.append({"uid": user["uid"], "kid": kid, "key": key, "verified": False})
        elif r.status == 0:
            state.in_flight_lost += 1
            state.uncertain_keys.append({"uid": user["uid"], "at": user["at"], "kid": kid, "key": key})


def op_login_refresh(api, c, state, rnd):
    with state.lock:
        keys = list(state.keys)
        sessions = [s for s in state.sessions if not s.get("busy")]
        target = rnd.choice(sessions) if sessions and rnd.random() < 0.5 else None
        if target is not None:
            target["busy"] = True
    if target is not None:
        r = api.refresh(target["rt"], c, retry=False)
        note_5xx(state, "refresh", r)
        with state.lock:
            target["busy"] = False
            if r.status == 200:
                state.ops["refresh"] += 1
                j = r.json()
                target["rt"] = j["refresh_token"]
                target["at"] = j["access_token"]
                target["what"] = target["what"] + " + refresh"
            elif r.status == 0:
                state.in_flight_lost += 1
                state.sessions.remove(target)
                state.uncertain_rts.append(target["rt"])
        return
    if not keys:
        time.sleep(0.02)
        return
    k = rnd.choice(keys)
    r = api.bio_login(k["uid"], k["kid"], k["key"], c, retry=False)
    note_5xx(state, "biometric login", r)
    with state.lock:
        if r.status == 200:
            state.ops["biometric login"] += 1
            j = r.json()
            state.sessions.append({"at": j["access_token"], "rt": j["refresh_token"], "what": "biometric login"})
        elif r.status == 0:
            state.in_flight_lost += 1


def verify(api, state, res, cycle):
    c = api.client()
    bad = []
    with state.lock:
        keys = [k for k in state.keys if not k["verified"]]
        uncertain = list(state.uncertain_keys)
        state.uncertain_keys.clear()
        sessions = list(state.sessions)
        state.sessions.clear()
        rts = list(state.uncertain_rts)
        state.uncertain_rts.clear()
        pool = list(state.pool)
    # Sessions first (the refresh reuse at the end revokes them).
    for s in sessions:
        st = api.session_alive(s["at"], c)
        if st != 404:
            bad.append(f"acknowledged session ({s['what']}) lost: access token -> {st}")
    for u in pool:
        st = api.session_alive(u["at"], c)
        if st != 404:
            bad.append(f"acknowledged session (otp login of a key-registering user) lost: access token -> {st}")
    res.check(not any("session" in b for b in bad),
              f"cycle {cycle}: {len(sessions) + len(pool)} acknowledged sessions alive after the restart",
              "; ".join(b for b in bad if "session" in b)[:600])
    # Keys.
    key_bad = []
    for k in keys:
        r = api.bio_login(k["uid"], k["kid"], k["key"], c)
        if r.status == 200:
            k["verified"] = True
        else:
            key_bad.append(f"{k['kid']}: {r!r}")
    res.check(not key_bad, f"cycle {cycle}: {len(keys)} acknowledged keys log in after the restart", "; ".join(key_bad)[:600])
    # Keys in flight at the kill: all or nothing.
    half = []
    present = absent = 0
    for k in uncertain:
        r = api.bio_login(k["uid"], k["kid"], k["key"], c)
        if r.status == 200:
            present += 1
            r2 = api.register_key(k["at"], k["key"].spki_der(), k["kid"], c)
            if r2.status != 409:
                half.append(f"{k['kid']} logs in but registering it again gives {r2!r}")
            with state.lock:
                state.keys.append({"uid": k["uid"], "kid": k["kid"], "key": k["key"], "verified": True})
            continue
        r2 = api.register_key(k["at"], k["key"].spki_der(), k["kid"], c)
        if r2.status == 200:
            absent += 1
            with state.lock:
                state.keys.append({"uid": k["uid"], "kid": k["kid"], "key": k["key"], "verified": False})
        else:
            half.append(f"{k['kid']}: login {r.status} {r.body[:80]!r} but registering it again -> {r2!r}")
    res.check(not half, f"cycle {cycle}: {len(uncertain)} key registrations in flight at the kill are all-or-nothing "
              f"({present} present, {absent} absent)", "; ".join(half)[:600])
    # Refresh tokens: exactly once.
    once_bad = []
    for s in sessions:
        r1 = api.refresh(s["rt"], c)
        r2 = api.refresh(s["rt"], c)
        if r1.status != 200 or not (r2.status == 400 and r2.get("error") == "invalid_grant"):
            once_bad.append(f"{s['what']}: first {r1!r}, second {r2!r}")
    res.check(not once_bad, f"cycle {cycle}: {len(sessions)} acknowledged refresh tokens refresh exactly once",
              "; ".join(once_bad)[:600])
    rt_bad = []
    for rt in rts:
        r = api.refresh(rt, c)
        if not (r.status == 200 or (r.status == 400 and r.get("error") == "invalid_grant")):
            rt_bad.append(repr(r))
    res.check(not rt_bad, f"cycle {cycle}: {len(rts)} refresh tokens in flight at the kill are valid or rotated",
              "; ".join(rt_bad)[:600])
    c.close()


def main():
    sigild = main_args("crash_test.py SIGILD")
    res = Results("crash")
    rnd = random.Random(SEED)
    res.note(f"seed {SEED} (SIGIL_CRASH_SEED), {CYCLES} kill cycles")
    server = Server(sigild, name="crash")
    state = State()
    ctl = Control()
    threads = []
    try:
        if not server.start():
            res.fail("setup: sigild starts")
            return res.finish(server)
        api = Sigil(server)
        c = api.client()
        api.get_client_token(c)
        # Seed: two users with one key each, so that logins can start at once.
        for i in range(2):
            out = api.otp_login(unique_email("crash-seed"), c)
            state.pool.append({"uid": out["sub"], "at": out["access_token"], "n": 1})
            key = EcKey()
            kid = f"seed-{i}-{os.urandom(4).hex()}"
            r = api.register_key(out["access_token"], key.spki_der(), kid, c)
            if r.status == 200:
                state.keys.append({"uid": out["sub"], "kid": kid, "key": key, "verified": False})
        ctl.up.set()
        for i, kind in enumerate(["otp", "keys", "logins"]):
            t = threading.Thread(target=worker, args=(kind, api, state, ctl, random.Random(SEED + i + 1)), daemon=True)
            t.start()
            threads.append(t)
        for cycle in range(1, CYCLES + 1):
            time.sleep(rnd.uniform(0.4, 2.0))
            with state.lock:
                ops = dict(state.ops)
            ctl.up.clear()
            server.kill9()
            with ctl.cond:
                parked = ctl.cond.wait_for(lambda: ctl.parked == WORKERS, timeout=60)
            if not parked:
                res.fail(f"cycle {cycle}: client threads stop after the kill")
                break
            t0 = time.monotonic()
            started = server.start()
            res.check(started, f"cycle {cycle}: sigild restarts on the same data dir after kill -9 "
                               f"({time.monotonic() - t0:.1f} s); acknowledged so far {ops}")
            if not started:
                break
            verify(api, state, res, cycle)
            ctl.up.set()
        time.sleep(1.0)  # some acknowledged work after the last restart, checked below without a kill
        ctl.stop = True
        ctl.up.set()
        for t in threads:
            t.join(timeout=30)
        with state.lock:
            res.note(f"acknowledged operations: {state.ops}; in flight at a kill: {state.in_flight_lost}")
            res.check(not state.five_xx, "no 5xx answer during the run", "; ".join(state.five_xx)[:600])
        # A last verification of what was acknowledged after the last restart, then the file itself.
        verify(api, state, res, "final")
        server.stop()
        db = sqlite3.connect(f"file:{os.path.join(server.data, 'sigil.db')}?mode=ro", uri=True)
        check = db.execute("PRAGMA integrity_check").fetchone()[0]
        res.check(check == "ok", "sigil.db passes PRAGMA integrity_check", check)
        stored = {row[0] for row in db.execute("SELECT key_id FROM mobile_keys")}
        db.close()
        with state.lock:
            known = {k["kid"] for k in state.keys}
        res.check(known <= stored, f"all {len(known)} acknowledged keys are in the database",
                  f"missing {sorted(known - stored)[:5]}")
        res.check(stored <= known, "no key in the database that was neither acknowledged nor found by the checks",
                  f"unexpected {sorted(stored - known)[:5]}")
        check_clean_exit(res, server)
    finally:
        ctl.stop = True
        ctl.up.set()
        server.stop()
    status = res.finish(server)
    server.cleanup()
    return status


if __name__ == "__main__":
    sys.exit(main())
