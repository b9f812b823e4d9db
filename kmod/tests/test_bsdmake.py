"""The FreeBSD build files, checked here without FreeBSD: the BSD makefiles
(BSDmakefile, kmod/*/Makefile, kmod/rust.mk, man/Makefile) and the port
(ports/net/ngsock-kmod) parse with bmake; the port's pkg-plist lists exactly
what `make install` installs; its Makefile.crates is Cargo.lock's crate
list; the export list is the one build-ko.sh uses; and the scripts behind
`make load` / `make install` and the prerequisite check behave as they must
(against stand-ins for kldstat and kldload, and fake llvm layouts).

bmake comes from Debian (scripts/bootstrap.sh installs it). FreeBSD's own
share/mk is not here: small stand-ins for sys.mk, bsd.subdir.mk,
bsd.kmod.mk, bsd.prog.mk and bsd.port.mk are used, so these tests check the
files' own variables and syntax, not FreeBSD's rules (vm-tests'
native-build step runs the real thing).

Run: python3 -m unittest discover -s kmod/tests
"""

import os
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
PORT = os.path.join(TOP, "ports", "net", "ngsock-kmod")

STUBS = {
    "sys.mk": "",
    "bsd.subdir.mk": "",
    "bsd.kmod.mk": "",
    "bsd.prog.mk": "",
    # As Mk/Uses/cargo.mk: the crate list may live in Makefile.crates.
    "bsd.port.mk": '.sinclude "${.CURDIR}/Makefile.crates"\n',
}


def bmake_exe():
    exe = shutil.which("bmake")
    if exe is None:
        raise AssertionError("bmake is not installed (apt-get install bmake; "
                             "scripts/bootstrap.sh installs it)")
    return exe


class BMake:
    def __init__(self):
        self.exe = bmake_exe()
        self.mk = tempfile.mkdtemp()
        for name, text in STUBS.items():
            with open(os.path.join(self.mk, name), "w") as f:
                f.write("# stand-in for FreeBSD's %s\n%s" % (name, text))

    def var(self, directory, name, makefile=None, env=None):
        cmd = [self.exe, "-m", self.mk, "-C", directory]
        if makefile:
            cmd += ["-f", makefile]
        cmd += ["-V", "${%s}" % name]
        r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **(env or {})))
        if r.returncode != 0:
            raise AssertionError("bmake %s in %s: %s" % (name, directory, r.stderr))
        return r.stdout.strip()

    def close(self):
        shutil.rmtree(self.mk, True)


class MakefilesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bm = BMake()

    @classmethod
    def tearDownClass(cls):
        cls.bm.close()

    def subdirs(self):
        return self.bm.var(TOP, "SUBDIR", "BSDmakefile").split()

    def test_bsd_makefiles_parse(self):
        self.assertEqual(self.subdirs(), ["kmod/ng_socket", "kmod/ng_ksocket", "man"])
        self.assertEqual(self.bm.var(TOP, "SYSDIR", "BSDmakefile"), "/usr/src/sys")
        for d in ("kmod/ng_socket", "kmod/ng_ksocket"):
            path = os.path.join(TOP, d)
            self.assertEqual(self.bm.var(path, "NGSOCK_TOP"), TOP)
            self.assertIn("-ffile-prefix-map=%s=ngsock" % TOP, self.bm.var(path, "CFLAGS"))
            objs = self.bm.var(path, "OBJS").split()
            self.assertIn("ngsock_%s.o" % self.bm.var(path, "RUST_FEATURE"), objs)

    def test_export_syms_are_build_ko_shs(self):
        for m in ("ng_socket", "ng_ksocket"):
            mk = self.bm.var(os.path.join(TOP, "kmod", m), "EXPORT_SYMS").split()
            sh = subprocess.run(["sh", os.path.join(TOP, "scripts", "export-syms.sh"), m],
                                capture_output=True, text=True, check=True).stdout.split()
            self.assertEqual(mk, sh, m)
        self.assertEqual(self.bm.var(os.path.join(TOP, "kmod", "ng_socket"), "EXPORT_SYMS"),
                         "ngsocklist")

    def install_list(self):
        """What `make install` installs, from the BSD makefiles: each module
        directory's ${KMOD}.ko into ${KMODDIR}, the man pages (compressed,
        as bsd.man.mk does) into ${MANDIR}<section>, in pkg-plist's terms."""
        got = []
        for d in self.subdirs():
            path = os.path.join(TOP, d)
            kmod = self.bm.var(path, "KMOD")
            if kmod:
                got.append("%%KMODDIR%%/" + kmod + ".ko")
            for page in self.bm.var(path, "MAN").split():
                mandir = self.bm.var(path, "MANDIR", env={"PREFIX": "/PREFIX"})
                self.assertTrue(mandir.startswith("/PREFIX/"), mandir)
                got.append("%s%s/%s.gz" % (mandir[len("/PREFIX/"):], page.rsplit(".", 1)[1],
                                           page))
        return sorted(got)

    def test_pkg_plist_is_what_make_install_installs(self):
        with open(os.path.join(PORT, "pkg-plist")) as f:
            plist = sorted(l.strip() for l in f if l.strip() and not l.startswith("@"))
        self.assertEqual(plist, self.install_list())

    def test_port_makefile(self):
        v = lambda n: self.bm.var(PORT, n)  # noqa: E731
        self.assertEqual(v("PORTNAME") + v("PKGNAMESUFFIX"), "ngsock-kmod")
        self.assertEqual(set(v("USES").split()), {"cargo", "kmod"})
        self.assertEqual(v("MAKEFILE"), "BSDmakefile")
        for n in ("CARGO_BUILD", "CARGO_INSTALL", "CARGO_TEST"):
            self.assertEqual(v(n), "no", n)
        self.assertIn("devel/llvm", v("BUILD_DEPENDS"))
        self.assertIn("LIBCLANG_PATH=", v("MAKE_ENV"))
        self.assertEqual(v("ONLY_FOR_ARCHS"), "amd64")
        for f in ("pkg-descr", "pkg-plist", "pkg-message", "Makefile.crates"):
            self.assertTrue(os.path.isfile(os.path.join(PORT, f)), f)
        with open(os.path.join(PORT, "pkg-message")) as f:
            msg = f.read()
        self.assertTrue(msg.startswith("[\n{ type: install"), msg[:40])
        for want in ('kld_list+="/boot/modules/ng_socket.ko /boot/modules/ng_ksocket.ko"',
                     'ng_socket_name="/boot/modules/ng_socket.ko"',
                     'ng_ksocket_name="/boot/modules/ng_ksocket.ko"'):
            self.assertIn(want, msg)

    def test_cargo_crates_are_cargo_locks(self):
        want = subprocess.run(["sh", os.path.join(TOP, "scripts", "port-crates.sh")],
                              capture_output=True, text=True, check=True).stdout
        with open(os.path.join(PORT, "Makefile.crates")) as f:
            self.assertEqual(f.read(), want,
                             "stale: sh scripts/port-crates.sh > ports/net/ngsock-kmod/Makefile.crates")
        crates = set(self.bm.var(PORT, "CARGO_CRATES").split())
        with open(os.path.join(TOP, "Cargo.lock")) as f:
            lock = f.read().split("[[package]]")
        ours = set()
        for p in lock:
            if 'source = "registry+https://github.com/rust-lang/crates.io-index"' in p:
                name = p.split('name = "', 1)[1].split('"', 1)[0]
                version = p.split('version = "', 1)[1].split('"', 1)[0]
                ours.add("%s-%s" % (name, version))
        self.assertTrue(ours, "no crates.io package in Cargo.lock?")
        self.assertEqual(ours - crates, set(), "Cargo.lock crates missing from the port")
        # And the Rust library's, which -Zbuild-std resolves.
        self.assertGreater(len(crates), len(ours))


