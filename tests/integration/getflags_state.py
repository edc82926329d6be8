"""DIR's state across runs: which file belongs to which code, the manifest
always matching the disk, --update and damaged files, --retry-failed after
an interrupted run, and the process around a run (closed descriptors,
signals, resource limits, stale temporary files).

The flags tree is a temporary copy that the tests change between runs
(renamed countries, two codes with one name), served by a small server of
this script's own whose validators, and per-code delays, the test sets."""

import hashlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import threading
import time

import gfutil
from gfutil import DATA, GETFLAGS, FlagServer, getflags, listing, run_tests, scratch


def manifest(out):
    with open(os.path.join(out, ".getflags", "manifest.json"), encoding="utf-8") as f:
        return json.load(f)


def entries(out):
    return {e["cc"]: e for e in manifest(out)["entries"]}


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def check_manifest_matches_disk(out):
    """Every ok/unchanged entry names an existing file whose size and
    SHA-256 it records; no two entries name one file."""
    seen = {}
    for e in manifest(out)["entries"]:
        if e["file"] is not None:
            assert e["file"] not in seen, ("two entries name one file", e, seen[e["file"]])
            seen[e["file"]] = e
        if e["status"] in ("ok", "unchanged"):
            p = os.path.join(out, e["file"])
            assert os.path.isfile(p), ("missing", e)
            assert os.path.getsize(p) == e["bytes"], ("size", e)
            assert sha(p) == e["sha256"], ("sha256", e)


def image_of(cc):
    with open(os.path.join(DATA, "flags", cc.lower(), cc.lower() + ".gif"), "rb") as f:
        return f.read()


def make_tree(names):
    """A flags tree whose code cc has the country names[cc] and its own
    image from flags_data."""
    root = scratch()
    for cc, country in names.items():
        d = os.path.join(root, "flags", cc.lower())
        os.makedirs(d)
        with open(os.path.join(d, cc.lower() + ".gif"), "wb") as f:
            f.write(image_of(cc))
        set_country(root, cc, country)
    return root


def set_country(root, cc, country):
    with open(os.path.join(root, "flags", cc.lower(), "metadata.json"), "w") as f:
        json.dump({"country": country}, f)


class TreeServer:
    """Serves a flags tree on 127.0.0.1, ephemeral port. validators: ETag
    (etag_of(body), by default the content's hash) and 304 to a matching
    If-None-Match (meta_validators=False: not on metadata). delay: per
    code, seconds before answering. answers: per path, what its next
    requests get instead of the file, in turn (a body, or a status with
    no body), the last one for good. .log lists (path, conditional,
    status)."""

    def __init__(self, root, validators=True, meta_validators=True):
        self.root = root
        self.validators = validators
        self.meta_validators = meta_validators
        self.delay = {}
        self.answers = {}
        self.log = []
        self.etag_of = lambda body: '"%s"' % hashlib.sha256(body).hexdigest()[:16]
        srv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                parts = self.path.split("/")
                cc = parts[2].upper() if len(parts) > 2 else ""
                time.sleep(srv.delay.get(cc, 0))
                path = os.path.join(srv.root, self.path.lstrip("/"))
                inm = self.headers.get("If-None-Match")
                turns = srv.answers.get(self.path)
                body = (turns.pop(0) if len(turns) > 1 else turns[0]) if turns else None
                if body is None:
                    try:
                        with open(path, "rb") as f:
                            body = f.read()
                    except OSError:
                        body = 404
                if isinstance(body, int):
                    srv.log.append((self.path, inm is not None, body))
                    self.send_response(body)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                etag = srv.etag_of(body)
                validators = srv.validators and (srv.meta_validators or
                                                 not self.path.endswith(".json"))
                if validators and inm == etag:
                    srv.log.append((self.path, True, 304))
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                srv.log.append((self.path, inm is not None, 200))
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                if validators:
                    self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d/flags" % self.httpd.server_address[1]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def owner_of(out, name):
    """The code whose image the file out/name holds."""
    data = open(os.path.join(out, name), "rb").read()
    for cc in ("BR", "CN", "FR", "PT", "DE", "IN"):
        if data == image_of(cc):
            return cc
    return None


