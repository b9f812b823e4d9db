"""Unit tests of the scenario translator (vm-tests/translate.py).

Run: python3 -m unittest discover -s vm-tests/tests
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
VMT = os.path.dirname(HERE)
TOP = os.path.dirname(VMT)
sys.path.insert(0, VMT)

import translate  # noqa: E402

REGEN = "regenerate with: python3 vm-tests/translate.py --update-golden"


def read(p):
    with open(p, encoding="utf-8", newline="") as f:
        return f.read()


class GoldenTest(unittest.TestCase):
    """Every scenario file and fixture has a checked-in script, and it is current."""

    def check_dir(self, src_dir, gold_dir):
        sources = sorted(n for n in os.listdir(src_dir) if n.endswith(".ngs")) \
            if os.path.isdir(src_dir) else []
        for name in sources:
            with self.subTest(scenario=name):
                gold = os.path.join(gold_dir, translate.script_name(name))
                self.assertTrue(os.path.exists(gold),
                                "no golden script %s for %s; %s"
                                % (os.path.relpath(gold, TOP), name, REGEN))
                got = translate.translate_file(os.path.join(src_dir, name))
                self.assertEqual(got, read(gold),
                                 "golden script %s is stale; %s" % (os.path.relpath(gold, TOP), REGEN))
        if os.path.isdir(gold_dir):
            wanted = {translate.script_name(n) for n in sources}
            orphans = sorted(n for n in os.listdir(gold_dir) if n.endswith(".sh") and n not in wanted)
            self.assertEqual(orphans, [], "golden scripts without a scenario in %s; %s"
                             % (os.path.relpath(src_dir, TOP), REGEN))
        return sources

    def test_scenarios(self):
        self.check_dir(translate.SCENARIO_DIR, translate.GOLDEN_DIR)

    def test_fixtures(self):
        sources = self.check_dir(translate.FIXTURE_DIR, translate.FIXTURE_GOLDEN_DIR)
        self.assertGreaterEqual(len(sources), 3)

    def test_golden_scripts_are_sh(self):
        sh = shutil.which("sh")
        if sh is None:
            self.skipTest("no sh")
        for src, gold in translate.golden_pairs():
            if os.path.exists(gold):
                with self.subTest(script=os.path.relpath(gold, TOP)):
                    r = subprocess.run([sh, "-n", gold], capture_output=True, text=True)
                    self.assertEqual(r.returncode, 0, r.stderr)

    def test_fixtures_cover_every_statement(self):
        kinds = set()
        ops = set()
        for name in os.listdir(translate.FIXTURE_DIR):
            if not name.endswith(".ngs"):
                continue
            path = os.path.join(translate.FIXTURE_DIR, name)
            sc = translate.parse(name, read(path))
            if sc.title:
                kinds.add("scenario")
            if sc.requires:
                kinds.add("require")
            if sc.specs:
                kinds.add("spec")
            for st in sc.stmts:
                kinds.add(st.kind)
                if st.kind == "kld":
                    ops.add("kld" + st.op)
                elif st.kind == "as":
                    ops.add("as " + st.who)
                elif st.kind in ("sock", "sockexpect"):
                    ops.add(" ".join(a for a in st.args[:3] if not a.isdigit())
                            if st.args[0] in ("udp", "tcp") else st.args[0])
                elif st.kind == "ngctl" and not st.argv:
                    ops.add("ngctl-bare")
        want_kinds = {"scenario", "require", "spec", "ngctl", "session-start", "session-cmd",
                      "close", "kld", "as", "wait", "ok", "error", "exit", "match", "nomatch",
                      "expect", "sock", "sockexpect", "sysctl"}
        self.assertEqual(want_kinds - kinds, set(), "statement kinds no fixture uses")
        norm = {re.sub(r" \S+ ", " NAME ", o) for o in ops}
        want_ops = {"kldload", "kldunload", "as user", "as root", "udp NAME bind", "udp NAME send",
                    "tcp NAME listen", "tcp NAME connect", "tcp NAME accept", "tcp NAME send",
                    "tcp NAME close", "recv", "recvfrom", "silent", "eof"}
        self.assertEqual(want_ops - norm, set(), "operations no fixture uses")


class TokenizeTest(unittest.TestCase):
    def words(self, s):
        return [(w.text, w.quoted) for w in translate.tokenize(s)]

    def test_words_and_quotes(self):
        self.assertEqual(self.words('a "b c" "x\\n\\t\\\\\\"\\x41\\x07" d'),
                         [("a", False), ("b c", True), ('x\n\t\\"A\x07', True), ("d", False)])
        self.assertEqual(self.words('name="ab"'), [('name="ab"', False)])
        self.assertEqual(self.words('  a\t\tb  '), [("a", False), ("b", False)])
        self.assertEqual(self.words('""'), [("", True)])

    def test_bad_quotes(self):
        for bad in ('"abc', '"a\\qb"', '"a"b', '"a\\x4"', '"a\\'):
            with self.subTest(bad=bad):
                self.assertRaises(ValueError, translate.tokenize, bad)

    def test_payloads(self):
        P = lambda s: translate.parse_payload(translate.tokenize(s))  # noqa: E731
        self.assertEqual(P('"hi\\n"'), b"hi\n")
        self.assertEqual(P("0x68 0x69 0xA"), b"hi\n")
        self.assertEqual(P('""'), b"")
        for bad in ("68", "0x123", '"a" "b"', '"a" 0x41'):
            with self.subTest(bad=bad):
                self.assertRaises(ValueError, P, bad)
        self.assertRaises(ValueError, translate.parse_payload, [])

    def test_addresses(self):
        self.assertEqual(translate.parse_addr("127.0.0.1:7777"), ("127.0.0.1", 7777))
        self.assertEqual(translate.parse_addr("[::1]:0"), ("::1", 0))
        for bad in ("127.0.0.1", "1.2.3:4", "256.0.0.1:1", "127.0.0.1:70000", "[::1]1", "x:1",
                    "127.0.0.1:-1"):
            with self.subTest(bad=bad):
                self.assertRaises(ValueError, translate.parse_addr, bad)


class PatternTest(unittest.TestCase):
    """The ERE of a pattern matches what the host harness's matcher
    (harness/src/scenario/pattern.rs) matches; its own test vectors."""

    CASES = [
        ("Num hooks: 1", "  Num hooks: 1  ", True),
        ("Num hooks: 1", "Num hooks: 12", False),
        ("hooks", "Num hooks", False),
        ("There are * total nodes:", "There are 3 total nodes:", True),
        ("a*", "a", True),
        ("*", "", True),
        ("x * ngctl* * socket", "x               ngctl4242       socket", True),
        ("a*b", "acd", False),
        ("**a**", "xxa", True),
        ('from "[{id}]:":', 'from "[1f]:":', True),
        ("ID: {id}   Num", "ID: 0000001f   Num", True),
        ("[{id}]", "[]", False),
        ("[{id}]", "[1F]", False),
        ("[{id}]", "[xyz]", False),
        ("id=0x{id} hooks", "id=0x3 hooks", True),
        ("{i}", "{i}", True),
        ("Args:\tinet/127.0.0.1:7777", "Args:\tinet/127.0.0.1:7777", True),
        ("Args: inet/127.0.0.1:7777", "Args:\tinet/127.0.0.1:7777", True),
        ("Args:    inet/1", "Args:\tinet/1", True),
        ("a b", "a  b", False),
        ("a  b", "a  b", True),
        ("a\tb", "a b", False),
        ("x", "\tx", True),
        # Characters special to EREs are literal.
        ("a.b", "axb", False),
        ("(5) [x] {y} a+b? c|d $e ^f \\g", "(5) [x] {y} a+b? c|d $e ^f \\g", True),
        ("Rec'd response \"getname\" (5) from \"[{id}]:\":",
         "Rec'd response \"getname\" (5) from \"[2a]:\":", True),
        ("0000:  68 69 0a * hi.",
         "0000:  68 69 0a                                         hi.", True),
        ("0000:  68 69 0a * hi.", "0000: 68 69 0a  hi.", False),
    ]

    def test_python_re(self):
        for pat, line, want in self.CASES:
            with self.subTest(pattern=pat, line=line):
                ere = translate.pattern_to_ere(pat)
                self.assertEqual(bool(re.search(ere, line)), want, ere)

    def test_grep_E(self):
        grep = shutil.which("grep")
        if grep is None:
            self.skipTest("no grep")
        for pat, line, want in self.CASES:
            with self.subTest(pattern=pat, line=line):
                ere = translate.pattern_to_ere(pat)
                r = subprocess.run([grep, "-q", "-E", "-e", ere], input=line + "\n", text=True,
                                   env=dict(os.environ, LC_ALL="C"))
                self.assertEqual(r.returncode == 0, want, ere)

    def test_error_lines(self):
        def m(kind, op, errno, line):
            ere = translate.error_ere(kind, op, errno, translate.ERRNOS[errno][1])
            return re.search(ere, line) is not None
        self.assertTrue(m("ngctl", None, "EINVAL", "ngctl: send msg: Invalid argument"))
        self.assertTrue(m("session-cmd", None, "EHOSTUNREACH",
                          'ngctl: writing to hook "x": No route to host'))
        self.assertFalse(m("ngctl", None, "EINVAL", "ngctl: send msg: Invalid argument!"))
        self.assertTrue(m("kld", "load", "EEXIST",
                          "kldload: can't load ng_ksocket: module already loaded or in kernel"))
        self.assertTrue(m("kld", "load", "EPERM",
                          "kldload: can't load ng_ksocket: Operation not permitted"))
        self.assertTrue(m("kld", "unload", "EBUSY", "kldunload: can't unload file: Device busy"))
        self.assertTrue(m("kld", "unload", "ENOENT", "kldunload: can't find file nosuch"))
        self.assertTrue(m("sock", None, "ECONNREFUSED",
                          "sockhelper: tcp c: connect 127.0.0.1:9: Connection refused"))
        self.assertTrue(m("sysctl", None, "ENOENT", "sysctl: unknown oid 'net.graph.x'"))
        self.assertTrue(m("sysctl", None, "EPERM", "sysctl: oid 'net.graph.family' is read only"))
        self.assertTrue(m("sysctl", None, "EPERM",
                          "sysctl: net.graph.ksocket.inet6_ascii=1: Operation not permitted"))
        self.assertFalse(m("sysctl", None, "EPERM", "net.graph.ksocket.inet6_ascii: 0"))


class ErrnoTest(unittest.TestCase):
    def test_freebsd_texts(self):
        # FreeBSD's strerror(3) texts (lib/libc/gen/errlst.c).
        want = {
            "EINVAL": "Invalid argument", "ENOENT": "No such file or directory",
            "EISCONN": "Socket is already connected", "EADDRINUSE": "Address already in use",
            "ENOTCONN": "Socket is not connected", "EOPNOTSUPP": "Operation not supported",
            "ENOSYS": "Function not implemented", "EINPROGRESS": "Operation now in progress",
            "EPERM": "Operation not permitted", "EBUSY": "Device busy", "EEXIST": "File exists",
            "EPROTONOSUPPORT": "Protocol not supported",
            "EAFNOSUPPORT": "Address family not supported by protocol family",
            "ENXIO": "Device not configured", "EALREADY": "Operation already in progress",
            "ENOBUFS": "No buffer space available", "EMSGSIZE": "Message too long",
            "ENETDOWN": "Network is down", "EHOSTUNREACH": "No route to host",
            "EDESTADDRREQ": "Destination address required", "EPIPE": "Broken pipe",
            "ENOMEM": "Cannot allocate memory", "ERANGE": "Result too large",
            "E2BIG": "Argument list too long",
        }
        for name, text in want.items():
            self.assertEqual(translate.ERRNOS[name][1], text, name)

    def test_numbers(self):
        self.assertEqual(translate.ERRNOS["EINVAL"][0], 22)
        self.assertEqual(translate.ERRNOS["ENOSYS"][0], 78)
        self.assertEqual(translate.ERRNOS["EAFNOSUPPORT"][0], 47)
        nums = {}
        for name, (num, text) in translate.ERRNOS.items():
            if num in nums:
                self.assertEqual(nums[num], text, "two texts for errno %d" % num)
            nums[num] = text
        self.assertEqual(sorted(nums), list(range(1, 98)))


class ParseErrorTest(unittest.TestCase):
    """Bad statements are rejected with file:line and a reason."""

    BAD = [
        ("frobnicate x", 1, "unknown statement"),
        ("ngctl list\n=> maybe", 2, "usage: => ok"),
        ("ngctl list\n=> error EWHATEVER", 2, "unknown errno name"),
        ("ngctl list\n=> exit 300", 2, "bad exit status"),
        ("=> ok", 1, "before any command"),
        ("| x", 1, "before any command"),
        ("ngctl list\n|", 2, "empty pattern"),
        ("ngctl list\n!|   ", 2, "empty pattern"),
        ("ngctl list\nscenario late", 2, "after the first command"),
        ("scenario", 1, "usage: scenario TEXT"),
        ("require", 1, "usage: require"),
        ("spec", 1, "usage: spec"),
        ("s: list", 1, "no open session named s"),
        ("s: expect x", 1, "no open session named s"),
        ("session s\nsession s", 2, "already open"),
        ("session 9x", 1, "bad session name"),
        ("session s\nclose s\nclose s", 3, "no such open session"),
        ("session s\nclose s\ns: list", 3, "no open session"),
        ("session s\ns: expect", 2, "empty pattern"),
        ('session s\ns: msg x: y "a b"', 2, "cannot be typed"),
        ("session s\ns: list\n=> exit 3", 3, "shows only"),
        ("kldload", 1, "usage: kldload MODULE"),
        ("kldunload a b", 1, "usage: kldunload MODULE"),
        ("as admin", 1, "usage: as root | as user"),
        ("wait", 1, "usage: wait MS"),
        ("sysctl", 1, "usage: sysctl NAME"),
        ("sysctl a.b=x", 1, "usage: sysctl NAME"),
        ("sysctl a..b", 1, "usage: sysctl NAME"),
        ("sysctl a.b c", 1, "usage: sysctl NAME"),
        ("wait soon", 1, "bad number"),
        ("wait 600000", 1, "at most"),
        ("as user\n=> ok", 2, "cannot fail"),
        ("wait 10\n| x", 2, "no output to match"),
        ("session s\nclose s\n=> exit 0", 3, "applies only to"),
        ("udp c bind 127.0.0.1:0\n=> exit 0", 2, "applies only to"),
        ("udp c bind 127.0.0.1:0\n| x", 2, "no output to match"),
        ("udp c bind 127.0.0.1", 1, "ADDR:PORT"),
        ("udp c bind 1.2.3.4:99999", 1, "bad port"),
        ("udp c send 127.0.0.1:1 0x41", 1, "no UDP socket named c"),
        ("udp c bind 127.0.0.1:0\nudp c bind 127.0.0.1:0", 2, "already exists"),
        ("udp c bind 127.0.0.1:0\nudp c send 127.0.0.1:1 68", 2, "bad payload byte"),
        ("udp c bind 127.0.0.1:0\nudp c send 127.0.0.1:1", 2, "missing payload"),
        ("udp c frob", 1, "unknown udp action"),
        ("tcp c accept l", 1, "no listening TCP socket named l"),
        ("tcp c send 0x41", 1, "no connected TCP socket"),
        ("tcp l listen 127.0.0.1:1\ntcp l send 0x41", 2, "no connected TCP socket"),
        ("tcp c close", 1, "no TCP socket named c"),
        ("tcp c dance", 1, "unknown tcp action"),
        ("udp c bind 127.0.0.1:0\nc eof", 2, "does not apply"),
        ("tcp l listen 127.0.0.1:1\nl recv 0x41", 2, "does not apply"),
        ("tcp l listen 127.0.0.1:1\ntcp c accept l\nc recv-from 127.0.0.1:1 0x41", 3,
         "does not apply"),
        ("c recv 0x41", 1, "unknown statement"),
        ('ngctl msg "unterminated', 1, "unterminated quoted string"),
        ('ngctl msg "bad\\q"', 1, "unknown escape"),
        ('ngctl write k "a\\x00"', 1, "NUL byte"),
        ('"quoted" first', 1, "unknown statement"),
    ]

    def test_bad_statements(self):
        for text, line, msg in self.BAD:
            with self.subTest(text=text):
                with self.assertRaises(translate.ScenarioError) as cm:
                    translate.parse("t.ngs", "# a comment\n" + text)
                e = cm.exception
                self.assertEqual(e.line, line + 1, str(e))
                self.assertIn(msg, e.message)
                self.assertTrue(str(e).startswith("t.ngs:%d: " % (line + 1)), str(e))

    def test_good_statements(self):
        ok = """scenario ok