class PrereqTest(unittest.TestCase):
    """scripts/freebsd-prereq.sh: libclang found in the llvm packages, or one
    line saying what to install."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.sys = os.path.join(self.tmp, "sys")
        for f in ("sys/param.h", "netgraph/netgraph.h"):
            os.makedirs(os.path.dirname(os.path.join(self.sys, f)), exist_ok=True)
            open(os.path.join(self.sys, f), "w").close()
        # A rustc whose sysroot has the library sources.
        root = os.path.join(self.tmp, "rust")
        os.makedirs(os.path.join(root, "lib/rustlib/src/rust/library/core/src"))
        open(os.path.join(root, "lib/rustlib/src/rust/library/core/src/lib.rs"), "w").close()
        self.rustc = self.script("rustc", 'echo "%s"' % root)
        self.cargo = self.script("cargo", "exit 0")
        self.llvm = os.path.join(self.tmp, "local")

    def script(self, name, body):
        p = os.path.join(self.tmp, name)
        with open(p, "w") as f:
            f.write("#!/bin/sh\n%s\n" % body)
        os.chmod(p, 0o755)
        return p

    def lib(self, rel):
        p = os.path.join(self.llvm, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        open(p, "w").close()

    def run_prereq(self, sysdir=None, **env):
        e = {k: v for k, v in os.environ.items() if k != "LIBCLANG_PATH"}
        e.update(RUSTC=self.rustc, NGSOCK_LLVM_PREFIX=self.llvm, **env)
        return subprocess.run(["sh", os.path.join(TOP, "scripts", "freebsd-prereq.sh"),
                               sysdir or self.sys, self.cargo], capture_output=True, text=True,
                              env=e)

    def test_newest_llvm_package(self):
        self.lib("llvm15/lib/libclang.so")
        self.lib("llvm19/lib/libclang.so.19.1")
        self.lib("llvm9/lib/libclang.so")
        r = self.run_prereq()
        self.assertEqual((r.returncode, r.stdout.strip()), (0, os.path.join(self.llvm, "llvm19/lib")),
                         r.stderr)

    def test_no_libclang_is_one_clear_line(self):
        r = self.run_prereq()
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
        self.assertIn("pkg install llvm19", r.stderr)
        self.assertTrue(r.stderr.startswith("ngsock: bindgen needs libclang"), r.stderr)

    def test_libclang_path_wins(self):
        self.lib("llvm19/lib/libclang.so")
        d = os.path.join(self.tmp, "mine")
        os.makedirs(d)
        open(os.path.join(d, "libclang-19.so.1"), "w").close()
        r = self.run_prereq(LIBCLANG_PATH=d)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, d), r.stderr)
        r = self.run_prereq(LIBCLANG_PATH=os.path.join(self.tmp, "empty"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("holds no libclang.so", r.stderr)

    def test_other_prerequisites(self):
        self.lib("llvm19/lib/libclang.so")
        r = self.run_prereq(sysdir=os.path.join(self.tmp, "nosrc"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("no kernel sources in", r.stderr)
        os.remove(self.cargo)
        r = self.run_prereq()
        self.assertEqual(r.returncode, 1)
        self.assertIn("pkg install rust llvm19", r.stderr)


KLDSTAT = """#!/bin/sh
# stand-in for kldstat(8): -v prints the table in $FAKE_KLDSTAT
case "$*" in
    -v) cat "$FAKE_KLDSTAT" ;;
    "-q -m "*) grep -q "^	*[0-9]* ${3}\\$" "$FAKE_KLDSTAT" ;;
    *) exit 1 ;;
esac
"""

TABLE = """Id Refs Address                Size Name
 1   20 0xffffffff80200000  1f3e2d0 kernel (/boot/kernel/kernel)
 2    1 0xffffffff82400000     6000 netgraph.ko (/boot/kernel/netgraph.ko)
