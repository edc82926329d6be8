"""getflags against every fault a server, a disk or a user can throw:
the outcome, the message, the exit status and the output directory's
exact contents, with nothing written outside it."""

import contextlib
import ctypes
import filecmp
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from bigflags import BigFlagServer, big_gif
from gfutil import (DATA, GETFLAGS, FlagServer, Nginx, country_of, expected_name, getflags,
                    listing, refusing_port, run_tests, scratch)

SERVER = None  # one flagserver for the fault paths, started in main
# Loaded here, not in a forked child about to exec, where dlopen is unsafe.
LIBC = ctypes.CDLL(None, use_errno=True)


def fault_url(name):
    return "%s/fault/%s/flags" % (SERVER.base, name)


def one(fault, *args, cc="BR"):
    """Runs getflags for one code against a fault path."""
    out = scratch()
    r = getflags("-v", "--retries", "0", *args, "-s", fault_url(fault), cc, outdir=out)
    return r, listing(out)


def assert_error(fault, reason, *args):
    r, files = one(fault, *args)
    assert r.rc == 1, (fault, r.rc, r.out, r.err)
    # Where the server is: "%(server)s" in reason is "HOST port PORT".
    host_port = SERVER.base.split("://", 1)[1].replace(":", " port ")
    reason = reason % {"server": host_port} if "%(" in reason else reason
    assert "BR error: " + reason in r.out, (fault, r.out)
    assert files == [], (fault, files)
    assert "  1 error." in r.out


def test_connection_refused():
    out = scratch()
    with refusing_port() as port:
        r = getflags("-v", "--retries", "0", "-s", "http://127.0.0.1:%d/flags" % port, "BR",
                     outdir=out)
    assert r.rc == 1 and "BR error: connection refused" in r.out, r.out
    assert listing(out) == []


def test_server_that_stopped_accepting_ends_in_bounded_time():
    # A server whose program hangs: its listen queue (8) fills with the
    # first connections, then the kernel drops every SYN. The pacer gives
    # up on such attempts and tries again, but only so often per request:
    # each code then ends on the connect timeout and its retries, instead
    # of a new SYN every few milliseconds for good.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    try:
        out = scratch()
        t0 = time.time()
        r = getflags("--json", "-l", "20", "-m", "5", "--timeout", "2", "--retries", "1", "-s",
                     "http://127.0.0.1:%d/flags" % srv.getsockname()[1], outdir=out, timeout=120)
        took = time.time() - t0
    finally:
        srv.close()
    counts = r.json()["counts"]
    assert r.rc == 1 and counts["error"] == 20 and counts["pending"] == 0, (r.rc, counts, r.err)
    # 20 codes, 5 at a time, two attempts of at most 2 s each and a backoff:
    # about 30 s at worst.
    assert took < 60, took
    reqs = r.json()["requests"]
    assert reqs <= 20 * 2 * 10, reqs


def test_proxy_errors_name_the_proxy_and_hide_its_password():
    with FlagServer("--quiet") as fs, refusing_port() as port:
        env = dict(os.environ, http_proxy="http://127.0.0.1:%d" % port)
        out = scratch()
        r = getflags("--retries", "0", "-s", fs.url, "BR", outdir=out, env=env)
        assert r.rc == 1, r.err
        # The proxy refused, not the server the URL names (which is up).
        assert "BR error: connection refused by proxy 127.0.0.1 port %d" % port in r.err, r.err
        # A proxy URL libcurl cannot use is quoted, less its password.
        env = dict(os.environ, http_proxy="http://alice:pa#ss@127.0.0.1:%d" % port)
        r = getflags("--retries", "0", "-s", fs.url, "BR", outdir=out, env=env)
        assert r.rc == 1 and "BR error: cannot use the proxy: " in r.err, r.err
        assert "pa#ss" not in r.err + r.out, r.err
        with open(os.path.join(out, ".getflags", "manifest.json")) as f:
            assert "pa#ss" not in f.read()
        # no_proxy still wins.
        env = dict(os.environ, http_proxy="http://127.0.0.1:%d" % port, no_proxy="127.0.0.1")
        assert getflags("-s", fs.url, "BR", outdir=scratch(), env=env).rc == 0


