"""getflags's transfer layer end to end: HTTP/2 over TLS, connections and
handshakes counted from nginx's access log, servers that close or reset
connections, and errors that name their cause."""

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

from gfutil import (DATA, GETFLAGS, FlagServer, Nginx, certificates, codes_194, getflags,
                    listing, redirect_to, run_tests, scratch)
from getflags_core import DEFAULT_20
from gfutil import assert_all_identical

# nginx over TLS: "h2" offers HTTP/2 and HTTP/1.1 by ALPN, "tls" HTTP/1.1 only.
H2 = {"h2": "h2"}
H1_TLS = {"tls": "tls"}


def counts(r):
    return r.json()["counts"]


def test_h2_all_194_on_one_connection():
    out = scratch()
    with Nginx(H2) as ng:
        r = getflags("-a", "-m", "20", "-s", ng.url, "--cacert", ng.cacert, "--json",
                     outdir=out)
        log = ng.log()
    assert r.rc == 0, r.err
    assert counts(r) == {"ok": 194, "not_found": 0, "error": 0, "unchanged": 0, "pending": 0}, r.out[:500]
    assert_all_identical(out, codes_194())
    assert len(log) == 388, len(log)
    assert {e["protocol"] for e in log} == {"HTTP/2.0"}, {e["protocol"] for e in log}
    # Requests wait for the first connection's ALPN and then share it.
    assert len({e["connection"] for e in log}) == 1, sorted({e["connection"] for e in log})


def test_h1_over_tls_when_alpn_says_so():
    out = scratch()
    with Nginx(H1_TLS) as ng:
        r = getflags("-m", "5", "-s", ng.url, "--cacert", ng.cacert, outdir=out)
        log = ng.log()
    assert r.rc == 0, r.err
    assert_all_identical(out, DEFAULT_20)
    assert {e["protocol"] for e in log} == {"HTTP/1.1"}
    assert len(log) == 40
    # Keep-alive: a few connections serve all 40 requests.
    assert len({e["connection"] for e in log}) <= 5, sorted({e["connection"] for e in log})


