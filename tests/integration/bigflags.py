"""A server of large flags, for the memory tests and bench B6.

Every code AA..ZZ has a metadata.json and a GIF of about SIZE bytes (10
MiB by default, just under getflags's --max-size) whose image data is all
zeros. The GIF is always sent gzip-encoded, whatever the request's
Accept-Encoding says (getflags asks for none, and decodes a compressed
answer anyway): about 10 KiB on the wire, 10 MiB once decoded. Each answer carries an ETag, and a
request whose If-None-Match names it gets 304, as --update expects.
Faults for chosen codes (modes): "cut" sends the GIF one byte short,
"partial" half of its gzip encoding then closes the connection, "stall"
half of it then nothing until the server stops.

Used as a module: BigFlagServer serves from a thread of the caller;
BigFlagProcess from a process of its own, so that a caller measuring its
children's memory does not lend them its own (a forked child starts with
its parent's resident pages). Or run alone, for a benchmark:
    python3 bigflags.py [--size BYTES] [--mode CC=MODE]...
prints "http://127.0.0.1:PORT/flags" and serves until killed."""

import argparse
import gzip
import hashlib
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading

DEFAULT_SIZE = 10 * 1024 * 1024 - 1024
PATH_RE = re.compile(r"^/flags/([a-z]{2})/(metadata\.json|([a-z]{2})\.gif)$")


HEAD = b"GIF89a\x01\x00\x01\x00\x00\x00\x00" + b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x08"
BLOCK = b"\xff" + bytes(255)
TAIL = b"\x00\x3b"


def _blocks(size):
    return max(1, (size - len(HEAD) - len(TAIL)) // len(BLOCK))


def big_gif(size):
    """A valid 1x1 GIF89a of at most size bytes: header, screen, one image
    whose LZW data is sub-blocks of 255 zero bytes, trailer."""
    return HEAD + BLOCK * _blocks(size) + TAIL


def big_gif_digest(size):
    """(length, SHA-256 hex) of big_gif(size), never holding it."""
    h = hashlib.sha256(HEAD)
    for _ in range(_blocks(size)):
        h.update(BLOCK)
    h.update(TAIL)
    return len(HEAD) + len(BLOCK) * _blocks(size) + len(TAIL), h.hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self):
        m = PATH_RE.match(self.path)
        if not m or (m.group(3) and m.group(3) != m.group(1)):
            self._send(404, b"not found\n")
            return
        cc = m.group(1)
        is_image = m.group(3) is not None
        etag = '"%s-%s"' % ("i" if is_image else "m", cc)
        if self.headers.get("If-None-Match") == etag:
            self._send(304, headers=[("ETag", etag)])
            return
        self.server.requests += 1
        if not is_image:
            body = json.dumps({"iso_cc": cc.upper(), "country": "Large " + cc.upper()}).encode()
            self._send(200, body, [("Content-Type", "application/json"), ("ETag", etag)])
            return
        mode = self.server.modes.get(cc.upper())
        gz = self.server.gif_cut_gz if mode == "cut" else self.server.gif_gz
        if mode not in ("partial", "stall"):
            self._send(200, gz, [("Content-Type", "image/gif"), ("ETag", etag),
                                 ("Content-Encoding", "gzip")])
            return
        self.send_response(200)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(gz)))
        self.end_headers()
        self.wfile.write(gz[:len(gz) // 2])
        self.wfile.flush()
        if mode == "stall":
            self.server.stopping.wait(60)
        self.close_connection = True


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # -m 676 connects all at once

    def handle_error(self, request, client_address):
        pass  # a client that hangs up on a cut body is expected


class BigFlagServer:
    def __init__(self, size=DEFAULT_SIZE, modes=None):
        self.gif = big_gif(size)
        self.srv = _Server(("127.0.0.1", 0), _Handler)
        self.srv.gif_gz = gzip.compress(self.gif, 9)
        self.srv.modes = dict(modes or {})
        self.srv.gif_cut_gz = gzip.compress(self.gif[:-1], 9) if "cut" in self.srv.modes.values() \
            else b""
        self.srv.stopping = threading.Event()
        self.srv.requests = 0
        self.url = "http://127.0.0.1:%d/flags" % self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.srv.stopping.set()
        self.srv.shutdown()
        self.srv.server_close()
        self.thread.join(10)


class BigFlagProcess:
    def __init__(self, size=DEFAULT_SIZE, modes=None):
        cmd = [sys.executable, os.path.abspath(__file__), "--size", str(size)]
        for cc, mode in (modes or {}).items():
            cmd += ["--mode", "%s=%s" % (cc, mode)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.stop()
            raise RuntimeError("bigflags.py did not start")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=DEFAULT_SIZE, help="GIF size in bytes")
    ap.add_argument("--mode", action="append", default=[], metavar="CC=MODE",
                    help="a fault for one code: cut, partial or stall")
    args = ap.parse_args()
    modes = dict(m.upper().split("=", 1) for m in args.mode)
    modes = {cc: mode.lower() for cc, mode in modes.items()}
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    with BigFlagServer(args.size, modes) as s:
        print(s.url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