def expired_certificate(d):
    """A CA and a certificate for localhost it signed, valid only on
    2020-01-01 (openssl ca sets past dates; openssl 3.0's x509 cannot)."""
    def run(*args):
        subprocess.run(args, cwd=d, check=True, capture_output=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    run("openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-subj",
        "/CN=getflags test CA", "-days", "30")
    run("openssl", "req", "-new", *ec, "-keyout", "s.key", "-out", "s.csr", "-subj", "/CN=localhost")
    os.makedirs(os.path.join(d, "db"))
    open(os.path.join(d, "db", "index"), "w").close()
    with open(os.path.join(d, "db", "serial"), "w") as f:
        f.write("01\n")
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = db/index\nnew_certs_dir = db\n"
                "serial = db/serial\ndefault_md = sha256\npolicy = p\n"
                "x509_extensions = ext\n[p]\ncommonName = supplied\n"
                "[ext]\nsubjectAltName = DNS:localhost\n")
    run("openssl", "ca", "-batch", "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key",
        "-in", "s.csr", "-out", "s.crt", "-startdate", "20200101000000Z", "-enddate",
        "20200102000000Z", "-notext")


@contextlib.contextmanager
def each_connection(handle):
    """A loopback port whose every accepted connection goes to
    handle(conn), on a thread, until the block ends; yields the port."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            with c:
                try:
                    handle(c)
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield srv.getsockname()[1]
    finally:
        srv.close()


def test_expired_certificate_is_not_a_missing_ca():
    import ssl
    d = scratch()
    expired_certificate(d)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, "s.crt"), os.path.join(d, "s.key"))
    with each_connection(lambda c: ctx.wrap_socket(c, server_side=True).close()) as port:
        r = getflags("--retries", "0", "--cacert", os.path.join(d, "ca.crt"), "-s",
                     "https://localhost:%d/flags" % port, "BR", outdir=scratch())
    assert r.rc == 1, r.err
    # Another CA would not help: the dates are what is wrong.
    assert "BR error: the certificate of localhost port %d is out of its dates: " % port in r.err, \
        r.err
    assert "certificate has expired (or this machine's clock is wrong)" in r.err, r.err
    assert "--cacert" not in r.err, r.err


def test_tls_stall_is_never_called_a_dns_failure():
    # A server that takes connections but never says a word of TLS. libcurl
    # 7.88 says "Resolving timed out" for a request that waited on such a
    # connection: no code may be told its host does not resolve (which
    # would also fail the codes after it without a request of their own).
    def hold(c):
        time.sleep(3)  # open and silent; the connections after it wait in the backlog

    for host in ("127.0.0.1", "localhost"):
        with each_connection(hold) as port:
            r = getflags("-v", "--timeout", "1", "--retries", "1", "-m", "2", "-s",
                         "https://%s:%d/flags" % (host, port), "BR", "CN", "FR", "US",
                         outdir=scratch(), timeout=60)
        assert r.rc == 1, (host, r.rc, r.out, r.err)
        assert "resolve" not in r.out + r.err, (host, r.out)
        for cc in ("BR", "CN", "FR", "US"):
            assert ("%s error: cannot connect to %s port %d: no TLS connection (TCP, then the "
                    "handshake) within 1 s" % (cc, host, port)) in r.out, (host, r.out)


def test_closed_without_answer():
    assert_error("refuse", "%(server)s closed the connection without answering")


def test_reset_mid_body():
    assert_error("reset", "connection reset by %(server)s")


def test_body_shorter_than_content_length():
    assert_error("short", "body shorter than its Content-Length")


def test_chunked_body_cut_short_is_not_called_a_content_length():
    # A chunked answer whose connection closes inside a chunk: no
    # Content-Length to be shorter than.
    def answer(c):
        c.recv(65536)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n40\r\n{\"country\": ")

    with each_connection(answer) as port:
        out = scratch()
        r = getflags("-v", "--retries", "0", "-s", "http://127.0.0.1:%d/flags" % port, "BR",
                     outdir=out)
    assert r.rc == 1, (r.rc, r.out, r.err)
    assert "BR error: body cut short: the connection ended before its last chunk" in r.out, r.out
    assert listing(out) == []


def test_bad_chunked_encoding():
    assert_error("badchunk",
                 "receiving from %(server)s failed: Illegal or missing hexadecimal sequence")


def test_redirect_loop_stops_after_5():
    assert_error("loop", "too many redirects (more than 5)")
    log = [e["path"] for e in SERVER.log() if e["path"].startswith("/fault/loop/")]
    assert len(log) >= 6


def test_redirect_to_other_protocols_refused():
    assert_error("redirect-file", 'refused redirect to a non-HTTP(S) URL: Protocol "file"')
    assert_error("redirect-ftp", 'refused redirect to a non-HTTP(S) URL: Protocol "ftp"')


def test_redirect_to_http_followed():
    r, files = one("redirect-ok")
    assert r.rc == 0 and files == ["Brazil.gif"], (r.out, files)


def test_http_errors_are_errors_and_never_saved():
    assert_error("418", "HTTP error 418 - I'm a teapot")
    assert_error("500", "HTTP error 500 - Internal Server Error")


def test_html_instead_of_json():
    assert_error("html", "bad metadata: not valid JSON")


def test_html_instead_of_an_image_is_never_saved():
    root = scratch()
    shutil.copytree(os.path.join(DATA, "flags", "br"), os.path.join(root, "flags", "br"))
    with open(os.path.join(root, "flags", "br", "br.gif"), "w") as f:
        f.write("<html><body>Service temporarily unavailable</body></html>\n")
    out = scratch()
    with FlagServer("--quiet", directory=root) as fs:
        r = getflags("-v", "-s", fs.url, "BR", outdir=out)
    assert r.rc == 1 and "BR error: not a GIF image" in r.out, r.out
    assert listing(out) == []


def test_huge_headers_stopped():
    assert_error("hugeheaders", "response headers larger than 65536 bytes")
    # One line past libcurl's own limit, which libcurl reports as out of
    # memory: the line is named too (memory did not visibly run out).
    assert_error("longheader",
                 "out of memory, or a response header line longer than libcurl accepts (100 KB)")


def test_endless_body_stopped_by_metadata_cap():
    assert_error("endless", "metadata larger than 65536 bytes")


def test_image_cap_max_size():
    r, files = one("gzip", "--max-size", "100")  # every flag is larger than 100 bytes
    assert r.rc == 1 and "BR error: image larger than 100 bytes (--max-size)" in r.out, r.out
    assert files == []
    r, files = one("gzip", "--max-size", "1")
    assert r.rc == 1 and "BR error: image larger than 1 byte (--max-size)\n" in r.out, r.out


def run_peak_rss(cmd, timeout):
    """Runs cmd to its end; returns (exit status, stdout, stderr, peak
    resident set in KiB). The peak comes from wait4()'s rusage of the child
    itself, so no external tool (/usr/bin/time) is needed."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                break
            if time.monotonic() > deadline:
                p.kill()
                os.wait4(p.pid, 0)
                p.returncode = -9
                raise AssertionError("%s still running after %d s" % (cmd, timeout))
            time.sleep(0.01)
        # Reaped here, not by Popen: tell it, so it never waits again.
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (p.returncode, out.read().decode("utf-8", "replace"),
                err.read().decode("utf-8", "replace"), usage.ru_maxrss)


