"""getflags against an HTTP/2 server that breaks the protocol on purpose
(h2rogue.py, run by Debian's /usr/bin/python3 with python3-h2's modules):
each way it goes wrong ends the code in a counted error whose message
says what happened, with nothing saved, and requests the server never
answered (a GOAWAY, a connection closed under them; not a stream reset
that may follow part of an answer) are asked again a bounded number of
times."""

import os
import subprocess
import sys

from gfutil import DATA, certificates, getflags, listing, make_ca_chain, run_tests, scratch

HERE = os.path.dirname(os.path.abspath(__file__))


class Rogue:
    """h2rogue.py in MODE on an ephemeral loopback port; .requests()
    gives (connection, path) per request it saw."""

    def __init__(self, mode, certs=None):
        c = certs or certificates()
        self.cacert = c["root"]
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(HERE, "h2rogue.py"), mode, c["chain"], c["key"],
             DATA], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("PORT "), (line, self.proc.stderr.read())
        self.port = int(line.split()[1])
        self.url = "https://127.0.0.1:%d/flags" % self.port

    def requests(self):
        self.stop()
        err = self.proc.stderr.read()
        return [tuple(l.split()[1:3]) for l in err.splitlines() if l.startswith("REQ ")]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def run(mode, *args):
    """getflags BR against the rogue server in mode, --retries 0: its
    result, the requests the server saw and what is in DIR."""
    out = scratch()
    with Rogue(mode) as srv:
        r = getflags("-s", srv.url, "--cacert", srv.cacert, "--retries", "0", "--json",
                     *args, "BR", outdir=out, timeout=60)
        return r, srv, srv.requests(), listing(out)


def error_of(r):
    assert r.rc == 1, (r.rc, r.out, r.err)
    (item,) = r.json()["items"]
    assert item["status"] == "error", item
    return item["error"]


def test_the_rogue_server_serves_when_told_to():
    r, _, reqs, files = run("ok")
    assert r.rc == 0 and files == ["Brazil.gif"], (r.out, r.err, files)
    assert [p for _, p in reqs] == ["/flags/br/metadata.json", "/flags/br/br.gif"], reqs


def test_a_few_informational_answers_are_fine():
    r, _, _, files = run("informational:2")
    assert r.rc == 0 and files == ["Brazil.gif"], (r.out, r.err, files)


def test_hundreds_of_informational_answers_are_refused():
    # Hundreds of 103s on concurrent streams have libcurl 7.88 give one
    # stream's bytes to another; more than 10 end the answer.
    r, _, reqs, files = run("informational:11")
    assert error_of(r) == "not a valid HTTP answer: more than 10 informational (1xx) answers"
    assert files == [] and len(reqs) == 1, (files, reqs)


def test_a_stream_reset_by_protocol_error_says_so():
    # nghttp2 resets a stream whose answer has no :status with
    # PROTOCOL_ERROR, as a server may itself: the server answered, if
    # badly, so the request uses up --retries (none here).
    r, srv, reqs, files = run("no_status")
    assert error_of(r) == (
        "not a valid HTTP/2 answer from 127.0.0.1 port %d: the stream ended in PROTOCOL_ERROR "
        "before an answer (reset by the server, or an answer that breaks HTTP/2: a missing "
        ":status, a forbidden header, a body unlike its Content-Length)" % srv.port)
    assert files == [] and len(reqs) == 1, (files, reqs)


def test_a_server_refusing_every_stream():
    # REFUSED_STREAM: libcurl asks again on a new connection by itself,
    # five times, before it gives up: six requests refused.
    r, srv, reqs, files = run("refuse")
    assert error_of(r).startswith(
        "127.0.0.1 port %d dropped the request 6 times in a row without answering (closed the "
        "connection, or refused the HTTP/2 stream)" % srv.port), r.out
    assert files == [] and len(reqs) == 6, (files, reqs)
    # Every one of them counts: what the server saw.
    j = r.json()
    assert j["requests"] == len(reqs), (j["requests"], reqs)
    assert j["connections"]["opened"] == len(set(c for c, _ in reqs)), (j["connections"], reqs)


def test_peak_in_flight_leaves_out_refused_streams_waiting_to_go_again():
    # Every second request on the first connection is refused (after 0.2
    # s, when all 10 are out), the others held 0.3 s; the refused ones
    # wait 1 s for a new connection, which answers at once. Counted from their first request, 10 were in flight
    # while the server held 5. Later, requests sent together on one
    # connection are in flight together for getflags while this server
    # reads and answers them one by one (6-7 here): at least what the
    # server held, and less than the 10 of refused streams counted.
    out = scratch()
    codes = "BR CN DE EG FR IN JP MX NG US".split()
    with Rogue("refuse_held") as srv:
        r = getflags("-s", srv.url, "--cacert", srv.cacert, "-m", "10", "--json", *codes,
                     outdir=out, timeout=60)
        srv.stop()
        log = srv.proc.stderr.read().split("\n")
    assert r.rc == 0, (r.rc, r.out, r.err)
    events = sorted((float(l.split()[3]), 1 if l.startswith("REQ ") else -1)
                    for l in log if l.startswith(("REQ ", "END ")))
    assert any(l.startswith("REFUSED ") for l in log), log
    held = peak = 0
    for _, d in events:
        held += d
        peak = max(peak, held)
    j = r.json()
    assert peak == 5, (peak, log)
    assert peak <= j["peak_in_flight"] < 10, (j["peak_in_flight"], log)