require ng_socket ng_ksocket
spec a:b c:d

ngctl
=> exit 64
ngctl msg x: y "a b" name="q r"
=> error ENOENT
=> exit 71
session s
s: expect Available commands:
s: list
=> exit 0
wait 0
as user
as root
udp c bind [::1]:0
udp c send [::1]:7 ""
c silent
c recv-from [::1]:7 0x00
close s
"""
        sc = translate.parse("t.ngs", ok)
        self.assertEqual(sc.title, "ok")
        self.assertEqual(sc.requires, ["ng_socket", "ng_ksocket"])
        ngctl = [st for st in sc.stmts if st.kind == "ngctl"]
        self.assertEqual(ngctl[0].argv, [])
        self.assertEqual(ngctl[1].argv, ["msg", "x:", "y", "a b", 'name="q', 'r"'])

    def test_implied_ok(self):
        script = translate.render(translate.parse("t.ngs", "ngctl list\nngctl x\n=> exit 71\n"),
                                  "t.ngs")
        self.assertEqual(script.count("ngs_ok  # implied"), 1)
        self.assertIn("ngs_exit 71", script)


class CommandLineTest(unittest.TestCase):
    def run_tr(self, *args):
        return subprocess.run([sys.executable, os.path.join(VMT, "translate.py")] + list(args),
                              capture_output=True, text=True)

    def test_check_reports_file_and_line(self):
        with tempfile.TemporaryDirectory() as d:
            bad = os.path.join(d, "bad.ngs")
            with open(bad, "w") as f:
                f.write("scenario bad\n\nngctl list\nfrobnicate\n")
            r = self.run_tr("--check", bad)
            self.assertEqual(r.returncode, 1)
            self.assertIn("bad.ngs:4: unknown statement", r.stderr)

    def test_out_dir(self):
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(translate.FIXTURE_DIR, "udp_echo.ngs")
            r = self.run_tr("--out-dir", d, src)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(read(os.path.join(d, "udp_echo.sh")),
                             read(os.path.join(translate.FIXTURE_GOLDEN_DIR, "udp_echo.sh")))


if __name__ == "__main__":
    unittest.main()
