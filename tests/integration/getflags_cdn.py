"""getflags against a CDN-like server (tests/integration/cdn.py): HTTPS
through an intermediate CA, HTTP/2 and HTTP/1.1-only listeners, with and
without 20-50 ms of round trip added by rttproxy, plus the behaviours of
a CDN (301 to https, 429 with Retry-After, GOAWAY, idle closes, few
streams) and Python's http.server with its listen backlog of 5.

The main matrix (default codes, -a, -e, --update, retries, -m auto,
--rate, errors, SIGINT) runs once per mode of MODES; each check reads
nginx's access log: the protocol of every request, and over HTTP/2 one
connection for the whole run."""

import gzip
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

from cdn import Cdn, RttProxy, connections
from gfutil import (DATA, GETFLAGS, FlagServer, Nginx, assert_all_identical, codes_194,
                    country_of, expected_name, free_port, getflags, listing, refusing_port,
                    run_tests, scratch)

DEFAULT_20 = sorted("CN IN US ID BR PK NG BD RU JP MX PH VN ET EG DE IR TR CD FR".split())

# name: (nginx port, one-way delay of rttproxy in ms or None, protocol)
MODES = {
    "h2": ("h2", None, "HTTP/2.0"),
    "h2rtt": ("h2", 10, "HTTP/2.0"),
    "h1": ("h1", None, "HTTP/1.1"),
    "h1rtt": ("h1", 10, "HTTP/1.1"),
}


def base_url(cdn, mode, path="flags"):
    port, delay, _ = MODES[mode]
    url = cdn.via_proxy(port, delay) if delay else cdn.base(port)
    return url[:-len("flags")] + path


def gf(cdn, *args, **kw):
    return getflags("--cacert", cdn.cacert, *args, **kw)


def flags_files(outdir):
    return [n for n in listing(outdir) if not n.startswith(".getflags")]


def assert_protocol(cdn, mode, m, entries=None):
    """Every request in the protocol of the mode; over HTTP/2 all of them
    on one connection; over HTTP/1.1 at most m connections."""
    port, _, proto = MODES[mode]
    entries = cdn.log(port) if entries is None else entries
    assert entries, "nginx logged no request"
    protos = {e["protocol"] for e in entries}
    assert protos == {proto}, "protocols seen: %r, expected %s" % (protos, proto)
    conns = connections(entries)
    if proto == "HTTP/2.0":
        assert len(conns) == 1, ("%d connections for %d HTTP/2 requests; one connection "
                                 "multiplexes them all" % (len(conns), len(entries)))
    else:
        assert len(conns) <= m, "%d connections for -m %d" % (len(conns), m)
    return entries


def summary(r):
    try:
        return r.json()
    except ValueError:
        raise AssertionError("no JSON summary (exit %d): %s %s" % (r.rc, r.out[-500:],
                                                                   r.err[-500:]))


def check_counts(r, **want):
    s = summary(r)
    got = {k: s["counts"].get(k) for k in want}
    errors = [i for i in s.get("items", []) if i.get("status") == "error"][:3]
    assert got == want, "counts %r, expected %r; first errors: %r" % (got, want, errors)
    return s


# ---- the main matrix, once per mode ---------------------------------------


def matrix_default_codes(mode):
    out = scratch()
    with Cdn() as cdn:
        r = gf(cdn, "--json", "-s", base_url(cdn, mode), outdir=out)
        check_counts(r, ok=20, not_found=0, error=0)
        assert r.rc == 0, r.err
        entries = assert_protocol(cdn, mode, 5)
    assert len(entries) == 40, len(entries)
    assert_all_identical(out, DEFAULT_20)
    assert len(flags_files(out)) == 20


def matrix_all(mode):
    out = scratch()
    with Cdn() as cdn:
        r = gf(cdn, "-a", "-m", "20", "--json", "-s", base_url(cdn, mode), outdir=out)
        check_counts(r, ok=194, not_found=0, error=0)
        assert r.rc == 0, r.err
        entries = assert_protocol(cdn, mode, 20)
    assert len(entries) == 388 and {e["status"] for e in entries} == {200}, len(entries)
    # nginx gzips JSON for a client that accepts it: getflags asks for no
    # compression (a 70-byte JSON only grows), so nothing came compressed.
    assert {e["accept_encoding"] for e in entries} == {"identity"}, \
        {e["accept_encoding"] for e in entries}
    assert {e["encoding"] for e in entries} == {"-"}, {e["encoding"] for e in entries}
    assert_all_identical(out, codes_194())
    assert len(flags_files(out)) == 194