def test_update_never_sends_one_servers_validators_to_another():
    # FR saved from A; a run of BR from B makes B the manifest's server;
    # --update FR against B must not send A's validators, which B (whose
    # validators happen to look alike) would answer with 304.
    a_root = make_tree({"FR": "France"})
    b_root = make_tree({"FR": "France", "BR": "Brazil"})
    with open(os.path.join(b_root, "flags", "fr", "fr.gif"), "wb") as f:
        f.write(image_of("CN"))
    out = scratch()
    with TreeServer(a_root) as a, TreeServer(b_root) as b:
        a.etag_of = b.etag_of = lambda body: '"v1"'
        assert getflags("-s", a.url, "FR", outdir=out).rc == 0
        assert getflags("-s", b.url, "BR", outdir=out).rc == 0
        r = getflags("-v", "--update", "-s", b.url, "FR", outdir=out)
        assert r.rc == 0, r.err
        assert "FR OK" in r.out, r.out
        assert owner_of(out, "France.gif") == "CN"
        assert [c for p, c, _ in b.log if p.startswith("/flags/fr/")] == [False, False], b.log
        # What B said is kept: the next --update against B asks with it.
        r = getflags("-v", "--update", "-s", b.url, "FR", outdir=out)
        assert "FR unchanged" in r.out, r.out
    check_manifest_matches_disk(out)


def test_renamed_code_never_takes_an_unchanged_codes_file():
    root = make_tree({"BR": "Xland", "CN": "Yland", "FR": "France"})
    out = scratch()
    with TreeServer(root) as srv:
        r = getflags("-s", srv.url, "BR", "CN", outdir=out)
        assert r.rc == 0, r.err
        assert owner_of(out, "Xland.gif") == "BR" and owner_of(out, "Yland.gif") == "CN"
        # BR is now called Yland too; CN answers 304, a little later.
        set_country(root, "BR", "Yland")
        srv.delay["CN"] = 0.3
        r = getflags("--update", "--json", "-s", srv.url, "BR", "CN", outdir=out)
        assert r.rc == 0, (r.out, r.err)
        st = {i["cc"]: i["status"] for i in r.json()["items"]}
        assert st == {"BR": "ok", "CN": "unchanged"}, st
        assert listing(out) == ["Yland.gif", "Yland_BR.gif"], listing(out)
        assert owner_of(out, "Yland.gif") == "CN" and owner_of(out, "Yland_BR.gif") == "BR"
        check_manifest_matches_disk(out)
        # A code new to the run with an unchanged code's name: the _CC form.
        set_country(root, "FR", "Yland")
        srv.delay = {"CN": 0.3, "BR": 0.3}
        r = getflags("--update", "-s", srv.url, "BR", "CN", "FR", outdir=out)
        assert r.rc == 0, (r.out, r.err)
        assert listing(out) == ["Yland.gif", "Yland_BR.gif", "Yland_FR.gif"], listing(out)
        assert owner_of(out, "Yland.gif") == "CN" and owner_of(out, "Yland_FR.gif") == "FR"
        check_manifest_matches_disk(out)
        # The same without --update, and with CN not in the run at all.
        r = getflags("-s", srv.url, "FR", "BR", outdir=out)
        assert r.rc == 0, (r.out, r.err)
        assert owner_of(out, "Yland.gif") == "CN"
        assert entries(out)["CN"]["file"] == "Yland.gif"
        check_manifest_matches_disk(out)