def test_gzip_bombs_stopped_on_decoded_bytes():
    for fault in ("gzipbomb", "gzipbomb-te"):
        out = scratch()
        cmd = [GETFLAGS, "-v", "--retries", "0", "-s", fault_url(fault), "-o", out, "BR"]
        rc, stdout, stderr, peak_kib = run_peak_rss(cmd, 60)
        assert rc == 1, (fault, rc, stdout, stderr)
        assert "BR error: metadata larger than 65536 bytes" in stdout, (fault, stdout)
        assert peak_kib < 40 * 1024, (fault, peak_kib)  # ~50 MiB if it were inflated
        assert listing(out) == []


def test_compressed_answer_decoded_before_saving():
    r, files = one("gzip")
    assert r.rc == 0 and files == ["Brazil.gif"], r.out
    out = r.outdir
    assert filecmp.cmp(os.path.join(out, "Brazil.gif"), os.path.join(DATA, "flags/br/br.gif"),
                       shallow=False)


def test_undecodable_body_is_an_error():
    assert_error("badgzip", "cannot decode the body")


def test_silence_and_trickle_stopped_by_timeout_others_go_on():
    # nginx serves every code but sends BR (and FR) to a misbehaving path.
    extra = ("location = /flags/br/metadata.json { return 302 %s/fault/silence/flags/br/"
             "metadata.json; } location = /flags/fr/metadata.json { return 302 "
             "%s/fault/trickle/flags/fr/metadata.json; }" % (SERVER.base, SERVER.base))
    out = scratch()
    with Nginx(extra=extra) as ng:
        t0 = time.time()
        r = getflags("-v", "--retries", "0", "--timeout", "1", "-m", "4", "-s", ng.url, "BR",
                     "FR", "CN", "IN", "US", "JP", outdir=out)
        took = time.time() - t0
    assert r.rc == 1, r.out
    # Each says which server, and how far its answer got: silence sends
    # its headers, trickle a few bytes of the body.
    port = int(SERVER.base.rsplit(":", 1)[1])
    assert "BR error: timeout after 1 s: 127.0.0.1 port %d had sent no body\n" % port in r.out, \
        r.out
    assert re.search(r"FR error: timeout after 1 s: 127\.0\.0\.1 port %d had sent [1-9][0-9]* "
                     r"(of [0-9]+ )?bytes\n" % port, r.out), r.out
    assert "  4 flags downloaded." in r.out, r.out
    assert len(listing(out)) == 4
    assert took < 5, took