def matrix_every(mode):
    out = scratch()
    with Cdn() as cdn:
        r = gf(cdn, "-e", "-m", "100", "--json", "-s", base_url(cdn, mode), "-q", outdir=out)
        s = check_counts(r, ok=194, not_found=482, error=0)
        assert r.rc == 0, r.err
        entries = assert_protocol(cdn, mode, 100)
    assert s["requests"] == 870 and len(entries) == 870, (s["requests"], len(entries))
    assert len(flags_files(out)) == 194


def copy_tree(codes):
    d = scratch()
    os.chmod(d, 0o755)
    for cc in codes:
        shutil.copytree(os.path.join(DATA, "flags", cc.lower()),
                        os.path.join(d, "flags", cc.lower()))
    return d


def matrix_update(mode):
    codes = ["BR", "CN", "FR", "IN"]
    data = copy_tree(codes)
    out = scratch()
    with Cdn(root=data) as cdn:
        url = base_url(cdn, mode)
        r = gf(cdn, "-s", url, *codes, "ZZ", outdir=out)
        assert r.rc == 0, (r.out, r.err)
        before = {n: os.stat(os.path.join(out, n)).st_mtime_ns for n in flags_files(out)}
        n_first = len(cdn.log())
        r = gf(cdn, "--update", "--json", "-s", url, *codes, "ZZ", outdir=out)
        check_counts(r, ok=0, unchanged=4, not_found=1, error=0)
        assert r.rc == 0, r.err
        second = cdn.log(MODES[mode][0])[n_first:]
        assert_protocol(cdn, mode, 5, second)
    statuses = sorted(e["status"] for e in second)
    assert statuses == [304] * 8 + [404], statuses
    after = {n: os.stat(os.path.join(out, n)).st_mtime_ns for n in flags_files(out)}
    assert after == before


def matrix_retries(mode):
    # /e503/ answers 503 for br and cn, always: each of their metadata
    # requests is tried 1 + --retries times, then the code is an error.
    out = scratch()
    with Cdn() as cdn:
        r = gf(cdn, "--retries", "2", "--json", "-s", base_url(cdn, mode, "e503"),
               "BR", "CN", "FR", "IN", outdir=out)
        s = check_counts(r, ok=2, error=2)
        assert r.rc == 1, r.rc
        entries = assert_protocol(cdn, mode, 5)
    for cc in ("br", "cn"):
        n = [e["status"] for e in entries if e["uri"] == "/e503/%s/metadata.json" % cc]
        assert n == [503] * 3, (cc, n)
    for cc in ("fr", "in"):
        n = [e["status"] for e in entries if e["uri"].startswith("/e503/%s/" % cc)]
        assert n == [200, 200], (cc, n)
    err = {i["cc"]: i for i in s["items"] if i["status"] == "error"}
    assert sorted(err) == ["BR", "CN"], err
    assert sorted(flags_files(out)) == ["France.gif", "India.gif"]


def matrix_m_auto(mode):
    out = scratch()
    with Cdn() as cdn:
        r = gf(cdn, "-m", "auto", "-a", "-l", "40", "--json", "-s", base_url(cdn, mode),
               outdir=out)
        check_counts(r, ok=40, error=0)
        assert r.rc == 0, r.err
        assert_protocol(cdn, mode, 1000)
    assert len(flags_files(out)) == 40


def matrix_rate(mode):
    rate = 10
    out = scratch()
    with Cdn() as cdn:
        url = base_url(cdn, mode)
        t0 = time.time()
        r = gf(cdn, "--rate", str(rate), "-m", "8", "-a", "-l", "15", "--json", "-s", url,
               outdir=out)
        took = time.time() - t0
        check_counts(r, ok=15, error=0)
        assert r.rc == 0, r.err
        entries = assert_protocol(cdn, mode, 8)
    assert took > (30 - (rate + 1)) / rate, took
    assert_rate_at_server(entries, rate)


def assert_rate_at_server(entries, rate):
    """No second holds more than rate + 1 requests as nginx read them
    (its log's end less the request's time)."""
    ts = sorted(e["start"] for e in entries)
    for i, t in enumerate(ts):
        n = sum(1 for u in ts[i:] if u < t + 1.0)
        assert n <= rate + 1, (i, n, [round(u - ts[0], 3) for u in ts])


