"""getflags's transfer layer end to end: HTTP/2 over TLS, connections and
handshakes counted from nginx's access log, servers that close or reset
connections, and errors that name their cause."""

import json
import os
import socket
import subprocess
import sys

from gfutil import GETFLAGS, codes_194, getflags, listing, run_tests, scratch
from getflags_core import DEFAULT_20, assert_all_identical
from transfer_fixture import H2Nginx


def counts(r):
    return r.json()["counts"]


def test_h2_all_194_on_one_connection():
    out = scratch()
    with H2Nginx() as ng:
        r = getflags("-a", "-m", "20", "-s", ng.url, "--cacert", ng.cacert, "--json",
                     outdir=out)
        log = ng.log()
    assert r.rc == 0, r.err
    assert counts(r) == {"ok": 194, "not_found": 0, "error": 0, "unchanged": 0}, r.out[:500]
    assert_all_identical(out, codes_194())
    assert len(log) == 388, len(log)
    assert {e["proto"] for e in log} == {"HTTP/2.0"}, {e["proto"] for e in log}
    # Requests wait for the first connection's ALPN and then share it.
    assert len({e["conn"] for e in log}) == 1, sorted({e["conn"] for e in log})


def test_h1_over_tls_when_alpn_says_so():
    out = scratch()
    with H2Nginx(listeners=("h1tls",)) as ng:
        r = getflags("-m", "5", "-s", ng.url, "--cacert", ng.cacert, outdir=out)
        log = ng.log()
    assert r.rc == 0, r.err
    assert_all_identical(out, DEFAULT_20)
    assert {e["proto"] for e in log} == {"HTTP/1.1"}
    assert len(log) == 40
    # Keep-alive: a few connections serve all 40 requests.
    assert len({e["conn"] for e in log}) <= 5, sorted({e["conn"] for e in log})


def test_h2_goaway_and_few_streams_lose_nothing():
    # Every connection ends with a GOAWAY after 7 requests, and takes at
    # most 4 streams at once: more requests in flight than that wait or go
    # on another connection, and nothing is reported as an error.
    for m in ("1", "20", "100"):
        out = scratch()
        with H2Nginx(keepalive_requests=7,
                     server_extra="http2_max_concurrent_streams 4;") as ng:
            r = getflags("-a", "-m", m, "-s", ng.url, "--cacert", ng.cacert, "--json",
                         outdir=out)
            log = ng.log()
        assert r.rc == 0, (m, r.err)
        assert counts(r)["ok"] == 194, (m, counts(r))
        assert_all_identical(out, codes_194())
        served = [e for e in log if e["status"] == 200]
        assert len(served) == 388, (m, len(served))
        assert max(e["nreq"] for e in log) <= 7
        assert len({e["conn"] for e in log}) >= 388 // 7, len({e["conn"] for e in log})


def test_h2_idle_close_races_a_new_request():
    # The server closes connections idle for 1 s; one request a little
    # under a second apart races that close, and must go again unreported.
    out = scratch()
    with H2Nginx(server_extra="keepalive_timeout 1s;") as ng:
        r = getflags("-l", "5", "-a", "--rate", "0.97", "-m", "1", "-s", ng.url, "--cacert",
                     ng.cacert, "-v", outdir=out, timeout=120)
        log = ng.log()
    assert r.rc == 0, r.out + r.err
    assert "5 flags downloaded." in r.out, r.out
    assert len([e for e in log if e["status"] == 200]) == 10, log


def test_h2_reason_phrase_is_the_standard_one():
    out = scratch()
    extra = "location ~ ^/flags/br/ { return 418; } location ~ ^/flags/fr/ { return 502; }"
    with H2Nginx(server_extra=extra) as ng:
        r = getflags("-s", ng.url, "--cacert", ng.cacert, "--retries", "0", "BR", "FR", "DE",
                     outdir=out)
        log = ng.log()
    assert r.rc == 1, r.err
    assert "BR error: HTTP error 418 - I'm a teapot" in r.err, r.err
    assert "FR error: HTTP error 502 - Bad Gateway" in r.err, r.err
    assert {e["proto"] for e in log} == {"HTTP/2.0"}
    assert listing(out) == ["Germany.gif"], listing(out)


def test_h2_stream_always_reset_ends_in_a_counted_error():
    # nginx's 444 resets the stream without an answer. The request goes
    # again on a new connection a bounded number of times (3), then as
    # many times as --retries allows, then it is an error.
    out = scratch()
    with H2Nginx(server_extra="location = /flags/br/metadata.json { return 444; }") as ng:
        r = getflags("-s", ng.url, "--cacert", ng.cacert, "--retries", "1", "BR", "FR",
                     "--json", outdir=out, timeout=60)
        log = ng.log()
    assert r.rc == 1, r.err
    assert counts(r) == {"ok": 1, "not_found": 0, "error": 1, "unchanged": 0}, counts(r)
    item = [i for i in r.json()["items"] if i["cc"] == "BR"][0]
    assert "HTTP/2" in item["error"], item
    asked = [e for e in log if e["uri"] == "/flags/br/metadata.json"]
    assert len(asked) == 3 + 1 + 1, asked


NODNS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nodns_run.py")


def run_without_dns(args, sigint_after=None):
    """getflags in a network namespace whose DNS server never answers."""
    cmd = ["unshare", "-m", "-n", sys.executable, NODNS]
    if sigint_after is not None:
        cmd += ["--sigint-after", str(sigint_after)]
    cmd += ["--", GETFLAGS] + args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


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


def test_sigint_ends_a_run_stuck_in_dns_within_a_second():
    out = scratch()
    r = run_without_dns(["-a", "-s", "http://flags.example.com/flags", "-o", out],
                        sigint_after=1.5)
    assert r["rc"] == 130, r
    assert r["after_sigint"] < 1.0, r["after_sigint"]
    # 5 requests were waiting for DNS; the other 189 codes never began.
    assert "194 not finished (interrupted); 189 of them never started." in r["stdout"], r["stdout"]


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
