"""getflags's transfer layer end to end: HTTP/2 over TLS, connections and
handshakes counted from nginx's access log, servers that close or reset
connections, and errors that name their cause."""

import json
import os

from gfutil import codes_194, getflags, listing, run_tests, scratch
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


if __name__ == "__main__":
    run_tests(globals())
