"""The command line end to end: the long options of the flags2 scripts,
usage errors that stop a run before any request, and a password given in
-s, which is sent to the server but never printed or stored."""

import base64
import http.server
import json
import os
import shutil
import subprocess
import threading

from gfutil import DATA, GETFLAGS, FlagServer, getflags, run_tests, scratch

SECRET = "s3cr3t-Pa55"


def with_password(url, user="flagfan", password=SECRET):
    scheme, rest = url.split("://", 1)
    return "%s://%s:%s@%s" % (scheme, user, password, rest)


def without_password(url, user="flagfan"):
    scheme, rest = url.split("://", 1)
    return "%s://%s@%s" % (scheme, user, rest)


def files_below(d):
    """(path, bytes) of every file below d, hidden ones included."""
    out = []
    for root, _dirs, files in os.walk(d):
        for n in files:
            p = os.path.join(root, n)
            with open(p, "rb") as f:
                out.append((p, f.read()))
    return out


def assert_no_secret(r, outdir):
    assert SECRET not in r.out, r.out
    assert SECRET not in r.err, r.err
    state = files_below(os.path.join(outdir, ".getflags"))
    assert any(p.endswith("manifest.json") for p, _ in state), state
    for p, data in state:
        assert SECRET.encode() not in data, (p, data[:500])
    for p, _ in files_below(outdir):
        assert SECRET not in p, p


def test_password_in_server_url_is_never_shown_or_stored():
    out = scratch()
    with FlagServer("--quiet") as fs:
        url = with_password(fs.url)
        shown = without_password(fs.url)
        r = getflags("-s", url, "--json", "-v", "BR", "FR", "CN", outdir=out)
        assert r.rc == 0, r.err
        s = r.json()
        assert s["base_url"] == shown, s["base_url"]
        assert s["counts"]["ok"] == 3, s["counts"]
        assert "BR OK" in r.err, r.err
        assert_no_secret(r, out)
        with open(os.path.join(out, ".getflags", "manifest.json"), encoding="utf-8") as f:
            assert json.load(f)["base_url"] == shown

        # The text report, and --update against the same server: the
        # manifest's URL is compared as shown, so the run is conditional
        # (no "another server" warning) and every flag is unchanged.
        r = getflags("-s", url, "-v", "--update", "BR", "FR", "CN", outdir=out)
        assert r.rc == 0, r.err
        assert r.out.splitlines()[0] == "URL site: " + shown, r.out
        assert "another server" not in r.err, r.err
        assert "  3 unchanged." in r.out, r.out
        assert_no_secret(r, out)

        # A usage error does not show it either.
        r = getflags("-s", url + "#frag", outdir=out)
        assert r.rc == 2 and "#fragment" in r.err, r.err
        assert without_password(fs.url) + "#frag" in r.err, r.err
        assert SECRET not in r.err and r.out == "", r.err


class _AuthRecorder(http.server.SimpleHTTPRequestHandler):
    seen = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=DATA, **kwargs)

    def do_GET(self):
        _AuthRecorder.seen.append(self.headers.get("Authorization"))
        super().do_GET()

    def log_message(self, *args):
        pass


def test_password_is_sent_to_the_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AuthRecorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _AuthRecorder.seen = []
        base = "http://127.0.0.1:%d/flags" % server.server_address[1]
        out = scratch()
        r = getflags("-s", with_password(base), "-m", "1", "BR", outdir=out, timeout=30)
        assert r.rc == 0, r.err
        want = "Basic " + base64.b64encode(("flagfan:" + SECRET).encode()).decode()
        assert _AuthRecorder.seen == [want, want], _AuthRecorder.seen
        assert_no_secret(r, out)
    finally:
        server.shutdown()
        server.server_close()


def test_book_command_line():
    """flags2_common.py's long options, '=' values and abbreviations."""
    out = scratch()
    with FlagServer("--delay", "0.02") as fs:
        r = getflags("--all", "--limit", "6", "--max_req=2", "--server=" + fs.url, "--verbose",
                     outdir=out)
        assert r.rc == 0, r.err
        lines = r.out.splitlines()
        assert lines[1] == "Searching for 6 flags: AD, AE, AF, AG, AL, AM", lines[1]
        assert lines[2] == "2 concurrent connections will be used.", lines[2]
        assert "AM OK" in r.out and "  6 flags downloaded." in r.out, r.out
        log = fs.log()
        assert len(log) == 12 and max(e["inflight"] for e in log) <= 2, log

        r = getflags("--ev", "--lim", "2", "--max", "3", "--serv", fs.url, outdir=out)
        assert r.rc == 2 and r.out == "", r.out
        assert r.err.startswith("*** Usage error: ambiguous option '--max' (could be "
                                "--max_req, --max-size)\n"), r.err
        r = getflags("--ev", "--lim", "2", "--max_r", "3", "--serv", fs.url, "--verb",
                     outdir=out)
        assert r.rc == 0, r.err
        assert "AA not found" in r.out and "AB not found" in r.out, r.out
        assert len(fs.log()) == 14


def test_usage_errors_make_no_request():
    with FlagServer() as fs:
        r = getflags("-s", fs.url, "BR", outdir=scratch())
        assert r.rc == 0 and len(fs.log()) == 2, (r.err, fs.log())
        for args in (["-s", fs.url + "#top"], ["-s", fs.url + "?v=1"],
                     ["-s", fs.url + "/../flags"], ["--rate", "0.00001", "-s", fs.url],
                     ["--re", "1", "-s", fs.url], ["--http", "-s", fs.url]):
            r = getflags(*args, "BR", outdir=scratch())
            assert r.rc == 2, (args, r.rc, r.err)
            assert r.err.startswith("*** Usage error: ") and r.out == "", (args, r.err)
        assert len(fs.log()) == 2, fs.log()


def test_gnutls_start_up_is_skipped():
    """libcurl's LDAP and RTMP libraries load GnuTLS, which getflags never
    uses; getflags exports the hook with which GnuTLS skips setting itself
    up in every process (a libcurl built on GnuTLS sets it up itself)."""
    env = dict(os.environ, LD_DEBUG="bindings")
    r = subprocess.run([GETFLAGS, "--version"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("getflags "), (r.returncode, r.stdout)
    hook = [ln for ln in r.stderr.splitlines() if "`_gnutls_global_init_skip'" in ln]
    if "/libgnutls.so" in r.stderr:
        # GnuTLS asks for the hook and finds getflags' own.
        assert hook and all(ln.split(" to ")[1].startswith(GETFLAGS) for ln in hook), hook
    else:
        nm = shutil.which("nm")
        assert nm, "GnuTLS is not loaded and there is no nm to read the export with"
        syms = subprocess.run([nm, "-D", "--defined-only", GETFLAGS], capture_output=True,
                              text=True, check=True).stdout
        assert " T _gnutls_global_init_skip" in syms, syms


if __name__ == "__main__":
    run_tests(dict(globals()))