def matrix_errors(mode):
    port, delay, _ = MODES[mode]
    out = scratch()
    with Cdn() as cdn:
        url = base_url(cdn, mode)
        # Not found: a code the server does not have.
        r = gf(cdn, "-s", url, "ZZ", "BR", "--json", outdir=out)
        check_counts(r, ok=1, not_found=1, error=0)
        assert r.rc == 0
        # Without --cacert the chain's root is unknown: verification is on.
        r = getflags("-v", "--retries", "0", "-s", url, "BR", outdir=scratch())
        assert r.rc == 1, (r.rc, r.out)
        assert "BR error: " in r.out and "certificate" in r.out.lower(), r.out
        # A name the certificate does not have (127.0.0.2 is not in it).
        if delay is None:
            bad = "https://127.0.0.2:%d/flags" % cdn.ports[port]
            r = gf(cdn, "-v", "--retries", "0", "-s", bad, "BR", outdir=scratch())
            assert r.rc == 1 and "BR error: " in r.out, (r.rc, r.out)
    # Nobody listening.
    with refusing_port() as port:
        r = getflags("-v", "--retries", "0", "-s", "https://127.0.0.1:%d/flags" % port, "BR",
                     outdir=scratch())
    assert r.rc == 1 and "BR error: connection refused" in r.out, r.out