def test_a_stream_reset_mid_answer():
    r, srv, _, files = run("reset_mid")
    # In the words of the other resets, the code named by its name.
    assert error_of(r) == ("127.0.0.1 port %d reset the HTTP/2 stream (INTERNAL_ERROR) "
                           "mid-answer" % srv.port), r.out
    assert files == [], files


def test_a_stream_reset_in_the_read_of_its_answer_uses_up_retries():
    # The headers, half the body and RST_STREAM CANCEL in one read:
    # libcurl 7.88 drops the headers it had not handed on yet, but the
    # server did answer, and only REFUSED_STREAM says it took nothing
    # (RFC 9113 8.7). So each code's request goes once at --retries 0,
    # twice at --retries 1.
    for retries in (0, 1):
        out = scratch()
        with Rogue("cancel_at_once") as srv:
            r = getflags("-s", srv.url, "--cacert", srv.cacert, "--retries", str(retries),
                         "--json", "-m", "2", "BR", "FR", outdir=out, timeout=60)
            reqs = srv.requests()
        assert r.rc == 1, (r.rc, r.out, r.err)
        items = r.json()["items"]
        assert [i["status"] for i in items] == ["error", "error"], items
        for item in items:
            assert item["error"] == (
                "127.0.0.1 port %d reset the HTTP/2 stream (CANCEL) before its answer was "
                "complete" % srv.port), item
        paths = sorted(p for _, p in reqs)
        assert paths == sorted(["/flags/br/metadata.json", "/flags/fr/metadata.json"] *
                               (1 + retries)), (retries, reqs)
        assert listing(out) == [], listing(out)


def test_a_stalled_answer_says_how_far_it_got():
    # The stream stays open with 10 bytes of the body: --timeout ends it,
    # naming the server and what it had sent; nothing is saved.
    r, srv, reqs, files = run("stall_mid", "--timeout", "1")
    size = os.path.getsize(os.path.join(DATA, "flags", "br", "metadata.json"))
    assert error_of(r) == ("timeout after 1 s: 127.0.0.1 port %d had sent 10 of %d bytes" %
                           (srv.port, size)), r.out
    assert files == [] and len(reqs) == 1, (files, reqs)


def test_a_stream_refused_mid_answer_says_so():
    # REFUSED_STREAM after the headers and half the body: libcurl asks
    # again by itself only before any of the answer; after it, a failure
    # that names the code, counted like any other.
    r, srv, reqs, files = run("refuse_mid")
    assert error_of(r) == ("127.0.0.1 port %d reset the HTTP/2 stream (REFUSED_STREAM) "
                           "mid-answer" % srv.port), r.out
    assert files == [] and len(reqs) == 1, (files, reqs)


def test_continuation_flood_is_named_by_nghttp2():
    r, srv, _, files = run("continuations")
    assert error_of(r) == ("not a valid HTTP/2 answer from 127.0.0.1 port %d: Too many "
                           "CONTINUATION frames following a HEADER frame" % srv.port), r.out
    assert files == []


def test_a_connection_closed_on_the_request():
    # Over HTTP/2 libcurl calls it a partial file; nothing came at all.
    r, srv, reqs, files = run("hang_up")
    assert error_of(r) == "the connection to 127.0.0.1 port %d ended before an answer" % srv.port
    assert files == [] and len(reqs) == 1, (files, reqs)


def test_streams_under_a_connection_closed_after_one_answer_go_again():
    # Each connection answers one request and closes, without a GOAWAY,
    # under the streams opened after it: those were never answered, as on
    # a keep-alive connection closed over HTTP/1.1, and go again on a new
    # connection without using up --retries.
    out = scratch()
    with Rogue("one_per_connection") as srv:
        r = getflags("-s", srv.url, "--cacert", srv.cacert, "--retries", "0", "-m", "4",
                     "BR", "CN", "FR", "US", outdir=out, timeout=60)
        reqs = srv.requests()
    assert r.rc == 0 and "  4 flags downloaded." in r.out, (r.rc, r.out, r.err)
    assert len(listing(out)) == 4, listing(out)
    assert len(set(c for c, _ in reqs)) > 1, reqs


def test_a_goaway_before_any_request_is_said_so():
    # GOAWAY with last-stream-id 0: the server took no request. libcurl
    # calls it "Error in the HTTP2 framing layer"; asked again three times
    # on new connections, then an error that says what the server did.
    r, srv, reqs, files = run("goaway")
    assert error_of(r) == ("127.0.0.1 port %d ended the HTTP/2 connection before answering "
                           "(a GOAWAY, or a close)" % srv.port), r.out
    assert files == [] and len(reqs) == 1 + 3, (files, reqs)
    assert r.json()["requests"] == len(reqs), (r.json()["requests"], reqs)
    assert r.json()["connections"]["opened"] == len(set(c for c, _ in reqs)), r.json()


def test_a_certificate_for_another_name_is_said_so():
    # Trusted, but made out to another host: no CA would help.
    d = scratch()
    root, chain, key = make_ca_chain(d, names=("elsewhere.test",), ips=())
    with Rogue("ok", certs={"root": root, "chain": chain, "key": key}) as srv:
        r = getflags("-s", srv.url, "--cacert", srv.cacert, "--retries", "0", "BR",
                     outdir=scratch())
    assert r.rc == 1, r.err
    assert ("BR error: the certificate of 127.0.0.1 port %d is for another host name: " %
            srv.port) in r.err, r.err
    assert "--cacert" not in r.err, r.err


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
