#!/usr/bin/env python3
"""Revocation freshness as a new user would see it: two tokend replicas (the
release binary) on one Redis (its own redis-server, AOF, appendfsync always),
a steady stream of revocations posted to replica A, and replica B's
`tokend_revocation_propagation_seconds` histogram read from its /metrics.
Then Redis is killed (SIGKILL) and restarted on the same data, and the time
from Redis answering again to B being back in sync is measured twice: by B's
/readyz, and by a revocation posted to A arriving at B.

    cargo build --release && loadtest/freshness.py [--rate 25] [--seconds 20]

Prints the steady-state p50/p99 bounds (histogram buckets) and the restart
figures. Needs redis-server and redis-cli on PATH.
"""
import argparse
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "tokend")
SECRET = "freshness-admin-secret"
ISS = "https://idp.freshness.test"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http(method, url, body=None, auth=True):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    if auth:
        token = base64.b64encode(f"ops:{SECRET}".encode()).decode()
        request.add_header("authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Redis:
    def __init__(self, workdir):
        self.port = free_port()
        self.dir = workdir
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def answers(self):
        return subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True,
                              text=True).stdout.strip() == "PONG"

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


def start_replica(workdir, name, redis_port):
    http_port, grpc_port = free_port(), free_port()
    jwks = os.path.join(ROOT, "deploy", "compose", "jwks.json")
    config = os.path.join(workdir, f"{name}.toml")
    with open(config, "w") as f:
        f.write(f"""
[server]
http_addr = "127.0.0.1:{http_port}"
grpc_addr = "127.0.0.1:{grpc_port}"

[[issuers]]
name = "main"
issuer = "{ISS}"
jwks_file = "{jwks}"
max_lifetime_seconds = 3600

[[clients]]
id = "ops"
secret = "{SECRET}"
permissions = ["introspect", "revoke", "admin"]

[revocation]
backend = "redis"
redis_url = "redis://127.0.0.1:{redis_port}"
key_prefix = "freshness:"
""")
    log = open(os.path.join(workdir, f"{name}.log"), "w")
    process = subprocess.Popen([BIN, "serve", "--config", config], stdout=log, stderr=log)
    base = f"http://127.0.0.1:{http_port}"
    for _ in range(200):
        try:
            if http("GET", f"{base}/readyz", auth=False)[0] == 200:
                return process, base
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"replica {name} did not become ready (see {log.name})")


def histogram(base):
    """Cumulative buckets of tokend_revocation_propagation_seconds on one replica."""
    _, body = http("GET", f"{base}/metrics", auth=False)
    buckets = {}
    for line in body.decode().splitlines():
        if line.startswith("tokend_revocation_propagation_seconds_bucket"):
            le = line.split('le="')[1].split('"')[0]
            buckets[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return dict(sorted(buckets.items()))


def bound(buckets, base, q):
    """The bucket bound the q-quantile lies under, over the samples since `base`."""
    total = buckets.get(float("inf"), 0) - base.get(float("inf"), 0)
    for le, count in buckets.items():
        if total and count - base.get(le, 0) >= q * total:
            return le, total
    return None, total


def in_sync(base):
    _, body = http("GET", f"{base}/readyz", auth=False)
    revocation = json.loads(body)["revocation"]
    return revocation["up"] and revocation["stale_seconds"] == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=25.0, help="revocations per second posted to A")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} missing: cargo build --release first")
    workdir = tempfile.mkdtemp(prefix="tokend-freshness-")
    redis = Redis(workdir)
    redis.start()
    while not redis.answers():
        time.sleep(0.05)
    replicas = [start_replica(workdir, n, redis.port) for n in ("a", "b")]
    (_, a), (_, b) = replicas
    try:
        # Steady state.
        start_hist = histogram(b)
        period = 1.0 / args.rate
        sent = 0
        began = time.monotonic()
        while time.monotonic() - began < args.seconds:
            status, body = http("POST", f"{a}/admin/revocations", {"sub": f"user-{sent}", "iss": ISS})
            if status != 201:
                sys.exit(f"revocation refused: {status} {body!r}")
            sent += 1
            next_at = began + sent * period
            time.sleep(max(0.0, next_at - time.monotonic()))
        time.sleep(0.5)
        end_hist = histogram(b)
        p50, n = bound(end_hist, start_hist, 0.5)
        p99, _ = bound(end_hist, start_hist, 0.99)
        print(f"steady state: {sent} revocations at {args.rate:g}/s posted to A; B applied {n:.0f}; "
              f"propagation p50 <= {p50 * 1000:g} ms, p99 <= {p99 * 1000:g} ms (histogram bucket bounds)")

        # Redis killed and restarted on the same data.
        redis.kill()
        time.sleep(2.0)
        redis.start()
        while not redis.answers():
            time.sleep(0.005)
        answered = time.monotonic()
        while not in_sync(b):
            time.sleep(0.005)
        readyz = time.monotonic() - answered
        # A revocation after the restart, timed to its arrival at B.
        before = histogram(b)
        posted = time.monotonic()
        while True:
            status, _ = http("POST", f"{a}/admin/revocations", {"sub": "after-restart", "iss": ISS})
            if status == 201:
                break
            time.sleep(0.01)
        while bound(histogram(b), before, 1.0)[1] < 1:
            time.sleep(0.005)
        arrived = time.monotonic() - answered
        print(f"after a Redis SIGKILL and restart: B in sync (readyz) {readyz * 1000:.0f} ms after Redis "
              f"answered; a revocation posted to A {(posted - answered) * 1000:.0f} ms after that "
              f"reached B {arrived * 1000:.0f} ms after Redis answered")
    finally:
        for process, _ in replicas:
            process.terminate()
            process.wait()
        redis.kill()


if __name__ == "__main__":
    main()
