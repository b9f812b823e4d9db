"""Tests of the vm-tests shell scripts and the socket helper that can run
without FreeBSD: syntax (sh -n, shellcheck when installed), run.sh's skip
path and its fast failure on a bad image, and sockhelper.c built for the host.

Run: python3 -m unittest discover -s vm-tests/tests
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
VMT = os.path.dirname(HERE)
TOP = os.path.dirname(VMT)
SCRIPTS = ["run.sh", "guest.sh", "image.sh", "ngslib.sh"]


def scenario_count():
    d = os.path.join(TOP, "scenarios")
    return len([n for n in os.listdir(d) if n.endswith(".ngs")]) if os.path.isdir(d) else 0


class ShellSyntaxTest(unittest.TestCase):
    def test_sh_n(self):
        for sh in ("sh", "dash", "bash"):
            path = shutil.which(sh)
            if path is None:
                continue
            for s in SCRIPTS:
                with self.subTest(shell=sh, script=s):
                    r = subprocess.run([path, "-n", os.path.join(VMT, s)], capture_output=True,
                                       text=True)
                    self.assertEqual(r.returncode, 0, r.stderr)

    def test_shellcheck(self):
        sc = shutil.which("shellcheck")
        if sc is None:
            self.skipTest("shellcheck is not installed (apt-get install shellcheck)")
        r = subprocess.run([sc, "-s", "sh"] + [os.path.join(VMT, s) for s in SCRIPTS],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class RunShTest(unittest.TestCase):
    """run.sh without FreeBSD: skips cleanly, fails fast on a bad image."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FREEBSD_VM_")}
        self.env.update(HOME=self.tmp, XDG_CACHE_HOME=os.path.join(self.tmp, "cache"),
                        VM_TEST_LOGDIR=os.path.join(self.tmp, "logs"))
        self.ko = [os.path.join(self.tmp, "ng_ksocket.ko"), os.path.join(self.tmp, "ng_socket.ko")]
        for k in self.ko:
            with open(k, "wb") as f:
                f.write(b"\x7fELF")

    def run_sh(self, **env):
        e = dict(self.env, **env)
        t0 = time.monotonic()
        r = subprocess.run(["sh", os.path.join(VMT, "run.sh")] + self.ko, env=e,
                           capture_output=True, text=True, timeout=120)
        return r, time.monotonic() - t0

    def test_no_image_skips(self):
        r, _ = self.run_sh()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("vm-tests: SKIP: no FreeBSD 15 image", r.stdout)
        self.assertIn("FREEBSD_VM_IMAGE=", r.stdout)
        self.assertIn("FREEBSD_VM_DOWNLOAD=1", r.stdout)
        n = scenario_count() + 4
        self.assertTrue(r.stdout.rstrip().endswith("vm-tests: 0 passed, 0 failed, %d skipped" % n),
                        r.stdout)

    def test_required_makes_a_skip_fail(self):
        r, _ = self.run_sh(FREEBSD_VM_REQUIRED="1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("skipping is a failure", r.stdout)

    def check_fails_fast(self, image, message):
        r, secs = self.run_sh(FREEBSD_VM_IMAGE=image)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertLess(secs, 10)
        self.assertIn("vm-tests: error: FREEBSD_VM_IMAGE=%s: %s" % (image, message), r.stdout)
        self.assertIn("vm-tests: 0 passed, 1 failed,", r.stdout)

    def test_missing_image(self):
        self.check_fails_fast(os.path.join(self.tmp, "nope.qcow2"), "no such file")

    def test_directory_image(self):
        self.check_fails_fast(self.tmp, "not a regular file")

    def test_not_an_image(self):
        p = os.path.join(self.tmp, "fake.qcow2")
        with open(p, "w") as f:
            f.write("this is not a disk image\n")
        self.check_fails_fast(p, "not a disk image")

    def test_too_small_image(self):
        p = os.path.join(self.tmp, "small.raw")
        b = bytearray(65536)
        b[510:512] = b"\x55\xaa"
        with open(p, "wb") as f:
            f.write(b)
        self.check_fails_fast(p, "a raw disk of 65536 bytes is too small")

    def test_usage(self):
        r = subprocess.run(["sh", os.path.join(VMT, "run.sh")], capture_output=True, text=True)
        self.assertEqual(r.returncode, 64)

    def test_time_budget_ends_the_run(self):
        """FREEBSD_VM_TIME_BUDGET bounds the boot: with a QEMU that never
        boots, the run fails at once with the reason, counting the rest."""
        for t in ("ssh", "scp", "timeout", "python3"):
            if shutil.which(t) is None:
                self.skipTest("%s is not installed" % t)
        img = os.path.join(self.tmp, "disk.raw")
        with open(img, "wb") as f:
            f.seek(510)
            f.write(b"\x55\xaa")
            f.truncate(268435456)
        qemu = os.path.join(self.tmp, "fake-qemu")
        with open(qemu, "w") as f:
            f.write("#!/bin/sh\nexec sleep 60\n")
        os.chmod(qemu, 0o755)
        r, secs = self.run_sh(FREEBSD_VM_IMAGE=img, QEMU=qemu, FREEBSD_VM_ACCEL="tcg",
                              FREEBSD_VM_TIME_BUDGET="30")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertLess(secs, 30)
        self.assertIn("time budget (FREEBSD_VM_TIME_BUDGET=30s) ran out during boot", r.stdout)
        self.assertIn("vm-tests: 0 passed, 1 failed, %d skipped" % (scenario_count() + 3),
                      r.stdout)

    def test_bad_time_budget(self):
        r, _ = self.run_sh(FREEBSD_VM_TIME_BUDGET="soon")
        self.assertEqual(r.returncode, 64)


class ImageShTest(unittest.TestCase):
    """image.sh against a mirror on disk (file:// URLs, through curl): which
    file it picks from CHECKSUM.SHA256 (15.0 publishes -ufs and -zfs BASIC-CI
    images: the UFS one), the snapshot URLs, the checksum check, the cache."""

    def setUp(self):
        if shutil.which("curl") is None:
            self.skipTest("curl is not installed (image.sh downloads with curl or wget)")
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.mirror = os.path.join(self.tmp, "mirror")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FREEBSD_VM_")}
        self.env.update(FREEBSD_MIRROR="file://" + self.mirror,
                        FREEBSD_VM_CACHE=os.path.join(self.tmp, "cache"))

    def put(self, rel, data):
        p = os.path.join(self.mirror, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)

    def image(self, *args, **env):
        return subprocess.run(["sh", os.path.join(VMT, "image.sh")] + list(args),
                              env=dict(self.env, **env), capture_output=True, text=True,
                              timeout=60)

    def release_sums(self, ufs_sum):
        lines = ["SHA256 (FreeBSD-15.0-RELEASE-amd64-BASIC-CI-zfs.raw.xz) = " + "a" * 64,
                 "SHA256 (FreeBSD-15.0-RELEASE-amd64-BASIC-CI-ufs.raw.xz) = " + ufs_sum,
                 "SHA256 (FreeBSD-15.0-RELEASE-amd64-BASIC-CLOUDINIT-ufs.raw.xz) = " + "c" * 64]
        self.put("releases/CI-IMAGES/15.0-RELEASE/amd64/Latest/CHECKSUM.SHA256",
                 ("\n".join(lines) + "\n").encode())

    def test_release_picks_the_ufs_basic_ci_image(self):
        self.release_sums("b" * 64)
        r = self.image("resolve")
        self.assertEqual(r.returncode, 0, r.stderr)
        v, name, digest, url = r.stdout.split()
        self.assertEqual((v, name, digest), ("15.0-RELEASE",
                                             "FreeBSD-15.0-RELEASE-amd64-BASIC-CI-ufs.raw.xz",
                                             "b" * 64))
        self.assertTrue(url.endswith("/releases/CI-IMAGES/15.0-RELEASE/amd64/Latest/"
                                     "FreeBSD-15.0-RELEASE-amd64-BASIC-CI-ufs.raw.xz"), url)

    def test_snapshot_url_has_its_date_directory(self):
        name = "FreeBSD-15.1-STABLE-amd64-BASIC-CI-ufs-20260105-0123456789ab-281234.raw.xz"
        self.put("snapshots/CI-IMAGES/15.1-STABLE/amd64/Latest/CHECKSUM.SHA256",
                 ("%s  %s\n%s  %s\n" % ("a" * 64, name.replace("-ufs-", "-zfs-"),
                                         "b" * 64, name)).encode())
        r = self.image("resolve", FREEBSD_VM_BRANCH="15-STABLE", FREEBSD_VM_VERSION="15.1-STABLE")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split()[1], name)
        self.assertTrue(r.stdout.split()[3].endswith(
            "/snapshots/CI-IMAGES/15.1-STABLE/amd64/20260105/" + name), r.stdout)

    def test_fetch_verifies_and_unpacks(self):
        if shutil.which("xz") is None:
            self.skipTest("xz is not installed")
        raw = os.path.join(self.tmp, "disk.raw")
        with open(raw, "wb") as f:
            f.write(b"\x55\xaa" * 4096)
        subprocess.run(["xz", "-k", raw], check=True)
        with open(raw + ".xz", "rb") as f:
            data = f.read()
        import hashlib  # noqa: PLC0415
        self.put("releases/CI-IMAGES/15.0-RELEASE/amd64/Latest/"
                 "FreeBSD-15.0-RELEASE-amd64-BASIC-CI-ufs.raw.xz", data)
        # A wrong published sum: refused, nothing cached.
        self.release_sums("d" * 64)
        r = self.image("fetch")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("checksum mismatch", r.stderr)
        self.assertNotEqual(self.image("cached").returncode, 0)
        # The right one: verified, unpacked, cached.
        self.release_sums(hashlib.sha256(data).hexdigest())
        r = self.image("fetch")
        self.assertEqual(r.returncode, 0, r.stderr)
        path = r.stdout.strip().splitlines()[-1]
        with open(path, "rb") as f, open(raw, "rb") as g:
            self.assertEqual(f.read(), g.read())
        self.assertEqual(self.image("cached").stdout.strip(), path)
        self.assertEqual(self.image("key").stdout.strip(),
                         "15.0-RELEASE-" + hashlib.sha256(data).hexdigest())