class RefusingH1:
    """A TLS server whose ALPN says http/1.1 and that closes every
    connection after one answer. It holds each new connection hold_s
    before its handshake, and refuses the first request for refuse (503
    with Retry-After: 1), so that the client pauses while every connection
    to the server closes. It keeps when each connection was accepted and
    when its handshake ended, and when the refusal went out."""

    def __init__(self, refuse, hold_s=1.0):
        certs = certificates()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(certs["chain"], certs["key"])
        self.ctx.set_alpn_protocols(["http/1.1"])
        self.cacert = certs["root"]
        self.refuse, self.hold_s = refuse, hold_s
        self.lock = threading.Lock()
        self.handshakes = []  # (accepted, ended) in time.monotonic()
        self.refused_at = None
        self.alpn = set()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = "https://127.0.0.1:%d/flags" % self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return  # stopped
            threading.Thread(target=self._serve, args=(c, time.monotonic()),
                             daemon=True).start()

    def _serve(self, c, accepted):
        c.settimeout(10)
        try:
            time.sleep(self.hold_s)
            t = self.ctx.wrap_socket(c, server_side=True)
            with self.lock:
                self.handshakes.append((accepted, time.monotonic()))
                self.alpn.add(t.selected_alpn_protocol())
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = t.recv(4096)
                if not chunk:
                    return
                head += chunk
            path = head.split(b" ")[1].decode()
            f = os.path.join(DATA, path.lstrip("/"))
            with self.lock:
                refuse = path == self.refuse and self.refused_at is None
                if refuse:
                    self.refused_at = time.monotonic()
            if refuse:
                head, body = b"503 Service Unavailable\r\nRetry-After: 1", b"busy\n"
            elif path.startswith("/flags/") and ".." not in path and os.path.isfile(f):
                with open(f, "rb") as fh:
                    head, body = b"200 OK", fh.read()
            else:
                head, body = b"404 Not Found", b"not found\n"
            t.sendall(b"HTTP/1.1 %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                      % (head, len(body)) + body)
            t.close()
        except (OSError, ssl.SSLError, IndexError):
            c.close()

    def first_together(self, since, within):
        """How many connections came within `within` seconds of the first
        one accepted at or after since."""
        with self.lock:
            starts = sorted(a for a, _ in self.handshakes if a >= since)
        return sum(1 for a in starts if a < starts[0] + within) if starts else 0

    def stop(self):
        self.sock.close()


def test_h1_over_tls_new_connections_do_not_wait_for_each_other():
    # Once an answer over TLS came in HTTP/1.1, requests that find no
    # connection to their host open theirs side by side. None may wait for
    # another's handshake to learn whether it multiplexes, as
    # CURLOPT_PIPEWAIT makes libcurl do while it knows nothing of the host
    # (at the start, and again once its last connection has closed). Here
    # a 503 with Retry-After: 1 pauses the run while every connection
    # closes. After it one request goes alone (the host's window after a
    # pause), and once it is answered, on a connection the server then
    # closes, two: those must connect at once. With PIPEWAIT left on, one
    # of them waits for the other's handshake, which the server holds for
    # 1 s.
    srv = RefusingH1("/flags/cn/metadata.json")
    codes = ["AR", "BR", "CN", "DE", "EG", "FR", "GB", "IN"]
    out = scratch()
    try:
        r = getflags("-m", "3", "-s", srv.url, "--cacert", srv.cacert, "--json", *codes,
                     outdir=out)
    finally:
        srv.stop()
    assert r.rc == 0, r.err
    assert counts(r) == {"ok": 8, "not_found": 0, "error": 0, "unchanged": 0, "pending": 0}, r.out[:500]
    assert_all_identical(out, codes)
    assert srv.alpn == {"http/1.1"}, srv.alpn
    assert r.json()["connections"]["opened"] == 17, r.json()["connections"]
    # The pause lasts 1 to 1.2 s; the connections made before it were all
    # accepted by then.
    after = sorted(a for a, _ in srv.handshakes if a >= srv.refused_at + 0.9)
    assert len(after) >= 3 and after[1] - after[0] >= 0.9, (after, srv.handshakes)
    assert srv.first_together(after[1] - 0.01, 0.6) == 2, (after, srv.handshakes)


def test_http_version_options():
    # --http1.1 over a listener that offers h2; --http2 over plain http
    # (h2c with prior knowledge); the JSON says what was used.
    with Nginx({"h2": "h2", "h2c": "h2c"}) as ng:
        r = getflags("-s", ng.urls[0], "--cacert", ng.cacert, "--http1.1", "--json", "BR", "FR",
                     outdir=scratch())
        log = ng.log()
        assert r.rc == 0, r.err
        assert {e["protocol"] for e in log} == {"HTTP/1.1"}, log
        assert {i["http_version"] for i in r.json()["items"]} == {"1.1"}
        ng.clear_log()
        r = getflags("-s", ng.urls[1], "--http2", "-m", "5", "--json", outdir=scratch())
        log = ng.log()
        if curl_version() < (8, 0, 0):
            # libcurl 7.88 cannot reuse an h2c connection: refused up front.
            assert r.rc == 2 and "needs libcurl 8.0" in r.err, (r.rc, r.err)
            assert log == [], log
            return
        assert r.rc == 0, r.err
        assert {e["protocol"] for e in log} == {"HTTP/2.0"}, log
        assert {i["http_version"] for i in r.json()["items"]} == {"2"}


def curl_version():
    out = subprocess.run([GETFLAGS, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"^libcurl (\d+)\.(\d+)\.(\d+)", out, re.M)
    assert m, out
    return tuple(int(x) for x in m.groups())


def test_password_never_shown():
    with Nginx() as ng:
        url = ng.url.replace("http://", "http://user:s3cret@")
        r = getflags("-s", url, "ZZ", "BR", "-v", "--json", outdir=scratch())
    assert r.rc == 0, r.err
    assert "s3cret" not in r.out + r.err, r.out + r.err
    item = [i for i in r.json()["items"] if i["cc"] == "ZZ"][0]
    assert item["status"] == "not_found", item


def test_h2_goaway_and_few_streams_lose_nothing():
    # Every connection ends with a GOAWAY after 7 requests, and takes at
    # most 4 streams at once: more requests in flight than that wait or go
    # on another connection, and nothing is reported as an error.
    for m in ("1", "20", "100"):
        out = scratch()
        with Nginx(H2, keepalive_requests=7, extra="http2_max_concurrent_streams 4;") as ng:
            r = getflags("-a", "-m", m, "-s", ng.url, "--cacert", ng.cacert, "--json",
                         outdir=out)
            log = ng.log()
        assert r.rc == 0, (m, r.err)
        assert counts(r)["ok"] == 194, (m, counts(r))
        assert_all_identical(out, codes_194())
        served = [e for e in log if e["status"] == 200]
        assert len(served) == 388, (m, len(served))
        assert max(e["connection_requests"] for e in log) <= 7
        assert len({e["connection"] for e in log}) >= 388 // 7, len({e["connection"] for e in log})


def test_h2_idle_close_races_a_new_request():
    # The server closes connections idle for 1 s; one request a little
    # under a second apart races that close, and must go again unreported.
    out = scratch()
    with Nginx(H2, extra="keepalive_timeout 1s;") as ng:
        r = getflags("-l", "5", "-a", "--rate", "0.97", "-m", "1", "-s", ng.url, "--cacert",
                     ng.cacert, "-v", outdir=out, timeout=120)
        log = ng.log()
    assert r.rc == 0, r.out + r.err
    assert "5 flags downloaded." in r.out, r.out
    assert len([e for e in log if e["status"] == 200]) == 10, log


def test_h2_reason_phrase_is_the_standard_one():
    out = scratch()
    extra = "location ~ ^/flags/br/ { return 418; } location ~ ^/flags/fr/ { return 502; }"
    with Nginx(H2, extra=extra) as ng:
        r = getflags("-s", ng.url, "--cacert", ng.cacert, "--retries", "0", "BR", "FR", "DE",
                     outdir=out)
        log = ng.log()
    assert r.rc == 1, r.err
    assert "BR error: HTTP error 418 - I'm a teapot" in r.err, r.err
    assert "FR error: HTTP error 502 - Bad Gateway" in r.err, r.err
    assert {e["protocol"] for e in log} == {"HTTP/2.0"}
    assert listing(out) == ["Germany.gif"], listing(out)


def test_h2_stream_always_reset_ends_in_a_counted_error():
    # nginx's 444 resets the stream without an answer, but not with
    # REFUSED_STREAM: the server may have processed the request (RFC 9113
    # 8.7), so it goes again only as many times as --retries allows, then
    # it is an error.
    out = scratch()
    with Nginx(H2, extra="location = /flags/br/metadata.json { return 444; }") as ng:
        r = getflags("-s", ng.url, "--cacert", ng.cacert, "--retries", "1", "BR", "FR",
                     "--json", outdir=out, timeout=60)
        log = ng.log()
    assert r.rc == 1, r.err
    assert counts(r) == {"ok": 1, "not_found": 0, "error": 1, "unchanged": 0, "pending": 0}, counts(r)
    item = [i for i in r.json()["items"] if i["cc"] == "BR"][0]
    # nginx resets it with PROTOCOL_ERROR, which nghttp2 also uses for an
    # answer that breaks HTTP/2: the message names both.
    assert item["error"].startswith("not a valid HTTP/2 answer from 127.0.0.1 port "), item
    assert "the stream ended in PROTOCOL_ERROR before an answer (reset by the server" in \
        item["error"], item
    asked = [e for e in log if e["uri"] == "/flags/br/metadata.json"]
    assert len(asked) == 1 + 1, asked


def test_redirecting_base_one_handshake_per_connection():
    # http answers 301 to https: every request takes two hops, and the
    # connections of both ends stay in the cache (before, 581 connections
    # for 776 requests). Over HTTP/2 the first requests cannot know that
    # the target multiplexes and may each open one; later ones share them.
    for tls, most in (("tls", 25), ("h2", 20)):
        out = scratch()
        with Nginx({"https": tls, "http": redirect_to("https")}) as ng:
            r = getflags("-a", "-m", "20", "-s", ng.urls[1], "--cacert", ng.cacert, outdir=out)
            log = ng.log()
        assert r.rc == 0, r.err
        assert_all_identical(out, codes_194())
        assert len(log) == 776, len(log)
        https = {e["connection"] for e in log if e["status"] == 200}
        http = {e["connection"] for e in log if e["status"] == 301}
        assert len(https) <= most, (tls, len(https))
        assert len(http) <= 25, (tls, len(http))


def test_python_http_server_small_backlog_does_not_stall():
    # Python's http.server listens with a backlog of 5 and closes every
    # connection after one answer: 100 connection attempts at once would
    # lose SYNs and wait out timeouts.
    srv = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
                           cwd=DATA, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = srv.stdout.readline()
        port = int(line.split(" port ")[1].split()[0])
        out = scratch()
        t0 = time.time()
        r = getflags("-a", "-m", "100", "-s", "http://127.0.0.1:%d/flags" % port, "--json",
                     outdir=out, timeout=120)
        took = time.time() - t0
    finally:
        srv.kill()
        srv.wait()
    assert r.rc == 0, r.err
    assert counts(r) == {"ok": 194, "not_found": 0, "error": 0, "unchanged": 0, "pending": 0}, counts(r)
    assert took < 6, took


def test_ca_store_read_once_and_cacert_checked_before_the_run():
    out = scratch()
    with Nginx(H1_TLS) as ng:
        # LeakSanitizer cannot run under ptrace: leaks are checked elsewhere.
        asan = os.environ.get("ASAN_OPTIONS", "")
        env = dict(os.environ, ASAN_OPTIONS=(asan + ":" if asan else "") + "detect_leaks=0")
        # strace slows the first handshake so much that the waiting requests
        # may all end up on that one connection; the check needs several,
        # so a run with fewer than 5 is made again (3 runs at most).
        for _ in range(3):
            ng.clear_log()
            trace = os.path.join(scratch(), "trace")
            cmd = ["strace", "-f", "-e", "trace=openat", "-o", trace, GETFLAGS, "-a", "-m",
                   "20", "-s", ng.url, "--cacert", ng.cacert, "-o", scratch(), "-q"]
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
            log = ng.log()
            assert p.returncode == 0, p.stderr
            conns = len({e["connection"] for e in log})
            if conns >= 5:
                break
        with open(trace, encoding="utf-8", errors="replace") as f:
            opens = [l for l in f if "/etc/ssl/certs" in l or ng.cacert in l]
        # The system's CAs come from the hashed directory, looked up as a
        # chain needs them (or, without one, from the bundle read once): never
        # a parse of the bundle per connection; --cacert read once.
        assert conns >= 5, conns
        assert len([l for l in opens if "ca-certificates.crt" in l]) <= 1, opens
        assert len([l for l in opens if ng.cacert in l]) == 1, opens
        assert len(opens) <= 5, (conns, opens[:10])
        # Unusable --cacert: one message, exit 3, no request.
        ng.clear_log()
        for bad, why in ((os.path.join(out, "missing.pem"), "No such file or directory"),
                         ("/etc/hostname", "no PEM certificate in it")):
            r = getflags("-a", "-s", ng.url, "--cacert", bad, outdir=scratch())
            assert r.rc == 3, (r.rc, r.err)
            assert r.err.count("--cacert") == 1 and why in r.err, r.err
        assert ng.log() == []


def test_json_numbers_match_the_servers_logs():
    # nginx over HTTP/2: one connection, one handshake, version "2".
    out = scratch()
    with Nginx(H2) as ng:
        r = getflags("-a", "-m", "20", "-s", ng.url, "--cacert", ng.cacert, "--json", outdir=out)
        log = ng.log()
    assert r.rc == 0, r.err
    j = r.json()
    assert j["connections"] == {"opened": len({e["connection"] for e in log}), "tls_handshakes": 1,
                                "tls_resumed": 0}, j["connections"]
    assert {i["http_version"] for i in j["items"]} == {"2"}
    # HTTP/1.1 with TLS: handshakes as many as connections nginx saw, and
    # those nginx says resumed a session are the ones getflags counts.
    with Nginx(H1_TLS) as ng:
        r = getflags("-a", "-m", "20", "-s", ng.url, "--cacert", ng.cacert, "--json",
                     outdir=scratch())
        log = ng.log()
    assert r.rc == 0, r.err
    c = r.json()["connections"]
    conns = {e["connection"]: e["ssl_reused"] == "r" for e in log}
    assert c["opened"] == len(conns) == c["tls_handshakes"], (c, len(conns))
    assert c["tls_resumed"] == sum(conns.values()), (c, conns)
    assert {i["http_version"] for i in r.json()["items"]} == {"1.1"}
    # flagserver holds each answer 0.2 s: the peak getflags reports is the
    # peak of requests the server had in hand at once.
    for m in ("1", "7"):
        with FlagServer("--delay", "0.2") as fs:
            r = getflags("-a", "-l", "21", "-m", m, "-s", fs.url, "--json", outdir=scratch())
            fslog = fs.log()
        assert r.rc == 0, r.err
        j = r.json()
        assert j["peak_in_flight"] == max(e["inflight"] for e in fslog) == int(m), (
            j["peak_in_flight"], max(e["inflight"] for e in fslog))
        assert j["connections"]["opened"] == int(m), j["connections"]
        assert j["connections"]["tls_handshakes"] == 0


def test_json_numbers_of_an_interrupted_run_match_the_servers_log():
    # flagserver holds each answer, so a SIGINT finds 7 requests at the
    # server: they were sent and count, as the connections they went on
    # do, although no answer came. Once in the first round (answers held
    # 3 s, SIGINT after 1 s: time enough for a sanitizer build to send
    # them), once in the second (0.1 s after the first round's answers).
    def after_first_round(fs):
        deadline = time.time() + 10
        while len(fs.log()) < 7 and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)

    for delay, wait in (("3", lambda fs: time.sleep(1.0)), ("0.5", after_first_round)):
        with FlagServer("--delay", delay) as fs:
            p = subprocess.Popen([GETFLAGS, "-a", "-m", "7", "--json", "-s", fs.url, "-o",
                                  scratch()], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
            wait(fs)
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=20)
            assert p.returncode == 130, (p.returncode, err)
            # flagserver logs a request when it ends, here when getflags
            # closed its connection.
            deadline = time.time() + 5
            while len(fs.log()) < json.loads(out)["requests"] and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)
            fslog = fs.log()
        j = json.loads(out)
        assert j["requests"] == len(fslog), (delay, j["requests"], len(fslog))
        assert j["peak_in_flight"] == max(e["inflight"] for e in fslog) == 7, (
            delay, j["peak_in_flight"], fslog)
        assert j["connections"]["opened"] == 7, j["connections"]
        assert j["counts"]["pending"] > 0, j["counts"]
        if delay == "3":
            assert j["counts"]["ok"] == 0 and len(fslog) == 7, (j["counts"], len(fslog))
        else:
            assert len(fslog) == 14, len(fslog)


