"""getflags against servers that push back: Debian's nginx with limit_req
answering 429 with a Retry-After (seconds, or an HTTP-date), and a small
server of the test's own that refuses with a Retry-After of a day.

Nothing here asserts wall-clock times tighter than several times what the
server's limit allows: counts come from the JSON report and from the
servers' own logs."""

import email.utils
import http.server
import os
import random
import re
import signal
import subprocess
import threading
import time

from gfutil import DATA, Nginx, getflags, listing, run_tests, scratch

PAUSE_RE = re.compile(r"getflags: (\d+\.\d) s: (\S+) answered (429|503) \(([^)]*)\): "
                      r"no new request to it for (\d+\.\d) s$")


def pauses(err):
    """The -v pause lines on stderr: (at_s, status, what, pause_s)."""
    out = []
    for line in err.splitlines():
        m = PAUSE_RE.match(line)
        if m:
            out.append((float(m.group(1)), int(m.group(3)), m.group(4), float(m.group(5))))
    return out


def limited_nginx(rate, burst, retry_after="1", nodelay=False):
    """nginx serving flags_data over plain HTTP, /flags/ behind limit_req
    (rate r/s, burst, 429) with Retry-After: retry_after on every answer."""
    return Nginx({"limited": ("plain", """
    location /flags/ {
      limit_req zone=flags burst=%d%s;
      limit_req_status 429;
      add_header Retry-After "%s" always;
    }""" % (burst, " nodelay" if nodelay else "", retry_after))},
        http_extra="limit_req_zone $server_port zone=flags:1m rate=%sr/s;" % rate)


def arrivals(ng):
    """(arrival time, status) of each request, by arrival."""
    return sorted((e["start"], e["status"]) for e in ng.log())


class Refuser:
    """Serves flags_data; the first `refuse` requests get `status` (429)
    with the Retry-After that retry_after() returns (a string; None: no
    header), or, with share, each request with that probability (a seeded
    draw, whatever the load). Threaded, on an ephemeral port; .statuses
    lists what each request got."""

    def __init__(self, refuse, retry_after, status=429, share=None, seed=1):
        lock = threading.Lock()
        statuses = self.statuses = []
        draw = random.Random(seed).random

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                with lock:
                    refused = draw() < share if share is not None else len(statuses) < refuse
                    statuses.append(status if refused else 200)
                if refused:
                    self.send_response(status)
                    if retry_after:
                        self.send_header("Retry-After", retry_after())
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path = os.path.join(DATA, self.path.lstrip("/"))
                try:
                    with open(path, "rb") as f:
                        body = f.read()
                except OSError:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = "http://127.0.0.1:%d/flags" % self.server.server_address[1]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def check_all_ok(r, n):
    assert r.rc == 0, (r.rc, r.err[-3000:])
    j = r.json()
    assert j["counts"] == {"ok": n, "unchanged": 0, "not_found": 0, "error": 0, "pending": 0}, j["counts"]
    assert len(listing(r.outdir)) == n
    return j


def check_limit_req_run(retry_after, want_what, min_pause_s=0):
    # 30 codes, 60 requests, at 10 r/s with a burst of 10 against -m 20:
    # the burst overflows and nginx answers 429 with the Retry-After. The
    # issue's 10 r/s, burst 20 and 194 codes take 39 s and, at HTTP/1.1
    # on loopback, never overflow; this scales it down and makes it
    # overflow. The limit allows it in about (60 - 11) / 10 = 4.9 s.
    n, rate, burst = 30, 10, 10
    with limited_nginx(rate, burst, retry_after=retry_after) as ng:
        r = getflags("-v", "--json", "-m", "20", "-s", ng.url, "-a", "-l", str(n),
                     outdir=scratch())
        log = arrivals(ng)
    j = check_all_ok(r, n)
    ok = [t for t, s in log if s == 200]
    refused = [t for t, s in log if s == 429]
    assert len(ok) == 2 * n, len(ok)
    assert refused, "nginx refused nothing: the test does not test anything"
    # Refused requests are asked again for free: no retry line, no error
    # (with --json the -v lines go to stderr).
    assert "retry" not in r.err, r.err
    assert r.err.count("asked again after HTTP 429") == len(refused), r.err
    # Each pause is announced once on stderr, capped and with at most 20%
    # jitter over what was asked.
    ps = pauses(r.err)
    assert ps and len(ps) <= len(refused), r.err
    for at, status, what, pause in ps:
        assert status == 429, (at, what)
        m = want_what.fullmatch(what)
        assert m, what
        top = float(m.group(1)) * 1.2 if m.group(1) else 30.0
        assert 0.25 <= pause <= top + 0.05, (what, pause)
    if min_pause_s:
        # Pauses stop every new request: after a 429 leaves nginx, none
        # arrives until the pause is over. getflags decides the pause when
        # it reads the 429 (allow 0.5 s for that on a loaded machine, or
        # under valgrind); requests sent before then may still arrive.
        for t in refused:
            during = [u for u, _ in log if t + 0.5 < u < t + min_pause_s - 0.05]
            assert not during, (t, during[:5])
    # Fewer refusals than answers: ignoring 429s, or retrying each on its
    # own timer while new requests go on, gets twice as many refusals as
    # answers here (and ends in errors).
    assert len(refused) < len(ok), (len(refused), len(ok))
    # Not far above what the limit allows (pauses included), very loosely.
    ideal = (2 * n - burst - 1) / rate
    assert j["elapsed_s"] < 4 * ideal + 10, (j["elapsed_s"], ideal)
    return ps