def test_one_name_two_codes_is_stable_across_nights():
    root = make_tree({"BR": "Brazil", "PT": "Brazil"})
    out = scratch()
    with TreeServer(root, validators=False) as srv:
        srv.delay = {"PT": 0.2}
        assert getflags("--update", "-s", srv.url, "BR", "PT", outdir=out).rc == 0
        first = {n: owner_of(out, n) for n in listing(out)}
        assert first == {"Brazil.gif": "BR", "Brazil_PT.gif": "PT"}, first
        # Night after night, whichever answers first.
        for night, delay in enumerate([{"BR": 0.2}, {}, {"BR": 0.3}, {"PT": 0.1}]):
            srv.delay = delay
            r = getflags("--update", "-s", srv.url, "BR", "PT", outdir=out)
            assert r.rc == 0, (night, r.out, r.err)
            now = {n: owner_of(out, n) for n in listing(out)}
            assert now == first, (night, now)
            check_manifest_matches_disk(out)


def test_update_asks_for_a_cc_named_file_only_if_changed():
    # PT took Brazil_PT.gif because BR had Brazil.gif. With metadata that
    # always answers 200, --update must still ask for PT's image with
    # If-None-Match and leave the file alone, as it does for BR's.
    root = make_tree({"BR": "Brazil", "PT": "Brazil"})
    out = scratch()
    with TreeServer(root, meta_validators=False) as srv:
        srv.delay = {"PT": 0.2}
        assert getflags("-s", srv.url, "BR", "PT", outdir=out).rc == 0
        assert {n: owner_of(out, n) for n in listing(out)} == \
            {"Brazil.gif": "BR", "Brazil_PT.gif": "PT"}
        inode = os.stat(os.path.join(out, "Brazil_PT.gif")).st_ino
        del srv.log[:]
        r = getflags("--update", "--json", "-s", srv.url, "BR", "PT", outdir=out)
        assert r.rc == 0, (r.out, r.err)
        st = {i["cc"]: i["status"] for i in r.json()["items"]}
        assert st == {"BR": "unchanged", "PT": "unchanged"}, st
        images = sorted(e for e in srv.log if e[0].endswith(".gif"))
        assert images == [("/flags/br/br.gif", True, 304), ("/flags/pt/pt.gif", True, 304)], \
            srv.log
        assert os.stat(os.path.join(out, "Brazil_PT.gif")).st_ino == inode
        check_manifest_matches_disk(out)


def test_manifest_matches_disk_after_any_sequence():
    root = make_tree({"BR": "Brazil", "CN": "China", "FR": "France", "DE": "Germany",
                      "IN": "India"})
    out = scratch()
    with TreeServer(root) as srv:
        steps = [
            (["BR", "CN", "FR", "DE", "IN"], {}, []),
            (["BR", "CN"], {"BR": "China"}, ["--update"]),
            (["FR", "DE"], {"DE": "France"}, []),
            (["BR", "CN", "FR", "DE", "IN"], {"IN": "Brazil", "BR": "Brazil"}, ["--update"]),
            (["IN"], {"IN": "China"}, []),
            (["BR", "CN", "FR", "DE", "IN"], {"CN": "Cathay"}, ["--update"]),
            (["BR", "CN", "FR", "DE", "IN"], {}, []),
        ]
        for codes, renames, opts in steps:
            for cc, name in renames.items():
                set_country(root, cc, name)
            r = getflags(*opts, "-s", srv.url, *codes, outdir=out)
            assert r.rc == 0, (codes, r.out, r.err)
            check_manifest_matches_disk(out)
            # Every file a code owns holds that code's image.
            for cc, e in entries(out).items():
                if e["file"]:
                    assert owner_of(out, e["file"]) == cc, (cc, e)


