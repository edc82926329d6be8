#!/usr/bin/env python3
"""How much of B5's CPU is libcurl's, for getflags and for curl.

B5 asks getflags for at most 0.7x curl's CPU. Both leave the protocol work
(HTTP/2 framing, TLS records, the connection and its streams) to the same
libcurl, so that work sets a floor under getflags' CPU that no change to
getflags' own code can lower. This measures it, on B5's set-up: the CDN-like
nginx over HTTP/2 through rttproxy, `getflags -a -m M` against
`curl --parallel --parallel-max M` on the same 388 URLs, alternating.

Each run is made with bench/libcurl_cpu.c preloaded, which adds up the CPU
time of the thread calling libcurl's multi interface (and easy-handle
set-up and clean-up) inside those calls, and at exit notes that thread's
CPU and the process's. The CPU of the whole process comes from its rusage,
and the start-up (loading the libraries) from `--version` runs. Reported
per M, as medians over the runs:

  total     user + sys of the process (rusage)
  start-up  `getflags --version` / `curl --version`
  libcurl   CPU inside libcurl's calls, on the thread that makes them
            (getflags' header and body callbacks run inside them)
  loop      the rest of that thread: the event loop, the per-code state
            machines, setting up each request (getflags); the tool (curl)
  threads   every other thread: getflags' file saves on libuv's threadpool
  exit      what the process spends after its last word (the teardown)
  floor     getflags' start-up + getflags' libcurl, over curl's total: the
            lowest CPU ratio getflags could reach if nothing else cost

  python3 bench/libcurl_share.py [--runs N] [--rtt MS] [--m LIST] [--build DIR]

Needs what bench/run.sh installs (nginx-light, curl, a C compiler) and a
built getflags (default build-bench/). Results go to standard output and,
unless --no-save, to bench/results/libcurl-share-latest.json.
"""

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (B5's set-up: url_pairs, codes_194, the Cdn)


def build_shim(tmp):
    so = tmp / "libcurl_cpu.so"
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", str(so),
                    str(bench.BENCH / "libcurl_cpu.c"), "-ldl"], check=True)
    return so


def run_once(argv, env, out, errfile, timeout=600):
    """Runs argv in a fresh out directory; returns (exit, total CPU ms, the
    preload's figures as a dict of floats or None, standard error)."""
    bench.fresh_dir(out)
    report = Path(env["LIBCURL_CPU_OUT"])
    report.unlink(missing_ok=True)
    with open(errfile, "w+b") as err:
        p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            timer.cancel()
        err.seek(0)
        text = err.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    total_ms = (ru.ru_utime + ru.ru_stime) * 1000
    fields = None
    if report.exists():
        fields = {k: float(v) for k, v in (kv.split("=") for kv in report.read_text().split())}
    return code, total_ms, fields, text


