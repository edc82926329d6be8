"""Helpers for getflags's integration tests: servers on ephemeral loopback
ports, getflags runs, and checks of the output directory.

Every test is a plain function named test_*; run_tests() runs them in
order and prints 'N passed, N failed'."""

import atexit
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


def make_ca_and_cert(workdir):
    """A CA and a certificate for 127.0.0.1/localhost signed by it."""
    ca_key, ca_crt = os.path.join(workdir, "ca.key"), os.path.join(workdir, "ca.crt")
    key, csr, crt = (os.path.join(workdir, n) for n in ("srv.key", "srv.csr", "srv.crt"))
    ext = os.path.join(workdir, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key,
        "-out", ca_crt, "-days", "2", "-subj", "/CN=getflags test CA")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
        "-subj", "/CN=127.0.0.1")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
        "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext)
    return ca_crt, crt, key


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


def nginx_common(workdir):
    """The top of an nginx.conf that keeps everything in workdir."""
    user = "user root;" if os.geteuid() == 0 else ""
    d = workdir
    return """%s
worker_processes 1;
daemon off;
pid %s/nginx.pid;
error_log %s/error.log;
""" % (user, d, d), """client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s;
  uwsgi_temp_path %s; scgi_temp_path %s;""" % (d, d, d, d, d)


def start_nginx(workdir, conf, port):
    """Starts nginx on conf and waits until port accepts connections."""
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", workdir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("nginx exited: %r" % proc.stderr.read())
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError("nginx did not listen on port %d within 10 s" % port)


def stop_nginx(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Nginx:
    """Debian's nginx serving a directory (flags_data by default) on an
    ephemeral port, plain or with TLS. .log() returns request paths."""

    def __init__(self, root=None, tls=False, extra=""):
        self.dir = tempfile.mkdtemp(prefix="gf-nginx-")
        self.port = free_port()
        root = root or DATA
        listen = "127.0.0.1:%d" % self.port
        tls_conf = ""
        self.cacert = None
        if tls:
            self.cacert, crt, key = make_ca_and_cert(self.dir)
            listen += " ssl"
            tls_conf = "ssl_certificate %s; ssl_certificate_key %s;" % (crt, key)
        user = "user root;" if os.geteuid() == 0 else ""
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""%s
worker_processes 1;
daemon off;
pid %s/nginx.pid;
error_log %s/error.log;
events { worker_connections 4096; }
http {
  access_log %s/access.log;
  client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s;
  uwsgi_temp_path %s; scgi_temp_path %s;
  keepalive_requests 100000;
  types { image/gif gif; application/json json; text/plain txt; }
  server { listen %s; %s root %s; %s }
}
""" % (user, self.dir, self.dir, self.dir, self.dir, self.dir, self.dir, self.dir, self.dir,
                   listen, tls_conf, root, extra))
        self.proc = start_nginx(self.dir, conf, self.port)
        scheme = "https" if tls else "http"
        self.url = "%s://127.0.0.1:%d/flags" % (scheme, self.port)

    def log(self):
        with open(os.path.join(self.dir, "access.log"), encoding="utf-8") as f:
            return [line.split('"')[1].split()[1] for line in f if '"' in line]

    def stop(self):
        stop_nginx(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


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
