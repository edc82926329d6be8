"""flagserver under load: a thousand delayed requests at once, 2,000
connections, clients vanishing during a delay or mid-body, running out of
file descriptors.

usage: flagserver_concurrency.py FLAGSERVER_BINARY SOURCE_DIR [unittest args]
"""

import asyncio
import ctypes
import fcntl
import os
import resource
import socket
import struct
import sys
import tempfile
import time
import traceback
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsutil import FlagServer, connect, make_tree, read_response  # noqa: E402

if len(sys.argv) < 3:
    sys.exit(__doc__)
BINARY, SRCDIR = sys.argv[1], sys.argv[2]
del sys.argv[1:3]

BIG = os.urandom(8 << 20)
FILES = {"flags/br/br.gif": b"GIF89a" + os.urandom(1000), "big.bin": BIG}


def raise_own_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def one_request(port, path, results, start_gate):
    await start_gate.wait()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
        await writer.drain()
        data = await reader.read()
        results.append(data)
    finally:
        writer.close()


async def many_requests(port, n, path="/flags/br/br.gif"):
    results = []
    gate = asyncio.Event()
    tasks = [asyncio.create_task(one_request(port, path, results, gate)) for _ in range(n)]
    t0 = time.monotonic()
    gate.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    return time.monotonic() - t0, results


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def linger_reset(s):
    # Close with an RST, like a client that crashed.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def small_sndbuf_netns():
    """In this process: a new network namespace, its loopback up, and TCP
    send buffers limited to 32 KiB. False when namespaces are not allowed."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET
        print("unshare(CLONE_NEWNET): %s" % os.strerror(ctypes.get_errno()), file=sys.stderr)
        return False
    with socket.socket() as s:
        ifreq = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, ifreq))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))  # SIOCSIFFLAGS, IFF_UP
    with open("/proc/sys/net/ipv4/tcp_wmem", "w") as f:
        f.write("4096 16384 32768")
    return True


class ConcurrencyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        make_tree(cls.tmp.name, FILES)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def server(self, *args, **kw):
        return FlagServer(BINARY, *args, directory=self.tmp.name, **kw)

    def check_alive(self, srv):
        with connect(srv.port) as s:
            s.sendall(b"GET /flags/br/br.gif HTTP/1.1\r\n\r\n")
            status, _, body = read_response(s.makefile("rb"))
            self.assertEqual((status, body), (200, FILES["flags/br/br.gif"]))

    def test_thousand_delayed_requests_take_one_delay(self):
        if raise_own_nofile(1200) < 1100:
            self.skipTest("cannot open 1,000 sockets here")
        with self.server("--delay", "0.5") as srv:
            elapsed, results = asyncio.run(many_requests(srv.port, 1000))
            self.assertEqual(len(results), 1000)
            for data in results:
                self.assertTrue(data.startswith(b"HTTP/1.1 200 OK\r\n"), data[:80])
                self.assertTrue(data.endswith(FILES["flags/br/br.gif"]))
            # One delay (0.5 s) plus set-up, not a thousand delays.
            self.assertLess(elapsed, 5.0)
            log = srv.wait_log(lambda es: len(es) >= 1000)
            peak = max(e["inflight"] for e in log)
            self.assertGreaterEqual(peak, 900, "the server never held them all at once")
            self.assertTrue(all(e["delay_ms"] == 500 for e in log))
            self.assertEqual(srv.stop(), 0)

    def test_two_thousand_connections(self):
        if raise_own_nofile(2300) < 2200:
            self.skipTest("cannot open 2,000 sockets here")
        with self.server("--delay", "1") as srv:
            elapsed, results = asyncio.run(many_requests(srv.port, 2000))
            self.assertEqual(sum(r.startswith(b"HTTP/1.1 200") for r in results), 2000)
            self.assertLess(elapsed, 8.0)
            log = srv.wait_log(lambda es: len(es) >= 2000)
            self.assertGreaterEqual(max(e["inflight"] for e in log), 1800)
            self.assertEqual(srv.stop(), 0)

    def test_client_gone_during_delay(self):
        with self.server("--delay", "1.5") as srv:
            for i in range(50):
                s = connect(srv.port)
                s.sendall(b"GET /flags/br/br.gif HTTP/1.1\r\n\r\n")
                if i % 2:
                    linger_reset(s)
                else:
                    s.close()
            # Each is over (logged 499) as soon as its client goes, well
            # before its delay would have ended.
            log = srv.wait_log(lambda es: len(es) >= 50, timeout=1.0)
            self.assertTrue(all(e["status"] == 499 and e["bytes"] == 0 for e in log), log)
            time.sleep(0.8)  # past the delays: nothing fires for them
            self.check_alive(srv)
            srv.wait_log(lambda es: len(es) >= 51)
            time.sleep(0.2)
            self.assertEqual(len(srv.log()), 51)
            self.assertEqual(srv.stop(), 0)

    def test_client_gone_mid_body(self):
        self.client_gone_mid_body()

    def test_client_gone_mid_body_small_send_buffer(self):
        # The same where the kernel never takes a whole 256 KiB slice at
        # once: TCP send buffers of at most 32 KiB, in a network namespace
        # of its own (the host's settings stay as they are). The client's
        # reset then always comes while flagserver's write is still queued.
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = 77 if not small_sndbuf_netns() else 0
                if code == 0:
                    self.client_gone_mid_body()
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                sys.stderr.flush()
                os._exit(code)
        deadline = time.monotonic() + 60
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                self.fail("still running after 60 s")
            time.sleep(0.05)
        code = os.waitstatus_to_exitcode(status)
        if code == 77:
            self.skipTest("cannot make a network namespace here (needs root)")
        self.assertEqual(code, 0, "failed in the namespace (traceback above)")

    def client_gone_mid_body(self):
        with self.server() as srv:
            for _ in range(5):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
                s.connect(("127.0.0.1", srv.port))
                s.sendall(b"GET /big.bin HTTP/1.1\r\n\r\n")
                got = 0
                while got < 100000:
                    got += len(s.recv(65536))
                linger_reset(s)
            log = srv.wait_log(lambda es: len(es) >= 5)
            for e in log:
                self.assertEqual(e["status"], 200)
                self.assertLess(e["bytes"], len(BIG))
            self.check_alive(srv)
            self.assertEqual(srv.stop(), 0)

    def assert_paused(self, srv, message):
        """srv said message on stderr and is paused, not spinning: little
        CPU while clients wait."""
        time.sleep(0.5)
        self.assertIn(message, srv.stderr_text())
        c0 = cpu_seconds(srv.proc.pid)
        time.sleep(1.0)
        self.assertLess(cpu_seconds(srv.proc.pid) - c0, 0.3)

    def test_out_of_descriptors(self):
        limit = 64

        def low_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (32, limit))

        raise_own_nofile(400)
        srv = self.server("--quiet", preexec_fn=low_limit)
        socks = []
        try:
            self.assertIn("only 64 file descriptors", srv.stderr_text() or
                          (time.sleep(0.2) or srv.stderr_text()))
            first = connect(srv.port)
            first.sendall(b"GET /flags/br/br.gif HTTP/1.1\r\n\r\n")
            f = first.makefile("rb")
            self.assertEqual(read_response(f)[0], 200)
            for _ in range(120):
                socks.append(connect(srv.port))
            self.assert_paused(srv, "pausing accepts")
            # Connections already open are still served.
            first.sendall(b"GET /flags/br/br.gif HTTP/1.1\r\n\r\n")
            self.assertEqual(read_response(f)[0], 200)
            # Freeing descriptors lets the waiting clients in, in turn.
            for s in socks[:100]:
                s.close()
            last = socks[-1]
            last.settimeout(5)
            last.sendall(b"GET /flags/br/br.gif HTTP/1.1\r\n\r\n")
            status, _, body = read_response(last.makefile("rb"))
            self.assertEqual((status, body), (200, FILES["flags/br/br.gif"]))
            first.close()
        finally:
            for s in socks:
                s.close()
            code = srv.stop()
        self.assertEqual(code, 0, srv.stderr_text())

    def test_accept_emfile(self):
        """accept() failing with EMFILE pauses accepting instead of spinning."""
        raise_own_nofile(400)
        srv = self.server("--quiet")
        socks = []
        try:
            first = connect(srv.port)
            f = first.makefile("rb")
            first.sendall(b"GET /flags/br/br.gif HTTP/1.1\r\n\r\n")
            self.assertEqual(read_response(f)[0], 200)
            # Lower the running server's limit under the cap it computed at
            # start, so that accept() itself runs out of descriptors.
            try:
                old = resource.prlimit(srv.proc.pid, resource.RLIMIT_NOFILE)
                resource.prlimit(srv.proc.pid, resource.RLIMIT_NOFILE, (40, old[1]))
            except (PermissionError, OSError) as e:
                self.skipTest("cannot change the server's limit: %s" % e)
            for _ in range(60):
                socks.append(connect(srv.port))
            self.assert_paused(srv, "accept: Too many open files")
            # The connection already open is still answered (503 Retry-After
            # if no descriptor is left to open the file, but answered).
            first.sendall(b"GET /flags/br/br.gif HTTP/1.1\r\n\r\n")
            self.assertIn(read_response(f)[0], (200, 503))
            resource.prlimit(srv.proc.pid, resource.RLIMIT_NOFILE, old)
            last = socks[-1]
            last.settimeout(5)
            last.sendall(b"GET /flags/br/br.gif HTTP/1.1\r\n\r\n")
            self.assertEqual(read_response(last.makefile("rb"))[0], 200)
            first.close()
        finally:
            for s in socks:
                s.close()
            code = srv.stop()
        self.assertEqual(code, 0, srv.stderr_text())


if __name__ == "__main__":
    unittest.main(verbosity=2)
