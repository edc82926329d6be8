"""Fails each allocation of a small run in turn (libcurl, libuv, cJSON and
getflags share one allocator): no crash, no hang, a non-zero exit, and
nothing but complete flags in the output directory. Under the sanitizer
build, LeakSanitizer also fails any run that leaks.

GF_TORTURE_STRIDE=K tries every Kth allocation only (default 1)."""

import os
import re
import subprocess
import sys

from gfutil import FlagServer, listing, run_tests, scratch

TORTURE = os.environ["GETFLAGS_TORTURE"]
STRIDE = int(os.environ.get("GF_TORTURE_STRIDE", "1"))


def run(fs, out, fail_at):
    env = dict(os.environ, GF_FAIL_ALLOC_AT=str(fail_at))
    p = subprocess.run([TORTURE, "-q", "--retries", "0", "-m", "2", "-s", fs.url, "-o", out,
                        "BR", "FR", "ZZ"],
                       capture_output=True, text=True, timeout=30, env=env, errors="replace")
    m = re.search(r"torture: (\d+) allocations, (\d+) failed", p.stderr)
    return p, (int(m.group(1)), int(m.group(2))) if m else (None, None)


def test_every_allocation_failure_is_survived():
    with FlagServer("--quiet") as fs:
        out = scratch()
        p, (total, _) = run(fs, out, 0)
        assert p.returncode == 0, p.stderr
        assert total and total > 50, total
        failed_runs = 0
        for n in range(1, total + 1, STRIDE):
            out = scratch()
            p, (_, failed) = run(fs, out, n)
            assert p.returncode >= 0, "allocation %d: killed by signal %d\n%s" % (
                n, -p.returncode, p.stderr)
            assert "Sanitizer" not in p.stderr, (n, p.stderr)
            names = listing(out)
            assert all(x.endswith(".gif") and not x.startswith(".") for x in names), (n, names)
            if failed is None:
                # Failed before main's report (e.g. while parsing options).
                assert p.returncode in (1, 2, 3), (n, p.returncode, p.stderr)
                failed_runs += 1
                continue
            if failed == 0:
                # That allocation was libuv's, which is never failed.
                assert p.returncode == 0, (n, p.returncode, p.stderr)
                continue
            assert p.returncode in (1, 3), "allocation %d: exit %d\n%s" % (
                n, p.returncode, p.stderr)
            assert "out of memory" in p.stderr or p.returncode == 3, (n, p.stderr)
            failed_runs += 1
        print("  %d allocations, %d runs with one failed" % (total, failed_runs))


if __name__ == "__main__":
    run_tests(dict(globals()))