%s"""


class KldShTest(unittest.TestCase):
    """scripts/kld.sh (make load / unload / install notes) with stand-ins for
    kldstat and kldload."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.bin = os.path.join(self.tmp, "bin")
        os.makedirs(self.bin)
        self.table = os.path.join(self.tmp, "table")
        self.log = os.path.join(self.tmp, "calls")
        for name, body in (("kldstat", KLDSTAT),
                           ("kldload", '#!/bin/sh\necho "kldload $*" >> "$FAKE_LOG"\n'
                                       'echo " 9 1 0x9 9000 $(basename "$2") ($2)" >> "$FAKE_KLDSTAT"\n'),
                           ("kldunload", '#!/bin/sh\necho "kldunload $*" >> "$FAKE_LOG"\n')):
            p = os.path.join(self.bin, name)
            with open(p, "w") as f:
                f.write(body)
            os.chmod(p, 0o755)
        self.so = os.path.join(self.tmp, "obj", "ng_socket.ko")
        self.ks = os.path.join(self.tmp, "obj", "ng_ksocket.ko")
        os.makedirs(os.path.dirname(self.so))
        for k in (self.so, self.ks):
            open(k, "w").close()

    def kld(self, rows, *args):
        with open(self.table, "w") as f:
            f.write(TABLE % rows)
        env = dict(os.environ, PATH=self.bin + ":" + os.environ["PATH"], FAKE_KLDSTAT=self.table,
                   FAKE_LOG=self.log)
        r = subprocess.run(["sh", os.path.join(TOP, "scripts", "kld.sh")] + list(args),
                           capture_output=True, text=True, env=env)
        calls = []
        if os.path.exists(self.log):
            with open(self.log) as f:
                calls = f.read().splitlines()
        return r, calls

    def test_load_refuses_freebsds_own_module(self):
        r, calls = self.kld(" 3    1 0xffffffff82410000     9000 ng_socket.ko (/boot/kernel/ng_socket.ko)\n",
                            "load", self.so, self.ks)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(calls, [], "nothing is loaded")
        self.assertIn("FreeBSD's own ng_socket.ko is loaded (/boot/kernel/ng_socket.ko)", r.stderr)
        self.assertIn("cannot be unloaded", r.stderr)
        r, calls = self.kld(" 3    1 0xffffffff82410000     9000 ng_ksocket.ko (/boot/kernel/ng_ksocket.ko)\n",
                            "load", self.so, self.ks)
        self.assertEqual((r.returncode, calls), (1, []))
        self.assertIn("kldunload ng_ksocket", r.stderr)

    def test_load_ours(self):
        r, calls = self.kld("", "load", self.so, self.ks)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(calls, ["kldload -v " + self.so, "kldload -v " + self.ks])
        # Already ours: nothing to do.
        os.remove(self.log)
        r, calls = self.kld(" 3 1 0x1 9000 ng_socket.ko (%s)\n 4 1 0x2 9000 ng_ksocket.ko (%s)\n"
                            % (self.so, self.ks), "load", self.so, self.ks)
        self.assertEqual((r.returncode, calls), (0, []), r.stderr)
        self.assertIn("already loaded from", r.stdout)

    def test_load_needs_the_build(self):
        os.remove(self.ks)
        r, calls = self.kld("", "load", self.so, self.ks)
        self.assertEqual((r.returncode, calls), (1, []))
        self.assertIn("is not built (run make first)", r.stderr)

    def test_unload_leaves_freebsds_alone(self):
        r, calls = self.kld(" 3 1 0x1 9000 ng_socket.ko (/boot/kernel/ng_socket.ko)\n"
                            " 4 1 0x2 9000 ng_ksocket.ko (/boot/modules/ng_ksocket.ko)\n", "unload")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(calls, ["kldunload -v ng_ksocket"])
        self.assertIn("ng_socket.ko is FreeBSD's", r.stdout)

    def test_install_notes(self):
        r, _ = self.kld("", "notes", "/boot/modules")
        self.assertEqual(r.returncode, 0)
        for want in ('sysrc kld_list+="/boot/modules/ng_socket.ko /boot/modules/ng_ksocket.ko"',
                     'ng_socket_load="YES"', 'ng_socket_name="/boot/modules/ng_socket.ko"',
                     'ng_ksocket_name="/boot/modules/ng_ksocket.ko"'):
            self.assertIn(want, r.stdout)


if __name__ == "__main__":
    unittest.main()