def test_each_sweep_level_starts_from_what_the_last_one_left():
    """--sweep's levels are recorded one after the other, as separate runs
    are: a level never answers for a file with what an earlier level
    replaced, a name a level gave up goes, and a file a level saved stays
    its code's when a later level fails."""
    root = make_tree({"BR": "Brazil", "DE": "Germany", "FR": "France"})
    out = scratch()
    meta = lambda country: json.dumps({"country": country}).encode()
    with TreeServer(root) as srv:
        assert getflags("-s", srv.url, "BR", "DE", outdir=out).rc == 0
        # Level 1 gets another image for BR, a new name for DE and FR's
        # flag; level 2 gets BR's first image back, DE's first name, and
        # an error for FR.
        srv.answers = {
            "/flags/br/br.gif": [image_of("CN"), image_of("BR")],
            "/flags/de/metadata.json": [meta("Deutschland"), meta("Germany")],
            "/flags/fr/metadata.json": [meta("France"), 500],
        }
        r = getflags("--update", "--sweep", "1,2", "--retries", "0", "--json", "-s", srv.url,
                     "BR", "DE", "FR", outdir=out)
        assert r.rc == 1, (r.rc, r.out, r.err)
        assert [(row["ok"], row["error"]) for row in r.json()] == [(3, 0), (2, 1)], r.out
        check_manifest_matches_disk(out)
        assert listing(out) == ["Brazil.gif", "France.gif", "Germany.gif"], listing(out)
        # Level 2 asked for BR's image with level 1's validator, not the
        # one from before the sweep (which the server would have taken).
        assert owner_of(out, "Brazil.gif") == "BR"
        last_br = [e for e in srv.log if e[0] == "/flags/br/br.gif"][-1]
        assert last_br == ("/flags/br/br.gif", True, 200), srv.log
        e = entries(out)
        assert (e["FR"]["status"], e["FR"]["file"]) == ("error", "France.gif"), e["FR"]
        assert owner_of(out, "France.gif") == "FR"
        # The next run trusts what the sweep recorded.
        r = getflags("--update", "--json", "-s", srv.url, "BR", "DE", "FR", outdir=out)
        assert r.rc == 1, (r.out, r.err)
        st = {i["cc"]: i["status"] for i in r.json()["items"]}
        assert st == {"BR": "unchanged", "DE": "unchanged", "FR": "error"}, st
        check_manifest_matches_disk(out)


def test_update_refetches_a_damaged_file():
    root = make_tree({"BR": "Brazil", "CN": "China"})
    out = scratch()
    with TreeServer(root) as srv:
        assert getflags("-s", srv.url, "BR", "CN", outdir=out).rc == 0
        open(os.path.join(out, "Brazil.gif"), "wb").close()  # truncated to 0 bytes
        with open(os.path.join(out, "China.gif"), "r+b") as f:  # same size, other bytes
            f.seek(10)
            f.write(b"\xff")
        del srv.log[:]
        r = getflags("--update", "--json", "-s", srv.url, "BR", "CN", outdir=out)
        assert r.rc == 0, r.err
        assert r.json()["counts"]["ok"] == 2, r.out
        images = [x for x in srv.log if x[0].endswith(".gif")]
        assert sorted(images) == [("/flags/br/br.gif", False, 200),
                                  ("/flags/cn/cn.gif", False, 200)], images
    assert open(os.path.join(out, "Brazil.gif"), "rb").read() == image_of("BR")
    assert open(os.path.join(out, "China.gif"), "rb").read() == image_of("CN")
    check_manifest_matches_disk(out)


def test_retry_failed_after_an_interrupted_run():
    out = scratch()
    codes = ["BR", "CN", "FR", "DE", "IN", "PT"]
    with FlagServer("--delay", "3", "--quiet") as fs:
        p = subprocess.Popen([GETFLAGS, "-m", "2", "-s", fs.url, "-o", out] + codes,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1)
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=20)
    assert p.returncode == 130, p.returncode
    e = entries(out)
    assert sorted(e) == sorted(codes) and {x["status"] for x in e.values()} == {"error"}, e
    with FlagServer("--quiet") as fs:
        r = getflags("--retry-failed", "-s", fs.url, outdir=out)
    assert r.rc == 0 and "Searching for 6 flags" in r.out, (r.out, r.err)
    assert {x["status"] for x in entries(out).values()} == {"ok"}
    check_manifest_matches_disk(out)


