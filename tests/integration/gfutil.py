"""Helpers for getflags's integration tests: servers on ephemeral loopback
ports, getflags runs, and checks of the output directory.

Every test is a plain function named test_*; run_tests() runs them in
order and prints 'N passed, N failed'."""

import atexit
import contextlib
import filecmp
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

GETFLAGS = os.environ.get("GETFLAGS", "")
FLAGSERVER = os.environ.get("FLAGSERVER", "")
SRCDIR = os.environ.get("GF_SRCDIR", "")
DATA = os.path.join(SRCDIR, "flags_data")

LOG_RE = re.compile(r"^(\S+) (\S+) (\S+) (\d{3}) delay=(\d+) bytes=(\d+) inflight=(\d+)")


def codes_194():
    with open(os.path.join(DATA, "country_codes.txt"), encoding="ascii") as f:
        return f.read().split()


def country_of(cc, data=None):
    with open(os.path.join(data or DATA, "flags", cc.lower(), "metadata.json"), "rb") as f:
        return json.loads(f.read().decode("utf-8"))["country"]


def expected_name(country):
    return country.replace(" ", "_") + ".gif"


def assert_all_identical(outdir, codes, data=None):
    """Each code's flag is in outdir under its country's name, byte for
    byte the image in data (flags_data by default)."""
    data = data or DATA
    for cc in codes:
        name = expected_name(country_of(cc, data))
        got = os.path.join(outdir, name)
        want = os.path.join(data, "flags", cc.lower(), cc.lower() + ".gif")
        assert os.path.isfile(got), "missing %s for %s" % (name, cc)
        assert filecmp.cmp(got, want, shallow=False), "%s differs from %s" % (got, want)


