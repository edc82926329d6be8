"""flagserver /fault/<name>/ paths: each misbehaves as documented, and the
server stays healthy afterwards.

usage: flagserver_faults.py FLAGSERVER_BINARY SOURCE_DIR [unittest args]
"""

import gzip
import http.client
import os
import socket
import sys
import tempfile
import time
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsutil import FlagServer, connect, make_tree, raw_exchange, read_response  # noqa: E402

if len(sys.argv) < 3:
    sys.exit(__doc__)
BINARY, SRCDIR = sys.argv[1], sys.argv[2]
del sys.argv[1:3]

GIF = b"GIF89a" + bytes(range(256)) * 8
FILES = {"flags/br/br.gif": GIF, "flags/fr/fr.gif": b"GIF89a-fr",
         "flags/br/metadata.json": b'{"country": "Brazil"}\n'}
BOMB_SIZE = 50 * 1024 * 1024


def request(path, extra=b""):
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n"


def read_head(sock, timeout=5.0):
    """Reads up to the end of the head; returns (status, headers, leftover)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("closed before the end of the head: %r" % data[:200])
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, rest


def gunzip_size(data, expect_zeros=True):
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    total = 0
    buf = data
    while True:
        out = d.decompress(buf, 1 << 20)
        if expect_zeros and out.strip(b"\0"):
            raise AssertionError("non-zero bytes in the bomb")
        total += len(out)
        buf = d.unconsumed_tail
        if not out and not buf:
            break
    if not d.eof:
        raise AssertionError("gzip stream not finished")
    return total


def dechunk(data):
    out, pos = [], 0
    while True:
        eol = data.index(b"\r\n", pos)
        size = int(data[pos:eol], 16)
        pos = eol + 2
        if size == 0:
            return b"".join(out)
        out.append(data[pos:pos + size])
        pos += size + 2


class FaultTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        make_tree(cls.tmp.name, FILES)
        cls.srv = FlagServer(BINARY, "--seed", "9", directory=cls.tmp.name)
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        cls.tmp.cleanup()
        assert code == 0, "exit status %r, stderr %s" % (code, cls.srv.stderr_text())

    def tearDown(self):
        # Whatever the fault did, the server still answers properly.
        with connect(self.port) as s:
            s.sendall(request("/flags/fr/fr.gif"))
            status, _, body = read_response(s.makefile("rb"))
            self.assertEqual((status, body), (200, FILES["flags/fr/fr.gif"]))

    def get(self, path, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request("GET", path, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def log_for(self, target):
        return self.srv.wait_log(lambda es: any(e["target"] == target for e in es))

    def test_refuse(self):
        t0 = time.monotonic()
        self.assertEqual(raw_exchange(self.port, request("/fault/refuse/flags/br/br.gif")), b"")
        self.assertLess(time.monotonic() - t0, 2)
        e = [e for e in self.log_for("/fault/refuse/flags/br/br.gif")
             if e["target"] == "/fault/refuse/flags/br/br.gif"][-1]
        self.assertEqual((e["status"], e["bytes"]), (0, 0))

    def test_reset(self):
        with connect(self.port) as s:
            s.sendall(request("/fault/reset/flags/br/br.gif"))
            status, h, body = read_head(s)
            self.assertEqual(status, 200)
            self.assertEqual(int(h["content-length"]), len(GIF))
            reset = False
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    body += chunk
            except ConnectionResetError:
                reset = True
            self.assertTrue(reset, "the connection was closed, not reset")
            self.assertLessEqual(len(body), len(GIF) // 2)
            self.assertEqual(body, GIF[:len(body)])

    def test_short(self):
        data = raw_exchange(self.port, request("/fault/short/flags/br/br.gif"))
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertIn(b"Content-Length: %d\r\n" % len(GIF), head)
        self.assertEqual(body, GIF[:len(GIF) // 2])
        with self.assertRaises(http.client.IncompleteRead):
            self.get("/fault/short/flags/br/br.gif")

    def test_badchunk(self):
        data = raw_exchange(self.port, request("/fault/badchunk/flags/br/br.gif"))
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertIn(b"Transfer-Encoding: chunked\r\n", head)
        self.assertNotIn(b"Content-Length", head)
        with self.assertRaises(ValueError):
            dechunk(body)
        with self.assertRaises((http.client.IncompleteRead, ValueError)):
            self.get("/fault/badchunk/flags/br/br.gif")

    def test_silence(self):
        with connect(self.port) as s:
            s.sendall(request("/fault/silence/flags/br/br.gif"))
            status, h, rest = read_head(s)
            self.assertEqual((status, rest), (200, b""))
            self.assertEqual(int(h["content-length"]), len(GIF))
            s.settimeout(1.0)
            with self.assertRaises(socket.timeout):
                s.recv(1)  # neither a byte nor a close

    def test_trickle(self):
        with connect(self.port) as s:
            s.sendall(request("/fault/trickle/flags/br/br.gif"))
            status, h, body = read_head(s)
            self.assertEqual(status, 200)
            self.assertEqual(int(h["content-length"]), len(GIF))
            s.settimeout(1.0)
            while not body:
                body += s.recv(10)
            self.assertEqual(body, GIF[:1])
            t0 = time.monotonic()
            s.settimeout(4.0)
            body += s.recv(10)
            gap = time.monotonic() - t0
            self.assertEqual(body, GIF[:2])
            self.assertTrue(1.5 < gap < 3.5, gap)
        # The client left mid-body: logged with the two bytes it got.
        e = self.srv.wait_log(lambda es: any(
            x["target"] == "/fault/trickle/flags/br/br.gif" for x in es))
        e = [x for x in e if x["target"] == "/fault/trickle/flags/br/br.gif"][-1]
        self.assertEqual((e["status"], e["bytes"]), (200, 2))

    def test_redirects(self):
        cases = {
            "/fault/loop/flags/br/br.gif": "/fault/loop/flags/br/br.gif",
            "/fault/redirect-file/flags/br/br.gif": "file:///etc/passwd",
            "/fault/redirect-ftp/flags/br/br.gif": "ftp://127.0.0.1/x",
            "/fault/redirect-ok/flags/br/br.gif": "/flags/br/br.gif",
            "/fault/redirect-ok/flags/br/br.gif?v=2": "/flags/br/br.gif?v=2",
        }
        for path, location in cases.items():
            status, h, _ = self.get(path)
            self.assertEqual((status, h["location"]), (302, location), path)
        status, _, body = self.get(self.get("/fault/redirect-ok/flags/br/br.gif")[1]["location"])
        self.assertEqual((status, body), (200, GIF))

    def check_first_then_ok(self, code):
        path = "/fault/%d/flags/br/metadata.json" % code
        status, h, _ = self.get(path)
        self.assertEqual((status, h["retry-after"]), (code, "1"))
        for query in ("", "?again=1"):  # the query is not part of the path
            status, h, body = self.get(path + query)
            self.assertEqual((status, body), (200, FILES["flags/br/metadata.json"]))
            self.assertNotIn("retry-after", h)
        # State is per path: another file starts over.
        self.assertEqual(self.get("/fault/%d/flags/fr/fr.gif" % code)[0], code)
        self.assertEqual(self.get("/fault/%d/flags/fr/fr.gif" % code)[0], 200)

    def test_429_then_ok(self):
        self.check_first_then_ok(429)

    def test_503_then_ok(self):
        self.check_first_then_ok(503)

    def test_fixed_statuses(self):
        self.assertEqual(self.get("/fault/418/flags/br/br.gif")[0], 418)
        self.assertEqual(self.get("/fault/500/flags/br/br.gif")[0], 500)
        self.assertEqual(self.get("/fault/418/flags/br/br.gif")[0], 418)

    def test_html(self):
        status, h, body = self.get("/fault/html/flags/br/br.gif")
        self.assertEqual((status, h["content-type"]), (200, "text/html"))
        self.assertTrue(body.startswith(b"<!DOCTYPE html>"))

    def test_hugeheaders(self):
        data = raw_exchange(self.port, request("/fault/hugeheaders/flags/br/br.gif",
                                               b"Connection: close\r\n"))
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertGreaterEqual(len(head), 200 * 1024)
        self.assertEqual(body, GIF)
        with self.assertRaises(http.client.HTTPException):
            self.get("/fault/hugeheaders/flags/br/br.gif")

    def test_longheader(self):
        data = raw_exchange(self.port, request("/fault/longheader/flags/br/br.gif",
                                               b"Connection: close\r\n"))
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        self.assertEqual(lines[0], b"HTTP/1.1 200 OK")
        longest = max(lines, key=len)
        self.assertTrue(longest.startswith(b"X-Long: xxx"))
        self.assertEqual(len(longest), 200 * 1024 - 2)
        self.assertEqual(body, GIF)

    def test_endless(self):
        with connect(self.port) as s:
            s.sendall(request("/fault/endless/flags/br/br.gif"))
            status, h, body = read_head(s)
            self.assertEqual(status, 200)
            self.assertNotIn("content-length", h)
            self.assertNotIn("transfer-encoding", h)
            got = len(body)
            while got < 4 * 1024 * 1024:
                chunk = s.recv(1 << 20)
                self.assertTrue(chunk, "the endless body ended")
                got += len(chunk)
        e = self.srv.wait_log(lambda es: any(
            x["target"] == "/fault/endless/flags/br/br.gif" for x in es))
        e = [x for x in e if x["target"] == "/fault/endless/flags/br/br.gif"][-1]
        self.assertEqual(e["status"], 200)
        self.assertGreaterEqual(e["bytes"], 4 * 1024 * 1024 - 65536)

    def test_gzipbomb(self):
        status, h, body = self.get("/fault/gzipbomb/flags/br/br.gif")
        self.assertEqual((status, h["content-encoding"]), (200, "gzip"))
        self.assertEqual(int(h["content-length"]), len(body))
        self.assertLess(len(body), 1024 * 1024)
        self.assertEqual(gunzip_size(body), BOMB_SIZE)

    def test_gzipbomb_te(self):
        data = raw_exchange(self.port, request("/fault/gzipbomb-te/flags/br/br.gif",
                                               b"Connection: close\r\n"))
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertIn(b"Transfer-Encoding: gzip, chunked\r\n", head)
        self.assertNotIn(b"Content-Length", head)
        self.assertEqual(gunzip_size(dechunk(body)), BOMB_SIZE)

    def test_gzip(self):
        status, h, body = self.get("/fault/gzip/flags/br/br.gif")
        self.assertEqual((status, h["content-encoding"]), (200, "gzip"))
        self.assertEqual(h["content-type"], "image/gif")
        # Valid gzip of the file (compressed with zlib, stored without it).
        self.assertEqual(gzip.decompress(body), GIF)

    def test_badgzip(self):
        status, h, body = self.get("/fault/badgzip/flags/br/br.gif")
        self.assertEqual((status, h["content-encoding"]), (200, "gzip"))
        with self.assertRaises((OSError, EOFError, zlib.error)):
            gzip.decompress(body)

    def test_missing_file_and_unknown_fault(self):
        for path in ("/fault/reset/nope.gif", "/fault/gzip/nope.gif", "/fault/429/nope.gif",
                     "/fault/nosuch/flags/br/br.gif", "/fault/trickle"):
            if path == "/fault/429/nope.gif":
                self.assertEqual(self.get(path)[0], 429)  # first time: as told
            self.assertEqual(self.get(path)[0], 404, path)

    def test_head_on_endless_does_not_stream(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        c.request("HEAD", "/fault/endless/flags/br/br.gif")
        r = c.getresponse()
        self.assertEqual((r.status, r.read()), (200, b""))
        c.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