class SockHelperTest(unittest.TestCase):
    """sockhelper.c built with the host's cc: the requests the scenario scripts make."""

    @classmethod
    def setUpClass(cls):
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if cc is None:
            raise unittest.SkipTest("no C compiler")
        cls.tmp = tempfile.mkdtemp()
        cls.bin = os.path.join(cls.tmp, "sockhelper")
        r = subprocess.run([cc, "-std=c99", "-D_DEFAULT_SOURCE", "-O2", "-Wall", "-Wextra",
                            "-Werror", "-o", cls.bin, os.path.join(VMT, "sockhelper.c")],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError("sockhelper.c does not build:\n" + r.stderr)
        cls.sock = os.path.join(cls.tmp, "h.sock")
        cls.daemon = subprocess.Popen([cls.bin, "serve", cls.sock])
        for _ in range(50):
            if os.path.exists(cls.sock):
                break
            time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        subprocess.run([cls.bin, "req", cls.sock, "quit"], capture_output=True, timeout=10)
        try:
            cls.daemon.wait(timeout=5)
        except subprocess.TimeoutExpired:
            cls.daemon.kill()
            cls.daemon.wait()
        shutil.rmtree(cls.tmp, True)

    def req(self, *words):
        r = subprocess.run([self.bin, "req", self.sock] + list(words), capture_output=True,
                           text=True, timeout=30)
        return r.returncode, r.stdout + r.stderr

    @staticmethod
    def free_port():
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        return str(p)

    def test_udp(self):
        port = self.free_port()
        self.assertEqual(self.req("udp", "u1", "bind", "127.0.0.1", port)[0], 0)
        self.assertEqual(self.req("udp", "u2", "bind", "127.0.0.1", "0")[0], 0)
        st, out = self.req("udp", "u2", "send", "127.0.0.1", port, "70696e67")
        self.assertEqual(st, 0, out)
        st, out = self.req("recv", "u1", "70696e67", "2000")
        self.assertEqual(st, 0, out)
        self.req("udp", "u2", "send", "127.0.0.1", port, "6869")
        st, out = self.req("recvfrom", "u1", "127.0.0.1", "1", "6869", "2000")
        self.assertEqual(st, 2, out)
        self.assertIn("came from 127.0.0.1:", out)
        st, out = self.req("silent", "u1", "200")
        self.assertEqual(st, 0, out)
        self.req("udp", "u2", "send", "127.0.0.1", port, "41")
        st, out = self.req("recv", "u1", "42", "2000")
        self.assertEqual(st, 2, out)
        self.assertIn('expected 1 byte 42 "B", received 1 byte 41 "A"', out)
        st, out = self.req("recv", "u1", "00", "200")
        self.assertEqual(st, 2, out)
        self.assertIn("no datagram within 200 ms", out)
        st, out = self.req("udp", "u3", "bind", "127.0.0.1", port)
        self.assertEqual(st, 1, out)
        self.assertRegex(out, r"^sockhelper: udp u3: bind 127\.0\.0\.1:\d+: Address already in use")

    def test_tcp(self):
        port = self.free_port()
        self.assertEqual(self.req("tcp", "l", "listen", "127.0.0.1", port)[0], 0)
        self.assertEqual(self.req("tcp", "c", "connect", "127.0.0.1", port, "2000")[0], 0)
        st, out = self.req("tcp", "a", "accept", "l", "2000")
        self.assertEqual(st, 0, out)
        self.assertEqual(self.req("tcp", "c", "send", "68690a")[0], 0)
        self.assertEqual(self.req("recv", "a", "6869", "2000")[0], 0)
        self.assertEqual(self.req("recv", "a", "0a", "2000")[0], 0)
        self.assertEqual(self.req("silent", "a", "200")[0], 0)
        st, out = self.req("eof", "a", "200")
        self.assertEqual(st, 2, out)
        self.assertEqual(self.req("tcp", "c", "close")[0], 0)
        self.assertEqual(self.req("eof", "a", "2000")[0], 0)
        self.assertEqual(self.req("tcp", "a", "close")[0], 0)
        self.assertEqual(self.req("tcp", "l", "close")[0], 0)
        st, out = self.req("tcp", "d", "connect", "127.0.0.1", port, "2000")
        self.assertEqual(st, 1, out)
        self.assertIn("Connection refused", out)

    def test_bad_requests(self):
        self.assertEqual(self.req("dance")[0], 3)
        self.assertEqual(self.req("recv", "nosuch", "41", "10")[0], 3)
        r = subprocess.run([self.bin, "req", os.path.join(self.tmp, "none.sock"), "quit"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 3)
        self.assertIn("no helper daemon", r.stderr)


if __name__ == "__main__":
    unittest.main()