def test_limit_req_fixed_m_obeys_retry_after_with_no_errors():
    ps = check_limit_req_run("1", re.compile(r"Retry-After: (1) s"), min_pause_s=1.0)
    assert all(1.0 <= p[3] for p in ps), ps


def test_limit_req_http_date_retry_after_with_no_errors():
    # A fixed date 3 s after nginx starts: refusals before it pause until
    # then (as libcurl reads the date, in whole seconds), later ones see a
    # date in the past and back off.
    date = email.utils.formatdate(time.time() + 3, usegmt=True)
    ps = check_limit_req_run(date, re.compile(
        r"Retry-After: ([1-3]) s|no usable Retry-After, backing off"))
    assert any(p[2].startswith("Retry-After:") for p in ps), ps


def test_limit_req_http_date_retry_after_is_obeyed():
    # The first two requests are refused with an HTTP-date 3 s ahead;
    # libcurl turns it into 2 or 3 s (the date has whole seconds).
    def date():
        return email.utils.formatdate(time.time() + 3, usegmt=True)

    with Refuser(2, date) as srv:
        t0 = time.time()
        r = getflags("-v", "--json", "-m", "2", "-s", srv.url, "BR", "CN", outdir=scratch())
        took = time.time() - t0
        statuses = list(srv.statuses)
    check_all_ok(r, 2)
    assert statuses.count(429) == 2 and statuses.count(200) == 4, statuses
    ps = pauses(r.err)
    assert len(ps) == 1, r.err
    m = re.fullmatch(r"Retry-After: (\d+) s", ps[0][2])
    assert m and 2 <= int(m.group(1)) <= 3, ps
    assert int(m.group(1)) <= ps[0][3] <= int(m.group(1)) * 1.2 + 0.05, ps
    assert took >= int(m.group(1)), took
    # With --json the -v lines go to stderr.
    assert "retry" not in r.err and r.err.count("asked again after HTTP 429") == 2, r.err


def test_http_date_in_the_past_backs_off_without_pausing_long():
    # A date in the past (libcurl 7.88 gives a negative delay) is no
    # Retry-After: the host backs off (0.25 to 0.5 s) and the code is saved.
    with Refuser(1, lambda: "Wed, 21 Oct 2015 07:28:00 GMT") as srv:
        r = getflags("-v", "--json", "-m", "1", "-s", srv.url, "BR", outdir=scratch())
    check_all_ok(r, 1)
    ps = pauses(r.err)
    assert len(ps) == 1 and ps[0][2] == "no usable Retry-After, backing off", r.err
    assert 0.2 <= ps[0][3] <= 0.5, ps


def test_m_auto_paces_below_one_request_in_flight():
    # nodelay and a burst of 2: loopback answers in about a millisecond, so
    # even one request in flight asks for hundreds a second against 25.
    # -m auto must end with no error, pace its starts, and be refused far
    # less often than it is served.
    n, rate = 40, 25
    with limited_nginx(rate, 2, nodelay=True) as ng:
        r = getflags("-v", "--json", "-m", "auto", "-s", ng.url, "-a", "-l", str(n),
                     outdir=scratch())
        log = arrivals(ng)
    j = check_all_ok(r, n)
    ok = sum(1 for _, s in log if s == 200)
    refused = sum(1 for _, s in log if s == 429)
    assert ok == 2 * n
    assert re.search(r"one request in flight is too many for 127\.0\.0\.1:\d+: -m auto starts "
                     r"at most \d+\.\d\d requests per second", r.err), r.err
    assert j["concurrency"] == 1, j["concurrency"]
    assert refused <= ok // 3, (refused, ok)
    assert "retry" not in r.err, r.err
    ideal = 2 * n / rate
    assert j["elapsed_s"] < 6 * ideal + 10, (j["elapsed_s"], ideal)


