#!/usr/bin/env python3
"""B6: peak memory of getflags against large images; see bench/README.md.

Two subjects, alternated over --runs rounds, each run under GNU time (%M,
peak resident set):
  ordinary  getflags -e -m 676 against flagserver on flags_data (194 small
            flags, 482 codes not found)
  large     getflags -e -m 676 against tests/integration/bigflags.py, which
            sends every one of the 676 codes a 10 MiB GIF gzip-encoded (about
            40 KiB on the wire)
The bound: the large run's peak at most 64 MiB above the ordinary run's.
Both run with --timeout 600: the large run writes as fast as the disk
takes it, and a disk slower than 676 images x 10 MiB per 10 s (the default
--timeout) makes some requests time out, which is not what B6 measures.
The large run writes 676 x 10 MiB (6.7 GB), so its output directory is on
disk (--out-dir, default the system's temporary directory, refused when it
is a tmpfs or has too little room), and is removed after each run.

Started by bench/run.sh --only B6, which builds getflags and flagserver
first. Standard library only."""

import argparse
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
from bigflags import DEFAULT_SIZE, BigFlagProcess  # noqa: E402

GNU_TIME = "/usr/bin/time"
BOUND_MIB = 64
M = 676


def log(msg):
    print("[B6] " + msg, file=sys.stderr, flush=True)


def start_flagserver(binary):
    p = subprocess.Popen([str(binary), "--bind", "127.0.0.1", "--port", "0", "--quiet",
                          "--directory", str(REPO / "flags_data")],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if not line.startswith("listening on http://"):
        p.kill()
        p.wait()
        raise RuntimeError("flagserver did not start: %r" % line)
    return p, line.split()[2] + "/flags"


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def one_run(getflags, url, parent, timeout):
    """One getflags -e -m 676 run under GNU time into a fresh directory,
    removed afterwards. Returns (peak KiB, wall s, counts)."""
    out = Path(tempfile.mkdtemp(prefix="getflags-b6-", dir=parent))
    tfile = out.with_name(out.name + ".time")
    try:
        p = subprocess.run([GNU_TIME, "-f", "%M %e", "-o", str(tfile), str(getflags), "-e",
                            "-m", str(M), "--timeout", "600", "--json", "-s", url, "-o",
                            str(out)],
                           capture_output=True, text=True, timeout=timeout)
        kib, wall = tfile.read_text().split()[-2:]
        try:
            doc = json.loads(p.stdout)
            counts = dict(doc["counts"])
            errors = sorted({i["error"] for i in doc["items"] if i.get("error")})
            if errors:
                counts["errors_seen"] = errors[:5]
        except (ValueError, KeyError, TypeError):
            counts = {"exit": p.returncode, "stderr": p.stderr[-500:]}
        return int(kib), float(wall), counts
    finally:
        shutil.rmtree(out, ignore_errors=True)
        tfile.unlink(missing_ok=True)


def main():
    ap = argparse.ArgumentParser(description="B6: getflags's peak memory against large images")
    ap.add_argument("--build", default=str(REPO / "build-bench"), help="CMake build dir")
    ap.add_argument("--runs", type=int, default=3, help="rounds (default 3)")
    ap.add_argument("--size", type=int, default=DEFAULT_SIZE, help="image size in bytes")
    ap.add_argument("--out-dir", default=tempfile.gettempdir(),
                    help="where the runs write (on disk; default the temporary directory)")
    ap.add_argument("--results", default=str(REPO / "bench" / "results"), help="where to save")
    ap.add_argument("--no-save", action="store_true", help="print only, save nothing")
    args, _ = ap.parse_known_args()  # run.sh passes its other options on
    build = Path(args.build).resolve()
    getflags = build / "src/getflags/getflags"
    flagserver = build / "src/flagserver/flagserver"
    for b in (getflags, flagserver):
        if not b.exists():
            sys.exit("B6: %s not found; run bench/run.sh, which builds it" % b)
    parent = Path(args.out_dir)
    fs = subprocess.run(["stat", "-f", "-c", "%T", str(parent)], capture_output=True,
                        text=True).stdout.strip()
    if fs == "tmpfs":
        sys.exit("B6: %s is a tmpfs; the large run writes %.1f GB: give --out-dir on disk"
                 % (parent, M * args.size / 1e9))
    need = int(M * args.size * 1.1)
    if shutil.disk_usage(parent).free < need:
        sys.exit("B6: %s has less than %.1f GB free" % (parent, need / 1e9))

    samples = {"ordinary": [], "large": []}
    fsrv, base = start_flagserver(flagserver)
    try:
        with BigFlagProcess(args.size) as big:
            urls = {"ordinary": base, "large": big.url}
            log("ordinary: %s; large: %s (%.1f MiB images); output in %s (%s)"
                % (base, big.url, args.size / 1048576, parent, fs))
            for r in range(args.runs):
                for name in ("ordinary", "large"):
                    kib, wall, counts = one_run(getflags, urls[name], parent, 1800)
                    samples[name].append({"rss_kib": kib, "wall_s": wall, "counts": counts})
                    log("round %d %s: peak %d KiB, %.1f s, %s" % (r + 1, name, kib, wall, counts))
    finally:
        stop(fsrv)

    want = {"ordinary": {"ok": 194, "not_found": 482, "error": 0},
            "large": {"ok": 676, "not_found": 0, "error": 0}}
    problems = ["%s run: counts %s, expected %s" % (n, s["counts"], want[n])
                for n in samples for s in samples[n]
                if {k: s["counts"].get(k) for k in want[n]} != want[n]]
    med = {n: statistics.median(s["rss_kib"] for s in samples[n]) for n in samples}
    above = (med["large"] - med["ordinary"]) / 1024
    result = {
        "workload": "B6",
        "command": "getflags -e -m %d, ordinary flags vs %d-byte gzip-encoded images" % (M, args.size),
        "utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "loadavg": open("/proc/loadavg").read().split()[:3],
        "runs": args.runs,
        "image_bytes": args.size,
        "output_fs": fs,
        "samples": samples,
        "median_rss_mib": {n: round(v / 1024, 1) for n, v in med.items()},
        "large_above_ordinary_mib": round(above, 1),
        "bound_mib": BOUND_MIB,
        "met": above <= BOUND_MIB and not problems,
        "problems": problems,
    }
    print("B6  peak RSS, median of %d: ordinary %.1f MiB, large %.1f MiB: +%.1f MiB "
          "(bound +%d MiB): %s" % (args.runs, med["ordinary"] / 1024, med["large"] / 1024,
                                   above, BOUND_MIB, "met" if result["met"] else "NOT met"))
    for p in problems:
        print("  problem: " + p)
    if not args.no_save:
        rdir = Path(args.results)
        rdir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        text = json.dumps(result, indent=1) + "\n"
        for name in ("b6-%s.json" % stamp, "b6-latest.json"):
            tmp = rdir / (name + ".tmp")
            tmp.write_text(text)
            os.replace(tmp, rdir / name)
        log("saved %s/b6-latest.json and b6-%s.json" % (rdir, stamp))
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
