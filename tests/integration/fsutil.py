"""Helpers for tests that run flagserver (Python standard library only).

Public API (kept small on purpose; other test suites may import it):

    FlagServer(binary, *args, directory=None, bind="127.0.0.1", quiet=False,
               preexec_fn=None)
        Starts `binary --bind BIND --port 0 [--directory DIR] [--quiet] ARGS`
        and waits for its first stdout line, "listening on http://ADDR:PORT".
        Attributes: proc, host, port, url ("http://127.0.0.1:PORT").
        stdout (the access log) and stderr are drained by threads, so the
        server never blocks on a full pipe.
          .log()                    -> list of parsed access-log entries so far
          .wait_log(pred, timeout)  -> the entries, once pred(entries) is true
                                       (raises AssertionError on timeout)
          .stderr_text()            -> everything written to stderr so far
          .stop(sig=SIGTERM, timeout=10) -> exit status (stops at most once)
        A context manager: leaving the block stops it with SIGTERM and, unless
        the block raised, fails unless the exit status is 0.

    parse_log_line(line) -> dict(time, method, target, status, delay_ms,
                                 bytes, inflight), or None if malformed
    raw_exchange(port, data, timeout=5.0, host="127.0.0.1") -> bytes
        Sends raw bytes (no normalisation of the path) and returns all bytes
        received until the server closes or `timeout` passes without data.
    read_response(rfile, head=False) -> (status, headers, body)
        Reads one response from a socket's makefile("rb"); headers is a dict
        of lower-cased names; handles Content-Length, chunked and
        close-delimited bodies; head=True for answers to HEAD.
    connect(port, host="127.0.0.1", timeout=5.0) -> socket
    make_tree(root, files) -> writes {relative path: bytes} below root
"""

import os
import re
import signal
import socket
import subprocess
import threading
import time

LOG_RE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (?P<method>\S+) (?P<target>\S+) "
    r"(?P<status>\d+) delay=(?P<delay_ms>\d+) bytes=(?P<bytes>\d+) "
    r"inflight=(?P<inflight>\d+)$")


def parse_log_line(line):
    m = LOG_RE.match(line.rstrip("\n"))
    if not m:
        return None
    d = m.groupdict()
    for k in ("status", "delay_ms", "bytes", "inflight"):
        d[k] = int(d[k])
    return d


class FlagServer:
    def __init__(self, binary, *args, directory=None, bind="127.0.0.1", quiet=False,
                 preexec_fn=None, start_timeout=10.0):
        cmd = [binary, "--bind", bind, "--port", "0"]
        if directory is not None:
            cmd += ["--directory", str(directory)]
        if quiet:
            cmd.append("--quiet")
        cmd += [str(a) for a in args]
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     preexec_fn=preexec_fn)
        self._lock = threading.Condition()
        self._entries = []
        self._stderr = []
        self._first = None
        self._exit = None
        self._threads = [threading.Thread(target=self._drain_stdout, daemon=True),
                         threading.Thread(target=self._drain_stderr, daemon=True)]
        for t in self._threads:
            t.start()
        with self._lock:
            # The stdout thread sets _first to "" at EOF, so this cannot hang.
            self._lock.wait_for(lambda: self._first is not None, start_timeout)
            first = self._first
        if not first or not first.startswith("listening on http://"):
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("flagserver did not start: first line %r, stderr %r"
                                 % (first, self.stderr_text()))
        self.url = first.split(" ", 2)[2].strip()
        hostport = self.url[len("http://"):]
        host, _, port = hostport.rpartition(":")
        self.host = host.strip("[]")
        self.port = int(port)

    def _drain_stdout(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace")
            with self._lock:
                if self._first is None:
                    self._first = line.rstrip("\n")
                else:
                    e = parse_log_line(line)
                    self._entries.append(e if e is not None else {"bad": line})
                self._lock.notify_all()
        with self._lock:
            if self._first is None:
                self._first = ""
            self._lock.notify_all()

    def _drain_stderr(self):
        for raw in self.proc.stderr:
            with self._lock:
                self._stderr.append(raw.decode("utf-8", "replace"))

    def log(self):
        with self._lock:
            return list(self._entries)

    def wait_log(self, pred, timeout=5.0):
        deadline = time.monotonic() + timeout
        with self._lock:
            while not pred(self._entries):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("access log condition not met; log: %r"
                                         % self._entries[-10:])
                self._lock.wait(left)
            return list(self._entries)

    def stderr_text(self):
        with self._lock:
            return "".join(self._stderr)

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        if self._exit is not None:
            return self._exit
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self._exit = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("flagserver did not stop within %.0f s of %s"
                                 % (timeout, signal.Signals(sig).name))
        for t in self._threads:
            t.join(5)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self._exit

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        code = self.stop()
        # A clean stop is part of every test (a sanitizer or leak report
        # would change it), unless the block failed already.
        if exc_type is None and code != 0:
            raise AssertionError("flagserver exited with %r; stderr:\n%s"
                                 % (code, self.stderr_text()))
        return False


def connect(port, host="127.0.0.1", timeout=5.0):
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def raw_exchange(port, data, timeout=5.0, host="127.0.0.1"):
    with connect(port, host, timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
        except socket.timeout:
            pass
        except ConnectionResetError:
            pass
        return b"".join(chunks)


def _read_line(rfile):
    line = rfile.readline(65537)
    if not line:
        raise EOFError("connection closed")
    return line


def read_response(rfile, head=False):
    status_line = _read_line(rfile).decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError("bad status line %r" % status_line)
    status = int(parts[1])
    headers = {}
    while True:
        line = _read_line(rfile).decode("latin-1")
        if line in ("\r\n", "\n"):
            break
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if head or status in (204, 304) or 100 <= status < 200:
        return status, headers, b""
    if "chunked" in headers.get("transfer-encoding", ""):
        body = []
        while True:
            size = int(_read_line(rfile).split(b";")[0].strip(), 16)
            if size == 0:
                while _read_line(rfile) not in (b"\r\n", b"\n"):
                    pass
                break
            body.append(rfile.read(size))
            rfile.read(2)
        return status, headers, b"".join(body)
    if "content-length" in headers:
        n = int(headers["content-length"])
        body = rfile.read(n)
        if len(body) != n:
            raise EOFError("body cut at %d of %d bytes" % (len(body), n))
        return status, headers, body
    return status, headers, rfile.read()


def make_tree(root, files):
    for rel, data in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
