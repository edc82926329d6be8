#!/usr/bin/python3
"""An HTTP/2 server over TLS that breaks the protocol on purpose, for the
tests of what getflags says about it. Run by Debian's /usr/bin/python3,
which has python3-h2's frame and header-compression modules (hyperframe,
hpack); the tests start it as a process of its own.

    /usr/bin/python3 h2rogue.py MODE CHAIN KEY DATA_DIR

Prints "PORT n" once listening on 127.0.0.1, then serves
/flags/<cc>/metadata.json and /flags/<cc>/<cc>.gif from DATA_DIR/flags.
Every request is logged on stderr as "REQ <connection> <path>". MODE says
how each answer goes wrong:

  ok            answers normally
  informational N 103 Early Hints answers, then the answer (MODE "informational:N")
  no_status     a header block without :status
  refuse        RST_STREAM REFUSED_STREAM for every request
  reset_mid     the headers and half the body, then RST_STREAM INTERNAL_ERROR
  cancel_at_once the headers, half the body and RST_STREAM CANCEL in one
                write, so that the client reads all three at once
  refuse_mid    the headers and half the body, then RST_STREAM REFUSED_STREAM
  stall_mid     the headers and 10 bytes of the body, then nothing more
  continuations a header block that does not end: 10,000 CONTINUATION frames
  hang_up       closes the connection on the first request, without a word
  goaway        GOAWAY with last-stream-id 0 (no request taken) on the first
                request of each connection, then closes it
  refuse_held   on the first connection, RST_STREAM REFUSED_STREAM after 0.2 s
                for every second request, the others answered after 0.3 s; every
                later connection's TLS handshake waits 1 s, and its answers
                none. Logs "REQ <connection> <path> <t>" for a request
                taken, "END <connection> <path> <t>" when its answer is
                sent and "REFUSED <connection> <path> <t>" (t: seconds)
"""
import os
import socket
import ssl
import sys
import threading
import time

from hpack import Decoder, Encoder
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame,
                              RstStreamFrame, SettingsFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
REFUSED_STREAM, INTERNAL_ERROR, CANCEL = 7, 2, 8

mode, chain, key, data_dir = sys.argv[1:5]
mode, _, arg = mode.partition(":")
conns = [0]


def body_of(path):
    parts = path.split("/")
    if len(parts) != 4 or parts[1] != "flags" or not parts[2].isalpha():
        return None
    name = parts[3]
    if name not in ("metadata.json", parts[2] + ".gif"):
        return None
    try:
        with open(os.path.join(data_dir, "flags", parts[2], name), "rb") as f:
            return f.read()
    except OSError:
        return None


HOLD_S = 0.3


LOG_LOCK = threading.Lock()


def log(*words):
    with LOG_LOCK:
        sys.stderr.write(" ".join(str(w) for w in words) + " %.6f\n" % time.monotonic())
        sys.stderr.flush()