class RawServer:
    """A loopback HTTP server whose answers are given as raw bytes per path
    (a callable taking the request path); it reads one request per
    connection and then closes."""

    def __init__(self, answer):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = "http://127.0.0.1:%d/flags" % self.sock.getsockname()[1]
        self.answer = answer
        self.stop_flag = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        self.sock.settimeout(0.2)
        while not self.stop_flag:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.one, args=(c,), daemon=True).start()

    def one(self, c):
        try:
            c.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = c.recv(4096)
                if not chunk:
                    return
                data += chunk
            path = data.split(b" ")[1].decode()
            c.sendall(self.answer(path))
        except OSError:
            pass
        finally:
            c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop_flag = True
        self.thread.join()
        self.sock.close()


def meta(cc):
    with open(os.path.join(DATA, "flags", cc, "metadata.json"), "rb") as f:
        return f.read()


def gif(cc):
    with open(os.path.join(DATA, "flags", cc, cc + ".gif"), "rb") as f:
        return f.read()


def ok_meta_then(image_answer):
    def answer(path):
        cc = path.split("/")[2]
        if path.endswith("metadata.json"):
            body = meta(cc)
            return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        return image_answer(cc)
    return answer


def test_long_error_pages_decided_by_their_status():
    # 300 KiB error pages: a 404 is "not found", a 503 is retried, and
    # with -m auto a 503 is an overload, not an error of its own.
    page = b"<html>" + b"x" * (300 * 1024) + b"</html>"
    seen = {"fr": 0}

    def answer(path):
        if "/br/" in path:
            return b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n" % len(page) + page
        if "/fr/" in path:
            seen["fr"] += 1
            if seen["fr"] == 1:
                return (b"HTTP/1.1 503 Busy\r\nRetry-After: 0\r\nContent-Length: %d\r\n\r\n"
                        % len(page) + page)
        return ok_meta_then(lambda cc: b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"
                            % len(gif(cc)) + gif(cc))(path)

    with RawServer(answer) as srv:
        r = getflags("-s", srv.url, "--json", "BR", "FR", outdir=scratch())
    assert counts(r) == {"ok": 1, "not_found": 1, "error": 0, "unchanged": 0, "pending": 0}, r.out
    assert seen["fr"] == 3, seen


