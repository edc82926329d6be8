"""What getflags tells its user, and what it refuses to save: a report
that cannot be written is an error, a server's reason phrase is escaped
once, the progress bar on a terminal without ESC[K, and images that are not
one complete GIF."""

import filecmp
import os
import pty
import select
import socket
import subprocess
import threading
import time

from gfutil import (DATA, GETFLAGS, FlagServer, country_of, expected_name, getflags, listing,
                    run_tests, scratch)


class RawServer:
    """Answers every connection on 127.0.0.1 with the same bytes, then
    closes it."""

    def __init__(self, answer):
        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.url = "http://127.0.0.1:%d/flags" % self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(self.answer)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


def run_to_dev_full(args):
    with open("/dev/full", "w") as full:
        return subprocess.run([GETFLAGS] + args, stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=60)


def test_report_to_a_full_disk_exits_1():
    with FlagServer("--quiet") as fs:
        for mode in (["--json"], [], ["-v"]):
            out = scratch()
            p = run_to_dev_full(mode + ["-s", fs.url, "-o", out, "BR", "CI"])
            assert p.returncode == 1, (mode, p.returncode, p.stderr)
            assert p.stderr == "getflags: cannot write to standard output: " \
                               "No space left on device\n", (mode, p.stderr)
            # The flags themselves were saved.
            assert sorted(n for n in listing(out) if n.endswith(".gif")) == \
                ["Brazil.gif", "C\u00f4te_d'Ivoire.gif"], listing(out)
        # -q writes nothing, so nothing is lost.
        p = run_to_dev_full(["-q", "-s", fs.url, "-o", scratch(), "BR"])
        assert p.returncode == 0 and p.stderr == "", (p.returncode, p.stderr)


def test_long_output_to_a_full_disk_says_why():
    # A summary longer than stdout's buffer is written at once: the reason
    # of that failure is the one said, not "part of the output was lost".
    full = "getflags: cannot write to standard output: No space left on device\n"
    with FlagServer("--quiet") as fs:
        for mode in (["--json", "-a"], ["--json", "--sweep", "1,2", "-l", "60"]):
            p = run_to_dev_full(mode + ["-s", fs.url, "-o", scratch()])
            assert p.returncode == 1 and p.stderr == full, (mode, p.returncode, p.stderr)
    # --help and --version are output too.
    for mode in (["--help"], ["--version"]):
        p = run_to_dev_full(mode)
        assert p.returncode == 1 and p.stderr == full, (mode, p.returncode, p.stderr)


def test_verbose_lines_to_a_full_stderr_exit_1():
    with FlagServer("--quiet") as fs:
        with open("/dev/full", "w") as full:
            p = subprocess.run([GETFLAGS, "-v", "--json", "-s", fs.url, "-o", scratch(), "BR"],
                               stdout=subprocess.PIPE, stderr=full, text=True, timeout=60)
    assert p.returncode == 1, p.returncode
    assert '"ok":1' in p.stdout.replace(" ", ""), p.stdout


def test_reason_phrase_escaped_once():
    answer = (b"HTTP/1.1 500 \x1b]0;owned\x07\r\nContent-Length: 0\r\n"
              b"Connection: close\r\n\r\n")
    with RawServer(answer) as srv:
        r = getflags("-v", "--retries", "0", "-s", srv.url, "BR", outdir=scratch())
        assert r.rc == 1, (r.rc, r.err)
        assert "BR error: HTTP error 500 - \\x1b]0;owned\\x07\n" in r.out, repr(r.out)
        assert "\\\\x1b" not in r.out and "\x1b" not in r.out, repr(r.out)
        r = getflags("--json", "--retries", "0", "-s", srv.url, "BR", outdir=scratch())
        assert r.json()["items"][0]["error"] == "HTTP error 500 - \\x1b]0;owned\\x07", r.out
        # The -v retry line shows it escaped once too.
        r = getflags("-v", "--retries", "1", "-s", srv.url, "BR", outdir=scratch())
        assert "BR retry 1/1 in " in r.out, repr(r.out)
        retry = [line for line in r.out.splitlines() if line.startswith("BR retry")][0]
        assert retry.endswith(": HTTP error 500 - \\x1b]0;owned\\x07"), repr(retry)


