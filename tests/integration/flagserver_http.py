"""flagserver HTTP behaviour: bodies, statuses, sanitising, keep-alive,
pipelining, conditional requests, access log, and the real flags_data.

usage: flagserver_http.py FLAGSERVER_BINARY SOURCE_DIR [unittest args]
"""

import email.utils
import http.client
import os
import random
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsutil import FlagServer, connect, make_tree, raw_exchange, read_response  # noqa: E402

if len(sys.argv) < 3:
    sys.exit(__doc__)
BINARY, SRCDIR = sys.argv[1], sys.argv[2]
del sys.argv[1:3]

SECRET = b"top secret, outside the served directory\n"


def random_bytes(n, seed):
    return random.Random(seed).randbytes(n)


class HttpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        top = cls.tmp.name
        cls.root = os.path.join(top, "root")
        cls.files = {
            "flags/br/br.gif": b"GIF89a" + random_bytes(1072, 1),
            "flags/br/metadata.json": b'{"country": "Brazil", "code": "BR"}\n',
            "country_codes.txt": b"BR FR JP\n",
            "noext": b"plain bytes",
            "data.bin": random_bytes(300000, 2),
            "flags/a b/x.txt": b"space in a directory name\n",
        }
        make_tree(cls.root, cls.files)
        os.makedirs(os.path.join(cls.root, "flags/empty"))
        with open(os.path.join(top, "secret.txt"), "wb") as f:
            f.write(SECRET)
        os.symlink("/etc", os.path.join(cls.root, "flags/etc"))
        os.symlink(os.path.join(top, "secret.txt"), os.path.join(cls.root, "flags/secret.gif"))
        os.symlink("..", os.path.join(cls.root, "flags/up"))
        os.symlink("country_codes.txt", os.path.join(cls.root, "alias.txt"))
        cls.srv = FlagServer(BINARY, "--seed", "1", directory=cls.root)

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        cls.tmp.cleanup()
        assert code == 0, "exit status %r, stderr %s" % (code, cls.srv.stderr_text())

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=10)

    def get(self, path, method="GET", headers=None):
        c = self.conn()
        try:
            c.request(method, path, headers=headers or {})
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def raw_status(self, request):
        data = raw_exchange(self.srv.port, request)
        self.assertTrue(data.startswith(b"HTTP/1.1 "), data[:100])
        return int(data.split(b" ", 2)[1]), data

    def test_bodies_identical(self):
        for rel, content in self.files.items():
            status, h, body = self.get("/" + rel.replace(" ", "%20"))
            self.assertEqual(status, 200, rel)
            self.assertEqual(body, content, rel)
            self.assertEqual(int(h["content-length"]), len(content))
            self.assertIn("last-modified", h)
            self.assertRegex(h["etag"], r'^"[0-9a-f]+-[0-9a-f]+"$')
            st = os.stat(os.path.join(self.root, rel))
            self.assertEqual(email.utils.parsedate_to_datetime(h["last-modified"]).timestamp(),
                             int(st.st_mtime))

    def test_content_types(self):
        want = {"/flags/br/br.gif": "image/gif", "/flags/br/metadata.json": "application/json",
                "/country_codes.txt": "text/plain", "/noext": "application/octet-stream",
                "/data.bin": "application/octet-stream"}
        for path, ctype in want.items():
            self.assertEqual(self.get(path)[1]["content-type"], ctype, path)

    def test_query_string_ignored(self):
        status, _, body = self.get("/country_codes.txt?x=1&y=/../../secret.txt")
        self.assertEqual((status, body), (200, self.files["country_codes.txt"]))

    def test_head(self):
        with connect(self.srv.port) as s:
            s.sendall(b"HEAD /flags/br/br.gif HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"GET /noext HTTP/1.1\r\nHost: x\r\n\r\n")
            f = s.makefile("rb")
            status, h, body = read_response(f, head=True)
            self.assertEqual((status, body), (200, b""))
            self.assertEqual(int(h["content-length"]), len(self.files["flags/br/br.gif"]))
            self.assertEqual(h["content-type"], "image/gif")
            # Had HEAD sent a body, this would parse it as a status line.
            status, _, body = read_response(f)
            self.assertEqual((status, body), (200, self.files["noext"]))

    def test_404(self):
        for path in ("/nope", "/flags/zz/zz.gif", "/flags/br", "/flags/br/", "/flags/empty",
                     "/", "/fault/nosuch/flags/br/br.gif"):
            status, h, body = self.get(path)
            self.assertEqual(status, 404, path)
            self.assertEqual(body, b"404 Not Found\n")

    def test_405(self):
        for method in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
            status, h, _ = self.get("/country_codes.txt", method=method)
            self.assertEqual(status, 405, method)
            self.assertEqual(h["allow"], "GET, HEAD")

    def test_400_malformed(self):
        for req in (b"GARBAGE\r\n\r\n",
                    b"GET /x HTTP/1.1\r\nNo colon here\r\n\r\n",
                    b"GET /x HTTP/9.9\r\n\r\n",
                    b"GET /a%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    b"GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                    b"GET /x HTTP/1.1\r\nContent-Length: zz\r\n\r\n"):
            status, data = self.raw_status(req)
            self.assertEqual(status, 400, req)

    def test_431(self):
        big = b"X-Big: " + b"a" * 9000 + b"\r\n"
        status, data = self.raw_status(b"GET /noext HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
        self.assertEqual(status, 431)
        self.assertIn(b"Connection: close", data)
        many = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 60) for i in range(200))
        status, _ = self.raw_status(b"GET /noext HTTP/1.1\r\n" + many + b"\r\n")
        self.assertEqual(status, 431)
        status, _ = self.raw_status(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n")
        self.assertEqual(status, 431)
        # Just under the limit is fine.
        ok = b"X-Big: " + b"a" * 7900 + b"\r\n"
        status, _ = self.raw_status(b"GET /noext HTTP/1.1\r\nConnection: close\r\n" + ok +
                                    b"\r\n")
        self.assertEqual(status, 200)

    def test_traversal_refused(self):
        attempts = [
            "/../secret.txt", "/flags/../../secret.txt", "/%2e%2e/secret.txt",
            "/%2E%2E/secret.txt", "/.%2e/secret.txt", "/flags/%2e%2e/%2e%2e/secret.txt",
            "/..%2fsecret.txt", "/flags%2f..%2f..%2fsecret.txt", "/%2e%2e%2fsecret.txt",
            "/..\\secret.txt", "/flags\\..\\..\\secret.txt", "/%5c..%5csecret.txt",
            "/country_codes.txt%00.gif", "/%00", "/flags/etc/passwd", "/flags/etc/hostname",
            "/flags/secret.gif", "/flags/up/secret.txt", "/flags/up/../secret.txt",
            "http://127.0.0.1/../secret.txt", "/./country_codes.txt",
            "/fault/reset/../secret.txt", "/fault/gzip/%2e%2e/secret.txt",
        ]
        for target in attempts:
            req = b"GET " + target.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            status, data = self.raw_status(req)
            self.assertIn(status, (400, 404), target)
            self.assertNotIn(SECRET, data, target)
            self.assertNotIn(b"root:", data, target)

    def test_symlink_inside_root_allowed(self):
        status, _, body = self.get("/alias.txt")
        self.assertEqual((status, body), (200, self.files["country_codes.txt"]))

    def test_keep_alive_reuse(self):
        c = self.conn()
        try:
            c.request("GET", "/noext")
            r = c.getresponse()
            self.assertEqual(r.read(), self.files["noext"])
            self.assertEqual(r.getheader("Connection"), "keep-alive")
            sock = c.sock
            for rel in ("flags/br/br.gif", "country_codes.txt", "data.bin", "noext"):
                c.request("GET", "/" + rel)
                r = c.getresponse()
                self.assertEqual(r.read(), self.files[rel])
                self.assertIs(c.sock, sock, "the connection was not reused")
        finally:
            c.close()

    def test_connection_close_honoured(self):
        data = raw_exchange(self.srv.port, b"GET /noext HTTP/1.1\r\nHost: x\r\n"
                            b"Connection: close\r\n\r\nGET /noext HTTP/1.1\r\n\r\n")
        self.assertIn(b"Connection: close\r\n", data)
        self.assertEqual(data.count(b"HTTP/1.1 200"), 1)
        self.assertTrue(data.endswith(self.files["noext"]))

    def test_http10(self):
        data = raw_exchange(self.srv.port, b"GET /noext HTTP/1.0\r\n\r\n")
        self.assertIn(b"Connection: close\r\n", data)
        self.assertTrue(data.endswith(self.files["noext"]))
        with connect(self.srv.port) as s:
            f = s.makefile("rb")
            for _ in range(3):
                s.sendall(b"GET /noext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                status, h, body = read_response(f)
                self.assertEqual((status, body), (200, self.files["noext"]))
                self.assertEqual(h["connection"], "keep-alive")

    def test_pipelining(self):
        order = ["flags/br/br.gif", "nope", "country_codes.txt", "data.bin", "noext",
                 "flags/br/metadata.json"] * 3
        req = b"".join(b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % p.encode() for p in order)
        with connect(self.srv.port) as s:
            s.sendall(req)
            f = s.makefile("rb")
            for rel in order:
                status, _, body = read_response(f)
                if rel == "nope":
                    self.assertEqual(status, 404)
                else:
                    self.assertEqual((status, body), (200, self.files[rel]), rel)

    def test_pipelining_many(self):
        n = 3000  # ~100 KB: more than the server holds before it pauses reading
        req = b"GET /noext HTTP/1.1\r\nHost: x\r\n\r\n" * n
        with connect(self.srv.port) as s:
            s.sendall(req)
            f = s.makefile("rb")
            for _ in range(n):
                self.assertEqual(read_response(f)[2], self.files["noext"])

    def test_conditional_requests(self):
        status, h, _ = self.get("/flags/br/metadata.json")
        etag, lm = h["etag"], h["last-modified"]
        for inm in (etag, "W/" + etag, '"other", ' + etag, "*"):
            status, h2, body = self.get("/flags/br/metadata.json", headers={"If-None-Match": inm})
            self.assertEqual((status, body), (304, b""), inm)
            self.assertEqual(h2["etag"], etag)
            self.assertNotIn("content-length", h2)
        status, _, _ = self.get("/flags/br/metadata.json", headers={"If-None-Match": '"x"'})
        self.assertEqual(status, 200)
        status, _, body = self.get("/flags/br/metadata.json", headers={"If-Modified-Since": lm})
        self.assertEqual((status, body), (304, b""))
        old = email.utils.formatdate(time.time() - 10 ** 8, usegmt=True)
        status, _, _ = self.get("/flags/br/metadata.json", headers={"If-Modified-Since": old})
        self.assertEqual(status, 200)
        # If-None-Match wins over a matching If-Modified-Since.
        status, _, _ = self.get("/flags/br/metadata.json",
                                headers={"If-None-Match": '"x"', "If-Modified-Since": lm})
        self.assertEqual(status, 200)
        # HEAD is conditional too, and a 304 keeps the connection usable.
        with connect(self.srv.port) as s:
            s.sendall(b"HEAD /flags/br/metadata.json HTTP/1.1\r\nIf-None-Match: " +
                      etag.encode() + b"\r\n\r\nGET /noext HTTP/1.1\r\n\r\n")
            f = s.makefile("rb")
            self.assertEqual(read_response(f, head=True)[0], 304)
            self.assertEqual(read_response(f)[2], self.files["noext"])

    def test_file_changes_between_requests(self):
        path = os.path.join(self.root, "changing.txt")
        with open(path, "wb") as f:
            f.write(b"first version\n")
        status, h1, body = self.get("/changing.txt")
        self.assertEqual(body, b"first version\n")
        with open(path, "wb") as f:
            f.write(b"second, longer version\n")
        os.utime(path, ns=(0, os.stat(path).st_mtime_ns + 5_000_000_000))
        status, h2, body = self.get("/changing.txt", headers={"If-None-Match": h1["etag"]})
        self.assertEqual((status, body), (200, b"second, longer version\n"))
        self.assertNotEqual(h1["etag"], h2["etag"])
        os.unlink(path)
        self.assertEqual(self.get("/changing.txt")[0], 404)

    def test_fifo_not_served(self):
        path = os.path.join(self.root, "fifo.txt")
        os.mkfifo(path)
        try:
            self.assertEqual(self.get("/fifo.txt")[0], 404)
        finally:
            os.unlink(path)

    def test_access_log(self):
        marker = "/noext?marker=%d" % random.randrange(10 ** 9)
        self.get(marker)
        self.get(marker, method="HEAD")
        self.get("/nope" + marker[6:])
        entries = self.srv.wait_log(
            lambda es: sum(1 for e in es if marker[6:] in e.get("target", "")) >= 3)
        mine = [e for e in entries if marker[6:] in e.get("target", "")]
        self.assertEqual([(e["method"], e["status"]) for e in mine],
                         [("GET", 200), ("HEAD", 200), ("GET", 404)])
        self.assertEqual(mine[0]["target"], marker)
        self.assertEqual(mine[0]["bytes"], len(self.files["noext"]))
        self.assertEqual(mine[1]["bytes"], 0)
        self.assertEqual(mine[2]["bytes"], len(b"404 Not Found\n"))
        for e in mine:
            self.assertEqual(e["delay_ms"], 0)
            self.assertGreaterEqual(e["inflight"], 1)
        self.assertFalse([e for e in entries if "bad" in e], "unparsable log lines")


def closed_after(sock, limit=3.0):
    """Seconds until the server closes sock (EOF or reset), at most limit."""
    t0 = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise AssertionError("still open after %.1f s" % limit)
    return time.monotonic() - t0


class IdleTimeoutTest(unittest.TestCase):
    def test_idle_connections_close(self):
        with tempfile.TemporaryDirectory() as root:
            make_tree(root, {"noext": b"plain bytes"})
            with FlagServer(BINARY, "--idle-timeout", "0.3", "--delay", "0.6",
                            directory=root) as srv:
                # Nothing sent, or a head that never ends: closed.
                with connect(srv.port) as s:
                    self.assertGreater(closed_after(s), 0.2)
                with connect(srv.port) as s:
                    s.sendall(b"GET /noext HTTP/1.1\r\nHost: x\r\n")
                    self.assertGreater(closed_after(s), 0.2)
                # A delay longer than the idle timeout is waited out, the
                # connection stays for the next request, and goes once idle.
                with connect(srv.port) as s:
                    f = s.makefile("rb")
                    for _ in range(2):
                        s.sendall(b"GET /noext HTTP/1.1\r\nHost: x\r\n\r\n")
                        status, h, body = read_response(f)
                        self.assertEqual((status, body), (200, b"plain bytes"))
                        self.assertEqual(h["connection"], "keep-alive")
                        time.sleep(0.1)
                    self.assertLess(closed_after(s), 0.5)
                # Only complete requests are logged.
                log = srv.wait_log(lambda es: len(es) >= 2)
                self.assertEqual([e["status"] for e in log], [200, 200])
        with FlagServer(BINARY, "--idle-timeout", "0", directory=SRCDIR, quiet=True) as srv:
            with connect(srv.port) as s:
                self.assertRaises(AssertionError, closed_after, s, 0.5)


class RealDataTest(unittest.TestCase):
    """Serves the repository's flags_data through the default directory."""

    def test_default_directory_serves_flags_data(self):
        data = os.path.join(SRCDIR, "flags_data")
        codes_path = os.path.join(data, "country_codes.txt")
        if not os.path.isdir(os.path.join(data, "flags")):
            self.skipTest("flags_data/flags not present yet")
        with open(codes_path, "rb") as f:
            codes_txt = f.read()
        codes = codes_txt.decode().split()
        self.assertGreaterEqual(len(codes), 190)
        # No --directory, and a working directory that is not the source tree.
        with FlagServer(BINARY, "--quiet") as srv:
            c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
            c.request("GET", "/country_codes.txt")
            self.assertEqual(c.getresponse().read(), codes_txt)
            for cc in codes:
                cc = cc.lower()
                for name, ctype in (("%s.gif" % cc, "image/gif"),
                                    ("metadata.json", "application/json")):
                    c.request("GET", "/flags/%s/%s" % (cc, name))
                    r = c.getresponse()
                    body = r.read()
                    self.assertEqual(r.status, 200, cc)
                    self.assertEqual(r.getheader("Content-Type"), ctype)
                    with open(os.path.join(data, "flags", cc, name), "rb") as f:
                        self.assertEqual(body, f.read(), cc)
            c.close()
            self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    os.chdir(tempfile.gettempdir())
    unittest.main(verbosity=2)