def test_m_auto_keeps_its_pace_against_a_host_that_sheds_at_random():
    # A host that refuses 15% of requests at random, with Retry-After: 1,
    # however few it gets: each refusal pauses it for about 1 s whatever
    # getflags does, so -m auto can do no better than keep going. Slowing
    # down at each refusal (and holding the slower pace ten times longer
    # each time) once left it at one request every 10 s: 39 of 194 flags
    # in 90 s. It must find the refusals are shed (-v says so), end with
    # no error, and take little more than the pauses.
    n = 40
    with Refuser(0, lambda: "1", share=0.15, seed=7) as srv:
        r = getflags("-v", "--json", "-m", "auto", "-s", srv.url, "-a", "-l", str(n),
                     outdir=scratch(), timeout=120)
        statuses = list(srv.statuses)
    j = check_all_ok(r, n)
    refused = statuses.count(429)
    assert refused >= 5, statuses
    m = re.search(r"127\.0\.0\.1:\d+ refuses about (\d+)% of requests however slowly they "
                  r"come: -m auto stops slowing down for them \(back to (\d+) in flight\)",
                  r.err)
    assert m, r.err
    assert 2 <= int(m.group(1)) <= 60 and int(m.group(2)) >= 1, m.group(0)
    # Each refusal pauses the host for 1 to 1.2 s, whatever -m is (-m 1
    # takes 20 to 30 s here). Twice that, plus the time shedding takes to
    # be found, bounds the run loosely; the pace that slowed at every
    # refusal was still running after 300 s.
    assert j["elapsed_s"] < 2.4 * refused + 10, (j["elapsed_s"], refused)


def test_retry_after_of_a_day_pauses_30_s_not_more():
    # -m auto with Retry-After: 99999 on the first two requests: one pause,
    # announced as capped at 30 s, then the run ends (not after 300 s or a
    # day). The wait is real, once.
    with Refuser(2, lambda: "99999") as srv:
        t0 = time.time()
        r = getflags("-v", "--json", "-m", "auto", "-s", srv.url, "BR", "CN", outdir=scratch(),
                     timeout=200)
        took = time.time() - t0
    check_all_ok(r, 2)
    ps = pauses(r.err)
    assert len(ps) == 1, r.err
    assert ps[0][1] == 429 and ps[0][2] == "Retry-After: 99999 s, capped", ps
    assert ps[0][3] == 30.0, ps
    assert 29.5 <= took < 100, took


def test_fixed_m_retry_after_of_a_day_announced_capped_and_interruptible():
    # The default -m: the pause is announced capped at 30 s, and SIGINT
    # during it ends the run at once with the codes counted as not done.
    interrupt_a_capped_pause("99999", "Retry-After: 99999 s, capped")


def test_retry_after_beyond_any_clock_announced_as_such():
    # 10^23 s does not fit in any integer type: libcurl gives 0, and
    # getflags reads it saturated; the line does not print the saturated
    # number as if the server had said it.
    interrupt_a_capped_pause("1" + "0" * 23, "Retry-After: over 10^9 s, capped")