def test_malformed_answers_say_what_they_were():
    cases = {
        "br": (b"GIF89a just bytes, no status line", "not a valid HTTP answer from 127.0.0.1 "
               "port %d: no HTTP/1.x status line"),
        "fr": (b"HTTP/2.5 200 OK\r\nContent-Length: 2\r\n\r\n{}", "not a valid HTTP answer"),
        "de": (b"HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\n{}", "not a valid HTTP answer"),
        "cn": (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
               "two different Content-Length headers"),
        "jp": (b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n" * 11 +
               b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
               "not a valid HTTP answer: more than 10 informational (1xx) answers"),
    }

    def answer(path):
        return cases[path.split("/")[2]][0]

    with RawServer(answer) as srv:
        r = getflags("-s", srv.url, "--retries", "0", "--timeout", "5", "--json", "BR", "FR",
                     "DE", "CN", "JP", outdir=scratch(), timeout=30)
    items = {i["cc"].lower(): i["error"] for i in r.json()["items"]}
    for cc, (_, want) in cases.items():
        if "%d" in want:
            want = want % int(srv.url.split(":")[2].split("/")[0])
        assert want in (items[cc] or ""), (cc, items[cc])
        assert "redirect" not in items[cc] and "timeout" not in items[cc], (cc, items[cc])


