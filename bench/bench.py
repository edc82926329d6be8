#!/usr/bin/env python3
"""getflags benchmark suite (B1..B5); see bench/README.md.

Started by bench/run.sh, which installs the tools and builds getflags first.
Standard library only. Every process it starts runs in its own process
group and is killed on exit, including on Ctrl-C and SIGTERM; the temporary
directory is removed.

Measures, all of the whole process:
  wall       hyperfine -N --runs 1, one hyperfine call per round with every
             subject of the workload in it (A B C D, A B C D, ...)
  CPU        user+sys as hyperfine measures it for the same runs (rusage of
             that one child, microsecond resolution)
  peak RSS   GNU time %M on separate runs, also alternated, right after the
             round's wall runs
B3 runs one subject for seconds per run, so it uses GNU time alone (wall %e,
peak RSS %M) plus the rusage of the time process for CPU.
"""

import argparse
import datetime
import json
import os
import platform
import random
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
FLAGS_DATA = REPO / "flags_data"
GNU_TIME = "/usr/bin/time"
TIME_FMT = "%e %U %S %M"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

TARGETS = {
    "B1": {"wall_ratio_max": 0.8, "cpu_ratio_max": 0.8, "aim": 0.8},
    # B2's RSS target is for -e -m 1000 against the same nginx (a third
    # subject of its rounds); wall and CPU are judged at -m 100.
    "B2": {"wall_ratio_max": 1.0, "cpu_ratio_max": 1.0, "aim": 0.8, "rss_m1000_mib_max": 16.0},
    "B3": {"makespan_ratio_max": 1.03, "errors": 0, "rss_mib_max": 22.0},
    "B4": {"flat_ratio_max": 1.2},
    "B5": {"errors": 0, "connections": 1, "makespan_vs_ideal_max": 1.05, "wall_vs_curl_max": 1.0,
           "cpu_ratio_max": 0.7},
}


ALL_WORKLOADS = ("B1", "B2", "B3", "B4", "B5")


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Interrupted(Exception):
    pass


# --------------------------------------------------------------------------
# Processes and clean-up


class Harness:
    """Owns every child process and the temporary directory."""

    def __init__(self):
        self.procs = []
        self.servers = []  # long-running children, for CpuMeter
        self.tmp = Path(tempfile.mkdtemp(prefix="getflags-bench-"))
        self.extra_dirs = []

    def spawn(self, argv, **kw):
        p = subprocess.Popen(argv, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, grace=5.0):
        if p.returncode is None and p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        if p in self.procs:
            self.procs.remove(p)
        if p in self.servers:
            self.servers.remove(p)

    def wait_rusage(self, p, timeout):
        """Blocks until p exits; returns (exit status, rusage). Kills its
        process group after timeout seconds."""
        timer = threading.Timer(timeout, lambda: _killpg_quiet(p.pid))
        timer.start()
        try:
            while True:
                try:
                    _, status, ru = os.wait4(p.pid, 0)
                    break
                except InterruptedError:
                    continue
        finally:
            timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        if p in self.procs:
            self.procs.remove(p)
        return p.returncode, ru

    def cleanup(self):
        for p in list(reversed(self.procs)):
            self.stop(p, grace=3.0)
        for d in self.extra_dirs:
            shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


def _killpg_quiet(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def fresh_dir(path):
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)


STATE_DIR = ".getflags"  # getflags' manifest and lock, not downloads


def count_files(path):
    """Files written under path, not counting getflags' state directory
    (DIR/.getflags: manifest.json, lock)."""
    n = 0
    for root, dirs, files in os.walk(path):
        if root == str(path) and STATE_DIR in dirs:
            dirs.remove(STATE_DIR)
        n += len(files)
    return n


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url, timeout=2.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError):
        return None


# --------------------------------------------------------------------------
# Servers