def test_phases_of_a_request_never_answered():
    # A server that takes the connection and the request and never says a
    # word: the second waited for belongs to the first byte, not to the
    # transfer of a body that never came. (fault "silence" sends its
    # headers first: there the wait is the body's.)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    held = []
    stop = threading.Event()

    def take():
        lsock.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(lsock.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=take, daemon=True)
    t.start()
    port = lsock.getsockname()[1]
    try:
        r = getflags("--retries", "0", "--timeout", "1", "--json", "-s",
                     "http://127.0.0.1:%d/flags" % port, "BR", outdir=scratch())
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        lsock.close()
    assert r.rc == 1, (r.out, r.err)
    (item,) = r.json()["items"]
    ph = item["phases"]["meta"]
    assert item["error"] == "timeout after 1 s: no answer from 127.0.0.1 port %d" % port, item
    assert ph["transfer"] == 0 and 0.9 < ph["first_byte"] <= ph["total"], ph
    assert abs(ph["dns"] + ph["connect"] + ph["tls"] + ph["first_byte"] - ph["total"]) < 0.01, ph


def test_429_and_503_retried_with_retry_after_then_saved():
    for fault in ("429", "503"):
        out = scratch()
        t0 = time.time()
        r = getflags("-v", "-s", fault_url(fault), "CN", outdir=out)
        took = time.time() - t0
        assert r.rc == 0, (fault, r.out, r.err)
        # A refusal that names a time is obeyed at no cost to --retries.
        assert "CN asked again after HTTP %s" % fault in r.out, r.out
        assert "retry" not in r.out, r.out
        assert re.search(r"answered %s \(Retry-After: 1 s\): no new request to it for 1\.\d s"
                         % fault, r.err), r.err
        assert "CN OK" in r.out
        assert listing(out) == ["China.gif"]
        assert 1.9 < took < 5, took  # Retry-After: 1, once for each request


def test_no_retry_for_other_4xx():
    r, files = one("418", "--retries", "3")
    assert "retry" not in r.out, r.out


def test_retries_used_up():
    r, files = one("500", "--retries", "1")
    assert "BR retry 1/1" in r.out and "BR error: HTTP error 500" in r.out, r.out


