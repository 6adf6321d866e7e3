#!/usr/bin/env python3
"""System test (c): storage failure. The database becomes unwritable while sigild runs; every write must
then answer 503 {"message":"Service unavailable","error_code":503} (the RFC 6749 form
{"error":"temporarily_unavailable"} on /oidc/token) with Retry-After, and issue no token; reads keep
working; once the cause goes away, the service recovers without a restart, and what was refused left no
trace (a refused key registration can be made again, a refused refresh did not rotate the token).

How the database is made unwritable (root ignores file modes), first that works here, or
SIGIL_STORAGE_FAULT=chattr|tmpfs|fsize:
  chattr  `chattr +i` on sigil.db, sigil.db-wal, sigil.db-shm and the data dir: writes through the open
          descriptors fail with EPERM (Linux >= 5.4 on ext4/xfs/btrfs). Needs CAP_LINUX_IMMUTABLE and a
          file system with the flag (not tmpfs/overlayfs); probed on a scratch file first.
  tmpfs   the data dir on a small tmpfs mounted for the test (needs CAP_SYS_ADMIN), then filled with a
          filler file: the WAL cannot grow (SQLITE_FULL). Recovery: the filler is removed.
  fsize   RLIMIT_FSIZE of the running sigild lowered with prlimit(2) to 1 byte: any write past offset 1
          fails (EFBIG), and raises SIGXFSZ, whose default action kills the process — sigild must survive
          it. Works without privileges; sigild logs through a pipe so that only its data files are hit.

usage: storage_failure_test.py SIGILD
"""

import errno
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sigil_sys import check_clean_exit, EcKey, Results, Server, Sigil, main_args, unique_email, webauthn_register  # noqa: E402

API_503 = {"message": "Service unavailable", "error_code": 503}


def probe_chattr(directory):
    if shutil.which("chattr") is None:
        return False, "chattr not installed"
    path = os.path.join(directory, "chattr-probe")
    with open(path, "wb") as f:
        f.write(b"x")
    try:
        r = subprocess.run(["chattr", "+i", path], capture_output=True, text=True)
        if r.returncode != 0:
            return False, f"chattr +i failed: {r.stderr.strip()}"
        try:
            with open(path, "ab") as f:
                f.write(b"y")
            return False, "an immutable file was still writable"
        except OSError as e:
            return e.errno in (errno.EPERM, errno.EACCES), f"write to an immutable file: {e.strerror}"
    finally:
        subprocess.run(["chattr", "-i", path], capture_output=True)
        os.unlink(path)


class Fault:
    """One way to make the data files unwritable: set(), clear(), cleanup()."""

    name = "?"

    def prepare(self):  # before sigild starts; returns the data dir to use (or None for a default one)
        return None

    def set(self, server):
        raise NotImplementedError

    def clear(self, server):
        raise NotImplementedError

    def cleanup(self):
        pass


class ChattrFault(Fault):
    name = "chattr"

    def targets(self, server):
        files = [os.path.join(server.data, n) for n in ("sigil.db", "sigil.db-wal", "sigil.db-shm")]
        return [f for f in files if os.path.exists(f)] + [server.data]

    def set(self, server):
        self.server = server
        subprocess.run(["chattr", "+i"] + self.targets(server), check=True, capture_output=True)

    def clear(self, server):
        subprocess.run(["chattr", "-i"] + self.targets(server), check=True, capture_output=True)

    def cleanup(self):
        if getattr(self, "server", None) is not None:
            subprocess.run(["chattr", "-i"] + self.targets(self.server), capture_output=True)


