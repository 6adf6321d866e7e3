#!/usr/bin/env python3
"""System test (d): exhaustion. sigild runs with --challenge-capacity 1000. A flood of mobile-biometrics
start calls fills the challenge store and must then be answered 503 {"message":"Service unavailable",
"error_code":503} with Retry-After; resident memory (VmRSS) after a second flood of the same size stays
within ±20% of the value after the first; ceremonies started before the flood (mobile challenges and WebAuthn
authentication sessions) still complete afterwards. WebAuthn authenticate/start is flooded too, up to 3x the
capacity, and must reach 503 as well (its ceremony map should be bounded by the same setting).

Under AddressSanitizer the freed-memory quarantine would make RSS grow with every request, so sigild runs
here with ASAN_OPTIONS quarantine_size_mb=8 (memory errors are still detected; use-after-free reports need
the freed block to still be in the quarantine).

usage: exhaustion_test.py SIGILD
"""

import collections
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sigil_sys import (check_clean_exit, Client, EcKey, Results, Server, Sigil, asan_low_quarantine, main_args, unique_email,  # noqa: E402
                       webauthn_finish, webauthn_register, webauthn_start)

CAPACITY = 1000
FLOOD = 3 * CAPACITY
THREADS = 4


def flood(port, n, send):
    """n requests over THREADS connections; returns (Counter of statuses, first bad 503 or None)."""
    counts = collections.Counter()
    bad = []
    lock = threading.Lock()

    def run(k):
        c = Client(port)
        local = collections.Counter()
        for _ in range(k):
            r = send(c)
            local[r.status] += 1
            if r.status == 503 and (r.json() != {"message": "Service unavailable", "error_code": 503} or
                                    not r.headers.get("retry-after")):
                with lock:
                    bad.append(r)
        c.close()
        with lock:
            counts.update(local)

    threads = [threading.Thread(target=run, args=(n // THREADS,)) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts, (bad[0] if bad else None)


def main():
    sigild = main_args("exhaustion_test.py SIGILD")
    res = Results("exhaustion")
    server = Server(sigild, extra_args=["--challenge-capacity", str(CAPACITY)], name="exhaustion")
    try:
        with asan_low_quarantine():
            started = server.start()
        if not started:
            res.fail("setup: sigild starts")
            return res.finish(server)
        api = Sigil(server)
        c = api.client()
        api.get_client_token(c)
        user = api.otp_login(unique_email("exhaust"), c)
        uid, ut = user["sub"], user["access_token"]
        key = EcKey()
        res.check(api.register_key(ut, key.spki_der(), "exhaust-key", c).status == 200, "setup: register a key")
        auth, r = webauthn_register(api, c, "exhaust-wa", "exhaust-ext")
        res.check(r.status == 200, "setup: register a WebAuthn credential", repr(r))

        # Ceremonies started before the flood.
        early_mobile = [api.start(uid, c).json()["challenge"] for _ in range(5)]
        early_wa = [webauthn_start(api, c, "exhaust-wa").json() for _ in range(3)]

        rss0 = server.rss_kb()
        counts1, bad = flood(server.port, FLOOD, lambda cl: api.start(uid, cl))
        rss1 = server.rss_kb()
        res.note(f"mobile start flood 1: {FLOOD} requests -> {dict(counts1)}; VmRSS {rss0} -> {rss1} kB")
        ok200 = counts1.get(200, 0)
        res.check(counts1.get(503, 0) > 0 and set(counts1) <= {200, 503},
                  "mobile-biometrics start flood reaches 503 (only 200 and 503 answers)", str(dict(counts1)))
        res.check(ok200 <= CAPACITY, f"at most --challenge-capacity ({CAPACITY}) challenges outstanding",
                  f"{ok200 + len(early_mobile)} issued")
        res.check(bad is None, "every 503 is {\"message\":\"Service unavailable\",\"error_code\":503} with Retry-After",
                  repr(bad))
        counts2, bad = flood(server.port, FLOOD, lambda cl: api.start(uid, cl))
        rss2 = server.rss_kb()
        res.note(f"mobile start flood 2: {FLOOD} requests -> {dict(counts2)}; VmRSS {rss1} -> {rss2} kB")
        res.check(counts2.get(503, 0) == FLOOD, "a second flood is answered 503 throughout", str(dict(counts2)))
        res.check(abs(rss2 - rss1) <= 0.2 * rss1, "VmRSS after the second flood within ±20% of after the first",
                  f"{rss1} -> {rss2} kB")

        # WebAuthn authenticate/start: same flood, up to 3x the capacity.
        rss_w0 = server.rss_kb()
        counts_w, bad = flood(server.port, FLOOD, lambda cl: webauthn_start(api, cl, "exhaust-wa"))
        rss_w1 = server.rss_kb()
        res.note(f"WebAuthn authenticate/start flood: {FLOOD} requests -> {dict(counts_w)}; VmRSS {rss_w0} -> {rss_w1} kB "
                 f"({(rss_w1 - rss_w0) * 1024 // max(1, counts_w.get(200, 0))} bytes per accepted ceremony)")
        res.check(set(counts_w) <= {200, 503}, "WebAuthn start flood answers only 200 or 503", str(dict(counts_w)))
        res.check(counts_w.get(503, 0) > 0, "WebAuthn authenticate/start flood reaches 503 within 3x the capacity",
                  f"{dict(counts_w)}")
        res.check(bad is None, "every WebAuthn 503 has the API body and Retry-After", repr(bad))

        # The early ceremonies complete.
        done = 0
        for ch in early_mobile:
            r = api.authenticate(uid, "exhaust-key", ch, key.sign(ch), c)
            done += r.status == 200
        res.check(done == len(early_mobile), f"{len(early_mobile)} mobile challenges started before the flood complete",
                  f"{done} did")
        done = 0
        for st in early_wa:
            r = webauthn_finish(api, c, auth, st)
            done += r.status == 200
        res.check(done == len(early_wa), f"{len(early_wa)} WebAuthn ceremonies started before the flood complete",
                  f"{done} did")
        res.check(server.alive() and server.healthz() == 200, "sigild alive, /healthz 200")
        check_clean_exit(res, server)
    finally:
        server.stop()
    status = res.finish(server)
    server.cleanup()
    return status


if __name__ == "__main__":
    sys.exit(main())