def test_only_a_whole_200_is_an_image():
    g = gif("br")
    half = g[: len(g) // 2]
    cases = {
        "br": b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/100\r\n"
              b"Content-Length: %d\r\n\r\n" % len(g) + g,
        "fr": b"HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n" + half,
        "de": b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n" + half,
        "cn": b"HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\n\r\n" + half,
    }
    with RawServer(ok_meta_then(lambda cc: cases[cc])) as srv:
        out = scratch()
        r = getflags("-s", srv.url, "--retries", "0", "--timeout", "3", "--json", "BR", "FR",
                     "DE", "CN", outdir=out, timeout=30)
    assert counts(r)["ok"] == 0 and counts(r)["error"] == 4, r.out
    assert listing(out) == [], listing(out)
    items = {i["cc"]: i["error"] for i in r.json()["items"]}
    assert "206" in items["BR"], items


def run_without_dns(args, sigint_after=None):
    """getflags with a DNS that never answers for flags.example.com (a
    preloaded getaddrinfo that blocks, as with dropped DNS packets): its
    exit status, the seconds it took (and took after SIGINT), its output."""
    asan = os.environ.get("ASAN_OPTIONS", "")
    env = dict(os.environ, LD_PRELOAD=os.environ["GF_DNS_HANG_SHIM"],
               GF_DNS_HANG_HOST="flags.example.com",
               # A sanitizer build wants its runtime first; the shim must come first.
               ASAN_OPTIONS=(asan + ":" if asan else "") + "verify_asan_link_order=0")
    t0 = time.time()
    proc = subprocess.Popen([GETFLAGS] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, errors="replace", env=env)
    after = None
    if sigint_after is not None:
        try:
            proc.wait(sigint_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            after = time.time()
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    t1 = time.time()
    return {"rc": proc.returncode, "took": t1 - t0,
            "after_sigint": (t1 - after) if after is not None else None,
            "stdout": out, "stderr": err}


# Run in a network namespace of its own (unshare -n): loopback up, SYN
# cookies off, and a listener whose accept queue is full, so the kernel
# drops every SYN to it. Prints the run's exit code and seconds.
SYN_DROPPING_RUN = r"""
import ctypes, fcntl, socket, struct, subprocess, sys, time
libc = ctypes.CDLL(None, use_errno=True)
assert libc.unshare(0x40000000) == 0, "unshare(CLONE_NEWNET) failed"
with socket.socket() as s:
    flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0)))[1]
    fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))
with open("/proc/sys/net/ipv4/tcp_syncookies", "w") as f:
    f.write("0")
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(0)
port = ls.getsockname()[1]
fill = []
for _ in range(3):
    c = socket.socket()
    c.setblocking(False)
    c.connect_ex(("127.0.0.1", port))
    fill.append(c)
time.sleep(0.3)
t = time.time()
p = subprocess.run(sys.argv[1:] + ["-s", "http://127.0.0.1:%d/flags" % port],
                   capture_output=True, text=True)
print(p.returncode, time.time() - t)
print(p.stdout + p.stderr)
"""


def test_rate_does_not_wait_out_each_unanswered_connect():
    # --rate holds a start while the one before is unsent (not to arrive
    # with it), but not for long, and not once one ended unsent: against a
    # host that drops every SYN, 10 starts each waiting out the connect
    # limit (1 s) of the one before would take 10 s.
    p = subprocess.run([sys.executable, "-c", SYN_DROPPING_RUN, GETFLAGS, "--rate", "10",
                        "--timeout", "2", "--retries", "0", "-a", "-l", "10", "-o", scratch()],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    first, out = p.stdout.split("\n", 1)
    rc, took = first.split()
    assert rc == "1" and " 10 errors." in out, out
    assert "no answer within 1 s" in out, out
    assert float(took) < 6, (took, out)


def test_no_dns_answer_said_within_the_timeout():
    # 20 codes, --timeout 1 and one retry: every code ends with a DNS
    # error, and the run takes about timeout x 2 plus the backoff, not a
    # DNS timeout (10 s here) per code.
    out = scratch()
    r = run_without_dns(["-s", "http://flags.example.com/flags", "--timeout", "1", "--retries",
                         "1", "-o", out])
    assert r["rc"] == 1, r
    errors = [l for l in r["stderr"].splitlines() if " error: " in l]
    assert len(errors) == 20, r["stderr"]
    assert all("cannot resolve host flags.example.com" in l for l in errors), errors
    assert r["took"] < 5, r["took"]
    assert "20 errors." in r["stdout"], r["stdout"]


def test_dns_timeout_names_the_limit_that_ran_out():
    # Over plain http resolving is part of connecting, given up at half of
    # --timeout: the message names that limit, not --timeout.
    r = run_without_dns(["-s", "http://flags.example.com/flags", "--timeout", "4", "--retries",
                         "0", "-o", scratch(), "BR", "CN"])
    assert r["rc"] == 1, r
    errors = [l for l in r["stderr"].splitlines() if " error: " in l]
    assert len(errors) == 2, r["stderr"]
    assert all(l.endswith("cannot resolve host flags.example.com: no answer from DNS within 2 s")
               for l in errors), errors
    assert r["took"] < 3.5, r["took"]


def test_request_waiting_for_alpn_does_not_wait_out_a_known_dns_failure():
    # Over https one request goes ahead and the next waits in the engine
    # for the first connection's ALPN. When the first one's DNS lookup runs
    # out, the waiting one ends with it, as later ones do: the run takes
    # one --timeout, not two.
    r = run_without_dns(["-s", "https://flags.example.com/flags", "--timeout", "2", "--retries",
                         "0", "-o", scratch()])
    assert r["rc"] == 1, r
    errors = [l for l in r["stderr"].splitlines() if " error: " in l]
    assert len(errors) == 20, r["stderr"]
    timed_out = [l for l in errors if l.endswith(": no answer from DNS within 2 s")]
    assert len(timed_out) == 1, errors
    assert sum(l.endswith("cannot resolve host flags.example.com (nor for earlier requests)")
               for l in errors) == 19, errors
    assert r["took"] < 3.5, r["took"]


def test_sigint_ends_a_run_stuck_in_dns_within_a_second():
    out = scratch()
    r = run_without_dns(["-a", "-s", "http://flags.example.com/flags", "-o", out],
                        sigint_after=1.5)
    assert r["rc"] == 130, r
    assert r["after_sigint"] < 1.0, r["after_sigint"]
    # 5 requests were waiting for DNS; the other 189 codes never began.
    assert "194 not finished (interrupted); 189 of them never started." in r["stdout"], r["stdout"]


def test_interrupted_json_and_sweep_counts_add_up():
    # The same stuck run, reported as JSON: every code is counted (pending
    # for those that did not end), and never_started matches the text.
    r = run_without_dns(["-a", "--json", "-s", "http://flags.example.com/flags",
                         "-o", scratch()], sigint_after=1.5)
    assert r["rc"] == 130, r
    j = json.loads(r["stdout"])
    assert j["counts"] == {"ok": 0, "not_found": 0, "error": 0, "unchanged": 0,
                           "pending": 194}, j["counts"]
    assert sum(j["counts"].values()) == len(j["items"]) == 194
    assert j["never_started"] == 189, j["never_started"]
    assert sum(1 for it in j["items"] if it["status"] == "pending") == 194
    # The 5 requests stopped in their DNS lookup keep their times: about
    # 1.5 s, all of it in the step under way; none of them went out.
    started = [it for it in j["items"] if it["phases"]["meta"]["total"] is not None]
    assert len(started) == 5, started
    assert j["requests"] == 0 and all(it["requests"] == 0 for it in j["items"]), j["requests"]
    # Four connection attempts go at once at first (pacer.h): the fifth
    # waited for one, which is connect's time.
    in_dns = 0
    for it in started:
        meta = it["phases"]["meta"]
        assert 1.0 < meta["total"] < 3.0, it
        assert meta["tls"] == meta["first_byte"] == meta["transfer"] == 0, it
        if meta["dns"] == meta["total"]:
            in_dns += 1
        else:
            assert meta["dns"] == 0 and meta["connect"] == meta["total"], it
    assert in_dns == 4, started
    # A sweep interrupted at its first level: the row counts the codes that
    # did not finish, and the table says the level was interrupted.
    r = run_without_dns(["-a", "--sweep", "5,10", "-s", "http://flags.example.com/flags",
                         "-o", scratch()], sigint_after=1.5)
    assert r["rc"] == 130, r
    assert "m=5 was interrupted: 194 of its 194 codes did not finish." in r["stdout"], r["stdout"]
    r = run_without_dns(["-a", "--sweep", "5,10", "--json", "-s",
                         "http://flags.example.com/flags", "-o", scratch()], sigint_after=1.5)
    assert r["rc"] == 130, r
    rows = json.loads(r["stdout"])
    assert len(rows) == 1 and rows[0]["m"] == 5 and rows[0]["pending"] == 194, rows


def test_connection_refused_names_host_and_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    out = scratch()
    r = getflags("-s", "http://127.0.0.1:%d/flags" % port, "--retries", "0", "BR", outdir=out)
    assert r.rc == 1
    assert "BR error: connection refused by 127.0.0.1 port %d" % port in r.err, r.err


if __name__ == "__main__":
    run_tests(globals())