def hostile_tree():
    root = scratch()
    flags = os.path.join(root, "flags")
    gif = open(os.path.join(DATA, "flags", "br", "br.gif"), "rb").read()
    bodies = {
        "ba": b"",
        "bb": b"[" * 1001 + b"]" * 1001,
        "bc": b'{"1":1,',
        "bd": b'{"country": "Peru"} trailing',
        "be": b'{"country": null}',
        "bf": b'{"country": ["x"]}',
        "bg": b'{"country": "."}',
        "bh": ('{"country": "%s"}' % ("\u00e9" * 300)).encode(),
        "bi": b'{"country": "a\\u0000b"}',
        "bj": b'{"country": "\xff\xfe"}',
        "bk": b'{"country": "\\ud800"}',
        "bl": b'{"country": "\xed\xa0\x80"}',
        "bm": b'{"country": "tab\\there\\u0085c1"}',
    }
    for cc, body in bodies.items():
        os.makedirs(os.path.join(flags, cc))
        with open(os.path.join(flags, cc, "metadata.json"), "wb") as f:
            f.write(body)
        with open(os.path.join(flags, cc, cc + ".gif"), "wb") as f:
            f.write(gif)
    return root


def test_hostile_metadata_outcomes():
    data = hostile_tree()
    parent = scratch()
    out = os.path.join(parent, "out")
    with FlagServer("--quiet", directory=data) as fs:
        r = getflags("--json", "-s", fs.url, "-m", "4", "B", outdir=out)
        images = [e["path"] for e in fs.log() if e["path"].endswith(".gif")]
    s = r.json()
    items = {i["cc"]: i for i in s["items"]}
    for cc in ("BA", "BB", "BC", "BD", "BE", "BF", "BI", "BJ", "BK", "BL"):
        assert items[cc]["status"] == "error", (cc, items[cc])
        assert items[cc]["error"].startswith("bad metadata: "), (cc, items[cc])
        assert "/flags/%s/%s.gif" % (cc.lower(), cc.lower()) not in images, cc
    assert items["BG"]["file"] == "_.gif"
    long = items["BH"]["file"]
    assert len(long.encode()) <= 200 and long.endswith(".gif") and long.startswith("\u00e9")
    long.encode("utf-8")  # valid UTF-8
    assert items["BM"]["file"] == "tab_here_c1.gif", items["BM"]
    assert listing(parent) == ["out"] + ["out/" + n for n in listing(out)]
    assert listing(out) == sorted(["_.gif", long, "tab_here_c1.gif"])
    assert r.rc == 1


def test_signal_that_cannot_be_watched_stops_the_run_before_it_starts():
    # SIGINT is the first handle set up, SIGHUP the last: each failure must
    # undo the handles before it (LeakSanitizer and the loop's close check it).
    asan = os.environ.get("ASAN_OPTIONS", "")
    with FlagServer("--quiet") as fs:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            out = scratch()
            env = dict(os.environ, LD_PRELOAD=os.environ["GF_SIGNAL_FAIL_SHIM"],
                       GF_FAIL_SIGNAL=str(int(sig)),
                       ASAN_OPTIONS=(asan + ":" if asan else "") + "verify_asan_link_order=0")
            # A handle left open would keep the loop, and the run, alive.
            r = getflags("-s", fs.url, "BR", "CN", outdir=out, env=env, timeout=15)
            assert r.rc == 3, (sig, r.rc, r.out, r.err)
            assert r.err == "getflags: cannot watch for signals: invalid argument\n", (sig, r.err)
            assert r.out == "", (sig, r.out)
            assert [n for n in listing(out) if not n.startswith(".getflags")] == [], listing(out)
        assert fs.log() == [], fs.log()
        # Without the fault the same run works: the shim fails only what it is told to.
        out = scratch()
        env = dict(os.environ, LD_PRELOAD=os.environ["GF_SIGNAL_FAIL_SHIM"],
                   ASAN_OPTIONS=(asan + ":" if asan else "") + "verify_asan_link_order=0")
        r = getflags("-s", fs.url, "BR", "CN", outdir=out, env=env)
        assert r.rc == 0, (r.rc, r.out, r.err)
        assert [n for n in listing(out) if not n.startswith(".")] == \
            sorted(expected_name(country_of(cc)) for cc in ("br", "cn")), listing(out)


