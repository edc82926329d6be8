"""flagserver delays, error rate, seeded repeatability and --max-inflight.

usage: flagserver_delay.py FLAGSERVER_BINARY SOURCE_DIR [unittest args]
"""

import concurrent.futures
import datetime
import os
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fsutil import FlagServer, connect, make_tree, read_response  # noqa: E402

if len(sys.argv) < 3:
    sys.exit(__doc__)
BINARY, SRCDIR = sys.argv[1], sys.argv[2]
del sys.argv[1:3]

FILES = {"flags/br/br.gif": b"GIF89a-br", "flags/fr/fr.gif": b"GIF89a-fr",
         "country_codes.txt": b"BR FR\n"}


def timed_get(port, path="/flags/br/br.gif"):
    with connect(port, timeout=15) as s:
        t0 = time.monotonic()
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        status, headers, body = read_response(s.makefile("rb"))
        return time.monotonic() - t0, status, headers, body


def statuses_on_one_connection(port, n, path="/country_codes.txt"):
    out = []
    with connect(port) as s:
        f = s.makefile("rb")
        for _ in range(n):
            s.sendall(b"GET %s HTTP/1.1\r\n\r\n" % path.encode())
            out.append(read_response(f)[0])
    return out


def log_ms(entry):
    """The access log TIME of an entry, in ms since the epoch."""
    t = datetime.datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    return round(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


class DelayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        make_tree(cls.tmp.name, FILES)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def server(self, *args, **kw):
        return FlagServer(BINARY, *args, directory=self.tmp.name, **kw)

    def test_delays_within_bounds(self):
        with self.server("--delay", "0.05:0.2", "--seed", "11") as srv:
            with concurrent.futures.ThreadPoolExecutor(40) as ex:
                results = list(ex.map(lambda _: timed_get(srv.port), range(40)))
            for elapsed, status, _, body in results:
                self.assertEqual((status, body), (200, FILES["flags/br/br.gif"]))
                self.assertGreaterEqual(elapsed, 0.045)
                self.assertLess(elapsed, 0.2 + 1.0)
            log = srv.wait_log(lambda es: len(es) >= 40)
            delays = [e["delay_ms"] for e in log]
            self.assertTrue(all(50 <= d <= 200 for d in delays), delays)
            self.assertGreater(max(delays) - min(delays), 60, "draws are not spread out")
            self.assertEqual(srv.stop(), 0)

    def test_fixed_delay(self):
        with self.server("--delay", "0.15") as srv:
            elapsed, status, _, _ = timed_get(srv.port)
            self.assertEqual(status, 200)
            self.assertGreaterEqual(elapsed, 0.145)
            self.assertLess(elapsed, 2.0)
            self.assertEqual(srv.wait_log(lambda es: len(es) == 1)[0]["delay_ms"], 150)

    def test_error_rate(self):
        n, p = 400, 0.3
        with self.server("--delay", "0", "--error-rate", str(p), "--seed", "12345") as srv:
            got = statuses_on_one_connection(srv.port, n)
            errors = got.count(418)
            self.assertEqual(errors + got.count(200), n)
            # mean 120, standard deviation 9.2: +-4.5 sd is a sane tolerance
            sd = (n * p * (1 - p)) ** 0.5
            self.assertLess(abs(errors - n * p), 4.5 * sd, errors)
            with connect(srv.port) as s:
                seen = set()
                f = s.makefile("rb")
                while len(seen) < 2:
                    s.sendall(b"GET /country_codes.txt HTTP/1.1\r\n\r\n")
                    status, h, body = read_response(f)
                    seen.add(status)
                    if status == 418:
                        self.assertEqual(body, b"418 I'm a teapot\n")
                        self.assertEqual(h["connection"], "keep-alive")

    def test_error_preset(self):
        # The preset brings the 0.25 error rate; the explicit delay wins.
        with self.server("--delay", "0", "--preset", "error", "--seed", "5") as srv:
            got = statuses_on_one_connection(srv.port, 200)
            self.assertTrue(25 <= got.count(418) <= 75, got.count(418))
            log = srv.wait_log(lambda es: len(es) >= 200)
            self.assertTrue(all(e["delay_ms"] == 0 for e in log))

    def test_same_seed_same_run(self):
        def one_run(seed):
            with self.server("--delay", "0:0.004", "--error-rate", "0.5", "--seed", seed) as srv:
                statuses = statuses_on_one_connection(srv.port, 60)
                log = srv.wait_log(lambda es: len(es) >= 60)
                self.assertEqual(srv.stop(), 0)
                return statuses, [e["delay_ms"] for e in log]

        a, b, c = one_run("777"), one_run("777"), one_run("778")
        self.assertEqual(a, b)
        self.assertNotEqual(a[0], c[0])
        self.assertTrue(0 < a[0].count(418) < 60)

    def test_pipelined_requests_one_at_a_time(self):
        order = ["flags/br/br.gif", "flags/fr/fr.gif", "country_codes.txt", "nope"] * 4
        with self.server("--delay", "0.01:0.25", "--seed", "3") as srv:
            with connect(srv.port) as s:
                t0 = time.monotonic()
                s.sendall(b"".join(b"GET /%s HTTP/1.1\r\n\r\n" % p.encode() for p in order))
                f = s.makefile("rb")
                for rel in order:
                    status, _, body = read_response(f)
                    if rel == "nope":
                        self.assertEqual(status, 404)
                    else:
                        self.assertEqual(body, FILES[rel])
                elapsed = time.monotonic() - t0
            # A connection serves one request at a time: the next one is
            # taken up only once the answer before it is written, so each
            # is alone in progress and the delays add up.
            log = srv.wait_log(lambda es: len(es) == len(order))
            self.assertEqual([e["target"] for e in log], ["/" + p for p in order])
            self.assertEqual([e["inflight"] for e in log], [1] * len(order))
            times = [log_ms(e) for e in log]
            for prev, nxt, e in zip(times, times[1:], log):
                self.assertGreaterEqual(nxt - prev, e["delay_ms"] - 5, log)
            total = sum(e["delay_ms"] for e in log)
            self.assertGreater(total, 1000)  # the seed gives delays worth measuring
            self.assertGreaterEqual(elapsed * 1000, total - 20)

    def test_max_inflight(self):
        with self.server("--delay", "1", "--max-inflight", "5") as srv:
            results = []
            lock = threading.Lock()

            def worker():
                r = timed_get(srv.port)
                with lock:
                    results.append(r)

            threads = [threading.Thread(target=worker) for _ in range(5)]
            for t in threads:
                t.start()
            srv.wait_log(lambda es: True, 0)
            time.sleep(0.2)  # the first five are now waiting out their delay
            late = [threading.Thread(target=worker) for _ in range(4)]
            for t in late:
                t.start()
            for t in threads + late:
                t.join(10)
            ok = [r for r in results if r[1] == 200]
            busy = [r for r in results if r[1] == 503]
            self.assertEqual((len(ok), len(busy)), (5, 4))
            for elapsed, _, h, _ in busy:
                self.assertEqual(h["retry-after"], "1")
                self.assertLess(elapsed, 0.6)  # at once, not after the 1 s delay
            log = srv.wait_log(lambda es: len(es) == 9)
            self.assertEqual(sorted(e["status"] for e in log), [200] * 5 + [503] * 4)
            # Once the first five are done, requests are admitted again.
            self.assertEqual(timed_get(srv.port)[1], 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