def progress_on_a_tty(term):
    """Runs a short -a run with stderr on a pseudo-terminal and TERM set
    (None: unset); returns what the terminal received."""
    env = dict(os.environ)
    env.pop("TERM", None)
    if term is not None:
        env["TERM"] = term
    with FlagServer("--delay", "0.03", "--quiet") as fs:
        master, slave = pty.openpty()
        p = subprocess.Popen([GETFLAGS, "-a", "-l", "20", "-m", "4", "-s", fs.url,
                              "-o", scratch()], stdout=subprocess.PIPE, stderr=slave, env=env)
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
        assert p.wait(10) == 0 and "20 flags downloaded." in out, out
    return seen.decode(errors="replace")


def test_progress_bar_without_escapes_on_a_dumb_terminal():
    for term in ("dumb", "", None):
        tty = progress_on_a_tty(term)
        assert "/20" in tty and "%" in tty and "\r" in tty, (term, repr(tty[-300:]))
        assert "\x1b" not in tty, (term, repr(tty[-300:]))
        # Cleared at the end: the last thing drawn is spaces between '\r's.
        assert tty.rstrip("\r").endswith(" " * 40), (term, repr(tty[-100:]))
    tty = progress_on_a_tty("xterm")
    assert "\x1b[K" in tty, repr(tty[-300:])


def test_progress_bar_follows_a_narrowed_window():
    # A window made narrower mid-run: the next redraws fit the new width
    # instead of wrapping at every redraw.
    import fcntl
    import struct
    import termios
    with FlagServer("--delay", "0.3", "--quiet") as fs:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        p = subprocess.Popen([GETFLAGS, "-a", "-l", "12", "-m", "2", "-s", fs.url,
                              "-o", scratch()], stdout=subprocess.PIPE, stderr=slave,
                             env=dict(os.environ, TERM="xterm"))
        before, after = b"", b""
        t0 = time.time()
        resized = False
        while True:
            if not resized and time.time() - t0 > 0.6:
                fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 30, 0, 0))
                resized, t_resized = True, time.time()
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                if p.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            if resized and time.time() - t_resized > 0.3:
                after += chunk
            else:
                before += chunk
        os.close(slave)
        os.close(master)
        out = p.stdout.read().decode()
        assert p.wait(10) == 0 and "12 flags downloaded." in out, out
    draws = lambda b: [s for s in b.decode(errors="replace").replace("\x1b[K", "").split("\r")
                       if "/12" in s]
    assert max(len(s) for s in draws(before)) > 40, before[-300:]
    assert draws(after) and max(len(s) for s in draws(after)) <= 29, after[-300:]


def torn_tree():
    """BR's metadata under codes whose image is not one complete GIF."""
    root = scratch()
    gif = open(os.path.join(DATA, "flags", "br", "br.gif"), "rb").read()
    bodies = {
        "aa": gif[:len(gif) - 10],  # inside the LZW data
        "ab": b"GIF89a<html><body>Service unavailable</body></html>\n",
        "ac": b"GIF89a",
        "ad": gif + b"<!-- trailing -->",
        "ae": gif[:-1],
        "bb": gif,
    }
    for cc, body in bodies.items():
        d = os.path.join(root, "flags", cc)
        os.makedirs(d)
        with open(os.path.join(d, "metadata.json"), "w") as f:
            f.write('{"country": "Land %s"}' % cc.upper())
        with open(os.path.join(d, cc + ".gif"), "wb") as f:
            f.write(body)
    return root, len(gif)


