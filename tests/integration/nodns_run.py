"""Runs a command in a network namespace whose DNS server never answers.

Meant to be started as `unshare -m -n python3 nodns_run.py [--sigint-after S] -- CMD...`
(as root): it brings loopback up with one non-loopback address (so that
getaddrinfo asks DNS at all), bind-mounts a resolv.conf naming 127.0.0.1,
drops every DNS query on a UDP socket there, runs CMD, optionally sends it
SIGINT after S seconds, and prints a JSON line: rc, seconds from the
start (and from the SIGINT), stdout, stderr."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time


def main():
    args = sys.argv[1:]
    sigint_after = None
    if args[0] == "--sigint-after":
        sigint_after = float(args[1])
        args = args[2:]
    assert args[0] == "--"
    cmd = args[1:]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", "192.0.2.1/32", "dev", "lo"], check=True)
    conf = tempfile.NamedTemporaryFile("w", prefix="gf-resolv-", delete=False)
    conf.write("nameserver 127.0.0.1\noptions timeout:5 attempts:2\n")
    conf.close()
    subprocess.run(["mount", "--bind", conf.name, "/etc/resolv.conf"], check=True)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 53))

    def drop():
        while True:
            sink.recv(4096)

    threading.Thread(target=drop, daemon=True).start()
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace")
    after = None
    if sigint_after is not None:
        try:
            proc.wait(sigint_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            after = time.time()
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    t1 = time.time()
    os.unlink(conf.name)
    print(json.dumps({"rc": proc.returncode, "took": t1 - t0,
                      "after_sigint": (t1 - after) if after is not None else None,
                      "stdout": out, "stderr": err}))


main()