def matrix_sigint(mode):
    out = scratch()
    with Cdn() as cdn:
        # 50 ms of round trip and -m 2: -a takes seconds, long enough to
        # interrupt in the middle.
        port, _, _ = MODES[mode]
        url = cdn.via_proxy(port, 25)
        p = subprocess.Popen([GETFLAGS, "--cacert", cdn.cacert, "-a", "-m", "2", "-s", url,
                              "-o", out], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        time.sleep(1.5)
        p.send_signal(signal.SIGINT)
        t0 = time.time()
        stdout, stderr = p.communicate(timeout=20)
        took = time.time() - t0
    assert p.returncode == 130, (p.returncode, stderr[-600:])
    assert took < 1.5, took
    names = flags_files(out)
    assert all(n.endswith(".gif") and not n.startswith(".") for n in names), names
    done = int(stdout.split("--------------------\n")[1].split()[0])
    assert done == len(names) and 0 < done < 194, (done, len(names))
    codes = [cc for cc in codes_194() if expected_name(country_of(cc)) in names]
    assert_all_identical(out, codes)


MATRIX = [matrix_default_codes, matrix_all, matrix_every, matrix_update, matrix_retries,
          matrix_m_auto, matrix_rate, matrix_errors, matrix_sigint]


def _make(check, mode):
    def test():
        check(mode)
    return test


for _mode in MODES:
    for _check in MATRIX:
        globals()["test_%s_%s" % (_check.__name__[len("matrix_"):], _mode)] = _make(_check, _mode)


# ---- what a CDN does to a client ----------------------------------------


def test_compressed_answers_decoded_over_http2_though_not_asked():
    """A server that compresses whatever the request says (nginx's
    gzip_static always), over HTTP/2: metadata and image both arrive
    gzip-encoded, are decoded, and the flag saved is the original."""
    root = scratch()
    for cc in ("br", "fr"):
        src = os.path.join(DATA, "flags", cc)
        dst = os.path.join(root, "flags", cc)
        os.makedirs(dst)
        for name in ("metadata.json", cc + ".gif"):
            with open(os.path.join(src, name), "rb") as f:
                data = f.read()
            with open(os.path.join(dst, name), "wb") as f:
                f.write(data)
            with open(os.path.join(dst, name + ".gz"), "wb") as f:
                f.write(gzip.compress(data, 9))
    out = scratch()
    with Nginx({"h2": ("h2", "location /flags/ { gzip_static always; }")}, root=root,
               host="localhost") as ng:
        r = getflags("--cacert", ng.cacert, "-s", ng.base("h2"), "--json", "BR", "FR",
                     outdir=out)
        entries = ng.log("h2")
    check_counts(r, ok=2, not_found=0, error=0)
    assert r.rc == 0, r.err
    assert len(entries) == 4 and {e["protocol"] for e in entries} == {"HTTP/2.0"}, entries
    assert {e["encoding"] for e in entries} == {"gzip"}, entries
    assert {e["accept_encoding"] for e in entries} == {"identity"}, entries
    assert_all_identical(out, ["BR", "FR"])


def test_redirect_to_https_reuses_connections():
    out = scratch()
    with Cdn() as cdn:
        r = gf(cdn, "-a", "-m", "20", "--json", "-s", cdn.base("redirect"), outdir=out)
        check_counts(r, ok=194, error=0)
        assert r.rc == 0, r.err
        redirects = cdn.log("redirect")
        entries = cdn.log(MODES["h2"][0])
    assert {e["status"] for e in redirects} == {301} and len(redirects) == 388
    assert len(entries) == 388 and {e["protocol"] for e in entries} == {"HTTP/2.0"}
    # Connections are reused across redirects: a handshake per connection
    # (at most -m of them, opened before the first ALPN answer is known),
    # never one per request.
    assert len(connections(redirects)) <= 20, len(connections(redirects))
    assert len(connections(entries)) <= 20, len(connections(entries))
    assert_all_identical(out, codes_194())


def test_goaway_after_10_requests_loses_nothing():
    # keepalive_requests 10: every connection ends in a GOAWAY after 10
    # streams, with requests still in flight on it.
    out = scratch()
    with Cdn() as cdn:
        r = gf(cdn, "-a", "-m", "20", "--json", "-s", cdn.via_proxy("goaway", 10), outdir=out)
        check_counts(r, ok=194, error=0)
        assert r.rc == 0, r.err
        entries = cdn.log("goaway")
    assert {e["protocol"] for e in entries} == {"HTTP/2.0"}
    assert max(e["connection_requests"] for e in entries) <= 10
    assert len(connections(entries)) >= 388 // 10, len(connections(entries))
    assert_all_identical(out, codes_194())


def test_goaway_after_10_requests_does_not_flood_each_new_connection():
    # -m 100 through 50 ms: curl put every stream on the newest connection,
    # which took 10 and dropped the rest, over and over: 2,646 requests
    # for 388 answers. Once a connection has dropped requests while it
    # answered others, curl puts no more streams on one than it answered.
    with Cdn() as cdn:
        r = gf(cdn, "-a", "-m", "100", "--json", "-s", cdn.via_proxy("goaway", 25),
               outdir=scratch())
        s = check_counts(r, ok=194, error=0)
        assert r.rc == 0, r.err
        entries = cdn.log("goaway")
    assert len(entries) == 388, len(entries)
    assert s["requests"] < 388 * 2, s["requests"]


def most_at_once(entries):
    """The most requests nginx was working on at once (from its log)."""
    ev = sorted([(e["start"], 1) for e in entries] + [(e["msec"], -1) for e in entries])
    cur = most = 0
    for _, d in ev:
        cur += d
        most = max(most, cur)
    return most


def test_goaway_after_10_requests_from_a_slow_server():
    # nginx ends each connection after 10 requests and takes 0.5 s for
    # each (it asks a slow flagserver), through 50 ms: the answers a
    # connection had given when its drops came back were a lower bound of
    # its 10 (1 at first), and curl put 1 stream on each new connection:
    # 362-387 connections where 87 do. And transfers curl gave up
    # re-sending after 6 drops were counted in flight: peak_in_flight
    # 589-640 where nginx worked on 357-362 at most.
    with FlagServer("--delay", "0.5") as fs, \
            Nginx({"px": ("h2", "keepalive_requests 10; location /flags/ { proxy_pass %s; }"
                          % fs.base)}, tls=True) as ng, \
            RttProxy(ng.ports["px"], 25) as px:
        r = getflags("--cacert", ng.cacert, "-e", "-m", "1000", "--json", "-s",
                     "https://127.0.0.1:%d/flags" % px.port, outdir=scratch())
        s = check_counts(r, ok=194, not_found=482, error=0)
        entries = ng.log("px")
    assert len(entries) == 676 + 194, len(entries)
    assert len(connections(entries)) < 2 * 87, len(connections(entries))
    most = most_at_once(entries)
    assert s["peak_in_flight"] <= most * 5 // 4, (s["peak_in_flight"], most)


def test_rate_near_the_idle_timeout_learns_it():
    # HTTP/2, connections closed after 300 ms idle, --rate 3.2 through 50
    # ms: the next request often went out just as the server closed its
    # connection, which dropped it, and went again on a new one: 14
    # requests for 8 answers. After the first such drop, a start that
    # finds every connection idle for most of that long opens a new one.
    with Nginx({"idle": ("h2", "keepalive_timeout 300ms; location /flags/ { }")},
               tls=True) as ng, RttProxy(ng.ports["idle"], 25) as px:
        r = getflags("--cacert", ng.cacert, "-m", "1", "--rate", "3.2", "--json", "-s",
                     "https://127.0.0.1:%d/flags" % px.port, "BR", "CN", "DE", "FR",
                     outdir=scratch())
        s = check_counts(r, ok=4, error=0)
        entries = ng.log("idle")
    assert len(entries) == 8, len(entries)
    assert s["requests"] <= 10, s["requests"]


class ResetFirstHandshake:
    """Forwards TCP to port, but resets the first connection once its
    TLS ClientHello is in (a server restarting under the handshake)."""

    def __init__(self, port):
        self.target = port
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            self.accepted += 1
            if self.accepted == 1:
                c.recv(512)
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()
                continue
            u = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self.pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for x in (a, b):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        self.ls.close()


def test_tls_handshake_reset_is_retried():
    # A connection reset in the middle of its TLS handshake (nginx
    # restarting) ended the code as an error that --retries never tried
    # again; a failed TLS agreement still is not tried again.
    with Cdn() as cdn:
        fwd = ResetFirstHandshake(cdn.ports["h2"])
        try:
            url = "https://127.0.0.1:%d/flags" % fwd.port
            r = gf(cdn, "-v", "--retries", "1", "--json", "-s", url, "BR", outdir=scratch())
            check_counts(r, ok=1, error=0)
            assert r.rc == 0, r.err
            assert fwd.accepted == 2, fwd.accepted
        finally:
            fwd.stop()
    # A server that answers a handshake in plain HTTP: one attempt only.
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    accepted = []

    def plain():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            accepted.append(c)
            c.recv(512)
            c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            c.close()

    threading.Thread(target=plain, daemon=True).start()
    try:
        r = getflags("--retries", "2", "-s", "https://127.0.0.1:%d/flags" % ls.getsockname()[1],
                     "BR", outdir=scratch())
    finally:
        ls.close()
    assert r.rc == 1 and "did not answer in TLS" in r.err, (r.rc, r.err)
    assert len(accepted) == 1, len(accepted)


def test_rate_holds_at_the_server_through_a_long_round_trip():
    # 150 ms of round trip: the first connection's handshakes (300 ms)
    # outlast three --rate 10 slots. The starts let through meanwhile
    # arrived with the first request, 13 in a second; and over HTTP/1.1
    # new connections finishing together sent theirs together.
    for port, extra in (("h2", ()), ("h1", ("--http1.1",))):
        with Cdn() as cdn:
            url = cdn.via_proxy(port, 75)
            r = gf(cdn, "--rate", "10", "-m", "8", "-a", "-l", "12", "--json", "-s", url,
                   *extra, outdir=scratch())
            check_counts(r, ok=12, error=0)
            entries = cdn.log(port)
        assert len(entries) == 24, len(entries)
        assert_rate_at_server(entries, 10)


def test_idle_close_after_1s_loses_nothing():
    # keepalive_timeout 1s and a request a little more than a second apart:
    # nginx closes each idle connection just as the next request may start.
    out = scratch()
    with Cdn() as cdn:
        r = gf(cdn, "--rate", "0.97", "-m", "1", "--json", "-s", cdn.base("idle"),
               *DEFAULT_20[:6], outdir=out, timeout=120)
        check_counts(r, ok=6, error=0)
        assert r.rc == 0, r.err
        entries = cdn.log("idle")
    assert len(entries) == 12 and {e["protocol"] for e in entries} == {"HTTP/2.0"}
    assert_all_identical(out, DEFAULT_20[:6])


def test_timeout_not_spent_waiting_for_the_first_handshake():
    # HTTP/1.1 over TLS at 150 ms: a new connection and its request take
    # 3 round trips (450 ms). Requests that waited in libcurl for the
    # first connection's ALPN (300 ms) before opening their own timed out
    # unsent at --timeout 0.6; they now wait in getflags, where the
    # timeout has not started.
    out = scratch()
    with Cdn() as cdn:
        r = gf(cdn, "-m", "7", "--timeout", "0.6", "--retries", "0", "--json", "-s",
               cdn.via_proxy("h1", 75), outdir=out, timeout=60)
        s = check_counts(r, ok=20, error=0)
        assert r.rc == 0, r.err
        entries = assert_protocol(cdn, "h1", 7)
    assert len(entries) == 40, len(entries)
    assert s["connections"]["opened"] == 7, s["connections"]
    assert_all_identical(out, DEFAULT_20)


def test_sigint_during_the_first_handshake_counts_what_went_out():
    # 150 ms of round trip: at 0.2 s the first connection is in its TLS
    # handshake, one request waits in curl and one in getflags for its
    # ALPN. Nothing went out: no code made a request (those two had begun,
    # the 192 others never started), and the wait of the two is connect's
    # (not dns').
    with Cdn() as cdn:
        p = subprocess.Popen([GETFLAGS, "--cacert", cdn.cacert, "-a", "-m", "5", "--json",
                              "-s", cdn.via_proxy("h2", 75), "-o", scratch()],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.2)
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=20)
        time.sleep(0.2)
        seen = cdn.log("h2")
    assert p.returncode == 130, (p.returncode, stderr)
    j = json.loads(stdout)
    assert seen == [] and j["requests"] == 0, (seen, j["requests"])
    assert j["never_started"] == 192, j["never_started"]
    assert all(i["requests"] == 0 for i in j["items"]), [i for i in j["items"] if i["requests"]]
    waited = [i["phases"]["meta"] for i in j["items"] if (i["phases"]["meta"]["total"] or 0) > 0]
    assert len(waited) == 2, waited
    for ph in waited:
        assert ph["connect"] > 0.1 and ph["dns"] < 0.01, waited


