"""getflags end to end against flagserver and nginx on loopback."""

import os
import re
import signal
import subprocess
import time

from gfutil import (DATA, GETFLAGS, VALGRIND, FlagServer, Nginx, assert_all_identical, codes_194,
                    country_of, expected_name, getflags, listing, run_tests, scratch)

DEFAULT_20 = sorted("CN IN US ID BR PK NG BD RU JP MX PH VN ET EG DE IR TR CD FR".split())


def assert_only_flags(outdir, n):
    names = listing(outdir)
    assert all(n.endswith(".gif") and "/" not in n and not n.startswith(".getflags-tmp")
               for n in names), names
    assert len(names) == n, (len(names), n)


def test_all_194_identical_from_flagserver():
    out = scratch()
    with FlagServer("--quiet") as fs:
        r = getflags("-a", "-m", "20", "-s", fs.url, outdir=out)
    assert r.rc == 0, r.err
    assert_all_identical(out, codes_194())
    assert_only_flags(out, 194)
    assert "\n194 flags downloaded.\n" in r.out, r.out


def test_all_194_identical_from_nginx():
    out = scratch()
    with Nginx() as ng:
        r = getflags("-a", "-m", "50", "-s", ng.url, outdir=out)
        paths = ng.log()
    assert r.rc == 0, r.err
    assert_all_identical(out, codes_194())
    assert_only_flags(out, 194)
    assert len(paths) == 388, len(paths)


def test_every_code_counts_and_no_image_for_404():
    out = scratch()
    with FlagServer() as fs:
        r = getflags("-e", "-m", "100", "-s", fs.url, "--json", outdir=out)
        log = fs.log()
    assert r.rc == 0, r.err
    s = r.json()
    assert s["counts"] == {"ok": 194, "not_found": 482, "error": 0, "unchanged": 0, "pending": 0}, s["counts"]
    assert s["requests"] == 676 + 194
    known = {c.lower() for c in codes_194()}
    images = [e["path"] for e in log if e["path"].endswith(".gif")]
    assert len(images) == 194
    for p in images:
        cc = p.split("/")[2]
        assert cc in known, "image requested for a 404 code: " + p
    assert len(log) == 870
    assert_only_flags(out, 194)


def test_peak_in_flight_equals_m():
    # Long enough answers that m requests overlap; under valgrind getflags
    # itself is ~50 times slower, so the answers must be slower too.
    delay = "0.4" if VALGRIND else "0.02"
    for m in (1, 7, 40):
        out = scratch()
        with FlagServer("--delay", delay) as fs:
            # Enough codes that new connections, opened at a bounded pace,
            # reach m before the run nears its end.
            r = getflags("-a", "-l", str(5 * m), "-m", str(m), "-s", fs.url, "-q", outdir=out)
            log = fs.log()
        assert r.rc == 0, r.err
        peak = max(e["inflight"] for e in log)
        assert peak == m, "m=%d but the server saw %d in flight" % (m, peak)


def test_m1_order_is_meta_image_meta_image():
    out = scratch()
    with FlagServer() as fs:
        r = getflags("-m", "1", "-s", fs.url, "-q", "BR", "CN", "FR", "ZZ", "IN", outdir=out)
        paths = [e["path"] for e in fs.log()]
    assert r.rc == 0, r.err
    assert paths == ["/flags/br/metadata.json", "/flags/br/br.gif",
                     "/flags/cn/metadata.json", "/flags/cn/cn.gif",
                     "/flags/fr/metadata.json", "/flags/fr/fr.gif",
                     "/flags/in/metadata.json", "/flags/in/in.gif",
                     "/flags/zz/metadata.json"], paths


def test_text_report_format():
    out = scratch()
    with FlagServer("--quiet") as fs:
        r = getflags("-m", "20", "-s", fs.url, "ZZ", "A", outdir=out)
    lines = r.out.splitlines()
    assert lines[0] == "URL site: " + fs.url
    assert lines[1] == "Searching for 27 flags: from AA to ZZ", lines[1]
    assert lines[2] == "20 concurrent connections will be used."
    assert lines[3] == "-" * 20
    # AD AE AF AG AL AM AO AR AT AU AZ: 11 exist among A*
    assert lines[4] == " 11 flags downloaded.", lines[4]
    assert lines[5] == " 16 not found.", lines[5]
    assert lines[6].startswith("Elapsed time: ") and lines[6].endswith("s")
    assert len(lines) == 7
    assert r.rc == 0