def memory_scratch():
    """A new empty directory on a tmpfs (/dev/shm), where getflags saves
    with a threadpool of one thread; removed at exit."""
    import tempfile
    d = tempfile.mkdtemp(prefix="gf-test-", dir="/dev/shm")
    gfutil._SCRATCH.append(d)
    return d


def test_dir_in_memory():
    """A DIR in memory: every flag saved whole and vouched for by the
    manifest; an interrupted run (some codes saved, some not) exits 130 with
    the manifest matching the disk, and --retry-failed finishes the rest."""
    out = memory_scratch()
    with FlagServer("--quiet") as fs:
        r = getflags("-s", fs.url, "-m", "5", outdir=out)
    assert r.rc == 0 and "20 flags downloaded" in r.out, (r.out, r.err)
    assert len([n for n in os.listdir(out) if n.endswith(".gif")]) == 20
    assert {x["status"] for x in entries(out).values()} == {"ok"}
    check_manifest_matches_disk(out)

    out = memory_scratch()
    with FlagServer("--delay", "0:2", "--seed", "3", "--quiet") as fs:
        p = subprocess.Popen([GETFLAGS, "-a", "-m", "20", "-s", fs.url, "-o", out],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2.5)
        p.send_signal(signal.SIGINT)
        o, err = p.communicate(timeout=20)
    assert p.returncode == 130, (p.returncode, err)
    e = entries(out)
    statuses = [x["status"] for x in e.values()]
    assert len(e) == 194 and 0 < statuses.count("ok") < 194, statuses
    assert set(statuses) == {"ok", "error"}, statuses
    check_manifest_matches_disk(out)
    assert [n for n in os.listdir(out) if "tmp" in n] == []
    with FlagServer("--quiet") as fs:
        r = getflags("--retry-failed", "-s", fs.url, "-m", "50", outdir=out)
    assert r.rc == 0, (r.out, r.err)
    assert {x["status"] for x in entries(out).values()} == {"ok"}
    check_manifest_matches_disk(out)