class Conn:
    def __init__(self, tls, n):
        self.tls, self.n, self.buf = tls, n, b""
        self.enc, self.dec = Encoder(), Decoder()
        self.lock = threading.Lock()  # answers held by timers send too
        self.taken = 0

    def send(self, *frames):
        with self.lock:
            self.tls.sendall(b"".join(f.serialize() for f in frames))

    def read(self, n):
        while len(self.buf) < n:
            d = self.tls.recv(65536)
            if not d:
                raise EOFError
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def headers(self, sid, pairs, end_stream=False):
        f = HeadersFrame(sid, data=self.enc.encode(pairs))
        f.flags.add("END_HEADERS")
        if end_stream:
            f.flags.add("END_STREAM")
        self.send(f)

    def data(self, sid, payload, end_stream=True):
        f = DataFrame(sid, data=payload)
        if end_stream:
            f.flags.add("END_STREAM")
        self.send(f)

    def hang_up(self):
        # Whatever the client sent is read first, or the kernel would
        # answer the close with a reset.
        self.tls.settimeout(0.1)
        try:
            while self.tls.recv(65536):
                pass
        except (OSError, ssl.SSLError):
            pass
        raise EOFError

    def answer(self, sid, path):
        body = body_of(path)
        status = "200" if body is not None else "404"
        body = body if body is not None else b"not found\n"
        kind = "application/json" if path.endswith(".json") else "image/gif"
        pairs = [(":status", status), ("content-type", kind), ("content-length", str(len(body)))]
        if mode == "refuse":
            self.send(RstStreamFrame(sid, error_code=REFUSED_STREAM))
        elif mode == "refuse_held":
            self.taken += 1
            if self.n == 1 and self.taken % 2 == 0:
                # Later, so that every request of the burst is out first.
                threading.Timer(0.2, self.refuse_later, (sid, path)).start()
                return
            log("REQ", self.n, path)
            if self.n == 1:
                threading.Timer(HOLD_S, self.answer_held, (sid, path, pairs, body)).start()
            else:
                self.answer_held(sid, path, pairs, body)
        elif mode == "no_status":
            self.headers(sid, pairs[1:])
            self.data(sid, body)
        elif mode == "informational":
            for _ in range(int(arg)):
                self.headers(sid, [(":status", "103"), ("link", "</s.css>; rel=preload")])
            self.headers(sid, pairs)
            self.data(sid, body)
        elif mode in ("reset_mid", "refuse_mid"):
            self.headers(sid, pairs)
            self.data(sid, body[: len(body) // 2], end_stream=False)
            code = INTERNAL_ERROR if mode == "reset_mid" else REFUSED_STREAM
            self.send(RstStreamFrame(sid, error_code=code))
        elif mode == "stall_mid":
            self.headers(sid, pairs)
            self.data(sid, body[:10], end_stream=False)
        elif mode == "cancel_at_once":
            # One sendall of a few hundred bytes: one TLS record, which
            # the client reads in one go.
            h = HeadersFrame(sid, data=self.enc.encode(pairs))
            h.flags.add("END_HEADERS")
            self.send(h, DataFrame(sid, data=body[: len(body) // 2]),
                      RstStreamFrame(sid, error_code=CANCEL))
        elif mode in ("hang_up", "goaway"):
            if mode == "goaway":
                self.send(GoAwayFrame(0, last_stream_id=0))
            self.hang_up()
        elif mode == "one_per_connection":
            # One answer, then the connection closes without a GOAWAY,
            # under the streams the client opened after it.
            self.headers(sid, pairs)
            self.data(sid, body)
            time.sleep(0.05)
            self.hang_up()
        elif mode == "continuations":
            self.send(HeadersFrame(sid, data=self.enc.encode([(":status", "200")])))
            for _ in range(10000):
                self.send(ContinuationFrame(sid, data=self.enc.encode([("x-more", "y")])))
        else:
            self.headers(sid, pairs)
            self.data(sid, body)

    def refuse_later(self, sid, path):
        try:
            self.send(RstStreamFrame(sid, error_code=REFUSED_STREAM))
            log("REFUSED", self.n, path)
        except (OSError, ssl.SSLError):
            pass

    def answer_held(self, sid, path, pairs, body):
        try:
            with self.lock:
                h = HeadersFrame(sid, data=self.enc.encode(pairs))
                h.flags.add("END_HEADERS")
                d = DataFrame(sid, data=body)
                d.flags.add("END_STREAM")
                self.tls.sendall(h.serialize() + d.serialize())
            log("END", self.n, path)
        except (OSError, ssl.SSLError):
            pass

    def run(self):
        if self.read(len(PREFACE)) != PREFACE:
            return
        self.send(SettingsFrame(0, settings={SettingsFrame.MAX_CONCURRENT_STREAMS: 100}))
        while True:
            f, length = Frame.parse_frame_header(memoryview(self.read(9)))
            f.parse_body(memoryview(self.read(length)))
            if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
                ack = SettingsFrame(0)
                ack.flags.add("ACK")
                self.send(ack)
            elif isinstance(f, HeadersFrame):
                # A request's header block fits one frame here.
                path = dict(self.dec.decode(f.data)).get(":path", "")
                if mode != "refuse_held":
                    print("REQ %d %s" % (self.n, path), file=sys.stderr, flush=True)
                self.answer(f.stream_id, path)


def serve(sock, n, ctx):
    if mode == "refuse_held" and n > 1:
        time.sleep(1.0)
    try:
        with ctx.wrap_socket(sock, server_side=True) as tls:
            Conn(tls, n).run()
    except (EOFError, OSError, ssl.SSLError):
        pass


def main():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(chain, key)
    ctx.set_alpn_protocols(["h2"])
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    print("PORT %d" % lsock.getsockname()[1], flush=True)
    while True:
        sock, _ = lsock.accept()
        conns[0] += 1
        threading.Thread(target=serve, args=(sock, conns[0], ctx), daemon=True).start()


if __name__ == "__main__":
    main()