class TmpfsFault(Fault):
    name = "tmpfs"

    def __init__(self):
        self.mnt = tempfile.mkdtemp(prefix="sigil-storage-mnt.")
        self.mounted = False
        self.filler = os.path.join(self.mnt, "filler")

    def try_mount(self):
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", self.mnt],
                           capture_output=True, text=True)
        self.mounted = r.returncode == 0
        return self.mounted, r.stderr.strip()

    def prepare(self):
        data = os.path.join(self.mnt, "data")
        os.mkdir(data)
        return data

    def set(self, server):
        chunk = b"\0" * (1 << 16)
        with open(self.filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
            try:
                while True:
                    f.write(b"\0")
            except OSError:
                pass

    def clear(self, server):
        os.unlink(self.filler)

    def cleanup(self):
        if self.mounted:
            subprocess.run(["umount", "-l", self.mnt], capture_output=True)
        shutil.rmtree(self.mnt, ignore_errors=True)


class FsizeFault(Fault):
    name = "fsize"

    def set(self, server):
        self.pid = server.pid()
        self.old = resource.prlimit(self.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(self.pid, resource.RLIMIT_FSIZE, (1, self.old[1]))

    def clear(self, server):
        if server.alive():
            resource.prlimit(self.pid, resource.RLIMIT_FSIZE, self.old)


def choose_fault(res):
    forced = os.environ.get("SIGIL_STORAGE_FAULT", "")
    tmp = tempfile.gettempdir()
    if forced in ("", "chattr"):
        ok, why = probe_chattr(tmp)
        res.note(f"chattr +i on {tmp}: {'usable' if ok else 'not usable'} ({why})")
        if ok:
            return ChattrFault()
    if forced in ("", "tmpfs"):
        f = TmpfsFault()
        ok, why = f.try_mount()
        res.note(f"small tmpfs: {'mounted' if ok else 'cannot mount: ' + why}")
        if ok:
            return f
        f.cleanup()
    return FsizeFault()


def is_503(r, oauth=False):
    if r.status != 503 or not r.headers.get("retry-after"):
        return False
    j = r.json()
    if oauth and isinstance(j, dict) and j.get("error") == "temporarily_unavailable":
        return True
    return j == API_503


def main():
    sigild = main_args("storage_failure_test.py SIGILD")
    res = Results("storage_failure")
    fault = choose_fault(res)
    res.note(f"storage fault: {fault.name}")
    server = Server(sigild, data_dir=fault.prepare(), name="storage", log_via_pipe=(fault.name == "fsize"))
    p = f"{fault.name}: "
    try:
        if not server.start():
            res.fail("setup: sigild starts")
            return res.finish(server)
        api = Sigil(server)
        c = api.client()
        api.get_client_token(c)
        user = api.otp_login(unique_email("storage"), c)
        uid, ut, rt = user["sub"], user["access_token"], user["refresh_token"]
        key = EcKey()
        res.check(api.register_key(ut, key.spki_der(), "storage-key", c).status == 200, "setup: register a key")
        res.check(api.bio_login(uid, "storage-key", key, c).status == 200, "setup: biometric login")
        email2 = unique_email("storage-late")
        code = api.otp_code(email2, c)  # exchanged while the store fails

        fault.set(server)
        res.note("the database is now unwritable")
        time.sleep(0.2)

        # Writes.
        key2 = EcKey()
        r = api.register_key(ut, key2.spki_der(), "storage-key-2", c)
        time.sleep(0.1)
        if not server.alive():
            rc = server.proc.returncode
            res.fail(p + "sigild is not killed by SIGXFSZ" if rc == -25 else p + "sigild survives the first failed write",
                     f"sigild exited with {rc} on the first write")
            return res.finish(server)
        res.check(is_503(r), p + "key registration -> 503 Service unavailable with Retry-After", repr(r))
        r = api.bio_login(uid, "storage-key", key, c)
        res.check(is_503(r) and b"access_token" not in r.body,
                  p + "biometric login (session + refresh token commit) -> 503, no token", repr(r))
        r = api.refresh(rt, c)
        res.check(is_503(r, oauth=True) and b"access_token" not in r.body,
                  p + "refresh_token grant -> 503 with Retry-After, no token", repr(r))
        r = c.request("POST", "/oidc/token", form={"grant_type": "authorization_code", "code": code,
                                                   "redirect_uri": api.redirect_uri, "client_id": api.client_id,
                                                   "client_secret": api.client_secret})
        res.check(is_503(r, oauth=True) and b"access_token" not in r.body,
                  p + "authorization_code grant (user creation + session) -> 503, no token", repr(r))
        _, r = webauthn_register(api, c, "storage-wa", "storage-ext")
        res.check(is_503(r), p + "WebAuthn external registration -> 503", repr(r))
        r = c.request("POST", "/cis/v1/auth/logout", token=ut)
        res.check(is_503(r), p + "logout (session end) -> 503", repr(r))
        # Reads.
        res.check(server.alive(), p + "sigild survives the storage failure")
        res.check(server.healthz() == 200, p + "GET /healthz -> 200 while the store fails")
        r = c.request("GET", "/cis/oidc/jwks")
        res.check(r.status == 200, p + "GET /cis/oidc/jwks -> 200 while the store fails", repr(r))
        r = api.start(uid, c)
        res.check(r.status == 200, p + "mobile-biometrics start (reads + in-memory challenge) -> 200", repr(r))

        fault.clear(server)
        res.note("the database is writable again")
        recovered = None
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10 and server.alive():
            r = api.bio_login(uid, "storage-key", key, c)
            if r.status == 200:
                recovered = time.monotonic() - t0
                break
            time.sleep(0.2)
        res.check(recovered is not None, p + "writes succeed again once the cause is gone (no restart)",
                  f"last answer {r!r}")
        if recovered is not None:
            res.note(f"recovered after {recovered:.1f} s")
            r = api.register_key(ut, key2.spki_der(), "storage-key-2", c)
            res.check(r.status == 200, p + "the refused key registration left nothing behind (registering it now -> 200)",
                      repr(r))
            r = api.refresh(rt, c)
            res.check(r.status == 200, p + "the refused refresh did not rotate the token (it refreshes now)", repr(r))
            res.check(api.session_alive(ut, c) == 404, p + "the refused logout did not end the session")
            user2 = api.otp_login(email2, c)
            res.check(bool(user2.get("access_token")), p + "email OTP login works after recovery")
        check_clean_exit(res, server)
    except Exception as e:  # noqa: BLE001
        res.fail(p + "test aborted", f"{type(e).__name__}: {e}")
    finally:
        try:
            fault.clear(server)
        except Exception:  # noqa: BLE001
            pass
        server.stop()
        fault.cleanup()
    status = res.finish(server)
    server.cleanup()
    return status


if __name__ == "__main__":
    sys.exit(main())