class FlagServer:
    """flagserver on 127.0.0.1 and an ephemeral port; .log() parses its
    access log (one dict per request)."""

    def __init__(self, *args, directory=None):
        self.logfile = tempfile.NamedTemporaryFile(prefix="gf-fs-", suffix=".log", delete=False)
        cmd = [FLAGSERVER, "--bind", "127.0.0.1", "--port", "0"]
        if directory:
            cmd += ["--directory", directory]
        cmd += list(args)
        self.proc = subprocess.Popen(cmd, stdout=self.logfile, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        self.base = None
        while time.time() < deadline:
            with open(self.logfile.name, encoding="utf-8", errors="replace") as f:
                first = f.readline()
            m = re.match(r"listening on (http://\S+)", first)
            if m:
                self.base = m.group(1)
                break
            if self.proc.poll() is not None:
                raise RuntimeError("flagserver exited: %r" % self.proc.stderr.read())
            time.sleep(0.02)
        if not self.base:
            raise RuntimeError("flagserver did not start")
        self.url = self.base + "/flags"

    def log(self):
        out = []
        with open(self.logfile.name, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = LOG_RE.match(line)
                if m:
                    out.append({"method": m.group(2), "path": m.group(3),
                                "status": int(m.group(4)), "delay": int(m.group(5)),
                                "bytes": int(m.group(6)), "inflight": int(m.group(7))})
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        os.unlink(self.logfile.name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@contextlib.contextmanager
def refusing_port():
    """A loopback port that refuses connections for as long as the block
    runs: bound, so no other test can take it, and not listening."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]
    finally:
        s.close()


def make_ca_chain(workdir, names=("localhost",), ips=("127.0.0.1",)):
    """A root CA, an intermediate CA signed by it, and a server certificate
    for names and ips signed by the intermediate (EC keys: fast to make).
    Returns (root certificate, server chain file: leaf then intermediate,
    server key). Clients trust the root only, so a server that forgot to
    send the intermediate fails verification."""
    def path(n):
        return os.path.join(workdir, n)
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)
    def key(name):
        run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", path(name + ".key"))
    def ext(name, text):
        with open(path(name + ".ext"), "w") as f:
            f.write(text)
        return path(name + ".ext")
    ca_ext = "basicConstraints=critical,CA:TRUE%s\nkeyUsage=critical,keyCertSign,cRLSign\n" \
             "subjectKeyIdentifier=hash\n"
    key("root")
    run("openssl", "req", "-x509", "-new", "-key", path("root.key"), "-out", path("root.crt"),
        "-days", "2", "-subj", "/CN=getflags test root CA", "-addext",
        "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, subj, signer, text in (
            ("inter", "/CN=getflags test intermediate CA", "root",
             ca_ext % ",pathlen:0" + "authorityKeyIdentifier=keyid\n"),
            ("leaf", "/CN=%s" % names[0], "inter",
             "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
             "extendedKeyUsage=serverAuth\nauthorityKeyIdentifier=keyid\n"
             "subjectAltName=" + ",".join(["DNS:" + n for n in names] +
                                          ["IP:" + i for i in ips]) + "\n")):
        key(name)
        run("openssl", "req", "-new", "-key", path(name + ".key"), "-out", path(name + ".csr"),
            "-subj", subj)
        run("openssl", "x509", "-req", "-in", path(name + ".csr"), "-CA", path(signer + ".crt"),
            "-CAkey", path(signer + ".key"), "-CAcreateserial", "-out", path(name + ".crt"),
            "-days", "2", "-extfile", ext(name, text))
    with open(path("chain.crt"), "wb") as out:
        for name in ("leaf", "inter"):
            with open(path(name + ".crt"), "rb") as f:
                out.write(f.read())
    return path("root.crt"), path("chain.crt"), path("leaf.key")


_CERTS = {}


def certificates():
    """The CA chain of make_ca_chain() for localhost and 127.0.0.1, made
    once per process (openssl takes a moment) and removed at exit: a dict
    with root (for --cacert), chain and key (for the server)."""
    if not _CERTS:
        d = tempfile.mkdtemp(prefix="gf-pki-")
        atexit.register(shutil.rmtree, d, True)
        root, chain, key = make_ca_chain(d)
        _CERTS.update(root=root, chain=chain, key=key)
    return _CERTS


def distinct_free_ports(n):
    """n free loopback ports, all different: the sockets stay bound until
    every port is chosen."""
    socks = []
    try:
        for _ in range(n):
            sk = socket.socket()
            sk.bind(("127.0.0.1", 0))
            socks.append(sk)
        return [sk.getsockname()[1] for sk in socks]
    finally:
        for sk in socks:
            sk.close()


NGINX_KINDS = {
    "plain": "",              # HTTP/1.1
    "tls": " ssl",            # TLS, HTTP/1.1 only
    "h2": " ssl http2",       # TLS, ALPN h2 and http/1.1
    "h2c": " http2",          # plain HTTP/2 only (prior knowledge)
}
NGINX_LOG_FORMAT = ("$msec $connection $connection_requests $server_port $server_protocol "
                    "$ssl_session_reused $status $request_time $request_method $body_bytes_sent "
                    "$sent_http_content_encoding \"$request_uri\" \"$http_accept_encoding\"")
NGINX_LOG_FIELDS = ("msec", "connection", "connection_requests", "port", "protocol", "ssl_reused",
                    "status", "request_time", "method", "bytes", "encoding")


def redirect_to(target, host="127.0.0.1"):
    """A server spec for Nginx: plain HTTP answering every request with a
    301 to the same path on server `target` over https://host."""
    return ("plain", lambda ports: "return 301 https://%s:%d$request_uri;"
            % (host, ports[target]))


class Nginx:
    """Debian's nginx on ephemeral ports of 127.0.0.1, serving root
    (flags_data by default), for every suite that needs a real web server.

    servers maps a name to a kind of NGINX_KINDS, or to (kind, extra) with
    extra the text of that server block (locations, keepalive_timeout 1s,
    return 301 ...) or a function of the ports (a dict name -> port) giving
    it. Without servers there is one, "main": plain, or tls with tls=True.
    extra goes into every server block, http_extra into the http block.
    Each TLS server has the certificate chain of certificates(); cacert is
    its root. gzip compresses JSON; ETag and Last-Modified are nginx's own.

    ports maps names to ports; base(name, host) is a base URL
    (scheme://host:port/flags); url and urls are those of the servers in
    order. log(name) parses the access log (see log()). stop(), or the
    with block, ends nginx with SIGQUIT and removes its directory."""

    def __init__(self, servers=None, root=None, tls=False, extra="", http_extra="",
                 keepalive_requests=100000, gzip=False, host="127.0.0.1"):
        if servers is None:
            servers = {"main": "tls" if tls else "plain"}
        self.kinds = {}
        self.extras = {}
        for name, spec in servers.items():
            kind, text = (spec, "") if isinstance(spec, str) else spec
            if kind not in NGINX_KINDS:
                raise ValueError("unknown nginx server kind %r" % kind)
            self.kinds[name], self.extras[name] = kind, text
        self.host = host
        self.root = os.path.abspath(root or DATA)
        tls_used = any(NGINX_KINDS[k].startswith(" ssl") for k in self.kinds.values())
        self.cacert = certificates()["root"] if tls_used else None
        self.dir = tempfile.mkdtemp(prefix="gf-nginx-")
        # Another process may take a free port before nginx binds it: try
        # again with new ones.
        for attempt in range(5):
            self.ports = dict(zip(self.kinds, distinct_free_ports(len(self.kinds))))
            conf = self._write_conf(extra, http_extra, keepalive_requests, gzip)
            try:
                self.proc = self._start(conf)
                break
            except RuntimeError as e:
                if attempt == 4 or not re.search(r"in use|duplicate listen", str(e)):
                    shutil.rmtree(self.dir, ignore_errors=True)
                    raise
        self.urls = [self.base(n) for n in self.kinds]
        self.url = self.urls[0]
        self.port = self.ports[next(iter(self.kinds))]
        self._by_port = {p: n for n, p in self.ports.items()}

    def _write_conf(self, extra, http_extra, keepalive_requests, gzip):
        d = self.dir
        blocks = []
        for name, kind in self.kinds.items():
            text = self.extras[name]
            if callable(text):
                text = text(self.ports)
            blocks.append("  server {\n    listen 127.0.0.1:%d%s backlog=4096;\n"
                          "    server_name %s;\n    %s\n    %s\n  }"
                          % (self.ports[name], NGINX_KINDS[kind], name, extra, text))
        tls = ""
        if self.cacert:
            c = certificates()
            tls = "ssl_certificate %s; ssl_certificate_key %s;" % (c["chain"], c["key"])
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""%s
worker_processes 1;
daemon off;
pid %s/nginx.pid;
error_log %s/error.log;
events { worker_connections 8192; }
http {
  log_format t '%s';
  access_log %s/access.log t;
  client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s;
  uwsgi_temp_path %s; scgi_temp_path %s;
  root %s;
  types { image/gif gif; application/json json; text/plain txt; }
  default_type application/octet-stream;
  sendfile on;
  keepalive_requests %d;
  %s
  %s
  %s
%s
}
""" % ("user root;" if os.geteuid() == 0 else "", d, d, NGINX_LOG_FORMAT, d, d, d, d, d, d,
       self.root, keepalive_requests,
       "gzip on; gzip_types application/json; gzip_min_length 0;" if gzip else "",
       tls, http_extra, "\n".join(blocks)))
        return conf

    def _start(self, conf):
        """Starts nginx and waits until every port accepts connections."""
        proc = subprocess.Popen(["nginx", "-c", conf, "-p", self.dir],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        for port in self.ports.values():
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    if proc.poll() is not None:
                        raise RuntimeError("nginx exited: %r" % proc.stderr.read())
                    if time.time() > deadline:
                        stop_nginx(proc)
                        raise RuntimeError("nginx did not listen on port %d within 10 s"
                                           % port)
                    time.sleep(0.05)
        return proc

    def base(self, name=None, host=None):
        name = name or next(iter(self.kinds))
        scheme = "https" if NGINX_KINDS[self.kinds[name]].startswith(" ssl") else "http"
        return "%s://%s:%d/flags" % (scheme, host or self.host, self.ports[name])

    def log(self, name=None):
        """The requests so far, in the order they ended (nginx writes a line
        when a request ends), only those to server `name` if given: one dict
        each with server (its name), msec (end, s since the epoch), start
        (msec less request_time), connection (nginx's serial number),
        connection_requests, port, protocol, ssl_reused ("r" for a resumed
        TLS session, "." otherwise), status, request_time, method, bytes, encoding (of
        the answer, "-" for none), uri and accept_encoding (the request's
        Accept-Encoding, "-" for none)."""
        out = []
        path = os.path.join(self.dir, "access.log")
        if not os.path.exists(path):
            return out
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                head, quote, rest = line.partition('"')
                v = head.split()
                if not quote or len(v) != len(NGINX_LOG_FIELDS):
                    continue
                e = dict(zip(NGINX_LOG_FIELDS, v))
                uri, sep, accept = rest.rstrip().rpartition('" "')
                e["uri"] = uri if sep else rest.rsplit('"', 1)[0]
                e["accept_encoding"] = accept[:-1] if sep else ""
                for k in ("connection", "connection_requests", "port", "status", "bytes"):
                    e[k] = int(e[k])
                e["msec"] = float(e["msec"])
                e["request_time"] = float(e["request_time"])
                e["start"] = e["msec"] - e["request_time"]
                e["server"] = self._by_port.get(e["port"])
                if name is None or e["server"] == name:
                    out.append(e)
        return out

    def clear_log(self):
        """Forgets the requests so far (nginx appends to the same file)."""
        path = os.path.join(self.dir, "access.log")
        if os.path.exists(path):
            os.truncate(path, 0)

    def stop(self):
        stop_nginx(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def stop_nginx(proc):
    """SIGQUIT (finish the requests in hand, then exit), SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stderr:
        proc.stderr.close()


class Result:
    def __init__(self, proc, outdir):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr
        self.outdir = outdir

    def json(self):
        return json.loads(self.out)


VALGRIND = os.environ.get("GF_VALGRIND") == "1"


def check_valgrind_log(path, cmd):
    """Fails unless valgrind saw no error, no definite or indirect leak,
    and only stdin, stdout and stderr open at exit."""
    with open(path, encoding="utf-8", errors="replace") as f:
        log = f.read()
    os.unlink(path)
    assert "ERROR SUMMARY: 0 errors" in log, "valgrind errors in %r:\n%s" % (cmd, log[-4000:])
    assert "FILE DESCRIPTORS:" in log, log[-2000:]
    # valgrind lists its own --log-file as inherited; nothing else may be open.
    leaked = [(fd, what) for fd, what in re.findall(r"Open file descriptor (\d+): (.*)", log)
              if int(fd) > 2 and what.strip() != path]
    assert not leaked, "descriptors left open by %r: %r" % (cmd, leaked)


def getflags(*args, outdir=None, timeout=60, env=None):
    """Runs getflags with args; -o outdir is added unless args has one.
    With GF_VALGRIND=1 every run goes through valgrind's memcheck."""
    cmd = [GETFLAGS] + list(args)
    if outdir is not None:
        cmd += ["-o", outdir]
    vlog = None
    if VALGRIND:
        fd, vlog = tempfile.mkstemp(prefix="gf-vg-", suffix=".log")
        os.close(fd)
        cmd = ["valgrind", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
               "--show-leak-kinds=definite,indirect", "--track-fds=yes",
               "--log-file=" + vlog] + cmd
        timeout *= 10
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          errors="replace")
    if vlog:
        check_valgrind_log(vlog, cmd)
    return Result(proc, outdir)


def listing(d):
    """Every entry below d, relative, sorted (hidden ones included), but
    for getflags's own state directory DIR/.getflags, which must hold
    nothing but the manifest and the lock."""
    out = []
    for root, dirs, files in os.walk(d):
        if ".getflags" in dirs:
            state = os.path.join(root, ".getflags")
            extra = set(os.listdir(state)) - {"manifest.json", "lock"}
            assert not extra, "unexpected entries in %s: %r" % (state, sorted(extra))
            dirs.remove(".getflags")
        for n in dirs + files:
            out.append(os.path.relpath(os.path.join(root, n), d))
    return sorted(out)


_SCRATCH = []


def _remove_scratch():
    for d in _SCRATCH:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_remove_scratch)


def scratch():
    """A new empty directory, removed when the test script exits."""
    d = tempfile.mkdtemp(prefix="gf-test-")
    _SCRATCH.append(d)
    return d


def run_tests(namespace):
    tests = [(n, f) for n, f in namespace.items() if n.startswith("test_") and callable(f)]
    only = sys.argv[1:]
    passed = failed = 0
    for name, fn in tests:
        if only and name not in only:
            continue
        t0 = time.time()
        try:
            fn()
        except Exception:
            failed += 1
            print("FAIL %s (%.2fs)" % (name, time.time() - t0))
            traceback.print_exc()
        else:
            passed += 1
            print("ok   %s (%.2fs)" % (name, time.time() - t0))
        sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed or not passed else 0)