def test_default_codes_and_labels():
    out = scratch()
    with FlagServer("--quiet") as fs:
        r = getflags("-s", fs.url, "-m", "3", outdir=out)
    assert r.rc == 0, r.err
    assert r.out.splitlines()[1] == "Searching for 20 flags: from BD to VN"
    assert r.out.splitlines()[2] == "3 concurrent connections will be used."
    assert_all_identical(out, DEFAULT_20)
    # Concurrency is capped at the number of codes; singular forms.
    r = getflags("-s", fs.url, "-m", "9", "BR", outdir=out)  # server gone: error
    lines = r.out.splitlines()
    assert lines[1] == "Searching for 1 flag: BR"
    assert lines[2] == "1 connection will be used."
    assert "  0 flags downloaded." in lines and "  1 error." in lines, r.out
    assert r.rc == 1
    assert "BR error: connection refused" in r.err, r.err


def test_verbose_lines():
    out = scratch()
    with FlagServer("--quiet") as fs:
        r = getflags("-v", "-s", fs.url, "BR", "ZZ", outdir=out)
    assert "BR OK\n" in r.out
    assert "ZZ not found: %s/zz/metadata.json\n" % fs.url in r.out
    assert r.rc == 0


def test_quiet_prints_nothing_on_success():
    out = scratch()
    with FlagServer("--quiet") as fs:
        r = getflags("-q", "-s", fs.url, "BR", "ZZ", outdir=out)
    assert r.rc == 0 and r.out == "" and r.err == "", (r.out, r.err)


def test_json_summary_fields():
    out = scratch()
    with FlagServer("--quiet") as fs:
        r = getflags("--json", "-v", "-s", fs.url, "BR", "ZZ", "CI", outdir=out)
    s = r.json()
    assert s["server"] == "URL" and s["base_url"] == fs.url
    assert s["concurrency"] == 3
    assert s["counts"] == {"ok": 2, "not_found": 1, "error": 0, "unchanged": 0, "pending": 0}
    items = {i["cc"]: i for i in s["items"]}
    assert items["BR"]["status"] == "ok" and items["BR"]["file"] == "Brazil.gif"
    assert items["BR"]["http_status"] == 200
    assert items["ZZ"]["status"] == "not_found" and items["ZZ"]["file"] is None
    ci = expected_name(country_of("CI"))
    assert items["CI"]["file"] == ci and os.path.isfile(os.path.join(out, ci))
    # -v lines go to stderr with --json, so stdout stays one JSON object.
    assert "BR OK" in r.err


def test_error_preset_counts_add_up():
    out = scratch()
    with FlagServer("--delay", "0", "--error-rate", "0.3", "--seed", "7", "--quiet") as fs:
        r = getflags("-a", "-m", "30", "--retries", "0", "-s", fs.url, "--json", outdir=out)
    s = r.json()
    c = s["counts"]
    assert c["ok"] + c["not_found"] + c["error"] == 194, c
    assert c["error"] > 0 and c["ok"] > 0, c
    assert r.rc == 1
    errs = [i for i in s["items"] if i["status"] == "error"]
    assert all(i["error"] == "HTTP error 418 - I'm a teapot" for i in errs), errs[:3]
    assert_only_flags(out, c["ok"])


def test_https_with_cacert():
    out = scratch()
    with Nginx(tls=True) as ng:
        r = getflags("-s", ng.url, "--cacert", ng.cacert, "BR", "FR", outdir=out)
        assert r.rc == 0, r.err
        assert_all_identical(out, ["BR", "FR"])
        # Without the CA the server is not trusted: an error, nothing saved.
        out2 = scratch()
        r = getflags("-s", ng.url, "BR", outdir=out2)
        assert r.rc == 1 and "BR error:" in r.err, r.err
        assert listing(out2) == []
        # Said with the server and what to do about it.
        port = int(ng.url.split(":")[2].split("/")[0])
        assert re.search(r"BR error: the certificate of (localhost|127\.0\.0\.1) port %d is not "
                         r"trusted: .*unable to get local issuer certificate.* \(--cacert FILE "
                         r"adds a CA\)" % port, r.err), r.err