def test_max_concurrent_streams_below_m():
    out = scratch()
    with Cdn() as cdn:
        r = gf(cdn, "-a", "-m", "20", "--json", "-s", cdn.via_proxy("streams", 10), outdir=out)
        check_counts(r, ok=194, error=0)
        assert r.rc == 0, r.err
        entries = cdn.log("streams")
    assert len(entries) == 388 and {e["protocol"] for e in entries} == {"HTTP/2.0"}
    assert_all_identical(out, codes_194())


def test_more_streams_than_libcurl_assumes_share_one_connection():
    # nginx takes 128 streams; libcurl assumes 100 until the SETTINGS
    # frame arrives, so a first round of 128 would open more connections.
    out = scratch()
    with Cdn() as cdn:
        r = gf(cdn, "-a", "-m", "128", "--json", "-s", cdn.via_proxy("h2", 10), outdir=out)
        s = check_counts(r, ok=194, error=0)
        assert r.rc == 0, r.err
        entries = assert_protocol(cdn, "h2", 128)
    assert len(entries) == 388, len(entries)
    # (How many were in flight at once depends on how fast this client
    # is: under a sanitizer the first answers end before the 128th starts.)
    assert s["connections"]["opened"] == 1, s["connections"]
    assert s["peak_in_flight"] <= 128, s["peak_in_flight"]
    assert_all_identical(out, codes_194())