def startup_ms(argv, runs):
    xs = []
    for _ in range(runs):
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, _, ru = os.wait4(p.pid, 0)
        xs.append((ru.ru_utime + ru.ru_stime) * 1000)
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--rtt", type=int, default=50, help="round trip in ms (even)")
    ap.add_argument("--m", default="5,20,100", help="concurrency levels")
    ap.add_argument("--build", default=str(bench.REPO / "build-bench"))
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args()
    ms = [int(x) for x in a.m.split(",")]
    build = Path(a.build)
    getflags = build / "src" / "getflags" / "getflags"
    rttproxy = build / "tests" / "rttproxy"
    for f in (getflags, rttproxy):
        if not os.access(f, os.X_OK):
            sys.exit(f"libcurl_share: {f} is missing; build first (bash bench/run.sh builds it)")

    tmp = Path(tempfile.mkdtemp(prefix="getflags-libcurl-share-"))
    # On a tmpfs, as B5's runs: on a disk, getflags' flushes would dominate.
    out = Path(tempfile.mkdtemp(prefix="getflags-libcurl-share-", dir="/dev/shm"))
    so = build_shim(tmp)
    env = dict(os.environ, LD_PRELOAD=str(so), LIBCURL_CPU_OUT=str(tmp / "libcurl_cpu.txt"))
    cdnmod = bench.b5_cdn_module()
    cdnmod.RTTPROXY = str(rttproxy)
    results = {"rtt_ms": a.rtt, "runs": a.runs, "configs": {}, "problems": []}
    cdn = None
    try:
        cdn = cdnmod.Cdn(root=str(bench.FLAGS_DATA))
        px = cdnmod.RttProxy(cdn.ports["h2"], a.rtt // 2)
        cdn.proxies.append(px)
        base = f"https://127.0.0.1:{px.port}/flags"
        pairs = bench.url_pairs(base, bench.codes_194(), bench.codes_194())
        curl_cfg = tmp / "urls.curl"
        curl_cfg.write_text("".join(f'url = "{u}"\noutput = "{out}/{fn}"\n' for u, fn in pairs))
        results["startup_ms"] = {
            "getflags": startup_ms([str(getflags), "--version"], 3 * a.runs),
            "curl": startup_ms(["curl", "--version"], 3 * a.runs),
        }
        for m in ms:
            subjects = {
                "getflags": [str(getflags), "-a", "-m", str(m), "-s", base, "--cacert",
                             cdn.cacert, "-q", "-o", str(out)],
                "curl": ["curl", "--silent", "--show-error", "--parallel", "--parallel-max",
                         str(m), "--cacert", cdn.cacert, "-K", str(curl_cfg)],
            }
            parts = ("total", "libcurl", "loop", "threads", "exit")
            samples = {k: {q: [] for q in parts} for k in subjects}
            for r in range(a.runs + 1):  # the first round is a warm-up
                for name, argv in subjects.items():
                    code, total, f, err = run_once(argv, env, out, tmp / "stderr")
                    if code != 0 or f is None:
                        results["problems"].append(
                            f"m={m} {name}: exit {code}, preload line {f}; {err[-200:]!r}")
                        continue
                    if not r:
                        continue
                    su = results["startup_ms"][name]
                    got = {"total": total, "libcurl": f["libcurl_cpu_ms"],
                           "loop": f["thread_cpu_ms"] - f["libcurl_cpu_ms"] - su,
                           "threads": f["process_cpu_ms"] - f["thread_cpu_ms"],
                           "exit": total - f["process_cpu_ms"]}
                    for q in parts:
                        samples[name][q].append(got[q])
            med = {k: {q: statistics.median(v[q]) if v[q] else None for q in v}
                   for k, v in samples.items()}
            g, c = med["getflags"], med["curl"]
            row = {"samples": samples, "median_ms": med}
            if g["total"] is not None and c["total"] is not None:
                row["cpu_vs_curl"] = g["total"] / c["total"]
                row["floor_vs_curl"] = (results["startup_ms"]["getflags"] + g["libcurl"]) / c["total"]
            results["configs"][str(m)] = row
    finally:
        if cdn is not None:
            cdn.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(out, ignore_errors=True)

    su = results["startup_ms"]
    print(f"RTT {a.rtt} ms, {a.runs} alternating runs, medians in ms of CPU; start-up "
          f"(--version): getflags {su['getflags']:.1f}, curl {su['curl']:.1f}")
    print(f"{'-m':>4} {'subject':>9} | {'total':>6} | {'libcurl':>7} | {'loop':>6} | "
          f"{'threads':>7} | {'exit':>5} | vs curl | floor")
    for m, row in results["configs"].items():
        if "floor_vs_curl" not in row:
            print(f"{m:>4} incomplete")
            continue
        for name, x in row["median_ms"].items():
            tail = (f"{row['cpu_vs_curl']:>7.2f} | {row['floor_vs_curl']:>5.2f}"
                    if name == "getflags" else f"{'':>7} |")
            print(f"{m:>4} {name:>9} | {x['total']:>6.1f} | {x['libcurl']:>7.1f} | "
                  f"{x['loop']:>6.1f} | {x['threads']:>7.1f} | {x['exit']:>5.1f} | {tail}")
    for p in results["problems"]:
        print("problem:", p)
    if not a.no_save:
        results["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        results["command"] = " ".join(["python3", "bench/libcurl_share.py"] + sys.argv[1:])
        path = bench.BENCH / "results" / "libcurl-share-latest.json"
        path.write_text(json.dumps(results, indent=1) + "\n")
        print(f"saved {path.relative_to(bench.REPO)}")
    return 1 if results["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