def test_https_to_a_plain_http_port_is_said_plainly():
    with FlagServer("--quiet") as fs:
        port = int(fs.url.split(":")[2].split("/")[0])
        r = getflags("-s", fs.url.replace("http://", "https://"), "--retries", "0", "BR",
                     outdir=scratch())
    assert r.rc == 1, r.err
    assert ("BR error: TLS handshake with 127.0.0.1 port %d failed: the server did not answer "
            "in TLS (a plain HTTP port? then use http://)" % port) in r.err, r.err


def test_timeout_counts_from_request_start():
    out = scratch()
    # Each answer takes 0.1 s; with -m 1 the eighth code waits ~1.4 s for
    # the semaphore, which must not count against its 0.5 s timeout.
    with FlagServer("--delay", "0.1", "--quiet") as fs:
        r = getflags("-m", "1", "--timeout", "0.5", "--retries", "0", "-s", fs.url, "-l", "8",
                     "-a", outdir=out)
    assert r.rc == 0, r.out + r.err
    with FlagServer("--delay", "1", "--quiet") as fs:
        r = getflags("--timeout", "0.2", "--retries", "0", "-s", fs.url, "BR", outdir=out)
    assert r.rc == 1
    assert ("BR error: timeout after 0.2 s: no answer from 127.0.0.1 port %s\n" %
            fs.base.rsplit(":", 1)[1]) in r.err, r.err


def hostile_tree():
    """A copy of a few flags plus codes whose metadata is hostile."""
    root = scratch()
    flags = os.path.join(root, "flags")
    os.makedirs(flags)
    for cc in ("br", "fr"):
        os.makedirs(os.path.join(flags, cc))
        for n in ("metadata.json", cc + ".gif"):
            with open(os.path.join(DATA, "flags", cc, n), "rb") as src, \
                    open(os.path.join(flags, cc, n), "wb") as dst:
                dst.write(src.read())
    gif = open(os.path.join(DATA, "flags", "br", "br.gif"), "rb").read()
    hostile = {
        "aa": '{"country": "../../escape"}',
        "ab": '{"country": "/etc/cron.d/x"}',
        "ac": '{"country": "a/b"}',
        "ad": '{"country": ".."}',
        "ae": '{"country": "\\u001b[31mred"}',
        "af": '{"country": ""}',
        "ag": '{"country": 7}',
        "ah": '{"nation": "x"}',
        "ai": 'not json',
        "aj": '{"country": "Brazil"}',  # collides with BR
    }
    for cc, body in hostile.items():
        os.makedirs(os.path.join(flags, cc))
        with open(os.path.join(flags, cc, "metadata.json"), "w") as f:
            f.write(body)
        with open(os.path.join(flags, cc, cc + ".gif"), "wb") as f:
            f.write(gif)
    return root


def test_hostile_metadata_never_escapes():
    data = hostile_tree()
    parent = scratch()
    out = os.path.join(parent, "out")
    with FlagServer("--quiet", directory=data) as fs:
        r = getflags("-v", "--json", "-s", fs.url, "BR", "FR", "AA", "AB", "AC", "AD", "AE",
                     "AF", "AG", "AH", "AI", "AJ", outdir=out)
        log = fs.log()
    s = r.json()
    items = {i["cc"]: i for i in s["items"]}
    assert listing(parent) == ["out"] + ["out/" + n for n in listing(out)]
    names = set(listing(out))
    assert {"Brazil.gif", "France.gif"} <= names
    for n in names:
        assert "/" not in n and not n.startswith("."), n
    assert items["AA"]["file"] == "___.._escape.gif", items["AA"]
    assert items["AB"]["file"] == "_etc_cron.d_x.gif"
    assert items["AC"]["file"] == "a_b.gif"
    assert items["AD"]["file"] == "__.gif"
    assert items["AE"]["file"] == "_[31mred.gif"
    for cc in ("AF", "AG", "AH", "AI"):
        assert items[cc]["status"] == "error", items[cc]
        assert items[cc]["error"].startswith("bad metadata: "), items[cc]
        assert "/flags/%s/%s.gif" % (cc.lower(), cc.lower()) not in [e["path"] for e in log]
    # Two codes with one name: the one saved second gets _<CC>.
    files = sorted([items["BR"]["file"], items["AJ"]["file"]])
    assert files in (["Brazil.gif", "Brazil_AJ.gif"], ["Brazil.gif", "Brazil_BR.gif"]), files
    assert s["counts"] == {"ok": 8, "not_found": 0, "error": 4, "unchanged": 0, "pending": 0}
    assert r.rc == 1
    # Control characters are escaped when printed.
    assert "\x1b" not in r.out + r.err