class Nginx:
    """Debian's nginx serving a flags tree (flags_data by default) on a free
    loopback port. checks: path -> expected status, tried once it is up."""

    BASIC_CHECKS = {
        "/flags/br/metadata.json": 200,
        "/flags/br/br.gif": 200,
        "/flags/aa/metadata.json": 404,
        "/flags/zz/zz.gif": 404,
    }

    def __init__(self, h, root=FLAGS_DATA, name="nginx", checks=None):
        self.h = h
        self.root = Path(root)
        self.dir = h.tmp / name
        self.checks = checks if checks is not None else self.BASIC_CHECKS
        self.proc = None
        self.port = None

    def conf(self, port):
        d = self.dir
        return f"""# generated by bench/bench.py
daemon off;
worker_processes 1;
worker_rlimit_nofile 8192;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 10000;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {self.root};
    }}
}}
"""

    def start(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(5):
            port = free_port()
            (self.dir / "nginx.conf").write_text(self.conf(port))
            out = open(self.dir / "stderr.log", "w")
            self.proc = self.h.spawn(
                ["nginx", "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            out.close()
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                if self.proc.poll() is not None:
                    break
                first = next(iter(self.checks))
                if http_status(base + first, 0.5) == self.checks[first]:
                    self.port = port
                    self.h.servers.append(self.proc)
                    self.check(base)
                    log(f"nginx serving {self.root} on {base} (pid {self.proc.pid})")
                    return base + "/flags"
                time.sleep(0.05)
            self.h.stop(self.proc)
            log(f"nginx did not start on port {port} (attempt {attempt + 1}): "
                + (self.dir / "stderr.log").read_text()[-500:])
        raise RuntimeError("cannot start nginx")

    def check(self, base):
        for path, want in self.checks.items():
            got = http_status(base + path)
            if got != want:
                raise RuntimeError(f"nginx answers {got} for {path}, expected {want}")

    def stop(self):
        if self.proc is not None:
            self.h.stop(self.proc, signal.SIGQUIT)
            self.proc = None


LISTEN_RE = re.compile(r"listening on (http://\S+)")


class FlagServer:
    """One flagserver process, its access log in a file."""

    def __init__(self, h, binary, args, logfile):
        self.h = h
        self.binary = binary
        self.args = args
        self.logfile = logfile
        self.proc = None
        self.base = None

    def start(self):
        out = open(self.logfile, "w")
        err = open(str(self.logfile) + ".stderr", "w")
        self.proc = self.h.spawn([str(self.binary)] + self.args, stdout=out, stderr=err,
                                 stdin=subprocess.DEVNULL)
        out.close()
        err.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(self.logfile) as f:
                first = f.readline()
            m = LISTEN_RE.search(first)
            if m and first.endswith("\n"):
                self.base = m.group(1).rstrip("/")
                return self.base + "/flags"
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        msg = Path(str(self.logfile) + ".stderr").read_text()[-500:]
        self.h.stop(self.proc)
        raise RuntimeError(f"flagserver did not start: {msg!r}")

    def stop(self):
        if self.proc is not None:
            self.h.stop(self.proc, signal.SIGTERM)
            self.proc = None


ACCESS_RE = re.compile(
    r"^(\S+) (\S+) (\S+) (\d{3}) delay=(\d+) bytes=(\d+) inflight=(\d+)\s*$")
TARGET_RE = re.compile(r"^/flags/([a-z]{2})/(metadata\.json|([a-z]{2})\.gif)$")


def ideal_from_log(path):
    """The longest chain of one code: its metadata delay plus its image
    delay (when the image was requested), from one run's access log."""
    chains = {}
    lines = 0
    status_count = {}
    max_inflight = 0
    other = []
    with open(path) as f:
        for raw in f:
            m = ACCESS_RE.match(raw)
            if not m:
                if not LISTEN_RE.search(raw) and raw.strip():
                    other.append(raw.strip())
                continue
            lines += 1
            _, _method, target, status, delay, _bytes, inflight = m.groups()
            status_count[status] = status_count.get(status, 0) + 1
            max_inflight = max(max_inflight, int(inflight))
            t = TARGET_RE.match(target)
            if not t:
                other.append(raw.strip())
                continue
            cc, kind = t.group(1), ("meta" if t.group(2) == "metadata.json" else "image")
            c = chains.setdefault(cc, {"meta": 0, "image": 0, "n": 0})
            c[kind] += int(delay)
            c["n"] += 1
    if not chains:
        raise RuntimeError(f"no access-log lines recognised in {path}")
    cc, c = max(chains.items(), key=lambda kv: kv[1]["meta"] + kv[1]["image"])
    return {
        "ideal_s": (c["meta"] + c["image"]) / 1000.0,
        "longest_chain": {"cc": cc, "meta_delay_ms": c["meta"], "image_delay_ms": c["image"]},
        "log_requests": lines,
        "log_status": status_count,
        "max_inflight": max_inflight,
        "codes_seen": len(chains),
        "unrecognised_lines": other[:5],
    }


# --------------------------------------------------------------------------
# Measurement


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summary(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


TICK = os.sysconf("SC_CLK_TCK")


def _proc_tree_cpu_s(pid):
    """CPU seconds of a live process and its live descendants (nginx's
    master and worker)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(x) for x in f.read().split()]
        except (OSError, ValueError, IndexError):
            pass
    return total


class CpuMeter:
    """How busy the machine was with work that is not the benchmark's: the
    whole machine's busy CPU (/proc/stat) minus this process, its reaped
    children (the clients, hyperfine, GNU time) and the live servers."""

    def __init__(self, h):
        self.h = h

    def snap(self):
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        busy = (v[0] + v[1] + v[2] + v[5] + v[6]) / TICK
        steal = (v[7] if len(v) > 7 else 0) / TICK
        t = os.times()
        ours = t.user + t.system + t.children_user + t.children_system
        for p in self.h.servers:
            ours += _proc_tree_cpu_s(p.pid)
        return time.monotonic(), busy, steal, ours

    @staticmethod
    def foreign(a, b):
        wall = b[0] - a[0]
        if wall <= 0:
            return {"foreign_cores": None, "steal_cores": None}
        return {"foreign_cores": max(0.0, ((b[1] - a[1]) - (b[3] - a[3])) / wall),
                "steal_cores": (b[2] - a[2]) / wall}


def fs_type(path):
    try:
        return subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        return ""


class Runner:
    def __init__(self, h, args):
        self.h = h
        self.args = args
        self.out_fs = "disk"
        base = h.tmp
        if args.out_fs == "tmpfs":
            if fs_type("/dev/shm") == "tmpfs" and os.access("/dev/shm", os.W_OK):
                base = Path(tempfile.mkdtemp(prefix="getflags-bench-out-", dir="/dev/shm"))
                h.extra_dirs.append(base)
                self.out_fs = "tmpfs"
            else:
                log("no writable tmpfs at /dev/shm: output goes to the disk")
        self.out = base / "out"
        self.out_fs_type = fs_type(base)
        self.seq = 0

    def wait_quiet(self):
        """With --wait-quiet S: waits (at most S seconds) until other work
        on the machine stays under 0.15 cores for one second."""
        limit = self.args.wait_quiet
        if limit <= 0:
            return None
        meter = CpuMeter(self.h)
        start = time.monotonic()
        while True:
            a = meter.snap()
            time.sleep(1.0)
            fc = meter.foreign(a, meter.snap())["foreign_cores"]
            waited = time.monotonic() - start
            if fc is not None and fc < 0.15:
                return waited
            if waited >= limit:
                log(f"  machine still busy ({fc:.2f} cores of other work) after {waited:.0f} s; "
                    "measuring anyway")
                return waited

    def hyperfine_round(self, subjects, timeout):
        """One wall/CPU sample of each subject, in the order given."""
        self.seq += 1
        export = self.h.tmp / f"hf-{self.seq}.json"
        prepare = shlex.join(["sh", "-c", f"rm -rf {shlex.quote(str(self.out))} && "
                              f"mkdir {shlex.quote(str(self.out))}"])
        argv = ["hyperfine", "-N", "--runs", "1", "--ignore-failure", "--style", "none",
                "--export-json", str(export), "--prepare", prepare]
        for s in subjects:
            argv += ["-n", s["name"], shlex.join(s["argv"])]
        logf = open(self.h.tmp / "hyperfine.log", "a")
        p = self.h.spawn(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        logf.close()
        rc, _ = self.h.wait_rusage(p, timeout)
        if rc != 0:
            raise RuntimeError(f"hyperfine exited {rc}; see {self.h.tmp}/hyperfine.log: "
                               + (self.h.tmp / "hyperfine.log").read_text()[-800:])
        res = json.loads(export.read_text())["results"]
        samples = {}
        for s, r in zip(subjects, res):
            samples[s["name"]] = {
                "wall_s": r["times"][0],
                "cpu_s": r["user"] + r["system"],
                "user_s": r["user"],
                "sys_s": r["system"],
                "exit": (r.get("exit_codes") or [None])[0],
            }
        return samples

    def gnu_time(self, argv, timeout, keep_stdout=False):
        """One run under GNU time in a fresh output dir; peak RSS is %M."""
        fresh_dir(self.out)
        tfile = self.h.tmp / "time.txt"
        ofile = self.h.tmp / "stdout.txt"
        efile = self.h.tmp / "stderr.txt"
        with open(ofile, "w") as o, open(efile, "w") as e:
            p = self.h.spawn([GNU_TIME, "-f", TIME_FMT, "-o", str(tfile)] + argv,
                             stdout=o, stderr=e, stdin=subprocess.DEVNULL)
        rc, ru = self.h.wait_rusage(p, timeout)
        fields = None
        for line in tfile.read_text().splitlines()[::-1]:
            parts = line.split()
            if len(parts) == 4:
                try:
                    fields = [float(x) for x in parts]
                    break
                except ValueError:
                    pass
        if fields is None:
            raise RuntimeError(f"cannot read GNU time output for {argv}: {tfile.read_text()!r}")
        sample = {
            "exit": rc,
            "wall_s": fields[0],
            "user_s": fields[1],
            "sys_s": fields[2],
            "cpu_s_gnu_time": fields[1] + fields[2],
            # rusage of the time process, which includes its waited-for child:
            # microsecond resolution, plus time's own ~1 ms.
            "cpu_s_rusage": ru.ru_utime + ru.ru_stime,
            "rss_kib": int(fields[3]),
            "files": count_files(self.out),
        }
        stderr = efile.read_text(errors="replace")
        if stderr.strip():
            sample["stderr"] = stderr[-2000:]
        stdout = ofile.read_text(errors="replace")
        if keep_stdout:
            sample["stdout"] = stdout
        return sample


def getflags_json(stdout):
    try:
        d = json.loads(stdout)
    except ValueError:
        return None
    keep = {k: d.get(k) for k in ("concurrency", "elapsed_s", "counts", "requests", "bytes",
                                   "latency_ms")}
    return keep


# --------------------------------------------------------------------------
# URL lists for the peer tools


def codes_194():
    return [c.lower() for c in (FLAGS_DATA / "country_codes.txt").read_text().split()]


def codes_676():
    return [(a + b).lower() for a in LETTERS for b in LETTERS]


def url_pairs(base, meta_codes, image_codes):
    """(url, flat file name) for each metadata and image URL, in the order
    a client walks the codes: a code's metadata, then its image."""
    image_codes = set(image_codes)
    pairs = []
    for cc in meta_codes:
        pairs.append((f"{base}/{cc}/metadata.json", f"{cc}_metadata.json"))
        if cc in image_codes:
            pairs.append((f"{base}/{cc}/{cc}.gif", f"{cc}.gif"))
    return pairs


def write_lists(h, name, pairs, out):
    d = h.tmp / "lists"
    d.mkdir(exist_ok=True)
    curl_cfg = d / f"{name}.curl"
    with open(curl_cfg, "w") as f:
        for url, fn in pairs:
            f.write(f'url = "{url}"\noutput = "{out}/{fn}"\n')
    plain = d / f"{name}.txt"
    plain.write_text("".join(url + "\n" for url, _ in pairs))
    aria = d / f"{name}.aria2"
    with open(aria, "w") as f:
        for url, fn in pairs:
            f.write(f"{url}\n  out={fn}\n")
    return curl_cfg, plain, aria


def peer_subjects(out, curl_cfg, plain, aria, tools):
    subjects = []
    if "curl" in tools:
        subjects.append({"name": "curl", "argv": [
            "curl", "--silent", "--show-error", "--parallel", "--parallel-max", "100",
            "-K", str(curl_cfg)]})
    if "wget2" in tools:
        subjects.append({"name": "wget2", "argv": [
            "wget2", "--max-threads=100", "--quiet", "--input-file", str(plain),
            "--directory-prefix", str(out), "--force-directories", "--no-host-directories",
            "--cut-dirs=1", "--robots=off", "--no-hsts", "--no-hpkp", "--no-netrc",
            "--no-config", "--progress=none", "--no-tcp-fastopen", "--no-cookies",
            "--no-ocsp"]})
    if "aria2c" in tools:
        subjects.append({"name": "aria2c", "argv": [
            "aria2c", "--max-concurrent-downloads=100", "--max-connection-per-server=1",
            "--split=1", "--input-file", str(aria), "--dir", str(out), "--quiet=true",
            "--allow-overwrite=true", "--auto-file-renaming=false", "--file-allocation=none",
            "--disk-cache=0", "--no-conf=true", "--summary-interval=0",
            "--console-log-level=error", "--check-certificate=false",
            "--enable-http-pipelining=false", "--max-tries=1"]})
    return subjects


# --------------------------------------------------------------------------
# Workloads


def measure_alternating(runner, subjects, rounds, timeout, expect):
    """Warm-up round, then `rounds` rounds of: hyperfine over all subjects
    (wall, CPU), then GNU time over all subjects (RSS), same order."""
    raw = {s["name"]: {"wall": [], "time": []} for s in subjects}
    raw["_loadavg_1min_per_round"] = []
    raw["_other_work_per_round"] = []
    problems = []
    meter = CpuMeter(runner.h)
    for r in range(rounds + 1):
        warm = r == 0
        log(f"  round {r}/{rounds}" + (" (warm-up)" if warm else ""))
        if not warm:
            runner.wait_quiet()
            raw["_loadavg_1min_per_round"].append(float(open("/proc/loadavg").read().split()[0]))
        before = meter.snap()
        hf = runner.hyperfine_round(subjects, timeout)
        for s in subjects:
            smp = hf[s["name"]]
            if smp["exit"] not in (0, None):
                problems.append(f"{s['name']}: exit {smp['exit']} in hyperfine round {r}")
            if not warm:
                raw[s["name"]]["wall"].append(smp)
        for s in subjects:
            smp = runner.gnu_time(s["argv"], timeout)
            want_files = expect.get(s["name"], {}).get("files")
            if smp["exit"] != 0:
                problems.append(f"{s['name']}: exit {smp['exit']} under GNU time in round {r}: "
                                + smp.get("stderr", "")[-300:])
            if want_files is not None and smp["files"] != want_files:
                problems.append(f"{s['name']}: wrote {smp['files']} files, expected "
                                f"{want_files} (round {r})")
            if not warm:
                raw[s["name"]]["time"].append(smp)
        if not warm:
            raw["_other_work_per_round"].append(meter.foreign(before, meter.snap()))
    stats = {}
    for name, d in raw.items():
        if name.startswith("_"):
            continue
        stats[name] = {
            "wall_s": summary([x["wall_s"] for x in d["wall"]]),
            "cpu_s": summary([x["cpu_s"] for x in d["wall"]]),
            "rss_mib": summary([x["rss_kib"] / 1024 for x in d["time"]]),
            "cpu_s_gnu_time": summary([x["cpu_s_gnu_time"] for x in d["time"]]),
            "cpu_s_rusage_of_time": summary([x["cpu_s_rusage"] for x in d["time"]]),
            "wall_s_gnu_time": summary([x["wall_s"] for x in d["time"]]),
        }
    return raw, stats, problems


def other_work(per_round):
    """Median and max over rounds of the cores busy with other work."""
    return {
        "foreign_cores": summary([x["foreign_cores"] for x in per_round]),
        "steal_cores": summary([x["steal_cores"] for x in per_round]),
    }


def validate_getflags(runner, argv, want, timeout):
    """One --json run outside the measurements: checks the counts and
    learns how many requests the configuration makes."""
    smp = runner.gnu_time(argv + ["--json"], timeout, keep_stdout=True)
    js = getflags_json(smp.pop("stdout"))
    problems = []
    if js is None:
        problems.append(f"getflags {' '.join(argv[1:])} --json: exit {smp['exit']}, no JSON "
                        f"summary; stderr: {smp.get('stderr', '')[-300:]!r}")
        return {"sample": smp, "json": None}, problems
    counts = js.get("counts") or {}
    for k, v in want.items():
        got = js.get("requests") if k == "requests" else counts.get(k)
        if got != v:
            problems.append(f"getflags {' '.join(argv[1:])}: {k} = {got}, expected {v}")
    if smp["exit"] != 0:
        problems.append(f"getflags {' '.join(argv[1:])}: exit {smp['exit']}")
    return {"sample": smp, "json": js}, problems


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def bench_local(h, runner, getflags, base, name, gf_args, meta_codes, want, rounds, tools,
                rss_args=None):
    """B1 and B2: getflags against the peer tools on the same URLs. With
    rss_args, getflags with those arguments is one more subject of every
    round, measured for its peak RSS (B2: -e -m 1000)."""
    log(f"{name}: getflags {' '.join(gf_args)} against {', '.join(tools)}")
    out = runner.out
    pairs = url_pairs(base, meta_codes, codes_194())
    curl_cfg, plain, aria = write_lists(h, name, pairs, out)
    gf_argv = [str(getflags)] + gf_args + ["-s", base, "-q", "-o", str(out)]
    validation, problems = validate_getflags(runner, [str(getflags)] + gf_args +
                                             ["-s", base, "-o", str(out)], want, 120)
    subjects = [{"name": "getflags", "argv": gf_argv}] + peer_subjects(out, curl_cfg, plain,
                                                                       aria, tools)
    expect = {"getflags": {"files": want["ok"]}}
    if rss_args:
        v2, p2 = validate_getflags(runner, [str(getflags)] + rss_args +
                                   ["-s", base, "-o", str(out)], want, 120)
        validation = {"main": validation, "rss": v2}
        problems += p2
        subjects.append({"name": "getflags_rss",
                         "argv": [str(getflags)] + rss_args + ["-s", base, "-q", "-o", str(out)]})
        expect["getflags_rss"] = {"files": want["ok"]}
    for t in tools:
        expect[t] = {"files": len(pairs)}
    raw, stats, p2 = measure_alternating(runner, subjects, rounds, 300, expect)
    problems += p2
    c = stats.get("curl")
    ratios = {}
    for sname, st in stats.items():
        ratios[sname] = {
            "wall_vs_curl": ratio(st["wall_s"]["median"], c["wall_s"]["median"]) if c else None,
            "cpu_vs_curl": ratio(st["cpu_s"]["median"], c["cpu_s"]["median"]) if c else None,
        }
        # The best run of each against curl's best: what the machine's slow
        # spells (whole runs 1.5x slower, hitting either client) leave alone.
        if c:
            ratios[sname]["wall_vs_curl_best"] = ratio(st["wall_s"]["min"], c["wall_s"]["min"])
            ratios[sname]["cpu_vs_curl_best"] = ratio(st["cpu_s"]["min"], c["cpu_s"]["min"])
        # The same ratios taken within each round, then their median: what
        # drifts between rounds (other work on the machine) cancels out.
        if c:
            for key, field in (("wall_vs_curl_per_round", "wall_s"), ("cpu_vs_curl_per_round",
                                                                     "cpu_s")):
                ratios[sname][key] = med([ratio(a[field], b[field]) for a, b in
                                          zip(raw[sname]["wall"], raw["curl"]["wall"])])
    t = TARGETS[name]
    g = ratios["getflags"]
    met = {
        "wall": g["wall_vs_curl"] is not None and g["wall_vs_curl"] <= t["wall_ratio_max"],
        "cpu": g["cpu_vs_curl"] is not None and g["cpu_vs_curl"] <= t["cpu_ratio_max"],
        "no_problems": not problems,
    }
    if rss_args:
        rss = stats["getflags_rss"]["rss_mib"]
        met["rss_m1000"] = rss is not None and rss["median"] <= t["rss_m1000_mib_max"]
    return {
        "workload": name,
        "getflags_args": gf_args,
        "getflags_rss_args": rss_args,
        "requests": len(pairs),
        "commands": {s["name"]: shlex.join(s["argv"]) for s in subjects},
        "validation": validation,
        "samples": raw,
        "stats": stats,
        "ratios": ratios,
        "other_work": other_work(raw["_other_work_per_round"]),
        "target": t,
        "met": met,
        "problems": problems,
    }


def synthetic_tree(dest):
    """A flags tree in which every code AA..ZZ exists: the real image of
    median size copied 676 times, and a metadata.json per code with a
    country name of its own ("Country AB"), so that every code is the same
    work (metadata 200, image 200, one file saved) whatever the count.
    Returns a description for the JSON."""
    imgs = sorted((p.stat().st_size, p.parent.name) for p in
                  (FLAGS_DATA / "flags").glob("*/*.gif"))
    size, src_cc = imgs[len(imgs) // 2]
    data = (FLAGS_DATA / "flags" / src_cc / f"{src_cc}.gif").read_bytes()
    # nginx's worker runs as an unprivileged user: the tree must be readable
    # and its directory searchable by others (mkdtemp makes 0700).
    os.chmod(dest, 0o755)
    flags = Path(dest) / "flags"
    for cc in codes_676():
        d = flags / cc
        d.mkdir(parents=True)
        (d / f"{cc}.gif").write_bytes(data)
        (d / "metadata.json").write_text(json.dumps(
            {"tld_cc": f".{cc}", "iso_cc": cc.upper(), "country": f"Country {cc.upper()}"}) + "\n")
    return {"root": str(dest), "codes": 676, "image_from": f"{src_cc}.gif",
            "image_bytes": size, "image_sizes_in_flags_data": [imgs[0][0], imgs[-1][0]],
            "metadata_example": json.loads((flags / "ab" / "metadata.json").read_text())}


SYNTH_CHECKS = {
    "/flags/aa/metadata.json": 200,
    "/flags/zz/zz.gif": 200,
    "/flags/br/br.gif": 200,
    "/flags/aa/zz.gif": 404,
}


def linear_fit(xs, ys):
    """Least squares y = a + b x; returns (a, b)."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return my - b * mx, b


def max_over_min(xs):
    xs = [x for x in xs if x is not None]
    if not xs or min(xs) <= 0:
        return None
    return max(xs) / min(xs)


# B4 subjects: name -> (getflags arguments, codes). All on the synthetic
# tree, where every code is 2 requests (200) and 1 saved file.
B4_CODES_M = 20  # the -m of the code series: 20 codes can use no more
B4_CONFIGS = [
    ("codes=1", ["-e", "-l", "1", "-m", str(B4_CODES_M)], 1),
    ("codes=20", ["-e", "-l", "20", "-m", str(B4_CODES_M)], 20),
    ("codes=194", ["-e", "-l", "194", "-m", str(B4_CODES_M)], 194),
    ("codes=676", ["-e", "-m", str(B4_CODES_M)], 676),
    ("codes=20,m=100", ["-e", "-l", "20", "-m", "100"], 20),
    ("codes=194,m=100", ["-e", "-l", "194", "-m", "100"], 194),
    ("m=10", ["-e", "-m", "10"], 676),
    ("m=100", ["-e", "-m", "100"], 676),
    ("m=1000", ["-e", "-m", "1000"], 676),
]
B4_CODE_SERIES = ["codes=20", "codes=194", "codes=676"]
B4_CODE_SERIES_M100 = ["codes=20,m=100", "codes=194,m=100", "m=100"]
B4_M_SERIES = {10: "m=10", 100: "m=100", 1000: "m=1000"}


def bench_growth(h, runner, getflags, rounds):
    """B4: CPU per request and peak RSS as the number of codes and -m grow,
    on a synthetic tree where every code AA..ZZ exists."""
    log(f"B4: growth in codes (20, 194, 676 at -m {B4_CODES_M}) and in -m (10, 100, 1000 at "
        "676 codes), synthetic tree")
    root = Path(tempfile.mkdtemp(prefix="getflags-bench-synth-"))
    h.extra_dirs.append(root)
    tree = synthetic_tree(root)
    nginx = Nginx(h, root=root, name="nginx-synth", checks=SYNTH_CHECKS)
    base = nginx.start()
    try:
        return _bench_growth(h, runner, getflags, base, rounds, tree)
    finally:
        nginx.stop()


def _bench_growth(h, runner, getflags, base, rounds, tree):
    out = runner.out
    subjects, validations, problems = [], {}, []
    for name, args, codes in B4_CONFIGS:
        want = {"ok": codes, "not_found": 0, "error": 0, "requests": 2 * codes}
        full = args + ["-s", base]
        v, p = validate_getflags(runner, [str(getflags)] + full + ["-o", str(out)], want, 120)
        validations[name] = v
        problems += p
        subjects.append({"name": name, "argv": [str(getflags)] + full + ["-q", "-o", str(out)],
                         "files": codes, "args": args})
    # Process start-up alone (exec, dynamic loading, no request): one part
    # of the fixed cost of a run, for information.
    subjects.append({"name": "startup", "argv": [str(getflags), "--version"], "files": 0,
                     "args": ["--version"]})
    expect = {s["name"]: {"files": s["files"]} for s in subjects}
    raw, stats, p2 = measure_alternating(runner, subjects, rounds, 300, expect)
    problems += p2

    def cpu_us(name):
        return stats[name]["cpu_s"]["median"] * 1e6

    per = {}
    for s in subjects:
        name = s["name"]
        if name == "startup":
            continue
        vj = validations[name]["json"] or {}
        req = vj.get("requests") or 2 * s["files"]
        per[name] = {
            "args": s["args"],
            "codes": s["files"],
            "requests": req,
            "concurrency": vj.get("concurrency"),
            "cpu_us": cpu_us(name),
            "cpu_per_request_us": cpu_us(name) / req,
            "rss_mib": stats[name]["rss_mib"]["median"],
        }

    # The verdict: CPU = fixed + per_request x requests, least squares over
    # the three code counts at the same effective concurrency; the cost per
    # request net of that fixed cost should not change with the count.
    xs = [per[c]["requests"] for c in B4_CODE_SERIES]
    fixed, slope = linear_fit(xs, [per[c]["cpu_us"] for c in B4_CODE_SERIES])
    for name, pc in per.items():
        pc["cpu_per_request_net_of_fixed_us"] = (pc["cpu_us"] - fixed) / pc["requests"]
    for c in B4_CODE_SERIES:
        pc = per[c]
        pc["fit_residual_us"] = pc["cpu_us"] - (fixed + slope * pc["requests"])
    net = [per[c]["cpu_per_request_net_of_fixed_us"] for c in B4_CODE_SERIES]
    flat_net = max_over_min(net)
    flat_raw = max_over_min([per[c]["cpu_per_request_us"] for c in B4_CODE_SERIES])

    # How far that ratio can be trusted: a bootstrap over the rounds
    # (resample the rounds, take each subject's median CPU, fit again).
    # At 40 requests, 0.4 ms of error in the fixed cost is 10 us a request.
    nr = len(raw["codes=20"]["wall"])
    rng = random.Random(1)
    boot = []
    for _ in range(2000):
        pick = [rng.randrange(nr) for _ in range(nr)]
        ys = [statistics.median(raw[c]["wall"][k]["cpu_s"] for k in pick) * 1e6
              for c in B4_CODE_SERIES]
        a, b = linear_fit(xs, ys)
        r_ = max_over_min([(y - a) / x for x, y in zip(xs, ys)])
        boot.append(r_ if r_ is not None else float("inf"))
    boot.sort()
    ci = [boot[int(0.025 * len(boot))], boot[int(0.975 * len(boot)) - 1]]
    share_ok = sum(1 for x in boot if x <= TARGETS["B4"]["flat_ratio_max"]) / len(boot)

    # The same, fitted within each round (drift between rounds cancels).
    per_round = []
    for k in range(len(raw["codes=20"]["wall"])):
        ys = [raw[c]["wall"][k]["cpu_s"] * 1e6 for c in B4_CODE_SERIES]
        a, b = linear_fit(xs, ys)
        per_round.append({"fixed_us": a, "per_request_us": b,
                          "net_max_over_min": max_over_min([(y - a) / x
                                                            for x, y in zip(xs, ys)])})

    # Cross-checks, for information.
    one = per["codes=1"]
    direct = {
        "cpu_us_of_1_code": one["cpu_us"],
        "requests": one["requests"],
        "fit_predicts_us": fixed + slope * one["requests"],
        "fixed_us_direct": one["cpu_us"] - slope * one["requests"],
    }
    xs100 = [per[c]["requests"] for c in B4_CODE_SERIES_M100]
    fixed100, slope100 = linear_fit(xs100, [per[c]["cpu_us"] for c in B4_CODE_SERIES_M100])
    net100 = [(per[c]["cpu_us"] - fixed100) / per[c]["requests"] for c in B4_CODE_SERIES_M100]
    at_m100 = {
        "configs": B4_CODE_SERIES_M100,
        "concurrency": [per[c]["concurrency"] for c in B4_CODE_SERIES_M100],
        "fixed_cpu_us": fixed100,
        "per_request_cpu_us": slope100,
        "cpu_per_request_net_of_fixed_us": net100,
        "cpu_per_request_net_max_over_min": max_over_min(net100),
        "cpu_per_request_raw_max_over_min":
            max_over_min([per[c]["cpu_per_request_us"] for c in B4_CODE_SERIES_M100]),
    }
    # What a connection costs: CPU over the effective concurrency at 676
    # codes (the requests are the same 1352 at every -m).
    mc = [per[c]["concurrency"] or m for m, c in B4_M_SERIES.items()]
    _, per_conn = linear_fit(mc, [per[c]["cpu_us"] for c in B4_M_SERIES.values()])

    rss_codes = [per[c]["rss_mib"] for c in B4_CODE_SERIES]
    flat_rss = max_over_min(rss_codes)
    rss_by_m = {m: per[c]["rss_mib"] for m, c in B4_M_SERIES.items()}
    t = TARGETS["B4"]
    return {
        "workload": "B4",
        "tree": tree,
        "server": "nginx (one worker) serving the synthetic tree",
        "codes_series_m": B4_CODES_M,
        "commands": {s["name"]: shlex.join(s["argv"]) for s in subjects},
        "validation": validations,
        "samples": raw,
        "stats": stats,
        "per_config": per,
        "cpu_fit_over_codes": {"configs": B4_CODE_SERIES, "fixed_cpu_us": fixed,
                               "per_request_cpu_us": slope},
        "cpu_per_request_net_of_fixed_max_over_min_codes": flat_net,
        "cpu_per_request_net_max_over_min_bootstrap_95": ci,
        "cpu_per_request_net_bootstrap_share_within_target": share_ok,
        "cpu_per_request_raw_max_over_min_codes": flat_raw,
        "per_round_fits": per_round,
        "cpu_per_request_net_max_over_min_per_round_median":
            med([r["net_max_over_min"] for r in per_round]),
        "fixed_cost_direct": direct,
        "startup_cpu_us": cpu_us("startup"),
        "code_series_at_m100": at_m100,
        "cpu_per_connection_us": per_conn,
        "rss_max_over_min_codes": flat_rss,
        "rss_mib_by_m": rss_by_m,
        "other_work": other_work(raw["_other_work_per_round"]),
        "target": t,
        "met": {
            "cpu_per_request_flat": flat_net is not None and flat_net <= t["flat_ratio_max"],
            "rss_flat_in_codes": flat_rss is not None and flat_rss <= t["flat_ratio_max"],
            "rss_grows_with_m": rss_by_m[1000] > rss_by_m[10],
            "no_problems": not problems,
        },
        "problems": problems,
    }


def bench_delay(h, runner, getflags, flagserver, seed, rounds):
    """B3: makespan against the ideal under flagserver's delay preset."""
    log(f"B3: getflags -e -m 1000 against flagserver --preset delay --seed {seed}")
    out = runner.out
    samples, problems = [], []
    fs_args = ["--preset", "delay", "--seed", str(seed), "--port", "0", "--bind", "127.0.0.1"]
    if "--directory" in flagserver_help(flagserver):
        fs_args += ["--directory", str(FLAGS_DATA)]
    cmd = None
    for r in range(rounds + 1):
        warm = r == 0
        log(f"  run {r}/{rounds}" + (" (warm-up)" if warm else ""))
        logfile = h.tmp / f"b3-flagserver-{r}.log"
        if not warm:
            runner.wait_quiet()
        meter = CpuMeter(h)
        before = meter.snap()
        fs = FlagServer(h, flagserver, fs_args, logfile)
        base = fs.start()
        argv = [str(getflags), "-e", "-m", "1000", "-s", base, "--json", "-q", "-o", str(out)]
        cmd = shlex.join(argv)
        try:
            smp = runner.gnu_time(argv, 120, keep_stdout=True)
        finally:
            time.sleep(0.1)  # let the last access-log line reach the file
            fs.stop()
        other = meter.foreign(before, meter.snap())
        js = getflags_json(smp.pop("stdout"))
        smp["json"] = js
        try:
            smp["server"] = ideal_from_log(logfile)
        except (OSError, RuntimeError) as e:
            smp["server"] = None
            problems.append(f"run {r}: {e}")
        if smp["server"] and smp["server"]["unrecognised_lines"]:
            problems.append(f"run {r}: access-log lines not understood, e.g. "
                            f"{smp['server']['unrecognised_lines'][0]!r}")
        if js is None:
            problems.append(f"run {r}: exit {smp['exit']}, no JSON summary; stderr "
                            f"{smp.get('stderr', '')[-300:]!r}")
        else:
            c = js.get("counts") or {}
            if c.get("error") != 0:
                problems.append(f"run {r}: counts.error = {c.get('error')} (exit {smp['exit']}); "
                                f"stderr {smp.get('stderr', '')[-300:]!r}")
            if c.get("ok") != 194 or c.get("not_found") != 482:
                problems.append(f"run {r}: counts {c}, expected ok 194, not_found 482")
            if js.get("concurrency") is not None and js["concurrency"] < 676:
                problems.append(f"run {r}: getflags ran at concurrency {js['concurrency']}, "
                                "below the 676 codes the ideal assumes")
        if smp["exit"] != 0:
            problems.append(f"run {r}: getflags exit {smp['exit']}")
        if smp["server"] and js and js.get("elapsed_s"):
            ideal = smp["server"]["ideal_s"]
            smp["ratio_elapsed"] = js["elapsed_s"] / ideal
            smp["ratio_wall"] = smp["wall_s"] / ideal
        smp["warmup"] = warm
        smp["loadavg_1min"] = float(open("/proc/loadavg").read().split()[0])
        smp["other_work"] = other
        samples.append(smp)
    meas = [s for s in samples if not s["warmup"]]
    errors = [((s.get("json") or {}).get("counts") or {}).get("error") for s in meas]
    t = TARGETS["B3"]
    st = {
        "wall_s": summary([s["wall_s"] for s in meas]),
        "elapsed_s": summary([(s.get("json") or {}).get("elapsed_s") for s in meas]),
        "ideal_s": summary([(s.get("server") or {}).get("ideal_s") for s in meas]),
        "ratio_elapsed": summary([s.get("ratio_elapsed") for s in meas]),
        "ratio_wall": summary([s.get("ratio_wall") for s in meas]),
        "cpu_s": summary([s["cpu_s_rusage"] for s in meas]),
        "cpu_s_gnu_time": summary([s["cpu_s_gnu_time"] for s in meas]),
        "rss_mib": summary([s["rss_kib"] / 1024 for s in meas]),
        "errors_total": sum(e for e in errors if isinstance(e, int)) if errors else None,
        "max_inflight": summary([(s.get("server") or {}).get("max_inflight") for s in meas]),
    }
    rw = st["ratio_wall"]
    met = {
        "makespan": rw is not None and rw["median"] <= t["makespan_ratio_max"],
        "errors": all(e == 0 for e in errors) and bool(errors),
        "rss": st["rss_mib"] is not None and st["rss_mib"]["median"] <= t["rss_mib_max"],
        "no_problems": not problems,
    }
    return {
        "workload": "B3",
        "other_work": other_work([s["other_work"] for s in meas]),
        "seed": seed,
        "flagserver_args": fs_args,
        "command": cmd,
        "samples": samples,
        "stats": st,
        "target": t,
        "met": met,
        "problems": problems,
    }


# --------------------------------------------------------------------------
# B5: remote-like, HTTPS over HTTP/2 through a round trip

B5_N = 194
B5_HANDSHAKE_RTTS = 2  # TCP (rttproxy holds the first bytes for it) + TLS 1.3


def b5_ideal_s(rtt_s, m, n=B5_N):
    """The best makespan the round trip allows: the handshakes, then 2n
    requests of one round trip each, m in flight at a time, a code's image
    only after its metadata. ceil(2n/m) round trips are needed for the
    requests, and with m <= n they suffice (each round trip's m slots take
    any code's next request); at m = 5, 20, 100 that equals
    2 x ceil(n/m), the codes taken m at a time."""
    return rtt_s * (B5_HANDSHAKE_RTTS + max(2, -(-2 * n // m)))


def b5_measured_rtt_ms(port, cacert, n=15):
    """The round trip one small request really takes through rttproxy on
    port (a TLS keep-alive connection, HTTP/1.1, one request at a time),
    median of n: what the proxy's timers and nginx add to the nominal RTT.
    Reported next to the ideal, which stays on the nominal RTT."""
    import ssl
    ctx = ssl.create_default_context(cafile=cacert)
    ctx.check_hostname = False
    ctx.set_alpn_protocols(["http/1.1"])
    times = []
    with socket.create_connection(("127.0.0.1", port), 10) as raw:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            for _ in range(n):
                t = time.perf_counter()
                s.sendall(b"GET /flags/ad/ad.gif HTTP/1.1\r\nHost: localhost\r\n\r\n")
                buf = b""
                while b"\r\n\r\n" not in buf:
                    chunk = s.recv(65536)
                    if not chunk:
                        raise RuntimeError("connection closed during the RTT probe")
                    buf += chunk
                head, body = buf.split(b"\r\n\r\n", 1)
                length = [ln.split(b":", 1)[1] for ln in head.split(b"\r\n")
                          if ln.lower().startswith(b"content-length:")]
                need = int(length[0]) if length else 0
                while len(body) < need:
                    chunk = s.recv(65536)
                    if not chunk:
                        raise RuntimeError("connection closed during the RTT probe")
                    body += chunk
                times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def b5_cdn_module():
    sys.path.insert(0, str(REPO / "tests" / "integration"))
    os.environ.setdefault("GF_SRCDIR", str(REPO))
    import cdn  # noqa: E402  (the test suite's CDN-like nginx and rttproxy)
    return cdn


def b5_log_slice(cdn, port_name, start):
    """Access-log entries of port_name after the first `start` lines, with
    the number of distinct connections, statuses and protocols."""
    entries = cdn.log(port_name)[start:]
    statuses = {}
    for e in entries:
        statuses[e["status"]] = statuses.get(e["status"], 0) + 1
    return {
        "requests": len(entries),
        "connections": len({e["connection"] for e in entries}),
        "status": statuses,
        "protocols": sorted({e["protocol"] for e in entries}),
        "tls_resumed": sum(1 for e in entries if e["ssl_reused"] == "r"),
    }


def curl_default_ca_bundle():
    """The CA bundle curl reads when not given --cacert (libcurl's built-in
    default), or None."""
    try:
        r = subprocess.run(["curl-config", "--ca"], capture_output=True, text=True, timeout=10)
        path = r.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        path = ""
    for p in (path, "/etc/ssl/certs/ca-certificates.crt"):
        if p and os.path.isfile(p):
            return p
    return None


def b5_system_bundle(h, cacert):
    """A bundle of the system's CAs plus the test root: what curl trusts
    against the real site, with the test server's root added, so that it
    trusts what getflags trusts with --cacert (which adds to the system's
    CAs rather than replacing them). None when the system has no bundle."""
    system = curl_default_ca_bundle()
    if system is None:
        return None
    path = h.tmp / "b5-system-and-test-ca.pem"
    with open(path, "wb") as out:
        out.write(Path(system).read_bytes().rstrip(b"\n") + b"\n")
        out.write(Path(cacert).read_bytes())
    return path


def bench_remote(h, runner, getflags, rttproxy, rounds, rtts_ms, ms):
    """B5: getflags -a against curl --parallel on the same 388 URLs, from
    the CDN-like nginx over HTTP/2 through rttproxy."""
    cdnmod = b5_cdn_module()
    cdnmod.RTTPROXY = str(rttproxy)
    out = runner.out
    cdn = cdnmod.Cdn(root=str(FLAGS_DATA))
    log(f"B5: CDN-like nginx, HTTP/2 on port {cdn.ports['h2']}; RTT {rtts_ms} ms; -m {ms}")
    configs, problems = {}, []
    bundle = b5_system_bundle(h, cdn.cacert)
    if bundle is None:
        problems.append("no system CA bundle: curl is measured with the test root only")
    try:
        for rtt in rtts_ms:
            px = cdnmod.RttProxy(cdn.ports["h2"], rtt // 2)
            cdn.proxies.append(px)
            base = f"https://127.0.0.1:{px.port}/flags"
            pairs = url_pairs(base, codes_194(), codes_194())
            try:
                rtt_measured = b5_measured_rtt_ms(px.port, cdn.cacert)
                log(f"B5 rtt={rtt}: a request's round trip through the proxy takes "
                    f"{rtt_measured:.1f} ms")
            except (OSError, RuntimeError) as e:
                rtt_measured = None
                problems.append(f"rtt={rtt}: round-trip probe failed: {e}")
            for m in ms:
                name = f"rtt={rtt} m={m}"
                log(f"B5 {name}: through rttproxy on port {px.port}")
                curl_cfg, _, _ = write_lists(h, f"b5-{rtt}-{m}", pairs, out)
                subjects = [
                    {"name": "getflags", "argv": [
                        str(getflags), "-a", "-m", str(m), "-s", base, "--cacert", cdn.cacert,
                        "-q", "-o", str(out)]},
                    {"name": "curl", "argv": [
                        "curl", "--silent", "--show-error", "--parallel", "--parallel-max",
                        str(m), "--cacert", cdn.cacert, "-K", str(curl_cfg)]},
                ]
                if bundle is not None:
                    # getflags' --cacert adds the test root to the system's
                    # CAs; curl's replaces them. This curl trusts the same
                    # CAs as getflags, as it does against the real site.
                    subjects.append({"name": "curl_system_cas", "argv": [
                        "curl", "--silent", "--show-error", "--parallel", "--parallel-max",
                        str(m), "--cacert", str(bundle), "-K", str(curl_cfg)]})
                # One checked run of each outside the timing: errors, and
                # connections and protocols from nginx's log.
                checks = {}
                for s in subjects:
                    start = len(cdn.log("h2"))
                    argv = s["argv"] + (["--json"] if s["name"] == "getflags" else [])
                    smp = runner.gnu_time(argv, 600, keep_stdout=True)
                    time.sleep(0.1)  # nginx writes a line when a request ends
                    seen = b5_log_slice(cdn, "h2", start)
                    c = {"exit": smp["exit"], "files": smp["files"], "server": seen}
                    if s["name"] == "getflags":
                        js = getflags_json(smp["stdout"])
                        c["json"] = js
                        c["errors"] = ((js or {}).get("counts") or {}).get("error")
                        want_files = 194
                    else:
                        # curl has no summary: a URL that did not end in a
                        # 200 logged by nginx, or a missing file, is an error.
                        c["errors"] = (len(pairs) - seen["status"].get(200, 0)
                                       + max(0, len(pairs) - smp["files"]))
                        want_files = len(pairs)
                    if smp["exit"] != 0 or c["errors"] != 0 or smp["files"] != want_files:
                        problems.append(f"{name} {s['name']}: exit {smp['exit']}, errors "
                                        f"{c['errors']}, {smp['files']} files; stderr "
                                        f"{smp.get('stderr', '')[-300:]!r}")
                    checks[s["name"]] = c
                expect = {"getflags": {"files": 194}, "curl": {"files": len(pairs)},
                          "curl_system_cas": {"files": len(pairs)}}
                raw, stats, p2 = measure_alternating(runner, subjects, rounds, 900, expect)
                problems += [f"{name} {p}" for p in p2]
                ideal = b5_ideal_s(rtt / 1000, m)
                g, c = stats["getflags"], stats["curl"]
                res = {
                    "rtt_ms": rtt, "m": m, "ideal_s": ideal,
                    # Informative: the same formula at the round trip a
                    # request really takes through the proxy (the target
                    # is on ideal_s).
                    "rtt_measured_ms": rtt_measured,
                    "ideal_at_measured_rtt_s": (b5_ideal_s(rtt_measured / 1000, m)
                                                if rtt_measured else None),
                    "commands": {s["name"]: shlex.join(s["argv"]) for s in subjects},
                    "checks": checks, "samples": raw, "stats": stats,
                    "other_work": other_work(raw["_other_work_per_round"]),
                    "ratios": {},
                }
                cs = stats.get("curl_system_cas")
                for sname, st in stats.items():
                    res["ratios"][sname] = {
                        "wall_vs_ideal": ratio(st["wall_s"]["median"], ideal),
                        "wall_vs_curl": ratio(st["wall_s"]["median"], c["wall_s"]["median"]),
                        "cpu_vs_curl": ratio(st["cpu_s"]["median"], c["cpu_s"]["median"]),
                        # Against curl trusting the same CAs (informative;
                        # the targets are on plain "curl" above).
                        "wall_vs_curl_system_cas": ratio(st["wall_s"]["median"],
                                                         cs["wall_s"]["median"]) if cs else None,
                        "cpu_vs_curl_system_cas": ratio(st["cpu_s"]["median"],
                                                        cs["cpu_s"]["median"]) if cs else None,
                    }
                t = TARGETS["B5"]
                rg = res["ratios"]["getflags"]
                res["met"] = {
                    "errors": checks["getflags"]["errors"] == 0,
                    "one_connection": checks["getflags"]["server"]["connections"] == 1,
                    "makespan_vs_ideal": rg["wall_vs_ideal"] is not None
                    and rg["wall_vs_ideal"] <= t["makespan_vs_ideal_max"],
                    "below_curl": rg["wall_vs_curl"] is not None and rg["wall_vs_curl"] < 1.0,
                    "cpu": rg["cpu_vs_curl"] is not None
                    and rg["cpu_vs_curl"] <= t["cpu_ratio_max"],
                }
                configs[name] = res
    finally:
        cdn.stop()
    met = {k: all(r["met"][k] for r in configs.values()) for k in
           ("errors", "one_connection", "makespan_vs_ideal", "below_curl", "cpu")}
    met["no_problems"] = not problems
    return {
        "workload": "B5",
        "rtts_ms": rtts_ms,
        "m": ms,
        "ideal": "RTT x (2 + max(2, ceil(2 x 194 / m))): TCP and TLS 1.3 handshakes, then "
                 "the 388 requests of one round trip each, m at a time",
        "configs": configs,
        "other_work": {"foreign_cores": summary(
            [x["foreign_cores"] for r in configs.values()
             for x in r["samples"]["_other_work_per_round"]])},
        "target": TARGETS["B5"],
        "met": met,
        "problems": problems,
    }


def flagserver_version(binary):
    if not binary:
        return None
    r = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
    if r.returncode == 0 and r.stdout.strip():
        return r.stdout.strip().splitlines()[0]
    return "flagserver (no --version; built from the same tree as getflags)"


def flagserver_help(binary):
    try:
        r = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=5)
        return r.stdout + r.stderr
    except (OSError, subprocess.SubprocessError):
        return ""


# --------------------------------------------------------------------------
# Machine description


def first_line(argv, stderr=False):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        return f"unavailable ({e})"
    text = (r.stderr if stderr else r.stdout) or r.stdout or r.stderr
    return text.strip().splitlines()[0] if text.strip() else ""


def mount_of(path):
    """The /proc/mounts line of the file system holding path."""
    best = ("", "")
    path = os.path.realpath(path)
    with open("/proc/mounts") as f:
        for line in f:
            parts = line.split()
            mp = parts[1]
            if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best[0]):
                best = (mp, line.strip())
    return best[1]


def machine(getflags, flagserver, build):
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    gf_version = subprocess.run([str(getflags), "--version"], capture_output=True,
                                text=True).stdout.strip().splitlines()
    git = {}
    for key, argv in (("commit", ["git", "rev-parse", "HEAD"]),
                      ("describe", ["git", "describe", "--always", "--dirty"])):
        git[key] = first_line(["git", "-C", str(REPO)] + argv[1:])
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src",
                            "include", "CMakeLists.txt"],
                           capture_output=True, text=True).stdout.splitlines()
    git["uncommitted_source_files"] = len(dirty)
    build_type = ""
    cache = Path(build) / "CMakeCache.txt"
    if cache.exists():
        m = re.search(r"^CMAKE_BUILD_TYPE:\w+=(.*)$", cache.read_text(), re.M)
        build_type = m.group(1) if m else ""
    return {
        "uname": " ".join(x for x in platform.uname() if x),
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "memory": mem,
        "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
        "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "tmp_dir_filesystem": first_line(["stat", "-f", "-c", "%T", tempfile.gettempdir()]),
        "tmp_dir_mount": mount_of(tempfile.gettempdir()),
        "versions": {
            "getflags": gf_version,
            "flagserver": flagserver_version(flagserver),
            "curl": first_line(["curl", "--version"]),
            "wget2": first_line(["wget2", "--version"]),
            "aria2c": first_line(["aria2c", "--version"]),
            "nginx": first_line(["nginx", "-v"], stderr=True),
            "hyperfine": first_line(["hyperfine", "--version"]),
            "gnu_time": first_line([GNU_TIME, "--version"]),
            "python": sys.version.split()[0],
        },
        "build_dir": str(build),
        "build_type": build_type,
        "git": git,
    }


# --------------------------------------------------------------------------
# Report


def fmt_ms(st):
    if not st:
        return "–"
    return f"{st['median'] * 1000:.1f} ({st['min'] * 1000:.1f}–{st['max'] * 1000:.1f})"


def fmt_mib(st):
    if not st:
        return "–"
    return f"{st['median']:.1f}"


def fmt_x(x):
    return "–" if x is None else f"{x:.2f}×"


def yes(b):
    return "yes" if b else "**no**"


def table(results):
    rows = [["Workload", "Subject", "Requests", "Wall ms, median (min–max)",
             "CPU ms, median (min–max)", "Peak RSS MiB", "Result", "Target", "Met"]]
    for name in ("B1", "B2"):
        r = results.get(name)
        if not r:
            continue
        label = {"B1": "B1 all-local", "B2": "B2 every-local"}[name]
        t = r["target"]
        for sname, st in r["stats"].items():
            ra = r["ratios"][sname]
            subj = {"getflags": f"getflags {' '.join(r['getflags_args'])}",
                    "getflags_rss": f"getflags {' '.join(r.get('getflags_rss_args') or [])}",
                    "curl": "curl --parallel --parallel-max 100",
                    "wget2": "wget2 --max-threads=100",
                    "aria2c": "aria2c -j 100"}[sname]
            if sname == "getflags_rss":
                result = (f"peak RSS {fmt_mib(st['rss_mib'])} MiB (median); wall "
                          f"{fmt_x(ra['wall_vs_curl'])}, CPU {fmt_x(ra['cpu_vs_curl'])} curl")
                target = f"peak RSS ≤ {t['rss_m1000_mib_max']:.0f} MiB"
                met = f"RSS {yes(r['met'].get('rss_m1000'))}"
            elif sname == "getflags":
                result = (f"wall {fmt_x(ra['wall_vs_curl'])}, CPU {fmt_x(ra['cpu_vs_curl'])} curl "
                          f"(per-round: {fmt_x(ra.get('wall_vs_curl_per_round'))}, "
                          f"{fmt_x(ra.get('cpu_vs_curl_per_round'))}; best runs: "
                          f"{fmt_x(ra.get('wall_vs_curl_best'))}, "
                          f"{fmt_x(ra.get('cpu_vs_curl_best'))})")
                target = f"wall, CPU ≤ {t['wall_ratio_max']:.1f}× curl"
                if t["aim"] < t["wall_ratio_max"]:
                    target += f" (aim {t['aim']:.1f}×)"
                met = f"wall {yes(r['met']['wall'])}, CPU {yes(r['met']['cpu'])}"
            elif sname == "curl":
                result, target, met = "reference", "", ""
            else:
                result = f"wall {fmt_x(ra['wall_vs_curl'])}, CPU {fmt_x(ra['cpu_vs_curl'])} curl"
                target, met = "", ""
            rows.append([label, subj, str(r["requests"]), fmt_ms(st["wall_s"]),
                         fmt_ms(st["cpu_s"]), fmt_mib(st["rss_mib"]), result, target, met])
    r = results.get("B3")
    if r:
        st, t = r["stats"], r["target"]
        errs = st["errors_total"]
        if st["ratio_wall"]:
            result = (f"makespan {st['wall_s']['median']:.2f} s / ideal "
                      f"{st['ideal_s']['median']:.2f} s = {st['ratio_wall']['median']:.3f}× "
                      f"(worst {st['ratio_wall']['max']:.3f}×; getflags elapsed_s "
                      f"{st['ratio_elapsed']['median']:.3f}×); errors {errs}")
        else:
            result = f"no makespan/ideal (see problems); errors {errs}"
        rows.append(["B3 delay", f"getflags -e -m 1000, flagserver delay seed {r['seed']}", "870",
                     fmt_ms(st["wall_s"]), fmt_ms(st["cpu_s"]), fmt_mib(st["rss_mib"]), result,
                     f"≤ {t['makespan_ratio_max']}× ideal, 0 errors, RSS ≤ "
                     f"{t['rss_mib_max']:.0f} MiB",
                     f"makespan {yes(r['met']['makespan'])}, errors {yes(r['met']['errors'])}, "
                     f"RSS {yes(r['met']['rss'])}"])
    r = results.get("B4")
    if r:
        label = "B4 growth (synthetic)"
        fit = r["cpu_fit_over_codes"]
        fixed_ms = fit["fixed_cpu_us"] / 1000
        for name, pc in r["per_config"].items():
            st = r["stats"][name]
            conc = pc.get("concurrency")
            subj = f"getflags {' '.join(pc['args'])}"
            if conc is not None and conc != int(pc["args"][pc["args"].index("-m") + 1]):
                subj += f" (runs at {conc})"
            if name == "codes=1":
                d = r["fixed_cost_direct"]
                result = (f"direct check of the fit: CPU {d['cpu_us_of_1_code'] / 1000:.2f} ms, "
                          f"fit predicts {d['fit_predicts_us'] / 1000:.2f} ms")
            else:
                result = (f"CPU/request {pc['cpu_per_request_us']:.0f} µs raw, "
                          f"{pc['cpu_per_request_net_of_fixed_us']:.1f} µs net of the "
                          f"{fixed_ms:.1f} ms fixed")
            rows.append([label, subj, str(pc["requests"]), fmt_ms(st["wall_s"]),
                         fmt_ms(st["cpu_s"]), fmt_mib(st["rss_mib"]), result, "", ""])
        st = r["stats"]["startup"]
        rows.append([label, "getflags --version (process start-up only)", "0",
                     fmt_ms(st["wall_s"]), fmt_ms(st["cpu_s"]), fmt_mib(st["rss_mib"]),
                     "part of the fixed cost", "", ""])
        rb = r["rss_mib_by_m"]
        m100 = r["code_series_at_m100"]
        rss_c = [r["per_config"][c]["rss_mib"] for c in B4_CODE_SERIES]
        ci = r["cpu_per_request_net_max_over_min_bootstrap_95"]
        rows.append([label, "summary: CPU", "", "", "", "",
                     f"fit over 20/194/676 codes at -m {r['codes_series_m']}: CPU = "
                     f"{fixed_ms:.2f} ms + {fit['per_request_cpu_us']:.1f} µs × requests; "
                     f"CPU/request max/min over codes "
                     f"{fmt_x(r['cpu_per_request_net_of_fixed_max_over_min_codes'])} net of "
                     f"fixed (bootstrap 95% {fmt_x(ci[0])}–{fmt_x(ci[1])}), "
                     f"{fmt_x(r['cpu_per_request_raw_max_over_min_codes'])} raw; at -m 100 "
                     f"(runs at {'/'.join(str(c) for c in m100['concurrency'])}) "
                     f"{fmt_x(m100['cpu_per_request_net_max_over_min'])} net; a connection "
                     f"≈ {r['cpu_per_connection_us']:.0f} µs",
                     f"net CPU/request flat over codes: ≤ {r['target']['flat_ratio_max']}×",
                     f"CPU {yes(r['met']['cpu_per_request_flat'])}"])
        rows.append([label, "summary: memory", "", "", "", "",
                     f"RSS max/min over 20/194/676 codes {fmt_x(r['rss_max_over_min_codes'])} "
                     f"({'/'.join(f'{r_:.1f}' for r_ in rss_c)} MiB); RSS at -m 10/100/1000 "
                     f"(676 codes): {rb[10]:.1f}/{rb[100]:.1f}/{rb[1000]:.1f} MiB",
                     f"RSS flat over codes (≤ {r['target']['flat_ratio_max']}×), grows with -m",
                     f"flat {yes(r['met']['rss_flat_in_codes'])}, grows with -m "
                     f"{yes(r['met']['rss_grows_with_m'])}"])
    r = results.get("B5")
    if r:
        t = r["target"]
        for name, c in r["configs"].items():
            label = f"B5 remote-like, RTT {c['rtt_ms']} ms"
            for sname, st in c["stats"].items():
                ra, chk = c["ratios"][sname], c["checks"][sname]
                seen = chk["server"]
                common = (f"makespan {fmt_x(ra['wall_vs_ideal'])} the ideal "
                          f"{c['ideal_s']:.2f} s; errors {chk['errors']}; connections "
                          f"{seen['connections']} ({'/'.join(seen['protocols']) or '?'})")
                if c.get("rtt_measured_ms") and sname == "getflags":
                    common += (f"; a request's round trip through the proxy "
                               f"{c['rtt_measured_ms']:.1f} ms")
                if sname == "getflags":
                    subj = f"getflags -a -m {c['m']}"
                    result = (common + f"; wall {fmt_x(ra['wall_vs_curl'])}, CPU "
                              f"{fmt_x(ra['cpu_vs_curl'])} curl")
                    if ra.get("cpu_vs_curl_system_cas") is not None:
                        result += (f" (curl trusting the system's CAs too: wall "
                                   f"{fmt_x(ra['wall_vs_curl_system_cas'])}, CPU "
                                   f"{fmt_x(ra['cpu_vs_curl_system_cas'])})")
                    target = (f"0 errors, 1 connection, ≤ {t['makespan_vs_ideal_max']}× ideal "
                              f"and below curl, CPU ≤ {t['cpu_ratio_max']}× curl")
                    m_ = c["met"]
                    met = (f"errors {yes(m_['errors'])}, 1 conn {yes(m_['one_connection'])}, "
                           f"ideal {yes(m_['makespan_vs_ideal'])}, below curl "
                           f"{yes(m_['below_curl'])}, CPU {yes(m_['cpu'])}")
                elif sname == "curl_system_cas":
                    subj = (f"curl --parallel --parallel-max {c['m']}, "
                            f"--cacert: the system's CAs + the test root")
                    result, target, met = common + "; the same CAs getflags trusts", "", ""
                else:
                    subj = f"curl --parallel --parallel-max {c['m']}, --cacert: the test root"
                    result, target, met = common + "; reference", "", ""
                rows.append([label, subj, "388", fmt_ms(st["wall_s"]), fmt_ms(st["cpu_s"]),
                             fmt_mib(st["rss_mib"]), result, target, met])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for k, row in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(row)) + " |")
        if k == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def markdown(doc):
    m = doc["machine"]
    lines = [
        f"Measured {doc['finished_utc']} with `{doc['command']}`"
        + (" (quick smoke run, not for comparison)" if doc["quick"] else "")
        + f": {doc['runs']} alternating runs per subject after a warm-up"
        + "".join(f" ({', '.join(extra)})" for extra in [[
            f"{doc[k]} for {w}" for k, w in (("b12_runs", "B1 and B2"), ("b4_runs", "B4"))
            if doc.get(k) not in (None, doc["runs"])
            and any(x in doc["results"] for x in w.split(" and "))]] if extra)
        + "; medians.",
        "",
        f"Machine: {m['cpu_model']}, {m['nproc']} cores, {m['memory']}; {m['uname']}.",
        f"{(m['versions']['getflags'] or ['getflags ?'])[0]} ({m['build_type']} build, git "
        f"{m['git']['describe']}); {m['versions']['curl'].split(' (')[0]}; "
        f"{m['versions']['wget2'].split(' - ')[0]}; {m['versions']['aria2c']}; "
        f"{m['versions']['nginx']}.",
        f"Output files on {m.get('output_dir_filesystem', '?')}. "
        f"Load average (1 min) at start {m['loadavg_at_start'][0]}, at end "
        f"{m.get('loadavg_at_end', ['?'])[0]} (the machine is shared; see bench/README.md).",
        "",
        doc["table"],
        "",
    ]
    noise = []
    for w, r in doc["results"].items():
        fc = (r.get("other_work") or {}).get("foreign_cores")
        if fc:
            noise.append(f"{w} {fc['median']:.2f} (max {fc['max']:.2f})")
    if noise:
        lines += ["Other work on the machine while measuring, in busy cores out of "
                  f"{m['nproc']} (median over rounds): " + ", ".join(noise) + ".", ""]
    problems = [(w, p) for w, r in doc["results"].items() for p in r.get("problems", [])]
    if problems:
        lines.append("Problems seen:")
        lines.append("")
        for w, p in problems:
            lines.append(f"- {w}: {p}")
        lines.append("")
    for w, why in doc.get("skipped", {}).items():
        lines.append(f"- {w} skipped: {why}")
    return "\n".join(lines).rstrip() + "\n"


def write_atomic(path, text):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description="getflags benchmark suite (see bench/README.md)")
    ap.add_argument("--runs", type=int, default=7, help="measured runs per subject (default 7)")
    ap.add_argument("--build", default=str(REPO / "build-bench"), help="CMake build dir")
    ap.add_argument("--only", default="B1,B2,B3,B4,B5", help="comma-separated workloads")
    ap.add_argument("--b5-rtt", default="50,150", metavar="LIST",
                    help="B5 round trips in ms, even numbers (default 50,150)")
    ap.add_argument("--b5-m", default="5,20,100", metavar="LIST",
                    help="B5 concurrency levels (default 5,20,100)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 runs (B4: 5)")
    ap.add_argument("--b12-runs", type=int, default=None, metavar="N",
                    help="measured runs per B1 and B2 subject (default 3x --runs: a round "
                         "takes about a second, and their CPU ratio to curl is the figure "
                         "nearest its target)")
    ap.add_argument("--b4-runs", type=int, default=None, metavar="N",
                    help="measured runs per B4 subject (default 3x --runs: its runs are "
                         "short and its verdict rests on the 40-request run)")
    ap.add_argument("--seed", type=int, default=42, help="flagserver seed for B3")
    ap.add_argument("--results", default=str(BENCH / "results"), help="where to save")
    ap.add_argument("--no-save", action="store_true", help="print only, save nothing")
    ap.add_argument("--tools", default="curl,wget2,aria2c", help="peer tools for B1")
    ap.add_argument("--out-fs", choices=("tmpfs", "disk"), default="tmpfs",
                    help="where the clients write their files: a tmpfs (/dev/shm, default) or "
                         "the temporary directory on disk")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="S",
                    help="before each measured round, wait up to S seconds for other work "
                         "on the machine to stop (default 0: don't wait)")
    args = ap.parse_args()
    if args.quick:
        args.runs = 3
    if args.b4_runs is None:
        args.b4_runs = 5 if args.quick else 3 * args.runs
    if args.b12_runs is None:
        args.b12_runs = args.runs if args.quick else 3 * args.runs
    if args.runs < 1 or args.b4_runs < 1 or args.b12_runs < 1:
        ap.error("--runs must be at least 1")
    only = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    bad = [w for w in only if w not in ALL_WORKLOADS]
    if bad:
        ap.error(f"unknown workload(s) {bad}")
    try:
        b5_rtts = [int(x) for x in args.b5_rtt.split(",") if x.strip()]
        b5_ms = [int(x) for x in args.b5_m.split(",") if x.strip()]
    except ValueError:
        ap.error("--b5-rtt and --b5-m take comma-separated whole numbers")
    if not b5_rtts or any(r < 0 or r % 2 or r > 10000 for r in b5_rtts):
        ap.error("--b5-rtt: even round trips in ms, 0 to 10000 (rttproxy delays by half)")
    if not b5_ms or any(m < 1 or m > 1000 for m in b5_ms):
        ap.error("--b5-m: concurrency levels from 1 to 1000")
    tools = [t for t in args.tools.split(",") if t]
    command = os.environ.get("BENCH_COMMAND") or shlex.join(["python3", "bench/bench.py"]
                                                             + sys.argv[1:])

    build = Path(args.build).resolve()
    getflags = build / "src/getflags/getflags"
    flagserver = build / "src/flagserver/flagserver"
    rttproxy = build / "tests/rttproxy"
    if not getflags.exists():
        sys.exit(f"bench: {getflags} not found; run bench/run.sh, which builds it")
    if not flagserver.exists():
        flagserver = None

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(8192, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    def on_signal(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    h = Harness()
    results, skipped = {}, {}
    started = datetime.datetime.now(datetime.timezone.utc)
    try:
        desc = machine(getflags, flagserver, build)
        log(f"getflags: {getflags} ({desc['build_type']}), git {desc['git']['describe']}")
        runner = Runner(h, args)
        desc["output_dir_filesystem"] = runner.out_fs_type
        log(f"clients write into {runner.out} ({runner.out_fs_type})")
        nginx = None
        if any(w in only for w in ("B1", "B2")):
            nginx = Nginx(h)
            base = nginx.start()
        if "B1" in only:
            results["B1"] = bench_local(h, runner, getflags, base, "B1", ["-a", "-m", "100"],
                                        codes_194(), {"ok": 194, "not_found": 0, "error": 0,
                                                      "requests": 388}, args.b12_runs, tools)
        if "B2" in only:
            results["B2"] = bench_local(h, runner, getflags, base, "B2", ["-e", "-m", "100"],
                                        codes_676(), {"ok": 194, "not_found": 482, "error": 0,
                                                      "requests": 870}, args.b12_runs, ["curl"],
                                        rss_args=["-e", "-m", "1000"])
        if nginx:
            nginx.stop()
        if "B4" in only:
            results["B4"] = bench_growth(h, runner, getflags, args.b4_runs)
        if "B3" in only:
            if flagserver is None:
                skipped["B3"] = f"{build}/src/flagserver/flagserver is not built"
                log(f"B3 skipped: {skipped['B3']}")
            else:
                results["B3"] = bench_delay(h, runner, getflags, flagserver, args.seed,
                                            args.runs)
        if "B5" in only:
            if not rttproxy.exists():
                skipped["B5"] = f"{rttproxy} is not built (cmake --build {build} --target rttproxy)"
                log(f"B5 skipped: {skipped['B5']}")
            else:
                results["B5"] = bench_remote(h, runner, getflags, rttproxy, args.runs, b5_rtts,
                                             b5_ms)
    except Interrupted as e:
        log(f"interrupted by {e}; cleaning up")
        h.cleanup()
        sys.exit(130)
    except BaseException:
        h.cleanup()
        raise
    h.cleanup()

    finished = datetime.datetime.now(datetime.timezone.utc)
    desc["loadavg_at_end"] = open("/proc/loadavg").read().split()[:3]
    doc = {
        "schema": "getflags-bench/1",
        "started_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "finished_utc": finished.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command,
        "runs": args.runs,
        "b12_runs": args.b12_runs,
        "b4_runs": args.b4_runs,
        "quick": args.quick,
        "only": only,
        "wait_quiet_s": args.wait_quiet,
        "machine": desc,
        "method": {
            "wall": "hyperfine -N --runs 1 per round, subjects alternated in every round",
            "cpu": "user+sys of the same runs as hyperfine measures them (child rusage)",
            "rss": "GNU time %M on separate runs, alternated the same way",
            "b3": "GNU time %e (wall) and %M; CPU from the rusage of the time process",
            "b5": "as B1, through rttproxy to the CDN-like nginx over HTTP/2; errors, "
                  "connections and protocols from one checked run of each subject and "
                  "nginx's access log",
            "warmup": "one discarded round before the measured ones",
            "output_dir": "fresh empty directory before every run (outside the timing), on "
                          + ("a tmpfs" if args.out_fs == "tmpfs" else "the disk"),
        },
        "targets": TARGETS,
        "results": results,
        "skipped": skipped,
    }
    doc["table"] = table(results)
    met_all = {w: all(r["met"].values()) for w, r in results.items()}
    doc["all_targets_met"] = met_all
    md = markdown(doc)
    print(md)
    if not args.no_save:
        rdir = Path(args.results)
        rdir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(doc, indent=1, sort_keys=False) + "\n"
        stamp = finished.strftime("%Y%m%dT%H%M%SZ")
        write_atomic(rdir / f"{stamp}.json", text)
        write_atomic(rdir / "latest.json", text)
        write_atomic(rdir / "latest.md", md)
        log(f"saved {rdir}/latest.json, latest.md and {stamp}.json")
        if not args.quick and len(only) == len(ALL_WORKLOADS) and rdir.resolve() == (BENCH / "results").resolve():
            update_readme(md)


def update_readme(md):
    """Puts a full run's table into bench/README.md, between its markers."""
    readme = BENCH / "README.md"
    begin, end = "<!-- bench results: begin -->", "<!-- bench results: end -->"
    try:
        text = readme.read_text()
    except OSError:
        return
    a, b = text.find(begin), text.find(end)
    if a < 0 or b < a:
        log("bench/README.md has no results markers; not updated")
        return
    write_atomic(readme, text[:a + len(begin)] + "\n" + md + text[b:])
    log("updated the results in bench/README.md")


if __name__ == "__main__":
    main()