def interrupt_a_capped_pause(retry_after, announced):
    with Refuser(1000, lambda: retry_after) as srv:
        out = scratch()
        p = subprocess.Popen([os.environ["GETFLAGS"], "-v", "-s", srv.url, "-o", out, "BR", "CN"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = ""
        deadline = time.time() + 20
        while time.time() < deadline:
            line = p.stderr.readline()
            if "no new request" in line or not line:
                break
        t0 = time.time()
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=20)
        took = time.time() - t0
    m = PAUSE_RE.match(line.rstrip("\n"))
    assert m, (line, stderr)
    assert m.group(4) == announced and m.group(5) == "30.0", line
    assert took < 5, took
    assert p.returncode == 130, (p.returncode, stdout, stderr)


def test_503_without_retry_after_uses_up_retries():
    # At a fixed -m a 503 that names no time is an outage as much as a
    # refusal: the host backs off, and the code uses up --retries and ends
    # in an error that names the status.
    with Refuser(1000, None, status=503) as srv:
        r = getflags("-v", "--retries", "1", "-m", "1", "-s", srv.url, "BR", outdir=scratch())
        statuses = list(srv.statuses)
    assert r.rc == 1, (r.rc, r.out, r.err)
    assert "BR retry 1/1" in r.out and "BR error: HTTP error 503" in r.out, r.out
    assert statuses == [503, 503], statuses
    ps = pauses(r.err)
    assert ps and all(p[1] == 503 and p[2] == "no usable Retry-After, backing off" for p in ps), r.err


def test_verbose_lines_reach_a_file_as_they_happen():
    # -v > log: the retry lines are in the file while the run still waits
    # out its backoff (a killed run would otherwise lose them).
    with Refuser(10 ** 6, None, status=503) as srv:
        log = os.path.join(scratch(), "log")
        with open(log, "w") as f:
            p = subprocess.Popen([os.environ["GETFLAGS"], "-v", "--retries", "4", "-m", "1",
                                  "-s", srv.url, "-o", scratch(), "BR"],
                                 stdout=f, stderr=subprocess.DEVNULL)
        try:
            seen, deadline = "", time.time() + 20
            while "BR retry 2/4" not in seen and time.time() < deadline:
                time.sleep(0.05)
                with open(log) as f:
                    seen = f.read()
            running = p.poll() is None
        finally:
            p.kill()
            p.wait()
    assert "BR retry 1/4 in" in seen and "BR retry 2/4 in" in seen, seen
    # Pauses of 0.25 s and more each, then 2 more retries: still running.
    assert running, seen


DOWN_RE = re.compile(r"getflags: (\d+\.\d) s: \S+ has answered nothing but refusals "
                     r"\(the last: (429|503)\) for 60 s: no more pauses; each code now ends "
                     r"after its --retries$", re.M)


def test_host_that_refuses_everything_ends_the_run_after_about_a_minute():
    # A site that answers only 503 (no Retry-After, fixed -m: counted from
    # the first) and one that answers only 429 with Retry-After: 1 (-m
    # auto: free for a minute, then counted). Without an end to the
    # pauses, 10 codes x 3 attempts at one request per pause of up to
    # 30 s take about ten minutes at a fixed -m, and -m auto pacing down to
    # one start per 10 s takes longer. Both runs share the same minute.
    codes = ["BR", "CN", "DE", "FR", "IN", "JP", "MX", "NG", "RU", "US"]
    with Refuser(10 ** 6, None, status=503) as s503, \
            Refuser(10 ** 6, lambda: "1", status=429) as s429:
        outs = [scratch(), scratch()]
        t0 = time.time()
        procs = [subprocess.Popen([os.environ["GETFLAGS"], "-v", "--json", "-m", m, "-s", url,
                                   "-o", out] + codes,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for m, url, out in (("5", s503.url, outs[0]), ("auto", s429.url, outs[1]))]
        try:
            results = [p.communicate(timeout=240) for p in procs]
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        took = time.time() - t0
        statuses = (list(s503.statuses), list(s429.statuses))
    for p, (out, err), status, got in zip(procs, results, (503, 429), statuses):
        assert p.returncode == 1, (p.returncode, err[-2000:])
        j = __import__("json").loads(out)
        assert j["counts"] == {"ok": 0, "unchanged": 0, "not_found": 0, "error": len(codes), "pending": 0}, \
            j["counts"]
        for it in j["items"]:
            assert it["status"] == "error" and "HTTP error %d" % status in it["error"], it
        downs = DOWN_RE.findall(err)
        assert len(downs) == 1 and int(downs[0][1]) == status, err[-3000:]
        # Down after a minute of refusals, give or take the pause or pace
        # a refusal came in; nothing but refusals were sent.
        assert 59.0 <= float(downs[0][0]) < 75, downs
        assert set(got) == {status}, set(got)
    # At a fixed -m every 503 counted: exactly --retries + 1 per code.
    assert len(statuses[0]) == len(codes) * 3, len(statuses[0])
    # Once down, each code used up its retries at its own backoff, not at
    # one request per 30 s pause (which would take minutes more).
    assert took < 120, took
    assert listing(outs[0]) == [] and listing(outs[1]) == []


if __name__ == "__main__":
    run_tests(dict(globals()))
