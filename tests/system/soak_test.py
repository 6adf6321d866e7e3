#!/usr/bin/env python3
"""System test (f): soak. First measures the highest rate of mobile-biometric logins (start + sign +
authenticate) that THREADS client threads reach in 5 s, then runs logins at a fixed 70% of that rate for
SIGIL_SOAK_SECONDS (default 60; 600 for a local long run) with zero errors allowed, and checks that resident
memory stays flat: VmRSS at the end within +25% of the value after warm-up (the first 20% of the run, at
most 30 s). Prints the RSS series and latency percentiles. A test asserts, a benchmark measures: the rate
is only the load level, never a pass/fail threshold.

Under AddressSanitizer sigild runs with quarantine_size_mb=8 (see exhaustion_test.py).

usage: soak_test.py SIGILD
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sigil_sys import check_clean_exit, EcKey, Results, Server, Sigil, asan_low_quarantine, main_args, unique_email  # noqa: E402

SECONDS = float(os.environ.get("SIGIL_SOAK_SECONDS", "60"))
THREADS = int(os.environ.get("SIGIL_SOAK_THREADS", "4"))
USERS = 8


def main():
    sigild = main_args("soak_test.py SIGILD")
    res = Results("soak")
    server = Server(sigild, name="soak")
    try:
        with asan_low_quarantine():
            started = server.start()
        if not started:
            res.fail("setup: sigild starts")
            return res.finish(server)
        api = Sigil(server)
        c = api.client()
        api.get_client_token(c)
        users = []
        for i in range(USERS):
            u = api.otp_login(unique_email("soak"), c)
            key = EcKey()
            kid = f"soak-{i}"
            if api.register_key(u["access_token"], key.spki_der(), kid, c).status == 200:
                users.append((u["sub"], kid, key))
        res.check(len(users) == USERS, f"setup: {USERS} users with a device key")

        # 1. Maximum rate, 5 s.
        done = [0] * THREADS
        errors = []
        stop = threading.Event()

        def spin(i):
            cl = api.client()
            n = 0
            while not stop.is_set():
                uid, kid, key = users[(i + n) % len(users)]
                r = api.bio_login(uid, kid, key, cl)
                if r.status != 200:
                    errors.append(repr(r))
                n += 1
                done[i] = n
            cl.close()

        threads = [threading.Thread(target=spin, args=(i,)) for i in range(THREADS)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(5.0)
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        max_rate = sum(done) / elapsed
        rate = 0.7 * max_rate
        res.note(f"max rate with {THREADS} client threads: {max_rate:.0f} logins/s over {elapsed:.1f} s "
                 f"({sum(done)} logins); soak at {rate:.0f}/s for {SECONDS:.0f} s")
        res.check(not errors and max_rate > 0, "no error while measuring the maximum rate", "; ".join(errors[:3]))

        # 2. Fixed rate for SECONDS.
        interval = 1.0 / rate
        lock = threading.Lock()
        slot = [0]
        latencies = []
        late = [0]
        soak_errors = []
        start = time.monotonic() + 0.5
        end = start + SECONDS
        warmup_at = start + min(30.0, 0.2 * SECONDS)
        rss = {"warmup": None}
        series = []

        def paced(i):
            cl = api.client()
            while True:
                with lock:
                    k = slot[0]
                    slot[0] += 1
                due = start + k * interval
                if due >= end:
                    break
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                elif now - due > 1.0:
                    with lock:
                        late[0] += 1
                uid, kid, key = users[k % len(users)]
                t = time.monotonic()
                r = api.bio_login(uid, kid, key, cl)
                with lock:
                    latencies.append(time.monotonic() - t)
                    if r.status != 200:
                        soak_errors.append(f"login {k}: {r!r}")
            cl.close()

        def sampler():
            while time.monotonic() < end:
                now = time.monotonic()
                if rss["warmup"] is None and now >= warmup_at:
                    rss["warmup"] = server.rss_kb()
                series.append((round(now - start), server.rss_kb()))
                time.sleep(min(5.0, max(0.1, end - time.monotonic())))

        threads = [threading.Thread(target=paced, args=(i,)) for i in range(THREADS)]
        sampler_t = threading.Thread(target=sampler)
        for t in threads:
            t.start()
        sampler_t.start()
        for t in threads:
            t.join()
        sampler_t.join()
        rss_end = server.rss_kb()
        n = len(latencies)
        lat = sorted(latencies)

        def pct(p):
            return lat[min(n - 1, int(p * n))] * 1000 if n else 0.0

        res.note(f"{n} logins in {SECONDS:.0f} s ({n / SECONDS:.0f}/s, target {rate:.0f}/s); {late[0]} started more than "
                 f"1 s late; latency p50 {pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, max {pct(1.0):.1f} ms")
        res.note("VmRSS series (s: kB): " + ", ".join(f"{s}: {v}" for s, v in series))
        res.check(not soak_errors, f"zero errors in {n} logins at a fixed rate", "; ".join(soak_errors[:3]))
        warm = rss["warmup"] or (series[0][1] if series else 0)
        res.check(warm > 0 and rss_end <= 1.25 * warm,
                  f"VmRSS at the end ({rss_end} kB) within +25% of after warm-up ({warm} kB)",
                  f"{warm} -> {rss_end} kB (+{(rss_end - warm) * 100 // max(1, warm)}%)")
        res.check(server.alive() and server.healthz() == 200, "sigild alive, /healthz 200")
        check_clean_exit(res, server)
    finally:
        server.stop()
    status = res.finish(server)
    server.cleanup()
    return status


if __name__ == "__main__":
    sys.exit(main())