def test_disk_full_fails_each_save_and_keeps_earlier_files():
    out = scratch()
    with FlagServer("--quiet") as fs:
        r = getflags("-s", fs.url, "BR", "CN", outdir=out)
        assert r.rc == 0
        before = {n: open(os.path.join(out, n), "rb").read() for n in listing(out)}
        # A sanitizer build wants its runtime first; the shim must come first.
        asan = os.environ.get("ASAN_OPTIONS", "")
        env = dict(os.environ, LD_PRELOAD=os.environ["GF_ENOSPC_SHIM"],
                   ASAN_OPTIONS=(asan + ":" if asan else "") + "verify_asan_link_order=0")
        r = getflags("-v", "-s", fs.url, "BR", "CN", "FR", outdir=out, env=env)
    assert r.rc == 1, r.out
    for cc, name in (("BR", "Brazil.gif"), ("CN", "China.gif"), ("FR", "France.gif")):
        assert "%s error: cannot save %s: write failed: no space left on device" % (cc, name) \
            in r.out, r.out
    assert listing(out) == sorted(before), os.listdir(out)
    for n, data in before.items():
        assert open(os.path.join(out, n), "rb").read() == data


def test_manifest_that_cannot_be_written_stops_the_run_before_any_change():
    # No room for the manifest (a full disk, a read-only DIR/.getflags):
    # the run could not record what it changes, and DIR would no longer
    # match its manifest (stale hashes, a renamed file's old name). It
    # stops before writing anything: one message, exit 3.
    out = scratch()
    with FlagServer("--quiet") as fs:
        r = getflags("-s", fs.url, "BR", "CN", outdir=out)
        assert r.rc == 0
        man = os.path.join(out, ".getflags", "manifest.json")
        before = {n: os.stat(os.path.join(out, n)).st_ino for n in listing(out)}
        man_before = open(man, "rb").read()
        asan = os.environ.get("ASAN_OPTIONS", "")
        env = dict(os.environ, LD_PRELOAD=os.environ["GF_ENOSPC_SHIM"],
                   GF_ENOSPC_MANIFEST="1",
                   ASAN_OPTIONS=(asan + ":" if asan else "") + "verify_asan_link_order=0")
        for args in (["--update"], [], ["--sweep", "1,2"]):
            r = getflags(*args, "-s", fs.url, "BR", "CN", "FR", outdir=out, env=env)
            assert r.rc == 3, (args, r.rc, r.out, r.err)
            assert re.search(r"^getflags: cannot save the manifest \S+manifest.json: write failed: "
                             r"no space left on device; no flag and no manifest in \S+ was changed$", r.err,
                             re.M), (args, r.err)
            assert "flags downloaded" not in r.out, (args, r.out)
            assert {n: os.stat(os.path.join(out, n)).st_ino for n in listing(out)} == before
            assert open(man, "rb").read() == man_before


