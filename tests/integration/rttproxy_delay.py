"""rttproxy: adds the round trip it is asked for, forwards bytes intact and
in order both ways, passes half-closes on, serves 1000 connections at once
and exits cleanly on SIGTERM."""

import asyncio
import hashlib
import os
import resource
import signal
import socket
import subprocess
import time

from cdn import RttProxy, RTTPROXY
from gfutil import refusing_port, run_tests


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def echo_handler(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.close()
    except (ConnectionError, asyncio.CancelledError):
        # The server closing at the end of a test cancels idle handlers.
        writer.close()


async def digest_handler(reader, writer):
    """Reads to EOF (the client's half-close), then answers with the
    SHA-256 of what it read followed by 1 MiB of its own, and closes."""
    h = hashlib.sha256()
    n = 0
    while True:
        data = await reader.read(65536)
        if not data:
            break
        h.update(data)
        n += len(data)
    writer.write(h.hexdigest().encode() + b" %d\n" % n)
    writer.write(bytes(range(256)) * 4096)
    await writer.drain()
    writer.close()


def with_server(handler, body):
    """Runs body(port) as a coroutine next to an asyncio server."""
    async def main():
        srv = await asyncio.start_server(handler, "127.0.0.1", 0, backlog=4096)
        port = srv.sockets[0].getsockname()[1]
        try:
            return await body(port)
        finally:
            srv.close()
            await srv.wait_closed()
    return asyncio.run(main())


async def timed_echoes(proxy_port, n):
    """Seconds from connect() to the first echo, then of n-1 more echo
    round trips on the same connection."""
    t0 = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
    times = []
    for i in range(n):
        msg = b"ping %d\n" % i
        t = time.monotonic()
        writer.write(msg)
        got = await asyncio.wait_for(reader.readexactly(len(msg)), 10)
        assert got == msg, (got, msg)
        times.append(time.monotonic() - (t0 if i == 0 else t))
    writer.close()
    return times


def test_adds_the_round_trip_and_the_handshake():
    delay = 40  # ms one way: an echo costs 80 ms, the first one 160
    async def run(port):
        with RttProxy(port, delay) as px:
            return await timed_echoes(px.port, 5)
    times = with_server(echo_handler, run)
    first, rest = times[0], times[1:]
    # Generous upper bounds: the machine is shared, but the delay is the
    # thing measured and must be there at least in full.
    assert 0.160 <= first < 0.160 + 0.5, times
    for t in rest:
        assert 0.080 <= t < 0.080 + 0.4, times


def test_no_handshake_is_one_round_trip():
    async def run(port):
        with RttProxy(port, 30, "--no-handshake") as px:
            return await timed_echoes(px.port, 3)
    times = with_server(echo_handler, run)
    assert 0.060 <= times[0] < 0.060 + 0.4, times
    for t in times[1:]:
        assert 0.060 <= t < 0.060 + 0.4, times


def test_zero_delay_is_fast():
    async def run(port):
        with RttProxy(port, 0) as px:
            return await timed_echoes(px.port, 20)
    times = with_server(echo_handler, run)
    assert sorted(times)[10] < 0.05, times


def test_bytes_intact_in_order_and_half_close():
    payload = os.urandom(6 << 20)
    async def run(port):
        with RttProxy(port, 5) as px:
            reader, writer = await asyncio.open_connection("127.0.0.1", px.port)
            # Many writes of odd sizes, so chunks and their order are tested.
            off, step = 0, 1
            while off < len(payload):
                writer.write(payload[off:off + step])
                off += step
                step = step * 3 % 70001 + 1
                if off % 7 == 0:
                    await writer.drain()
            await writer.drain()
            writer.write_eof()  # half-close: the answer must still come
            line = await asyncio.wait_for(reader.readline(), 30)
            rest = await asyncio.wait_for(reader.read(), 30)  # to the server's EOF
            writer.close()
            return line, rest
    line, rest = with_server(digest_handler, run)
    want = hashlib.sha256(payload).hexdigest().encode() + b" %d\n" % len(payload)
    assert line == want, (line, want)
    assert rest == bytes(range(256)) * 4096, len(rest)


def test_a_thousand_connections_at_once():
    if raise_nofile() < 4200:
        raise AssertionError("this test needs 4200 descriptors (ulimit -Hn)")
    n = 1000
    async def one(port, i):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        msg = b"connection %d\n" % i
        writer.write(msg)
        got = await reader.readline()
        writer.write_eof()
        tail = await reader.read()
        writer.close()
        return got == msg and tail == b""
    async def run(port):
        with RttProxy(port, 20) as px:
            t0 = time.monotonic()
            # The test's own connects are paced by asyncio, not all in one
            # burst: the listen backlog of the test server is the limit.
            ok = await asyncio.wait_for(asyncio.gather(*(one(px.port, i) for i in range(n))),
                                        60)
            took = time.monotonic() - t0
            served = px.stop()
            return ok, took, served
    ok, took, served = with_server(echo_handler, run)
    assert all(ok), "%d of %d connections lost or garbled data" % (ok.count(False), n)
    assert served == n, served
    # All at once: far less than n round trips one after the other.
    assert took < 20, took


def test_target_refused_closes_the_client_and_keeps_serving():
    with refusing_port() as dead, RttProxy(dead, 10) as px:
        for _ in range(3):
            # The client sees a reset (or an EOF), at its connect or read.
            try:
                s = socket.create_connection(("127.0.0.1", px.port), 5)
            except ConnectionError:
                continue
            s.settimeout(5)
            try:
                s.sendall(b"hello")
                got = s.recv(10)
            except ConnectionError:
                got = b""
            s.close()
            assert got == b"", got
        assert px.proc.poll() is None, "rttproxy exited after a refused connect"
    # The message says what went wrong.
    assert "cannot connect to the target" in px.stderr_text, px.stderr_text


def test_sigterm_with_open_connections_exits_0():
    async def run(port):
        px = RttProxy(port, 10)
        conns = [await asyncio.open_connection("127.0.0.1", px.port) for _ in range(10)]
        for r, w in conns:
            w.write(b"x")
        await asyncio.sleep(0.1)
        t0 = time.monotonic()
        served = px.stop()
        took = time.monotonic() - t0
        # Every client sees its connection end.
        for r, w in conns:
            data = await asyncio.wait_for(r.read(), 5)
            w.close()
        return served, took, px.proc.returncode
    served, took, rc = with_server(echo_handler, run)
    assert rc == 0, rc
    assert served == 10, served
    assert took < 2, took


def test_usage_errors():
    for args, msg in ((["--delay", "5"], "--target HOST:PORT is required"),
                      (["--target", "nowhere"], "--target wants HOST:PORT"),
                      (["--target", "127.0.0.1:1", "--delay", "-3"], "--delay wants"),
                      (["--target", "127.0.0.1:1", "--bogus"], "unknown or incomplete")):
        p = subprocess.run([RTTPROXY] + args, capture_output=True, text=True, timeout=10)
        assert p.returncode == 2, (args, p.returncode)
        assert msg in p.stderr, (args, p.stderr)


if __name__ == "__main__":
    run_tests(globals())