def test_slow_origin_gets_every_stream_at_once():
    # An edge in front of an origin that takes 1 s per answer, -a -m 194:
    # the first round waits for the edge's SETTINGS (a round trip), not for
    # the first answer, so every metadata request is asked in the first
    # second, on one connection.
    out = scratch()
    with FlagServer("--delay", "1", "--quiet") as origin:
        edge = ("http2_max_concurrent_streams 256;"
                "location /flags/ { proxy_pass %s/flags/; }" % origin.base)
        with Nginx({"slow": ("h2", edge)}, host="localhost") as ng:
            r = getflags("--cacert", ng.cacert, "-a", "-m", "194", "--json", "-s",
                         ng.base("slow"), outdir=out, timeout=60)
            s = check_counts(r, ok=194, error=0)
            assert r.rc == 0, r.err
            entries = ng.log("slow")
    assert len(entries) == 388 and len(connections(entries)) == 1, (
        len(entries), len(connections(entries)))
    assert s["connections"]["opened"] == 1, s["connections"]
    meta = sorted(e["start"] for e in entries if e["uri"].endswith("/metadata.json"))
    assert len(meta) == 194, len(meta)
    assert meta[-1] - meta[0] < 0.5, "metadata requests asked over %.2f s" % (meta[-1] - meta[0])
    assert_all_identical(out, codes_194())


def test_http1_1_forced_on_an_h2_listener():
    out = scratch()
    with Cdn() as cdn:
        r = gf(cdn, "--http1.1", "-a", "-m", "20", "--json", "-s", cdn.via_proxy("h2", 10),
               outdir=out)
        check_counts(r, ok=194, error=0)
        assert r.rc == 0, r.err
        entries = cdn.log("h2")
    assert len(entries) == 388 and {e["protocol"] for e in entries} == {"HTTP/1.1"}
    assert 1 < len(connections(entries)) <= 20, len(connections(entries))
    assert_all_identical(out, codes_194())


