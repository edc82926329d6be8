"""Times two getflags builds that differ only in how saves reach libuv's
threadpool (bench/save_batching.sh builds them): paired, alternating
rounds against nginx on loopback, medians, and the median of the paired
ratios with a bootstrap 95% interval. Standard library only."""

import argparse
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

WORKLOADS = (("-e -m 1000", ["-e", "-m", "1000"]), ("-a -m 100", ["-a", "-m", "100"]))
VARIANTS = ("plain", "batched")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """nginx serving flags_data over HTTP/1.1, no access log."""

    def __init__(self, workdir, data):
        self.dir = os.path.join(workdir, "nginx")
        os.makedirs(self.dir, exist_ok=True)
        for attempt in range(5):
            port = free_port()
            conf = os.path.join(self.dir, "nginx.conf")
            d = self.dir
            with open(conf, "w") as f:
                f.write(f"""daemon off;
worker_processes 1;
worker_rlimit_nofile 8192;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  types {{ image/gif gif; application/json json; }}
  access_log off;
  sendfile on;
  keepalive_requests 10000;
  client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
  uwsgi_temp_path {d}; scgi_temp_path {d};
  server {{ listen 127.0.0.1:{port} backlog=4096; root {data}; }}
}}
""")
            self.proc = subprocess.Popen(["nginx", "-p", d, "-c", conf],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    self.url = "http://127.0.0.1:%d/flags" % port
                    return
                except OSError:
                    if self.proc.poll() is not None:
                        break
                    time.sleep(0.05)
            self.stop()
        raise RuntimeError("nginx did not start")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_once(binary, args, url, outdir, wrap=()):
    """Wall seconds and CPU seconds (user + system, the process and its
    threads) of one run into a fresh outdir; raises if it failed."""
    shutil.rmtree(outdir, ignore_errors=True)
    os.makedirs(outdir)
    cmd = list(wrap) + [binary] + args + ["-s", url, "-q", "-o", outdir]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError("%s exited %d: %s" % (" ".join(cmd), p.returncode, err[-500:]))
    return wall, ru.ru_utime + ru.ru_stime, err


def ratio_ci(ratios, rng):
    """The median of paired ratios and a bootstrap 95% interval of it."""
    meds = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(2000))
    return statistics.median(ratios), meds[50], meds[1949]


def perf_supported():
    try:
        out = subprocess.run(["perf", "stat", "-x,", "-e", "instructions:u", "true"],
                             capture_output=True, text=True, timeout=10).stderr
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "not supported" not in out and re.search(r"^\d+,", out, re.M) is not None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plain", required=True)
    ap.add_argument("--batched", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--strace-runs", type=int, default=5)
    ap.add_argument("--out-fs", choices=("tmpfs", "disk", "both"), default="both")
    ap.add_argument("--no-strace", action="store_true")
    ap.add_argument("--no-perf", action="store_true")
    o = ap.parse_args()
    bins = {"plain": o.plain, "batched": o.batched}
    rng = random.Random(1)
    fss = ("tmpfs", "disk") if o.out_fs == "both" else (o.out_fs,)
    shm = tempfile.mkdtemp(prefix="getflags-savebench-", dir="/dev/shm")
    outdirs = {"tmpfs": os.path.join(shm, "out"), "disk": os.path.join(o.tmp, "out")}
    use_perf = not o.no_perf and perf_supported()
    ng = Nginx(o.tmp, os.path.abspath(o.data))
    rows = []
    try:
        with open("/proc/loadavg") as f:
            print("load average at start: %s" % " ".join(f.read().split()[:3]))
        for wname, wargs in WORKLOADS:
            for fs in fss:
                out = outdirs[fs]
                for v in VARIANTS:  # warm-up: page cache, nginx's open files
                    run_once(bins[v], wargs, ng.url, out)
                s = {v: {"wall": [], "cpu": []} for v in VARIANTS}
                for i in range(o.runs):
                    order = VARIANTS if i % 2 == 0 else VARIANTS[::-1]
                    for v in order:
                        wall, cpu, _ = run_once(bins[v], wargs, ng.url, out)
                        s[v]["wall"].append(wall)
                        s[v]["cpu"].append(cpu)
                for metric in ("wall", "cpu"):
                    a, b = s["plain"][metric], s["batched"][metric]
                    med, lo, hi = ratio_ci([y / x for x, y in zip(a, b)], rng)
                    rows.append((wname, fs, metric + " ms", statistics.median(a) * 1e3,
                                 statistics.median(b) * 1e3, med, lo, hi))
                extra = []
                if not o.no_strace:
                    extra.append(("futex calls", ["strace", "-f", "-c", "-e", "trace=futex"],
                                  lambda err: int(re.search(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)"
                                                            r"(?:\s+\d+)?\s+futex$", err,
                                                            re.M).group(1))))
                if use_perf:
                    extra.append(("instructions:u M", ["perf", "stat", "-x,", "-e",
                                                       "instructions:u"],
                                  lambda err: int(re.search(r"^(\d+),[^,]*,instructions",
                                                            err, re.M).group(1)) / 1e6))
                for name, wrap, parse in extra:
                    c = {v: [] for v in VARIANTS}
                    for i in range(o.strace_runs):
                        order = VARIANTS if i % 2 == 0 else VARIANTS[::-1]
                        for v in order:
                            c[v].append(parse(run_once(bins[v], wargs, ng.url, out, wrap)[2]))
                    a, b = c["plain"], c["batched"]
                    med, lo, hi = ratio_ci([y / x for x, y in zip(a, b)], rng)
                    rows.append((wname, fs, name, statistics.median(a), statistics.median(b),
                                 med, lo, hi))
                print("done: %s on %s" % (wname, fs), file=sys.stderr)
        with open("/proc/loadavg") as f:
            print("load average at end: %s" % " ".join(f.read().split()[:3]))
    finally:
        ng.stop()
        shutil.rmtree(shm, ignore_errors=True)
    if not use_perf and not o.no_perf:
        print("perf stat: instructions not supported here (no hardware counters)")
    print("%d paired rounds per row (%d for futex/instructions); ratio = batched / plain, "
          "median of the per-round ratios, bootstrap 95%% interval" % (o.runs, o.strace_runs))
    print()
    print("| workload | output | measure | plain (median) | batched (median) | ratio | 95% |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for w, fs, m, a, b, med, lo, hi in rows:
        print("| `getflags %s` | %s | %s | %.1f | %.1f | %.3f | %.3f–%.3f |"
              % (w, fs, m, a, b, med, lo, hi))


if __name__ == "__main__":
    main()
