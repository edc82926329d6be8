"""A CDN-like server for the tests and bench/: Debian's nginx with TLS
(root CA -> intermediate -> server certificate for localhost and
127.0.0.1, made at test time), HTTP/2 and HTTP/1.1, and the behaviours a
CDN shows a client, each on a port of its own so a test picks one; plus
rttproxy, which adds a round trip in front of any of them.

Ports of Cdn (names in Cdn.ports):
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

The access log (Cdn.log()) has one dict per request: msec, connection,
connection_requests, port, protocol, ssl_reused, status, request_time,
method, uri, bytes, encoding."""

import email.utils
import http.server
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from gfutil import DATA, make_ca_chain, nginx_common, start_nginx, stop_nginx

RTTPROXY = os.environ.get("RTTPROXY", "")

PORT_NAMES = ("h2", "h1", "redirect", "limit", "limit_date", "goaway", "idle", "streams",
              "h2c")

LOG_FORMAT = ("$msec $connection $connection_requests $server_port $server_protocol "
              "$ssl_session_reused $status $request_time $request_method $request_uri "
              "$body_bytes_sent $sent_http_content_encoding")
LOG_FIELDS = ("msec", "connection", "connection_requests", "port", "protocol", "ssl_reused",
              "status", "request_time", "method", "uri", "bytes", "encoding")

_CERTS = {}


def distinct_free_ports(names):
    """One free loopback port per name, all different: the sockets stay
    bound until every port is chosen."""
    socks = []
    try:
        for _ in names:
            sk = socket.socket()
            sk.bind(("127.0.0.1", 0))
            socks.append(sk)
        return {n: sk.getsockname()[1] for n, sk in zip(names, socks)}
    finally:
        for sk in socks:
            sk.close()


def certificates():
    """The CA chain, made once per process (openssl takes a moment)."""
    if not _CERTS:
        d = tempfile.mkdtemp(prefix="gf-cdn-pki-")
        root, chain, key = make_ca_chain(d)
        _CERTS.update(dir=d, root=root, chain=chain, key=key)
        import atexit
        atexit.register(shutil.rmtree, d, True)
    return _CERTS


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


class Cdn:
    """nginx with every port of PORT_NAMES; root is a directory holding
    flags/ (flags_data by default). url(name) is the base URL of a port
    (https://localhost:PORT/flags); cacert is the root CA for --cacert."""

    def __init__(self, root=None, retry_after_ahead=2):
        certs = certificates()
        self.cacert = certs["root"]
        self.root = os.path.abspath(root or DATA)
        self.dir = tempfile.mkdtemp(prefix="gf-cdn-")
        self.backend = RetryAfterDate(retry_after_ahead)
        self.proxies = []
        # Another process may take a free port before nginx binds it: try
        # again with new ones.
        for attempt in range(5):
            self.ports = distinct_free_ports(PORT_NAMES)
            try:
                self.proc = start_nginx(self.dir, self._write_conf(certs), self.ports["h2"])
                return
            except RuntimeError as e:
                if attempt == 4 or not re.search(r"in use|duplicate listen", str(e)):
                    self.backend.stop()
                    shutil.rmtree(self.dir, ignore_errors=True)
                    raise

    def _write_conf(self, certs):
        head, temps = nginx_common(self.dir)
        p = self.ports
        tls = ("ssl_certificate %s; ssl_certificate_key %s;"
               % (certs["chain"], certs["key"]))
        flags = """
    location /flags/ { }
    location ~ ^/e503/(br|cn)/ { return 503 "unavailable\\n"; }
    location /e503/ { alias %s/flags/; }""" % self.root

        def server(port, http2=True, extra="", locations=flags):
            return """
  server {
    listen 127.0.0.1:%d ssl%s backlog=4096;
    server_name localhost;
    %s
    %s%s
  }""" % (port, " http2" if http2 else "", tls, extra, locations)

        limited = """
    location /flags/ {
      limit_req zone=%s burst=20 nodelay;
      limit_req_status 429;
      error_page 429 = @limited;
    }
    location @limited { %s }"""
        servers = "".join([
            server(p["h2"]),
            server(p["h1"], http2=False),
            """
  server {
    listen 127.0.0.1:%d backlog=4096;
    return 301 https://localhost:%d$request_uri;
  }""" % (p["redirect"], p["h2"]),
            server(p["limit"], locations=limited % (
                "cdn_limit", 'add_header Retry-After 1 always; return 429 "too many\\n";')),
            server(p["limit_date"], locations=limited % (
                "cdn_limit_date", "proxy_pass http://127.0.0.1:%d;" % self.backend.port)),
            server(p["goaway"], extra="keepalive_requests 10;"),
            server(p["idle"], extra="keepalive_timeout 1s;"),
            server(p["streams"], extra="http2_max_concurrent_streams 4;"),
            """
  server {
    listen 127.0.0.1:%d http2 backlog=4096;
    %s
  }""" % (p["h2c"], flags),
        ])
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""%s
events { worker_connections 8192; }
http {
  %s
  log_format cdn '%s';
  access_log %s/access.log cdn;
  root %s;
  types { image/gif gif; application/json json; text/plain txt; }
  default_type application/octet-stream;
  sendfile on;
  keepalive_requests 100000;
  keepalive_timeout 65s;
  gzip on;
  gzip_types application/json;
  gzip_min_length 0;
  etag on;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_cache shared:cdn:1m;
  limit_req_zone $server_port zone=cdn_limit:1m rate=10r/s;
  limit_req_zone $server_port zone=cdn_limit_date:1m rate=10r/s;
%s
}
""" % (head, temps, LOG_FORMAT, self.dir, self.root, servers))
        return conf

    def url(self, name="h2", host="localhost"):
        scheme = "http" if name in ("redirect", "h2c") else "https"
        return "%s://%s:%d/flags" % (scheme, host, self.ports[name])

    def via_proxy(self, name, delay_ms, *args):
        """Base URL of port `name` through a new rttproxy adding 2 x
        delay_ms of round trip; the proxy stops with the Cdn."""
        px = RttProxy(self.ports[name], delay_ms, *args)
        self.proxies.append(px)
        scheme = "http" if name in ("redirect", "h2c") else "https"
        return "%s://localhost:%d/flags" % (scheme, px.port)

    def log(self, port=None):
        """Requests so far (nginx writes each line when the request ends),
        only those to `port` (a name of PORT_NAMES) if given."""
        want = str(self.ports[port]) if port else None
        out = []
        with open(os.path.join(self.dir, "access.log"), encoding="utf-8") as f:
            for line in f:
                v = line.split()
                if len(v) != len(LOG_FIELDS):
                    continue
                e = dict(zip(LOG_FIELDS, v))
                if want and e["port"] != want:
                    continue
                for k in ("connection", "connection_requests", "status", "bytes"):
                    e[k] = int(e[k])
                e["msec"] = float(e["msec"])
                e["request_time"] = float(e["request_time"])
                out.append(e)
        return out

    def stop(self):
        for px in self.proxies:
            px.stop()
        self.proxies = []
        stop_nginx(self.proc)
        self.backend.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


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