def test_http2_prior_knowledge_over_plain_http():
    # The h2c port speaks nothing but HTTP/2: only --http2 gets answers.
    out = scratch()
    with Cdn() as cdn:
        # Without --http2 the answer is a binary frame, and the message
        # says what the port is likely to be.
        r = getflags("--retries", "0", "-s", cdn.base("h2c"), "BR", outdir=scratch())
        assert r.rc == 1, (r.rc, r.err)
        assert ("BR error: not a valid HTTP answer from localhost port %d: no HTTP/1.x "
                "status line (a port for HTTP/2 only, or not an HTTP server?)"
                % cdn.ports["h2c"]) in r.err, r.err
        r = getflags("--http2", "-a", "-m", "20", "--json", "-s", cdn.base("h2c"), outdir=out)
        entries = cdn.log("h2c")
        if libcurl_version() < (8, 0, 0):
            # libcurl before 8.0 cannot reuse an h2c connection
            # (curl/curl#10634) and a connection per request still races:
            # refused before any request, with what to do instead.
            assert r.rc == 2, (r.rc, r.err)
            assert "--http2 over plain http (h2c) needs libcurl 8.0" in r.err, r.err
            assert "https" in r.err, r.err
            assert entries == [], entries
            assert not os.path.isdir(out) or not os.listdir(out), os.listdir(out)
            return
        check_counts(r, ok=194, error=0)
        assert r.rc == 0, r.err
    assert len(entries) == 388 and {e["protocol"] for e in entries} == {"HTTP/2.0"}
    assert len(connections(entries)) == 1, len(connections(entries))
    assert_all_identical(out, codes_194())


