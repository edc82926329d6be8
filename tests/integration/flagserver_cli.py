"""flagserver command line and lifecycle: bad options, --help, signals,
IPv6, the default directory of an installed copy.

usage: flagserver_cli.py FLAGSERVER_BINARY SOURCE_DIR [unittest args]
"""

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsutil import FlagServer, connect, make_tree, read_response  # noqa: E402

if len(sys.argv) < 3:
    sys.exit(__doc__)
BINARY, SRCDIR = sys.argv[1], sys.argv[2]
del sys.argv[1:3]


def run(*args, timeout=10):
    return subprocess.run([BINARY, *args], capture_output=True, timeout=timeout)


class OptionsTest(unittest.TestCase):
    def test_bad_options_exit_2(self):
        cases = [
            (["--preset", "slow"], "preset"),
            (["--port", "70000"], "--port"),
            (["--port", "x"], "--port"),
            (["--delay", "3:1"], "--delay"),
            (["--delay", "-1"], "--delay"),
            (["--error-rate", "2"], "--error-rate"),
            (["--seed", "minus"], "--seed"),
            (["--bind", "localhost"], "--bind"),
            (["--max-inflight", "-5"], "--max-inflight"),
            (["--frobnicate"], "--frobnicate"),
            (["--port"], "--port"),
            (["stray"], "stray"),
            (["--directory", "/nonexistent/flags"], "/nonexistent/flags"),
        ]
        for args, needle in cases:
            p = run(*args)
            self.assertEqual(p.returncode, 2, args)
            self.assertIn(needle, p.stderr.decode(), args)
            self.assertEqual(p.stdout, b"", args)

    def test_help(self):
        for flag in ("-h", "--help"):
            p = run(flag)
            self.assertEqual(p.returncode, 0)
            self.assertIn(b"--preset local|delay|error", p.stdout)
            self.assertIn(b"--error-rate", p.stdout)

    def test_port_in_use(self):
        with FlagServer(BINARY, "--quiet") as a:
            p = run("--bind", "127.0.0.1", "--port", str(a.port))
            self.assertEqual(p.returncode, 1)
            self.assertIn(b"cannot listen", p.stderr)


class SignalTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        make_tree(self.tmp.name, {"a.txt": b"a\n", "big.bin": os.urandom(4 << 20)})

    def tearDown(self):
        self.tmp.cleanup()

    def check_stop(self, sig):
        srv = FlagServer(BINARY, "--delay", "5", directory=self.tmp.name)
        socks = []
        try:
            # One idle keep-alive connection, one waiting out a delay, one
            # half-way through a large body the client stopped reading.
            s1 = connect(srv.port)
            s2 = connect(srv.port)
            s2.sendall(b"GET /a.txt HTTP/1.1\r\n\r\n")
            s3 = socket.socket()
            s3.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s3.connect(("127.0.0.1", srv.port))
            s3.sendall(b"GET /big.bin HTTP/1.1\r\n\r\n")
            socks = [s1, s2, s3]
            srv.wait_log(lambda es: True, 0)
            time.sleep(0.3)
            t0 = time.monotonic()
            code = srv.stop(sig)
            self.assertEqual(code, 0, srv.stderr_text())
            self.assertLess(time.monotonic() - t0, 3.0)
            self.assertIn("stopping", srv.stderr_text())
            # The connections were closed by the server.
            s2.settimeout(2)
            self.assertEqual(s2.recv(100), b"")
        finally:
            for s in socks:
                s.close()
            srv.stop()

    def test_sigterm(self):
        self.check_stop(signal.SIGTERM)

    def test_sigint(self):
        self.check_stop(signal.SIGINT)

    def test_unfinished_requests_logged(self):
        srv = FlagServer(BINARY, "--delay", "5", directory=self.tmp.name)
        with connect(srv.port) as s:
            s.sendall(b"GET /a.txt HTTP/1.1\r\n\r\n")
            time.sleep(0.3)
            self.assertEqual(srv.stop(), 0)
        self.assertEqual([(e["target"], e["status"]) for e in srv.log()], [("/a.txt", 499)])


class AddressTest(unittest.TestCase):
    def test_ipv6(self):
        try:
            with socket.socket(socket.AF_INET6) as s:
                s.bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback")
        with tempfile.TemporaryDirectory() as d:
            make_tree(d, {"x.txt": b"six\n"})
            with FlagServer(BINARY, bind="::1", directory=d) as srv:
                self.assertRegex(srv.url, r"^http://\[::1\]:\d+$")
                c = http.client.HTTPConnection("::1", srv.port, timeout=5)
                c.request("GET", "/x.txt")
                self.assertEqual(c.getresponse().read(), b"six\n")
                c.close()
                self.assertEqual(srv.stop(), 0)

    def test_first_line_names_the_port(self):
        with FlagServer(BINARY, "--quiet") as srv:
            self.assertRegex(srv.url, r"^http://127\.0\.0\.1:\d+$")
            self.assertNotEqual(srv.port, 0)


class DefaultDirectoryTest(unittest.TestCase):
    def test_installed_layout_wins(self):
        """<exe dir>/../share/getflags/flags_data is served when present."""
        with tempfile.TemporaryDirectory() as d:
            os.makedirs(os.path.join(d, "bin"))
            exe = os.path.join(d, "bin", "flagserver")
            shutil.copy(BINARY, exe)
            make_tree(os.path.join(d, "share/getflags/flags_data"),
                      {"country_codes.txt": b"INSTALLED COPY\n"})
            with FlagServer(exe, "--quiet") as srv:
                c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
                c.request("GET", "/country_codes.txt")
                self.assertEqual(c.getresponse().read(), b"INSTALLED COPY\n")
                c.close()
                self.assertEqual(srv.stop(), 0)

    def test_source_tree_otherwise(self):
        with open(os.path.join(SRCDIR, "flags_data", "country_codes.txt"), "rb") as f:
            want = f.read()
        with FlagServer(BINARY, "--quiet", "--preset", "delay", "--delay", "0") as srv:
            c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
            c.request("GET", "/country_codes.txt")
            self.assertEqual(c.getresponse().read(), want)
            c.close()


class QuietTest(unittest.TestCase):
    def test_quiet_has_no_log(self):
        with tempfile.TemporaryDirectory() as d:
            make_tree(d, {"x.txt": b"x"})
            srv = FlagServer(BINARY, quiet=True, directory=d)
            with connect(srv.port) as s:
                s.sendall(b"GET /x.txt HTTP/1.1\r\n\r\n")
                read_response(s.makefile("rb"))
            self.assertEqual(srv.stop(), 0)
            self.assertEqual(srv.log(), [])


if __name__ == "__main__":
    os.chdir(tempfile.gettempdir())
    unittest.main(verbosity=2)
