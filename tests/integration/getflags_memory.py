"""getflags's memory stays bounded whatever servers send: large images
(10 MiB GIFs sent gzip-encoded, a few KiB on the wire) are written to
their temporary file as they arrive, so a run's peak resident set stays
within 64 MiB of an ordinary run of the same -m; every way such a body
can fail leaves no temporary file behind."""

import json
import os
import shutil
import signal
import subprocess
import time

from bigflags import DEFAULT_SIZE, BigFlagProcess, BigFlagServer, big_gif_digest
from getflags_faults import run_peak_rss
from gfutil import GETFLAGS, FlagServer, codes_194, getflags, listing, run_tests, scratch

N = 40  # codes at -m N: 400 MiB of images, about 2 MiB on the wire
BOUND_KIB = 64 * 1024


def tmp_files(d):
    return [n for n in os.listdir(d) if n.startswith(".getflags-tmp-")]


def test_large_gzip_images_cost_no_more_memory_than_small_ones():
    # A child's peak counts the pages it had at fork (this script's, the
    # same for both runs), so the server runs in a process of its own and
    # the difference is getflags's. Before streaming it was about 320 MiB.
    codes = codes_194()[:N]
    small_out = scratch()
    with FlagServer("--quiet") as fs:
        rc, out, err, small_kib = run_peak_rss(
            [GETFLAGS, "-m", str(N), "-s", fs.url, "-o", small_out] + codes, 120)
    assert rc == 0, (rc, out, err)
    shutil.rmtree(small_out)
    # Never held here: a forked child starts with its parent's pages.
    size, want = big_gif_digest(DEFAULT_SIZE)
    big_out = scratch()
    try:
        with BigFlagProcess() as srv:
            rc, out, err, big_kib = run_peak_rss(
                [GETFLAGS, "-m", str(N), "-s", srv.url, "-o", big_out] + codes, 300)
            assert rc == 0, (rc, out, err)
            # Every image whole, and its SHA-256 recorded as written.
            with open(os.path.join(big_out, ".getflags", "manifest.json"), encoding="utf-8") as f:
                manifest = json.load(f)
            assert listing(big_out) == sorted("Large_%s.gif" % cc for cc in codes), \
                listing(big_out)
            for e in manifest["entries"]:
                path = os.path.join(big_out, e["file"])
                assert e["status"] == "ok" and e["bytes"] == size, e
                assert e["sha256"] == want and os.path.getsize(path) == size, e
            # --update trusts those records: nothing is fetched again.
            r = getflags("--update", "--json", "-m", str(N), "-s", srv.url, *codes,
                         outdir=big_out, timeout=120)
            assert r.rc == 0, (r.out, r.err)
            assert r.json()["counts"]["unchanged"] == N, r.json()["counts"]
        print("peak RSS: %d KiB with small flags, %d KiB with %.1f MiB gzip images (+%d KiB)"
              % (small_kib, big_kib, size / 1048576, big_kib - small_kib))
        assert big_kib - small_kib <= BOUND_KIB, (small_kib, big_kib)
    finally:
        shutil.rmtree(big_out, ignore_errors=True)


def test_large_bodies_that_fail_leave_no_temporary_file():
    out = scratch()
    with BigFlagServer(modes={"AB": "cut", "AC": "partial"}) as srv:
        r = getflags("--json", "--retries", "1", "-s", srv.url, "AA", "AB", "AC", outdir=out,
                     timeout=120)
        items = {i["cc"]: i for i in r.json()["items"]}
        assert r.rc == 1, (r.out, r.err)
        assert items["AA"]["status"] == "ok", items["AA"]
        assert items["AB"]["error"].startswith(
            "truncated GIF image: ends inside the file, before the trailer byte (0x3B) ("), \
            items["AB"]
        assert items["AC"]["error"] == "body shorter than its Content-Length", items["AC"]
        # Too big: stopped at --max-size, decoded bytes counted.
        r = getflags("--json", "--max-size", "1000000", "-s", srv.url, "AD", outdir=out)
        item = r.json()["items"][0]
        assert item["error"] == "image larger than 1000000 bytes (--max-size)", item
    assert tmp_files(out) == [], tmp_files(out)
    assert listing(out) == ["Large_AA.gif"], listing(out)
    shutil.rmtree(out)


def test_interrupted_while_a_large_body_streams_leaves_no_temporary_file():
    out = scratch()
    with BigFlagServer(modes={"AA": "stall"}) as srv:
        p = subprocess.Popen([GETFLAGS, "-s", srv.url, "-o", out, "AA"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            # Half the body is in: more than stays in memory, so on disk.
            deadline = time.monotonic() + 30
            while not tmp_files(out) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert tmp_files(out), "no temporary file while the body streams"
            p.send_signal(signal.SIGINT)
            stdout, stderr = p.communicate(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert p.returncode == 130, (p.returncode, stdout, stderr)
    assert tmp_files(out) == [] and listing(out) == [], os.listdir(out)


if __name__ == "__main__":
    run_tests(dict(globals()))