def test_torn_images_are_never_saved():
    root, n = torn_tree()
    out = scratch()
    with FlagServer("--quiet", directory=root) as fs:
        r = getflags("--json", "--retries", "0", "-s", fs.url, "AA", "AB", "AC", "AD", "AE",
                     "BB", outdir=out)
    items = {i["cc"]: i for i in r.json()["items"]}
    assert r.rc == 1, r.err
    assert [n for n in listing(out) if n.endswith(".gif")] == ["Land_BB.gif"], listing(out)
    assert items["AA"]["error"] == \
        "truncated GIF image: ends inside an image data block (%d bytes received)" % (n - 10), \
        items["AA"]
    assert items["AB"]["error"].startswith("truncated GIF image: ") or \
        items["AB"]["error"].startswith("malformed GIF image: "), items["AB"]
    assert items["AC"]["error"] == \
        "truncated GIF image: ends inside the logical screen descriptor (6 bytes received)"
    assert items["AD"]["error"] == \
        "malformed GIF image: 17 bytes of other data after the trailer (%d bytes received)" \
        % (n + 17), items["AD"]
    assert items["AE"]["error"].startswith("truncated GIF image: ends inside the file, "
                                           "before the trailer byte (0x3B)"), items["AE"]
    assert r.json()["counts"] == {"ok": 1, "not_found": 0, "error": 5, "unchanged": 0, "pending": 0}


def test_remote_names_and_unicode_escapes_in_file_names():
    """The mirror's \\u-escaped names decode to UTF-8 file names; format
    characters, separators and a leading '-' never reach a file name."""
    out = scratch()
    with FlagServer("--quiet") as fs:
        r = getflags("--json", "-s", fs.url, "CI", "TR", "US", "VC", "CD", outdir=out)
    assert r.rc == 0, r.err
    with open(os.path.join(DATA, "flags", "ci", "metadata.json"), "rb") as f:
        assert b'"C\\u00f4te d\'Ivoire"' in f.read()
    want = {b"C\xc3\xb4te_d'Ivoire.gif", b"Turkey.gif", b"United_States_of_America.gif",
            b"Grenadines.gif", b"Congo_(Kinshasa).gif"}
    gifs = {n for n in os.listdir(os.fsencode(out)) if n.endswith(b".gif")}
    assert gifs == want, gifs
    assert {i["file"] for i in r.json()["items"]} == {os.fsdecode(n) for n in want}
    for cc in ("CI", "TR", "US", "VC", "CD"):
        saved = os.path.join(out, expected_name(country_of(cc)))
        want = os.path.join(DATA, "flags", cc.lower(), cc.lower() + ".gif")
        assert filecmp.cmp(saved, want, shallow=False), (saved, want)

    root = scratch()
    gif = open(os.path.join(DATA, "flags", "br", "br.gif"), "rb").read()
    names = {
        "ba": ('{"country": "Flag \\ud83c\\udff4 Land"}', b"Flag_\xf0\x9f\x8f\xb4_Land.gif"),
        "bb": ('{"country": "Brazil\\u202efig.exe"}', b"Brazil_fig.exe.gif"),
        "bc": ('{"country": "-rf"}', b"_-rf.gif"),
        "bd": ('{"country": "\\ufeffZero\\u200bWidth\\u2028Line\\u00adSoft"}',
               b"_Zero_Width_Line_Soft.gif"),
        "be": ('{"country": "Tag\\udb40\\udc67\\u00a0Space"}', b"Tag__Space.gif"),
    }
    for cc, (body, _) in names.items():
        os.makedirs(os.path.join(root, "flags", cc))
        with open(os.path.join(root, "flags", cc, "metadata.json"), "w") as f:
            f.write(body)
        with open(os.path.join(root, "flags", cc, cc + ".gif"), "wb") as f:
            f.write(gif)
    out = scratch()
    with FlagServer("--quiet", directory=root) as fs:
        r = getflags("-s", fs.url, *[cc.upper() for cc in names], outdir=out)
    assert r.rc == 0, r.err
    gifs = sorted(n for n in os.listdir(os.fsencode(out)) if n.endswith(b".gif"))
    assert gifs == sorted(n for _, n in names.values()), gifs
    # Printed names carry no bidi override either.
    assert "\u202e" not in r.out + r.err


if __name__ == "__main__":
    run_tests(dict(globals()))