def libcurl_version():
    out = subprocess.run([GETFLAGS, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"^libcurl (\d+)\.(\d+)\.(\d+)", out, re.M)
    assert m, out
    return tuple(int(x) for x in m.groups())


def check_limit(port, ahead):
    out = scratch()
    with Cdn(retry_after_ahead=ahead) as cdn:
        t0 = time.time()
        r = gf(cdn, "-a", "-l", "60", "-m", "20", "--json", "-s", cdn.base(port), outdir=out,
               timeout=120)
        took = time.time() - t0
        entries = cdn.log(port)
    check_counts(r, ok=60, error=0)
    assert r.rc == 0, r.err
    ok = [e for e in entries if e["status"] == 200]
    assert len(ok) == 120, len(ok)
    # 120 requests at 10 r/s after a burst of 20: at least 10 s.
    assert took >= 9.5, took
    assert_all_identical(out, codes_194()[:60])


def test_limit_req_429_retry_after_seconds():
    check_limit("limit", 2)


def test_limit_req_429_retry_after_http_date():
    check_limit("limit_date", 2)


def test_limit_req_through_a_round_trip_is_not_flooded_after_each_pause():
    # -m 100 against 10 r/s, burst 20, 50 ms away: when a pause ends, the
    # bucket holds about a second's allowance. Were -m 100 let out at once,
    # all but those few would be refused before the first refusal came
    # back, at every pause; one request in flight, one more per answer,
    # keeps the refusals near what a pause's allowance overshoots (about
    # 95 for the 120 answers of 200 here; 377 when all went at once).
    out = scratch()
    with Cdn() as cdn:
        r = gf(cdn, "-a", "-l", "60", "-m", "100", "--json", "-s", cdn.via_proxy("limit", 25),
               outdir=out, timeout=120)
        entries = cdn.log("limit")
    check_counts(r, ok=60, error=0)
    assert r.rc == 0, r.err
    ok = [e for e in entries if e["status"] == 200]
    refused = [e for e in entries if e["status"] == 429]
    assert len(ok) == 120, len(ok)
    assert len(refused) <= 160, (len(refused), r.json()["elapsed_s"])
    # Every request getflags sent reached nginx.
    assert r.json()["requests"] == len(entries), (r.json()["requests"], len(entries))
    assert_all_identical(out, codes_194()[:60])


def test_slow_link_tls_handshake_is_not_cut_at_3_s():
    # A 1.6 s round trip (a satellite hop): TCP and TLS take two of them,
    # past the 3 s a plain http connect is given; over https the request's
    # timeout governs the handshake too.
    with Cdn() as cdn:
        t0 = time.time()
        r = gf(cdn, "--json", "--timeout", "20", "--retries", "0", "-s",
               cdn.via_proxy("h2", 800), "BR", outdir=scratch(), timeout=120)
        took = time.time() - t0
        check_counts(r, ok=1, error=0)
    assert took > 3.2, took  # the handshake really took more than 3 s


def test_slow_tls_behind_an_http_redirect_is_cut_once_then_waited_for():
    # An http:// base that redirects to https, whose handshake takes 3.2 s
    # (1.6 s round trips): the first requests go with the 3 s limit for
    # connecting to an http base, which libcurl also applies to the
    # target's TLS, and say so; their retries, known to be redirected,
    # wait up to --timeout and succeed.
    import http.server
    import threading
    with Cdn() as cdn:
        target = cdn.via_proxy("h2", 800)

        class Redirect(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                self.send_response(301)
                self.send_header("Location", target + self.path[len("/flags"):])
                self.send_header("Content-Length", "0")
                self.end_headers()

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        try:
            r = gf(cdn, "-v", "--timeout", "20", "--retries", "1", "-s",
                   "http://127.0.0.1:%d/flags" % srv.server_address[1], "BR", outdir=scratch(),
                   timeout=120)
        finally:
            srv.shutdown()
            srv.server_close()
    assert r.rc == 0 and "BR OK" in r.out, (r.rc, r.out, r.err)
    port = int(target.split(":")[2].split("/")[0])
    assert "BR retry 1/1 in " in r.out, r.out
    assert ("s: cannot connect to localhost port %d: no TLS connection (TCP, then the "
            "handshake) within 3 s, the limit for connecting to an http:// base" % port) in r.out, \
        r.out


def test_wrong_scheme_for_the_port_says_which_to_use():
    # http:// to a port that speaks TLS: nginx answers 400 with a page
    # saying so, which the error repeats; the status alone would not tell.
    with Cdn() as cdn:
        base = cdn.base("h2").replace("https://", "http://")
        r = gf(cdn, "--retries", "0", "-s", base, "BR", outdir=scratch())
        assert r.rc == 1, r.err
        assert ("BR error: HTTP error 400 - Bad Request (the server says this port speaks "
                "TLS: use https://)") in r.err, r.err
    # https:// to a plain HTTP port.
    with FlagServer("--quiet") as fs:
        base = fs.url.replace("http://", "https://")
        r = getflags("--retries", "0", "-s", base, "BR", outdir=scratch())
        assert r.rc == 1, r.err
        assert "the server did not answer in TLS (a plain HTTP port? then use http://)" in r.err, \
            r.err
    # Any other 400 stays as it was.
    page = "<html><body>400 Bad Request: plain HTTP is fine here</body></html>"
    ng = Nginx({"p": ("plain", 'location / { return 400 "%s"; }' % page)}, host="localhost")
    with ng:
        r = getflags("--retries", "0", "-s", ng.base("p"), "BR", outdir=scratch())
    assert r.rc == 1 and "BR error: HTTP error 400 - Bad Request\n" in r.err, r.err


def test_python_http_server_backlog_5():
    # python3 -m http.server listens with a backlog of 5 and answers in
    # HTTP/1.0, closing each connection: every request of -a -m 100 (or
    # -m 20) is a new connection. A SYN that finds the accept queue full
    # is dropped, and the kernel would send it again only a second later:
    # the pacer gives such an attempt up and makes it again at once, and
    # keeps the connections it opens below what the queue holds.
    data = scratch()
    shutil.copytree(os.path.join(DATA, "flags"), os.path.join(data, "flags"))
    port = free_port()
    srv = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                            "--directory", data, str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert time.time() < deadline and srv.poll() is None, "http.server did not start"
                time.sleep(0.05)
        for m in ("100", "20"):
            out = scratch()
            t0 = time.time()
            r = getflags("-a", "-m", m, "--json", "-s", "http://127.0.0.1:%d/flags" % port,
                         outdir=out, timeout=120)
            took = time.time() - t0
            s = check_counts(r, ok=194, error=0)
            assert r.rc == 0, r.err
            # No request waited out the 10 s timeout.
            assert took < 8, took
            # Nor a SYN sent again by the kernel (a connect of a second).
            slow = sorted((i["cc"], k, p["connect"]) for i in s["items"]
                          for k, p in i["phases"].items()
                          if isinstance(p, dict) and (p.get("connect") or 0) >= 0.9)
            assert not slow, "-m %s: connects that waited for a SYN sent again: %r" % (m, slow)
            # One connection per request (HTTP/1.0), and few given up
            # after the server's TCP took them (a request sent again).
            assert 388 <= s["connections"]["opened"] <= 398, s["connections"]
            assert_all_identical(out, codes_194())
        # -m auto: the pacer, not the limit, bounds what is in flight, so the
        # limit grows only as far as requests really reach it (the slow
        # start doubles it once past them), and the report says so.
        out = scratch()
        r = getflags("-a", "-m", "auto", "--json", "-s", "http://127.0.0.1:%d/flags" % port,
                     outdir=out, timeout=120)
        s = check_counts(r, ok=194, error=0)
        assert r.rc == 0, r.err
        assert s["concurrency"] <= 2 * s["peak_in_flight"], (s["concurrency"],
                                                             s["peak_in_flight"])
        assert_all_identical(out, codes_194())
    finally:
        srv.terminate()
        srv.wait(10)


if __name__ == "__main__":
    run_tests({n: f for n, f in globals().items() if n.startswith("test_")})
