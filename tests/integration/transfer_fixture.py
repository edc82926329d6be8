"""An nginx with TLS and HTTP/2 on ephemeral loopback ports, for the tests
of getflags's transfer layer: its access log records, per request, the
connection serial number, whether the TLS session was resumed, the
protocol and how many requests that connection had served."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from gfutil import DATA, free_port, make_ca_and_cert

LOG_FORMAT = '$connection $connection_requests $ssl_session_reused $server_protocol $status "$request_uri"'


class H2Nginx:
    """listen: 'h2' (TLS, HTTP/2 and HTTP/1.1 by ALPN), 'h1tls' (TLS,
    HTTP/1.1 only) or 'plain'. server_extra goes into the server block,
    http_extra into the http block. Several listeners may share one
    server: listeners is a list of those words, urls the matching bases."""

    def __init__(self, listeners=("h2",), server_extra="", http_extra="", root=None,
                 keepalive_requests=100000, redirect_plain=False):
        self.dir = tempfile.mkdtemp(prefix="gf-h2nginx-")
        self.cacert, crt, key = make_ca_and_cert(self.dir)
        self.ports = [free_port() for _ in listeners]
        listen = ""
        for kind, port in zip(listeners, self.ports):
            if kind == "h2":
                listen += "listen 127.0.0.1:%d ssl http2;\n" % port
            elif kind == "h1tls":
                listen += "listen 127.0.0.1:%d ssl;\n" % port
            elif kind == "h2c":
                listen += "listen 127.0.0.1:%d http2;\n" % port
            else:
                listen += "listen 127.0.0.1:%d;\n" % port
        if redirect_plain:
            # Plain http answers 301 to the first TLS listener, as a
            # site that moved to https does.
            tls_port = [p for k, p in zip(listeners, self.ports) if k in ("h2", "h1tls")][0]
            server_extra += (" if ($scheme = http) { return 301 https://127.0.0.1:%d$request_uri; }"
                             % tls_port)
        user = "user root;" if os.geteuid() == 0 else ""
        d = self.dir
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""%s
worker_processes 1;
daemon off;
pid %s/nginx.pid;
error_log %s/error.log;
events { worker_connections 4096; }
http {
  log_format t '%s';
  access_log %s/access.log t;
  client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s;
  uwsgi_temp_path %s; scgi_temp_path %s;
  keepalive_requests %d;
  types { image/gif gif; application/json json; text/plain txt; }
  ssl_certificate %s; ssl_certificate_key %s;
  %s
  server { %s root %s; %s }
}
""" % (user, d, d, LOG_FORMAT, d, d, d, d, d, d, keepalive_requests, crt, key, http_extra,
       listen, root or DATA, server_extra))
        self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", d],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        for port in self.ports:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    if self.proc.poll() is not None or time.time() > deadline:
                        raise RuntimeError("nginx did not start: %r" % self.proc.stderr.read())
                    time.sleep(0.05)
        self.urls = ["%s://127.0.0.1:%d/flags" % ("http" if k in ("plain", "h2c") else "https", p)
                     for k, p in zip(listeners, self.ports)]
        self.url = self.urls[0]

    def log(self):
        """One dict per request: conn, nreq, reused, proto, status, uri."""
        out = []
        path = os.path.join(self.dir, "access.log")
        if not os.path.exists(path):
            return out
        with open(path, encoding="utf-8") as f:
            for line in f:
                head, uri = line.split('"')[0].split(), line.split('"')[1]
                out.append({"conn": int(head[0]), "nreq": int(head[1]),
                            "reused": head[2] == "r", "proto": head[3],
                            "status": int(head[4]), "uri": uri})
        return out

    def clear_log(self):
        path = os.path.join(self.dir, "access.log")
        if os.path.exists(path):
            os.truncate(path, 0)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
