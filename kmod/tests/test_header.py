"""include/netgraph/ng_ksocket_ext.h, the header `make install` installs for
C programs: it compiles in a FreeBSD userland program after the headers its
comment names, and its numbers and sizes are the modules' (the kernel view,
struct ng_ksocket_laddr_tag, is checked through fbsd-sys's bindings).

Needs clang (clang-19, as the module build) and the FreeBSD headers that
scripts/bootstrap.sh caches ($FREEBSD_SYSROOT).

Run: python3 -m unittest discover -s kmod/tests
"""

import os
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))

PROGRAM = r"""
#include <sys/types.h>
#include <sys/socket.h>
#include <stdint.h>
#include <netgraph/ng_message.h>
#include <netgraph/ng_ksocket.h>
#include <netgraph/ng_ksocket_ext.h>

_Static_assert(NGM_KSOCKET_LADDR_COOKIE == 1796573268, "cookie");
_Static_assert(NGM_KSOCKET_LADDR_COOKIE != NGM_KSOCKET_COOKIE, "not FreeBSD's");
_Static_assert(NG_KSOCKET_TAG_LADDR == 1, "tag type");
_Static_assert(NGM_KSOCKET_GETSTATS == 100 && NGM_KSOCKET_CLRSTATS == 101 &&
    NGM_KSOCKET_GETCLRSTATS == 102, "statistics messages");
_Static_assert(sizeof(struct ng_ksocket_stats) == 15 * sizeof(uint64_t), "stats");

int
main(void)
{
	return (0);
}
"""


def clang():
    for c in ("clang-19", "clang"):
        if shutil.which(c):
            return c
    raise AssertionError("clang is not installed (scripts/bootstrap.sh installs clang-19)")


def sysroot():
    s = os.environ.get("FREEBSD_SYSROOT") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
        "ngsock", "freebsd-15.0-sysroot")
    inc = os.path.join(s, "include")
    if not os.path.isfile(os.path.join(inc, "netgraph", "ng_message.h")):
        raise AssertionError("no FreeBSD headers in %s (scripts/bootstrap.sh caches them)" % s)
    return inc


class HeaderTest(unittest.TestCase):
    def test_compiles_in_a_freebsd_program(self):
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d, True)
        src = os.path.join(d, "t.c")
        with open(src, "w") as f:
            f.write(PROGRAM)
        r = subprocess.run([clang(), "--target=x86_64-unknown-freebsd15.0", "-isystem", sysroot(),
                            "-I", os.path.join(TOP, "include"), "-std=c11", "-Wall", "-Werror",
                            "-fsyntax-only", src], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
