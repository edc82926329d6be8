"""A CDN-like server for the tests and bench/: gfutil.Nginx with TLS (root
CA -> intermediate -> server certificate for localhost and 127.0.0.1,
made at test time), HTTP/2 and HTTP/1.1, and the behaviours a CDN shows a
client, each on a server of its own so a test picks one; plus rttproxy,
which adds a round trip in front of any of them.

Servers of Cdn (names in Cdn.ports):
  h2          TLS, ALPN h2 and http/1.1: the normal CDN edge
  h1          TLS, HTTP/1.1 only
  redirect    plain HTTP answering 301 to https://localhost:<h2>/...
  limit       TLS+h2, limit_req 10 r/s burst 20: 429 with Retry-After: 1
  limit_date  the same, Retry-After as an HTTP-date 2 s ahead
  goaway      TLS+h2, keepalive_requests 10 (GOAWAY after 10 streams)
  idle        TLS+h2, keepalive_timeout 1s
  streams     TLS+h2, http2_max_concurrent_streams 4
  h2c         plain HTTP/2 only (prior knowledge, as with --http2 over http)
Everywhere: gzip on JSON, ETag and Last-Modified (static files), and
/e503/ serving the flags but with 503 for br and cn.

Cdn.log(name) is gfutil.Nginx.log(): one dict per request."""

import email.utils
import http.server
import os
import re
import signal
import subprocess
import tempfile
import threading
import time

from gfutil import DATA, Nginx, redirect_to

RTTPROXY = os.environ.get("RTTPROXY", "")

FLAGS = """
    location /flags/ { }
    location ~ ^/e503/(br|cn)/ { return 503 "unavailable\\n"; }
    location /e503/ { alias %s/flags/; }"""
LIMITED = """
    location /flags/ {
      limit_req zone=%s burst=20 nodelay;
      limit_req_status 429;
      error_page 429 = @limited;
    }
    location @limited { %s }"""


class RetryAfterDate:
    """A small HTTP backend answering 429 with Retry-After as an HTTP-date
    `ahead` seconds from now (nginx cannot compute a future date)."""

    def __init__(self, ahead=2):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                when = email.utils.formatdate(time.time() + outer.ahead, usegmt=True)
                body = b"too many requests\n"
                self.send_response(429)
                self.send_header("Retry-After", when)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.ahead = ahead
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Cdn(Nginx):
    """nginx with every server listed above; root is a directory holding
    flags/ (flags_data by default). base(name) is the base URL of a server
    (https://localhost:PORT/flags); cacert is the root CA for --cacert."""

    def __init__(self, root=None, retry_after_ahead=2):
        self.backend = RetryAfterDate(retry_after_ahead)
        self.proxies = []
        flags = FLAGS % os.path.abspath(root or DATA)
        servers = {
            "h2": ("h2", flags),
            "h1": ("tls", flags),
            "redirect": redirect_to("h2", "localhost"),
            "limit": ("h2", LIMITED % (
                "cdn_limit", 'add_header Retry-After 1 always; return 429 "too many\\n";')),
            "limit_date": ("h2", LIMITED % (
                "cdn_limit_date", "proxy_pass http://127.0.0.1:%d;" % self.backend.port)),
            "goaway": ("h2", "keepalive_requests 10;" + flags),
            "idle": ("h2", "keepalive_timeout 1s;" + flags),
            "streams": ("h2", "http2_max_concurrent_streams 4;" + flags),
            "h2c": ("h2c", flags),
        }
        try:
            super().__init__(servers, root=root, gzip=True, host="localhost", http_extra="""
  keepalive_timeout 65s;
  etag on;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_cache shared:cdn:1m;
  limit_req_zone $server_port zone=cdn_limit:1m rate=10r/s;
  limit_req_zone $server_port zone=cdn_limit_date:1m rate=10r/s;""")
        except Exception:
            self.backend.stop()
            raise

    def via_proxy(self, name, delay_ms, *args):
        """Base URL of server `name` through a new rttproxy adding 2 x
        delay_ms of round trip; the proxy stops with the Cdn."""
        px = RttProxy(self.ports[name], delay_ms, *args)
        self.proxies.append(px)
        scheme = "http" if name in ("redirect", "h2c") else "https"
        return "%s://localhost:%d/flags" % (scheme, px.port)

    def stop(self):
        for px in self.proxies:
            px.stop()
        self.proxies = []
        super().stop()
        self.backend.stop()


def connections(entries):
    """The distinct connections of access-log entries."""
    return {e["connection"] for e in entries}


class RttProxy:
    """tests/tools/rttproxy on an ephemeral port in front of target_port,
    with a one-way delay of delay_ms (a round trip of twice that)."""

    def __init__(self, target_port, delay_ms, *args, binary=None):
        binary = binary or RTTPROXY
        if not binary:
            raise RuntimeError("RTTPROXY is not set (the path of the built rttproxy)")
        self.errfile = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [binary, "--target", "127.0.0.1:%d" % target_port, "--delay", str(delay_ms)]
            + list(args), stdout=subprocess.PIPE, stderr=self.errfile, text=True)
        line = self.proc.stdout.readline()
        m = re.match(r"listening on 127\.0\.0\.1:(\d+)$", line.strip())
        if not m:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("rttproxy did not start: %r %r" % (line, self.stderr_text))
        self.port = int(m.group(1))
        self.served = None

    @property
    def stderr_text(self):
        self.errfile.seek(0)
        return self.errfile.read()

    def stop(self):
        """SIGTERM, then the number of connections it says it served."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("rttproxy ignored SIGTERM for 10 s")
        self.proc.stdout.close()
        m = re.search(r"(\d+) connections served", self.stderr_text)
        self.served = int(m.group(1)) if m else None
        return self.served

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