def test_interrupt_exits_130_and_143_without_temp_files():
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        out = scratch()
        with FlagServer("--delay", "0.2", "--quiet") as fs:
            p = subprocess.Popen([GETFLAGS, "-a", "-m", "10", "-s", fs.url, "-o", out],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            # Interrupt once a flag is saved (not after a fixed sleep, which
            # a loaded machine can outrun), with most codes still to go.
            deadline = time.time() + 10
            while time.time() < deadline and not any(
                    n.endswith(".gif") for n in os.listdir(out)):
                time.sleep(0.01)
            p.send_signal(sig)
            t0 = time.time()
            stdout, stderr = p.communicate(timeout=10)
            took = time.time() - t0
        assert p.returncode == code, (p.returncode, stderr)
        assert took < 1.5, took
        names = listing(out)
        assert all(n.endswith(".gif") and not n.startswith(".") for n in names), names
        # The final report covers what ended.
        done = int(stdout.split("--------------------\n")[1].split()[0])
        assert done == len(names) and 0 < done < 194, (done, len(names))


def run_with_tty_stderr(args):
    """Runs getflags with stderr on a pseudo-terminal; returns (exit
    status, stdout, what the terminal received)."""
    import pty
    import select
    master, slave = pty.openpty()
    p = subprocess.Popen([GETFLAGS] + args, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 10)
        if not ready:
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    out = p.stdout.read().decode()
    return p.wait(10), out, seen.decode(errors="replace")


def test_progress_bar_only_on_a_terminal():
    with FlagServer("--delay", "0.05", "--quiet") as fs:
        rc, out, tty = run_with_tty_stderr(["-a", "-l", "30", "-m", "5", "-s", fs.url,
                                            "-o", scratch()])
        assert rc == 0, tty
        assert "\r" in tty and "/30" in tty and "%" in tty and "/s" in tty, repr(tty[-300:])
        assert "ETA" in tty, repr(tty[-300:])
        # The report on stdout is untouched by the bar.
        assert "\r" not in out and "30 flags downloaded." in out, out
        # Not with -v or -q, and never into a pipe.
        for extra in (["-v"], ["-q"]):
            rc, out, tty = run_with_tty_stderr(["-a", "-l", "8", "-s", fs.url, "-o",
                                                scratch()] + extra)
            assert rc == 0 and "%" not in tty, (extra, repr(tty))
        r = getflags("-a", "-l", "8", "-s", fs.url, outdir=scratch())
        assert r.rc == 0 and r.err == "", repr(r.err)


def test_usage_errors_exit_2():
    for args in (["-m", "0"], ["-l", "0"], ["-s", "nowhere"], ["XYZ"], ["1A"], ["--frob"],
                 ["-m"], ["-q", "-v"]):
        r = getflags(*args)
        assert r.rc == 2, (args, r.rc)
        assert r.err.startswith("*** Usage error: "), (args, r.err)
        assert "usage: getflags" in r.err
        assert r.out == ""


def test_output_dir_that_cannot_be_made_exits_3():
    parent = scratch()
    blocker = os.path.join(parent, "file")
    open(blocker, "w").close()
    r = getflags("-s", "http://127.0.0.1:9/flags", "BR", outdir=os.path.join(blocker, "sub"))
    assert r.rc == 3, r.rc
    assert "output directory" in r.err, r.err
    assert r.err.count("\n") == 1
    # A path of thousands of characters: the reason still ends the message.
    deep = os.path.join(blocker, *(["d" * 200] * 15))
    r = getflags("-s", "http://127.0.0.1:9/flags", "BR", outdir=deep)
    assert r.rc == 3, r.rc
    assert r.err.startswith("getflags: cannot ") and deep in r.err, r.err[:300]
    assert r.err.endswith(": not a directory\n"), r.err[-300:]


def test_existing_file_replaced_atomically():
    out = scratch()
    target = os.path.join(out, "Brazil.gif")
    with open(target, "wb") as f:
        f.write(b"stale")
    with FlagServer("--quiet") as fs:
        r = getflags("-s", fs.url, "BR", outdir=out)
    assert r.rc == 0
    assert_all_identical(out, ["BR"])


if __name__ == "__main__":
    run_tests(dict(globals()))
