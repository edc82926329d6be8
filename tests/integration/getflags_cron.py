"""getflags as a cron job: the run manifest, --update with conditional
GETs against nginx and flagserver, --retry-failed, the lock, --rate,
-m auto, and the standard environment."""

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import time

from gfutil import (DATA, GETFLAGS, FlagServer, Nginx, codes_194, country_of, expected_name,
                    getflags, listing, run_tests, scratch)


def manifest(out):
    with open(os.path.join(out, ".getflags", "manifest.json"), encoding="utf-8") as f:
        return json.load(f)


def copy_tree(codes):
    root = scratch()
    for cc in codes:
        shutil.copytree(os.path.join(DATA, "flags", cc.lower()),
                        os.path.join(root, "flags", cc.lower()))
    return root


def mtimes(out):
    return {n: os.stat(os.path.join(out, n)).st_mtime_ns for n in listing(out)}


def test_every_run_writes_a_manifest():
    out = scratch()
    with FlagServer("--quiet") as fs:
        r = getflags("-s", fs.url, "BR", "ZZ", outdir=out)
    assert r.rc == 0
    m = manifest(out)
    assert m["base_url"] == fs.url
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", m["run_time"]), m["run_time"]
    e = {x["cc"]: x for x in m["entries"]}
    assert e["BR"]["status"] == "ok" and e["BR"]["file"] == "Brazil.gif"
    assert e["BR"]["http_status"] == 200
    data = open(os.path.join(DATA, "flags/br/br.gif"), "rb").read()
    import hashlib
    assert e["BR"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert e["BR"]["bytes"] == len(data)
    assert e["BR"]["meta"]["etag"] and e["BR"]["image"]["last_modified"]
    # State only: per-request timings are --json's.
    assert "timings" not in e["BR"]["meta"] and m["version"] == 2
    assert e["ZZ"]["status"] == "not_found" and e["ZZ"]["file"] is None
    assert sorted(os.listdir(os.path.join(out, ".getflags"))) == ["lock", "manifest.json"]


def test_manifest_times_are_utc_whatever_tz():
    out = scratch()
    env = dict(os.environ, TZ="Asia/Tokyo")
    with FlagServer("--quiet") as fs:
        before = time.gmtime(time.time() - 2)
        r = getflags("-s", fs.url, "BR", outdir=out, env=env)
        after = time.gmtime(time.time() + 2)
    assert r.rc == 0
    t = time.strptime(manifest(out)["run_time"], "%Y-%m-%dT%H:%M:%SZ")
    assert before <= t <= after, (before, t, after)


def check_update(server_cls, log_statuses):
    data = copy_tree(["BR", "CN", "FR", "IN"])
    out = scratch()
    with server_cls(data) as srv:
        r = getflags("-s", srv.url, "BR", "CN", "FR", "IN", "ZZ", outdir=out)
        assert r.rc == 0
        before = mtimes(out)
        time.sleep(0.02)
        r = getflags("--update", "--json", "-s", srv.url, "BR", "CN", "FR", "IN", "ZZ",
                     outdir=out)
        s = r.json()
        assert r.rc == 0, r.err
        assert s["counts"] == {"ok": 0, "unchanged": 4, "not_found": 1, "error": 0, "pending": 0}, s["counts"]
        assert mtimes(out) == before
        assert log_statuses(srv)[-9:].count(304) == 8, log_statuses(srv)
        # A changed image on the server is fetched again; the rest stays.
        gif = os.path.join(data, "flags", "fr", "fr.gif")
        with open(os.path.join(DATA, "flags", "de", "de.gif"), "rb") as src:
            new = src.read()
        with open(gif, "wb") as f:
            f.write(new)
        os.utime(gif, (time.time() + 5, time.time() + 5))
        r = getflags("--update", "-s", srv.url, "BR", "CN", "FR", "IN", "ZZ", outdir=out)
        assert r.rc == 0
        lines = r.out.splitlines()
        assert "  1 flag downloaded." in lines and "  3 unchanged." in lines, r.out
        assert open(os.path.join(out, "France.gif"), "rb").read() == new
        after = mtimes(out)
        assert {n for n in after if after[n] != before[n]} == {"France.gif"}


class FSDir(FlagServer):
    def __init__(self, data):
        super().__init__(directory=data)


class NginxDir(Nginx):
    def __init__(self, data):
        super().__init__(root=data)


def test_update_against_flagserver():
    check_update(FSDir, lambda fs: [e["status"] for e in fs.log()])


def test_update_against_nginx():
    check_update(NginxDir, lambda ng: [e["status"] for e in ng.log()])


def test_update_renamed_country_replaces_old_file():
    data = copy_tree(["BR"])
    out = scratch()
    with FlagServer("--quiet", directory=data) as fs:
        assert getflags("-s", fs.url, "BR", outdir=out).rc == 0
        meta = os.path.join(data, "flags", "br", "metadata.json")
        with open(meta, "w") as f:
            f.write('{"country": "Federative Republic of Brazil"}')
        os.utime(meta, (time.time() + 5, time.time() + 5))
        r = getflags("--update", "-v", "-s", fs.url, "BR", outdir=out)
    assert r.rc == 0, r.out
    assert listing(out) == ["Federative_Republic_of_Brazil.gif"], listing(out)
    assert manifest(out)["entries"][0]["file"] == "Federative_Republic_of_Brazil.gif"


def test_any_run_replaces_a_renamed_countrys_old_file():
    # Without --update too: DIR keeps one file per code, the one its
    # manifest names, when a country is renamed or two swap names.
    data = copy_tree(["BR", "CN"])
    out = scratch()

    def rename(cc, name):
        meta = os.path.join(data, "flags", cc.lower(), "metadata.json")
        with open(meta, "w") as f:
            f.write('{"country": "%s"}' % name)

    def files_are_the_manifests():
        named = sorted(e["file"] for e in manifest(out)["entries"])
        assert listing(out) == named, (listing(out), named)

    with FlagServer("--quiet", directory=data) as fs:
        assert getflags("-s", fs.url, "BR", "CN", outdir=out).rc == 0
        rename("BR", "New Brazil")
        r = getflags("-s", fs.url, "BR", "CN", outdir=out)
        assert r.rc == 0, r.err
        assert listing(out) == ["China.gif", "New_Brazil.gif"], listing(out)
        files_are_the_manifests()
        rename("BR", "China")
        rename("CN", "New Brazil")
        r = getflags("-s", fs.url, "BR", "CN", outdir=out)
        assert r.rc == 0, r.err
        assert len(listing(out)) == 2, listing(out)
        files_are_the_manifests()
        # A file the user changed since is not the run's to remove.
        rename("BR", "Brazil")
        entry = {e["cc"]: e for e in manifest(out)["entries"]}["BR"]
        with open(os.path.join(out, entry["file"]), "ab") as f:
            f.write(b"edited")
        r = getflags("-s", fs.url, "BR", "CN", outdir=out)
        assert r.rc == 0, r.err
        assert entry["file"] in listing(out) and "Brazil.gif" in listing(out), listing(out)


def test_update_redownloads_a_deleted_file():
    out = scratch()
    with FlagServer("--quiet") as fs:
        assert getflags("-s", fs.url, "BR", "CN", outdir=out).rc == 0
        os.unlink(os.path.join(out, "China.gif"))
        r = getflags("--update", "--json", "-s", fs.url, "BR", "CN", outdir=out)
    assert r.json()["counts"]["ok"] == 1 and r.json()["counts"]["unchanged"] == 1
    assert listing(out) == ["Brazil.gif", "China.gif"]


def test_retry_failed_only_the_failed_codes():
    out = scratch()
    with FlagServer("--delay", "0", "--error-rate", "0.5", "--seed", "3", "--quiet") as fs:
        r = getflags("-a", "-l", "30", "--retries", "0", "-s", fs.url, "--json", outdir=out)
    failed = sorted(i["cc"] for i in r.json()["items"] if i["status"] == "error")
    assert r.rc == 1 and failed, r.out
    with FlagServer() as fs:
        r = getflags("--retry-failed", "-s", fs.url, "--json", outdir=out)
        asked = sorted({e["path"].split("/")[2].upper() for e in fs.log()})
    assert r.rc == 0, r.err
    assert asked == failed, (asked, failed)
    assert sorted(i["cc"] for i in r.json()["items"]) == failed
    assert len(listing(out)) == 30
    e = {x["cc"]: x["status"] for x in manifest(out)["entries"]}
    assert len(e) == 30 and set(e.values()) == {"ok"}
    # Nothing failed: nothing to do, said in one line; the manifest stays.
    before = os.stat(os.path.join(out, ".getflags", "manifest.json"))
    with FlagServer() as fs:
        r = getflags("--retry-failed", "-s", fs.url, outdir=out)
        assert fs.log() == []
    assert r.rc == 0 and r.out == ("Nothing to retry: no code ended in error in the last run "
                                   "in %s.\n" % out), r.out
    after = os.stat(os.path.join(out, ".getflags", "manifest.json"))
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    r = getflags("--retry-failed", "-q", "-s", "http://127.0.0.1:9/flags", outdir=out)
    assert r.rc == 0 and r.out == "" and r.err == "", (r.out, r.err)
    # A sweep of nothing is the same one line, not a table of empty levels.
    r = getflags("--retry-failed", "--sweep", "1,5", "-s", "http://127.0.0.1:9/flags",
                 outdir=out)
    assert r.rc == 0 and r.out.startswith("Nothing to retry: "), r.out
    after = os.stat(os.path.join(out, ".getflags", "manifest.json"))
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_retry_failed_uses_m_beyond_the_default_list():
    # More codes failed than the 20 of the default list: -m is not held to
    # 20 (the list the command line would name without --retry-failed).
    out = scratch()
    r = getflags("-a", "-q", "--retries", "0", "-s", "http://127.0.0.1:9/flags", outdir=out)
    assert r.rc == 1, r.err
    with FlagServer("--delay", "0.2", "--quiet") as fs:
        r = getflags("--retry-failed", "-m", "100", "-s", fs.url, "--json", outdir=out)
    s = r.json()
    assert r.rc == 0 and s["counts"]["ok"] == 194, (r.err, s["counts"])
    assert s["concurrency"] == 100, s["concurrency"]
    assert s["peak_in_flight"] > 20, s["peak_in_flight"]


def test_every_code_not_found_is_warned_of_even_under_q():
    # A base URL with a typo answers 404 to everything: exit 0 as for any
    # not found, but cron mails the warning.
    out = scratch()
    with FlagServer("--quiet") as fs:
        r = getflags("-q", "-s", fs.url + "x", outdir=out)
        assert r.rc == 0 and r.out == "", (r.rc, r.out)
        assert r.err == ("getflags: warning: none of the 20 codes was found (404) under %sx: is "
                         "the base URL right?\n" % fs.url), r.err
        r = getflags("-q", "-s", fs.url + "x", "BR", outdir=out)
        assert r.err == ("getflags: warning: the one code asked for was not found (404) under "
                         "%sx: is the base URL right?\n" % fs.url), r.err
        # Metadata found, images missing: the URL is right; no warning.
        root = scratch()
        os.makedirs(os.path.join(root, "flags", "br"))
        with open(os.path.join(root, "flags", "br", "metadata.json"), "w") as f:
            f.write('{"country": "Brazil"}')
        with FlagServer("--quiet", directory=root) as fs2:
            r = getflags("-q", "-s", fs2.url, "BR", outdir=scratch())
        assert r.rc == 0 and r.out == "" and r.err == "", (r.out, r.err)
        # Some found: nothing to say.
        r = getflags("-q", "-s", fs.url, "BR", "QQ", outdir=out)
        assert r.rc == 0 and r.out == "" and r.err == "", (r.out, r.err)


def test_retry_failed_without_a_usable_manifest():
    # No manifest: no run to finish (the last one may have failed before it
    # could write one, on a full disk), so not a success of no codes: the
    # run cannot start, and DIR is left as it was (not even created).
    for out in (scratch(), os.path.join(scratch(), "not", "yet")):
        r = getflags("--retry-failed", "-s", "http://127.0.0.1:9/flags", outdir=out)
        assert r.rc == 3, (r.rc, r.out, r.err)
        assert r.out == "", r.out
        assert r.err == ("getflags: --retry-failed needs the last run's manifest, and %s has none "
                         "(%s/.getflags/manifest.json does not exist): run without "
                         "--retry-failed first\n" % (out, out)), r.err
        assert not os.path.exists(out) or os.listdir(out) == [], os.listdir(out)
    assert not os.path.exists(os.path.dirname(os.path.dirname(out)) + "/not")
    # A corrupt one cannot say what failed: the run cannot start.
    out = scratch()
    os.makedirs(os.path.join(out, ".getflags"))
    with open(os.path.join(out, ".getflags", "manifest.json"), "w") as f:
        f.write("{not json")
    r = getflags("--retry-failed", "-s", "http://127.0.0.1:9/flags", outdir=out)
    assert r.rc == 3 and "--retry-failed needs the last run's manifest" in r.err, r.err


def test_corrupt_manifest_is_a_warning_and_is_rewritten():
    out = scratch()
    os.makedirs(os.path.join(out, ".getflags"))
    with open(os.path.join(out, ".getflags", "manifest.json"), "w") as f:
        f.write("[1, 2")
    with FlagServer("--quiet") as fs:
        r = getflags("--update", "-s", fs.url, "BR", outdir=out)
    assert r.rc == 0 and "warning" in r.err, r.err
    assert manifest(out)["entries"][0]["cc"] == "BR"


def test_unwritable_manifest_stops_the_run_before_any_change():
    out = scratch()
    os.makedirs(os.path.join(out, ".getflags", "manifest.json"))  # a directory in the way
    with FlagServer("--quiet") as fs:
        r = getflags("-s", fs.url, "BR", outdir=out)
    assert r.rc == 3, (r.rc, r.err)
    assert r.err.splitlines()[-1].startswith(
        "getflags: cannot save the manifest %s/.getflags/manifest.json: rename failed: " % out), \
        r.err
    assert r.err.endswith("; no flag and no manifest in %s was changed\n" % out), r.err
    assert listing(out) == [], listing(out)


def lock_held(path):
    """Whether another process holds the flock on path."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def test_second_run_on_same_dir_exits_75_or_waits():
    out = scratch()
    with FlagServer("--delay", "2", "--quiet") as fs:
        first = subprocess.Popen([GETFLAGS, "-q", "-s", fs.url, "-o", out, "BR"])
        # Until the lock is held (flock), then for the 4 s its two answers
        # take.
        lock = os.path.join(out, ".getflags", "lock")
        deadline = time.time() + 10
        while not lock_held(lock):
            assert time.time() < deadline and first.poll() is None, "the first run never locked"
            time.sleep(0.02)
        r = getflags("-q", "-s", fs.url, "CN", outdir=out)
        assert r.rc == 75, (r.rc, r.err)
        assert "another getflags run" in r.err, r.err
        # It did not wait for the lock: the first run still holds it.
        assert first.poll() is None, "the second run waited for the first one"
        r = getflags("-q", "--wait-lock", "-s", fs.url, "CN", outdir=out)
        assert first.wait(10) == 0
    assert r.rc == 0, r.err
    assert listing(out) == ["Brazil.gif", "China.gif"]
    # The second run's manifest holds both codes.
    assert sorted(e["cc"] for e in manifest(out)["entries"]) == ["BR", "CN"]


def test_rate_limits_request_starts():
    out = scratch()
    rate = 10
    with FlagServer() as fs:
        t0 = time.time()
        r = getflags("--rate", str(rate), "-m", "8", "-s", fs.url, "-a", "-l", "15", outdir=out)
        took = time.time() - t0
        log = fs.log()
    assert r.rc == 0, r.err
    assert len(log) == 30
    assert took > (30 - (rate + 1)) / rate, took


def test_rate_window_bound_from_server_times():
    out = scratch()
    rate = 5
    with FlagServer() as fs:
        r = getflags("--rate", str(rate), "-m", "4", "-s", fs.url, "-a", "-l", "7", outdir=out)
        with open(fs.logfile.name, encoding="utf-8") as f:
            stamps = [line.split()[0] for line in f if " GET " in line]
    assert r.rc == 0
    import datetime
    ts = sorted(datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() for s in stamps)
    assert len(ts) == 14
    for i, t in enumerate(ts):
        in_window = sum(1 for u in ts[i:] if u < t + 1.0)
        assert in_window <= rate + 1, (i, in_window, ts)


def test_m_auto_converges_with_no_errors_and_beats_m1():
    # 388 requests of 20 ms: about 7.8 s one at a time. The server refuses
    # (503, Retry-After: 1) above 8 in progress.
    codes = ["-a"]
    with FlagServer("--delay", "0.02", "--max-inflight", "8", "--quiet") as fs:
        r1 = getflags("-m", "1", "--json", "-s", fs.url, *codes, outdir=scratch())
        ra = getflags("-m", "auto", "--json", "-s", fs.url, *codes, outdir=scratch())
        rt = getflags("-m", "auto", "-s", fs.url, "BR", "CN", outdir=scratch())
    s1, sa = r1.json(), ra.json()
    assert r1.rc == 0 and ra.rc == 0, (ra.err,)
    assert sa["counts"] == {"ok": 194, "unchanged": 0, "not_found": 0, "error": 0, "pending": 0}, sa["counts"]
    assert 4 <= sa["concurrency"] <= 9, sa["concurrency"]
    # Every probe above 8 costs the 1 s pause the server asks for.
    assert sa["elapsed_s"] < s1["elapsed_s"] * 0.65, (sa["elapsed_s"], s1["elapsed_s"])
    lines = rt.out.splitlines()
    assert lines[2] == "Adaptive concurrency will be used.", lines
    assert any(re.fullmatch(r"Concurrency settled at \d+\.", x) for x in lines), lines


def test_version_names_the_libraries():
    r = getflags("--version")
    assert r.rc == 0
    assert re.search(r"^getflags \d+\.\d+\.\d+$", r.out, re.M)
    for lib in ("libcurl", "libuv", "cJSON"):
        assert re.search(r"^%s \d+\.\d+\.\d+" % lib, r.out, re.M), r.out


def test_http_proxy_from_environment():
    with FlagServer() as proxy:
        env = dict(os.environ, http_proxy=proxy.base, no_proxy="")
        r = getflags("-v", "--retries", "0", "-s", "http://flags.example.invalid/flags", "BR",
                     outdir=scratch(), env=env)
        paths = [e["path"] for e in proxy.log()]
    # The requests reached the proxy (in absolute form), not a resolver.
    assert paths and all(p.startswith("http://flags.example.invalid/") for p in paths), paths
    with FlagServer("--quiet") as fs, FlagServer() as proxy:
        env = dict(os.environ, http_proxy=proxy.base, no_proxy="127.0.0.1")
        r = getflags("-s", fs.url, "BR", outdir=scratch(), env=env)
        assert r.rc == 0 and proxy.log() == []


if __name__ == "__main__":
    run_tests(dict(globals()))
