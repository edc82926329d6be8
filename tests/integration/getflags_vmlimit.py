"""getflags under an address-space limit (ulimit -v 30000 to 50000 KiB):
libuv aborts when its threadpool cannot start a thread, so getflags starts
the pool itself with the threads that can be created; whatever else runs
out is a counted error or exit 3 with a message, never an abort.

Not run under AddressSanitizer, which reserves terabytes of address space
and cannot start under ulimit -v at all."""

import subprocess

from gfutil import GETFLAGS, FlagServer, run_tests, scratch


def limited(shell_limit, args, out):
    cmd = "%s; exec \"$0\" \"$@\"" % shell_limit
    return subprocess.run(["bash", "-c", cmd, GETFLAGS] + list(args) + ["-o", out],
                          capture_output=True, text=True, timeout=60)


def test_address_space_limit_never_aborts():
    with FlagServer("--quiet") as fs:
        for kb in (30000, 35000, 40000, 45000, 50000):
            out = scratch()
            p = limited("ulimit -v %d" % kb, ["-s", fs.url, "-m", "20", "-e", "-l", "30"], out)
            assert p.returncode in (0, 1, 3), (kb, p.returncode, p.stderr[-2000:])
            if p.returncode == 3:
                assert p.stderr.startswith("getflags: "), p.stderr
            if p.returncode == 1:
                assert "out of memory" in p.stderr, p.stderr[-2000:]



run_tests(globals())