def test_retry_failed_after_a_killed_run():
    out = scratch()
    codes = ["BR", "CN", "FR", "DE"]
    with FlagServer("--quiet") as fs:
        assert getflags("-s", fs.url, "BR", "IN", outdir=out).rc == 0
    with FlagServer("--delay", "3", "--quiet") as fs:
        p = subprocess.Popen([GETFLAGS, "-m", "2", "-s", fs.url, "-o", out] + codes,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        p.send_signal(signal.SIGKILL)
        p.wait(10)
    e = entries(out)
    assert {cc for cc in e if e[cc]["status"] == "error"} == set(codes), e
    assert e["IN"]["status"] == "ok" and e["BR"]["file"] == "Brazil.gif", e
    check_manifest_matches_disk(out)
    with FlagServer("--quiet") as fs:
        r = getflags("--retry-failed", "-s", fs.url, outdir=out)
    assert r.rc == 0 and "Searching for 4 flags" in r.out, (r.out, r.err)
    assert {x["status"] for x in entries(out).values()} == {"ok"}
    check_manifest_matches_disk(out)


def limited(shell_limit, args, out):
    """getflags under a ulimit set by bash (cannot be lowered from here
    without affecting the test itself)."""
    cmd = "%s; exec \"$0\" \"$@\"" % shell_limit
    return subprocess.run(["bash", "-c", cmd, GETFLAGS] + list(args) + ["-o", out],
                          capture_output=True, text=True, timeout=60)


def test_closed_stdout_and_stderr():
    with FlagServer("--quiet") as fs:
        out = scratch()
        p = subprocess.run(["bash", "-c", 'exec "$0" "$@" >&- 2>&-', GETFLAGS, "-s", fs.url,
                            "BR", "CN", "-o", out], timeout=60)
        assert p.returncode == 0, p.returncode
        assert entries(out)["BR"]["status"] == "ok"
        # Only stdout closed: the report goes nowhere, never into the lock.
        out = scratch()
        p = subprocess.run(["bash", "-c", 'exec "$0" "$@" >&-', GETFLAGS, "-s", fs.url, "BR",
                            "-o", out], capture_output=False, stderr=subprocess.PIPE,
                           timeout=60)
        assert p.returncode == 0, p.stderr
        lock = open(os.path.join(out, ".getflags", "lock")).read()
        assert lock.strip().isdigit(), repr(lock)
        check_manifest_matches_disk(out)


def test_sighup_ends_a_run_like_sigterm():
    out = scratch()
    with FlagServer("--delay", "3", "--quiet") as fs:
        p = subprocess.Popen([GETFLAGS, "-m", "2", "-s", fs.url, "-o", out, "BR", "CN", "FR"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1)
        p.send_signal(signal.SIGHUP)
        o, e = p.communicate(timeout=20)
    assert p.returncode == 129, (p.returncode, e)
    assert "Elapsed time" in o, o
    assert {x["status"] for x in entries(out).values()} == {"error"}


def test_signals_the_process_started_ignoring_stay_ignored():
    # `nohup getflags ... &` ignores SIGHUP, and a script's background job
    # ignores SIGINT: logging out or a Ctrl-C meant for the script must not
    # end the run. SIGTERM, not ignored here, still ends one.
    def ignore():
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    out = scratch()
    with FlagServer("--delay", "1.5", "--quiet") as fs:
        p = subprocess.Popen([GETFLAGS, "-m", "3", "-s", fs.url, "-o", out, "BR", "CN", "FR"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=ignore)
        time.sleep(0.5)
        p.send_signal(signal.SIGHUP)
        p.send_signal(signal.SIGINT)
        time.sleep(0.2)
        p.send_signal(signal.SIGHUP)
        o, e = p.communicate(timeout=30)
        assert p.returncode == 0, (p.returncode, o, e)
        assert "  3 flags downloaded." in o, o
        assert {x["status"] for x in entries(out).values()} == {"ok"}
        check_manifest_matches_disk(out)

        p = subprocess.Popen([GETFLAGS, "-m", "3", "-s", fs.url, "-o", scratch(), "BR"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=ignore)
        time.sleep(0.5)
        p.send_signal(signal.SIGTERM)
        o, e = p.communicate(timeout=20)
        assert p.returncode == 143, (p.returncode, e)


def test_signal_while_the_report_waits_on_a_pipe():
    # `getflags -a --json | less`, then Ctrl-C before paging: the summary
    # (about 80 KB) fills the pipe and the process waits on it. The run is
    # over, so the manifest is written already, and the signal ends the
    # process with its status instead of killing it by default.
    out = scratch()
    with FlagServer("--quiet") as fs:
        p = subprocess.Popen([GETFLAGS, "-a", "--json", "-s", fs.url, "-o", out],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 30
        while len([n for n in os.listdir(out) if n.endswith(".gif")]) < 194:
            assert time.time() < deadline and p.poll() is None, p.poll()
            time.sleep(0.05)
        time.sleep(0.5)  # the saves are in; the summary fills the pipe
        p.send_signal(signal.SIGINT)
        o, e = p.communicate(timeout=20)
    assert p.returncode == 130, (p.returncode, e)
    assert {x["status"] for x in entries(out).values()} == {"ok"}, e
    assert len(entries(out)) == 194
    check_manifest_matches_disk(out)


def test_signal_while_waiting_for_the_lock():
    import fcntl
    out = scratch()
    os.makedirs(os.path.join(out, ".getflags"))
    with open(os.path.join(out, ".getflags", "lock"), "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        p = subprocess.Popen([GETFLAGS, "--wait-lock", "-s", "http://127.0.0.1:9/flags",
                              "-o", out, "BR"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        t0 = time.time()
        o, e = p.communicate(timeout=10)
    assert p.returncode == 130 and time.time() - t0 < 1, (p.returncode, e)
    assert "waiting for another run" in e, e
    assert "interrupted while waiting for another run on %s to end" % out in e, e
    assert "system call" not in e, e


def test_temporary_files_of_dead_runs_are_swept():
    out = scratch()
    os.makedirs(os.path.join(out, ".getflags"))
    for name in (".getflags-tmp-999999-0", ".getflags/.getflags-tmp-999999-1",
                 ".getflags/manifest.json.tmp-999999-2"):
        with open(os.path.join(out, name), "wb") as f:
            f.write(b"GIF89a half")
    with FlagServer("--quiet") as fs:
        # A run killed in the middle of its saves leaves its temporaries...
        p = subprocess.Popen([GETFLAGS, "-e", "-m", "50", "-s", fs.url, "-o", out],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        p.send_signal(signal.SIGKILL)
        p.wait(10)
        # ...and the next run, holding the lock, removes every one.
        r = getflags("-s", fs.url, "BR", outdir=out)
    assert r.rc == 0, r.err
    left = [n for n in os.listdir(out) + os.listdir(os.path.join(out, ".getflags"))
            if "tmp" in n]
    assert left == [], left


def test_hard_links_are_refused():
    victim = os.path.join(scratch(), "victim")
    with open(victim, "w") as f:
        f.write("precious\n")
    with FlagServer("--quiet") as fs:
        out = scratch()
        os.makedirs(os.path.join(out, ".getflags"))
        os.link(victim, os.path.join(out, ".getflags", "lock"))
        r = getflags("-s", fs.url, "BR", outdir=out)
        assert r.rc == 3 and "more than one link" in r.err, (r.rc, r.err)
        assert open(victim).read() == "precious\n"
        # A manifest that is a hard link: not read, and replaced by a new
        # file, never written through.
        out = scratch()
        os.makedirs(os.path.join(out, ".getflags"))
        os.link(victim, os.path.join(out, ".getflags", "manifest.json"))
        r = getflags("-s", fs.url, "BR", outdir=out)
        assert r.rc == 0 and "more than one link" in r.err, (r.rc, r.err)
        assert open(victim).read() == "precious\n"
        check_manifest_matches_disk(out)


def test_open_file_limit():
    with FlagServer("--quiet") as fs:
        for n in (8, 12):
            out = os.path.join(scratch(), "d")
            p = limited("ulimit -n %d" % n, ["-s", fs.url, "-e", "-l", "30"], out)
            assert p.returncode == 3, (n, p.returncode, p.stderr)
            assert len(p.stderr.splitlines()) == 1, p.stderr
            # Nothing in DIR is touched by a run that cannot start.
            assert not os.path.exists(out), (n, p.stderr)
        need = int(p.stderr.split("ulimit -n ")[1].rstrip(")\n"))
        # What the computation says fits, fits: not one error.
        for n in (need, need + 1, need + 6):
            out = scratch()
            p = limited("ulimit -n %d" % n, ["-s", fs.url, "-m", "20", "-e", "-l", "40",
                                             "--retries", "0"], out)
            assert p.returncode == 0, (n, p.stdout, p.stderr)
            assert "40 flags downloaded" in p.stdout or "downloaded" in p.stdout, p.stdout
            assert " error" not in p.stdout, (n, p.stdout)


def test_header_values_sent_back_follow_one_rule():
    """A validator is kept from the answer and read back from the manifest
    by one rule: up to 255 bytes of visible ASCII, tabs and spaces only
    inside. A kept one goes back in If-None-Match; a longer one is dropped,
    so --update asks without it."""
    root = make_tree({"BR": "Brazil"})
    out = scratch()
    with TreeServer(root) as srv:
        srv.etag_of = lambda body: '"a\tb-%s"' % hashlib.sha256(body).hexdigest()[:16]
        r = getflags("-s", srv.url, "BR", outdir=out)
        assert r.rc == 0, r.err
        assert entries(out)["BR"]["image"]["etag"].startswith('"a\tb-'), entries(out)
        r = getflags("--update", "--json", "-s", srv.url, "BR", outdir=out)
        assert r.rc == 0, (r.out, r.err)
        assert [i["status"] for i in r.json()["items"]] == ["unchanged"], r.out
        for size, kept in ((255, True), (256, False)):
            srv.etag_of = lambda body, size=size: '"%s"' % ("e" * (size - 2))
            r = getflags("-s", srv.url, "BR", outdir=out)
            assert r.rc == 0, r.err
            etag = entries(out)["BR"]["image"]["etag"]
            assert (etag is not None and len(etag) == 255) if kept else etag is None, (size, etag)
            srv.log.clear()
            r = getflags("--update", "--json", "-s", srv.url, "BR", outdir=out)
            assert r.rc == 0, (r.out, r.err)
            assert [i["status"] for i in r.json()["items"]] == ["unchanged" if kept else "ok"]
            assert all(cond == kept for _, cond, _ in srv.log), (size, srv.log)


def test_unreadable_cacert_and_dir_decided_before_the_run():
    with FlagServer("--quiet") as fs:
        out = os.path.join(scratch(), "d")
        r = getflags("-s", fs.url, "--cacert", "/nonexistent/ca.pem", "BR", outdir=out)
        assert r.rc == 3 and r.err.count("\n") == 1 and "--cacert" in r.err, (r.rc, r.err)
        assert r.out == "", r.out
        # Decided before DIR is touched: not even created (nor its lock).
        assert not os.path.exists(out), os.listdir(out)
        os.makedirs(out)
        r = getflags("-s", fs.url, "--cacert", "/etc/hostname", "BR", outdir=out)
        assert r.rc == 3 and "no PEM certificate in it" in r.err, (r.rc, r.err)
        assert os.listdir(out) == [], os.listdir(out)
        # A directory, or a FIFO (which must not hang the run): said at once.
        fifo = os.path.join(scratch(), "fifo")
        os.mkfifo(fifo)
        for bad, why in ((scratch(), "it is a directory, not a PEM file"),
                         (fifo, "not a regular file")):
            r = getflags("-s", fs.url, "--cacert", bad, "BR", outdir=out, timeout=10)
            assert r.rc == 3 and r.err == "getflags: cannot use --cacert %s: %s\n" % (bad, why), \
                (r.rc, r.err)
            assert os.listdir(out) == [], os.listdir(out)
        # -o a/b/c creates the parents.
        base = scratch()
        r = getflags("-s", fs.url, "BR", outdir=os.path.join(base, "a", "b", "c"))
        assert r.rc == 0 and os.path.isfile(os.path.join(base, "a/b/c/Brazil.gif")), r.err
        # A parent chain that cannot be made: one message, exit 3.
        with open(os.path.join(base, "file"), "w"):
            pass
        r = getflags("-s", fs.url, "BR", outdir=os.path.join(base, "file", "x"))
        assert r.rc == 3 and len(r.err.splitlines()) == 1 and r.out == "", (r.rc, r.err)
        # A dangling symbolic link as DIR is named as one.
        os.symlink(os.path.join(base, "gone"), os.path.join(base, "link"))
        r = getflags("-s", fs.url, "BR", outdir=os.path.join(base, "link"))
        assert r.rc == 3 and "dangling symbolic link" in r.err, (r.rc, r.err)
        assert not os.path.exists(os.path.join(base, "gone"))


run_tests(globals())