def test_room_kept_for_the_manifest_counts_each_code_once():
    # The manifest after a run has one entry per code, old or new: a code
    # it already lists is replaced, so the room kept for it is not counted
    # twice (a nightly -a --update on a nearly full disk would otherwise
    # stop with exit 3, needing twice the room it uses).
    out = scratch()
    with FlagServer("--quiet") as fs:
        assert getflags("-s", fs.url, "BR", "CN", "FR", outdir=out).rc == 0
    reserve = os.path.join(out, ".getflags", "manifest.reserve")
    with FlagServer("--quiet", "--delay", "2") as fs:
        p = subprocess.Popen([GETFLAGS, "-q", "--update", "-s", fs.url, "-o", out, "BR", "CN",
                              "FR", "DE"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        size = None
        deadline = time.time() + 10
        while size is None and time.time() < deadline and p.poll() is None:
            try:
                size = os.stat(reserve).st_size
            except FileNotFoundError:
                time.sleep(0.01)
        _, err = p.communicate(timeout=30)
    assert p.returncode == 0, (p.returncode, err)
    # 3 entries kept, DE added, and the 4 entries' margin every run keeps.
    assert size == (3 + 1 + 4) * 1024, size
    assert not os.path.exists(reserve)


def on_small_tmpfs(size, args, fs):
    """getflags args -o DIR with DIR on a new tmpfs of size bytes, mounted
    in a mount namespace of its own (root only); returns the exit status,
    stdout and stderr, and a copy of DIR (the tmpfs goes with the
    namespace)."""
    mnt, copy = scratch(), scratch()
    # Propagation unchanged: in a chroot, where / is no mount point, it
    # cannot be made private; the script unmounts what it mounted.
    script = ('mount -t tmpfs -o size=%d tmpfs "$1" || exit 99; shift; "$@" -o "$MNT/out"; '
              'rc=$?; cp -a "$MNT/out" "$COPY/" 2>/dev/null; umount "$MNT"; exit $rc') % size
    p = subprocess.run(["unshare", "--mount", "--propagation", "unchanged", "sh", "-c", script,
                        "sh", mnt, GETFLAGS, "-s", fs.url] + args,
                       env=dict(os.environ, MNT=mnt, COPY=copy), capture_output=True, text=True,
                       timeout=120)
    assert p.returncode != 99 and "unshare" not in p.stderr and "mount:" not in p.stderr, \
        p.stderr
    assert not os.path.ismount(mnt), mnt
    return p.returncode, p.stdout, p.stderr, os.path.join(copy, "out")


def test_disk_filled_by_the_flags_still_gets_the_final_manifest():
    # The flags fill the file system: the run's last manifest still fits,
    # in the space kept for it at the start, and matches what is on disk.
    with FlagServer("--quiet") as fs:
        rc, out, err, d = on_small_tmpfs(600 * 1024, ["-a"], fs)
        assert rc == 1, (rc, out, err)
        assert "no space left on device" in out + err, (out, err)
        assert "cannot save the manifest" not in err, err
        man = json.load(open(os.path.join(d, ".getflags", "manifest.json")))
        ok = {e["file"] for e in man["entries"] if e["status"] == "ok"}
        gifs = {n for n in os.listdir(d) if n.endswith(".gif")}
        assert len(ok) > 10 and ok == gifs, (len(ok), len(gifs))
        for e in man["entries"]:
            if e["status"] == "ok":
                data = open(os.path.join(d, e["file"]), "rb").read()
                assert hashlib.sha256(data).hexdigest() == e["sha256"], e
        assert sorted(os.listdir(os.path.join(d, ".getflags"))) == ["lock", "manifest.json"]
        # No room to keep for the manifest: nothing starts.
        rc, out, err, d = on_small_tmpfs(64 * 1024, ["-a"], fs)
        assert rc == 3, (rc, out, err)
        assert re.search(r"^getflags: cannot keep 198 KB in \S+/.getflags for the manifest: no "
                         r"space left on device; no flag and no manifest in \S+ was changed$", err, re.M), err
        assert [n for n in os.listdir(d) if not n.startswith(".")] == [], os.listdir(d)


def test_disk_full_while_a_large_image_streams_is_a_counted_error():
    out = scratch()
    asan = os.environ.get("ASAN_OPTIONS", "")
    env = dict(os.environ, LD_PRELOAD=os.environ["GF_ENOSPC_SHIM"],
               ASAN_OPTIONS=(asan + ":" if asan else "") + "verify_asan_link_order=0")
    # 1 MiB images: past what stays in memory, so written as they arrive.
    with BigFlagServer(size=1 << 20) as srv:
        r = getflags("-v", "-s", srv.url, "AA", "AB", outdir=out, env=env)
    assert r.rc == 1, (r.rc, r.out, r.err)
    for cc in ("AA", "AB"):
        assert re.search(r"^ *%s error: cannot save the image: write failed: no space left on "
                         r"device \(\d+ bytes received\)$" % cc, r.out, re.M), r.out
    assert "  2 errors." in r.out, r.out
    assert listing(out) == [], os.listdir(out)


def test_file_size_limit_fails_large_saves_only():
    # Images of 8 KiB for two codes, under a file-size limit of 4 KiB that
    # the others (and the manifest) fit in.
    data = scratch()
    codes = ("br", "cn", "us", "gb", "de", "fr")
    big = {"de", "fr"}
    for cc in codes:
        shutil.copytree(os.path.join(DATA, "flags", cc), os.path.join(data, "flags", cc))
        if cc in big:
            with open(os.path.join(data, "flags", cc, cc + ".gif"), "wb") as f:
                f.write(big_gif(8192))
    out = scratch()
    limit = 4096

    def cap():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    with FlagServer("--quiet", directory=data) as fs:
        p = subprocess.run([GETFLAGS, "-v", "-s", fs.url, "-o", out] + sorted(codes),
                           capture_output=True, text=True, preexec_fn=cap, timeout=60)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    for cc in big:
        assert "%s error: cannot save" % cc.upper() in p.stdout, (cc, p.stdout)
    names = listing(out)
    assert names == sorted(expected_name(country_of(cc)) for cc in set(codes) - big), names


def test_symlink_at_target_never_followed():
    out = scratch()
    victim = os.path.join(scratch(), "victim")
    with open(victim, "w") as f:
        f.write("precious")
    os.symlink(victim, os.path.join(out, "Brazil.gif"))
    with FlagServer("--quiet") as fs:
        r = getflags("-s", fs.url, "BR", outdir=out)
    assert r.rc == 0
    assert open(victim).read() == "precious"
    assert not os.path.islink(os.path.join(out, "Brazil.gif"))


def test_directory_at_target_is_an_error_for_that_code():
    out = scratch()
    os.mkdir(os.path.join(out, "Brazil.gif"))
    with FlagServer("--quiet") as fs:
        r = getflags("-v", "-s", fs.url, "BR", "CN", outdir=out)
    assert r.rc == 1 and "BR error: cannot save Brazil.gif: rename failed" in r.out, r.out
    assert listing(out) == ["Brazil.gif", "China.gif"]
    assert os.path.isdir(os.path.join(out, "Brazil.gif"))


def drop_dac_override():
    """Run in a child about to exec, as root: takes the capabilities that let
    root write and search anywhere (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH)
    out of the bounding set, so the program it runs is refused a write into a
    0555 directory as its owner would be. Unlike switching to nobody, this
    needs no access to the build tree (a checkout under /root is mode 0700)
    or to the directories above it."""
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if LIBC.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP, %d)" % cap)


def test_unwritable_output_dir_exits_3():
    out = scratch()
    os.chmod(out, 0o555)
    # Root writes anywhere unless it drops the capabilities for it.
    pre = drop_dac_override if os.geteuid() == 0 else None
    p = subprocess.run([GETFLAGS, "-s", "http://127.0.0.1:9/flags", "-o", out, "BR"],
                       capture_output=True, text=True, preexec_fn=pre, timeout=30)
    assert p.returncode == 3, (p.returncode, p.stderr)
    assert "cannot write to the output directory" in p.stderr, p.stderr
    assert p.stderr.count("\n") == 1 and p.stdout == ""
    assert listing(out) == []


def test_stdout_closed_does_not_kill_the_run():
    out = scratch()
    with FlagServer("--quiet") as fs:
        p = subprocess.Popen([GETFLAGS, "-v", "-a", "-m", "10", "-s", fs.url, "-o", out],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdout.read(1)
        p.stdout.close()
        p.wait(60)
    # Every flag is saved, and the lost report is said and counted.
    err = p.stderr.read().decode()
    assert p.returncode == 1, (p.returncode, err)
    assert err.endswith("getflags: cannot write to standard output: Broken pipe\n"), err
    assert len(listing(out)) == 194


def test_open_file_limit_clamps_m_with_a_message():
    out = scratch()

    def few_files():
        resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200))

    with FlagServer("--quiet") as fs:
        p = subprocess.run([GETFLAGS, "-a", "-m", "500", "-s", fs.url, "-o", out],
                           capture_output=True, text=True, preexec_fn=few_files, timeout=60)
    assert p.returncode == 0, (p.returncode, p.stderr)
    # What fits is computed from the descriptors a run holds (about 2 per
    # request beyond a fixed part), not from a blanket reserve.
    # -m 500 asks for more than the 194 codes need: the message names the
    # 194 the run would have used, not an -m the user did not type.
    m = re.search(r"getflags: 194 concurrent requests need about (\d+) open files but the "
                  r"limit is 200 \(ulimit -n\); using (\d+) concurrent requests", p.stderr)
    assert m, p.stderr
    need, fit = int(m.group(1)), int(m.group(2))
    assert 194 * 2 < need < 194 * 2 + 40 and 80 <= fit < 100, (need, fit)
    assert "%d concurrent connections will be used." % fit in p.stdout
    assert len(listing(out)) == 194


if __name__ == "__main__":
    SERVER = FlagServer()
    try:
        run_tests(dict(globals()))
    finally:
        SERVER.stop()
