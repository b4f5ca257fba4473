#!/usr/bin/env python3
"""Cached /auth under a route policy with the identity assertion on, against
the no-work server, in one run, driven by wrk (not by our own generator, so a
ratio near 1 cannot be the generator's ceiling).

    cargo build --release -p tokend -p loadtest && apt-get install wrk
    loadtest/edge_auth.py [--rounds 3] [--duration 5]

Each server is pinned to CPU 0 (tokend with one worker thread), wrk to CPU 1
(`-t1 -c32`). tokend has three routes (a public one, one needing a scope the
token lacks for POST, and the one the request lands on: host + prefix +
scopes_any) and `[assertion]` enabled, so every answer carries a signed
assertion; the token is one cached ES256 token, repeated. A third server,
tokend with no routes and no assertion, shows what the policy costs. Rounds
rotate the order; the table reports medians and, per server, the CPU time per
request of the server and of wrk (wrk near 100 % of its core would mean the
generator is the limit).
"""

import argparse
import os
import pathlib
import re
import socket
import statistics
import subprocess
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
LT = ROOT / "target/release/loadtest"
TD = ROOT / "target/release/tokend"
TICKS = os.sysconf("SC_CLK_TCK")
PORT_NOOP, PORT_TOKEND = 18290, 18200

POLICY = """
[[routes]]
name = "health"
path = "/healthz"
anonymous = true

[[routes]]
name = "orders-write"
path_prefix = "/orders"
methods = ["POST"]
scopes_all = ["orders:write"]

[[routes]]
name = "api-read"
hosts = ["api.example.com"]
path_prefix = "/api"
scopes_any = ["read", "admin"]

[assertion]
enabled = true
"""

LUA = """
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer {token}"
wrk.headers["X-Forwarded-Method"] = "GET"
wrk.headers["X-Forwarded-Host"] = "api.example.com"
wrk.headers["X-Forwarded-Uri"] = "/api/items/7?page=2"
"""


def cpu_seconds(pid):
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def wait_port(port, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def run_wrk(port, script, duration, path):
    argv = ["taskset", "-c", "1", "wrk", "-t1", "-c32", f"-d{duration}s", "-s", script, f"http://127.0.0.1:{port}{path}"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"wrk failed: {out}{err}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"{non2xx.group(1)} refused requests: the policy did not allow the request\n{out}")
    return requests, rps


def measure(name, argv, port, script, duration, path, env=None):
    server = subprocess.Popen(["taskset", "-c", "0", *argv], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    try:
        wait_port(port)
        run_wrk(port, script, 1, path)  # warm: the token is verified and its assertion signed once
        before = cpu_seconds(server.pid)
        children_before = os.times().children_user + os.times().children_system
        requests, rps = run_wrk(port, script, duration, path)
        server_cpu = cpu_seconds(server.pid) - before
        wrk_cpu = os.times().children_user + os.times().children_system - children_before
        return {"rps": rps, "server_us": server_cpu / requests * 1e6, "wrk_us": wrk_cpu / requests * 1e6,
                "wrk_core": wrk_cpu / duration}
    finally:
        server.terminate()
        server.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="tokend-edge-"))
    subprocess.run([str(LT), "setup", "--alg", "ES256", "--tokens", "1", "--out", str(work),
                    "--http-port", str(PORT_TOKEND), "--grpc-port", str(PORT_TOKEND + 1)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    plain = work / "tokend.toml"
    config = work / "tokend-policy.toml"
    config.write_text(plain.read_text() + POLICY)
    subprocess.run([str(TD), "check-config", str(config)], check=True, stdout=subprocess.DEVNULL)
    token = (work / "tokens.txt").read_text().split()[0]
    script = work / "auth.lua"
    script.write_text(LUA.format(token=token))
    one_thread = {"TOKIO_WORKER_THREADS": "1", "RUST_LOG": "warn"}
    servers = [
        ("noop", [str(LT), "noop", "--addr", f"127.0.0.1:{PORT_NOOP}"], PORT_NOOP, "/", {}),
        ("tokend /auth, 3 routes + assertion", [str(TD), "serve", "--config", str(config)], PORT_TOKEND, "/auth",
         one_thread),
        ("tokend /auth, no routes", [str(TD), "serve", "--config", str(plain)], PORT_TOKEND, "/auth", one_thread),
    ]
    results = {name: [] for name, *_ in servers}
    for round_ in range(args.rounds):
        shift = round_ % len(servers)
        order = servers[shift:] + servers[:shift]
        for name, argv, port, path, env in order:
            r = measure(name, argv, port, str(script), args.duration, path, env)
            results[name].append(r)
            print(f"round {round_ + 1} {name}: {r['rps']:.0f} req/s, server {r['server_us']:.2f} µs/req, "
                  f"wrk {r['wrk_us']:.2f} µs/req ({r['wrk_core'] * 100:.0f} % of its core)", flush=True)
    med = lambda name, key: statistics.median(r[key] for r in results[name])
    noop = servers[0][0]
    ratio = lambda name: [t["rps"] / n["rps"] for t, n in zip(results[name], results[noop])]
    print()
    print("| server | req/s (median) | server µs/req | wrk µs/req | wrk core |")
    print("| --- | --- | --- | --- | --- |")
    for name in results:
        print(f"| {name} | {med(name, 'rps'):.0f} | {med(name, 'server_us'):.2f} | {med(name, 'wrk_us'):.2f} | "
              f"{med(name, 'wrk_core') * 100:.0f} % |")
    print()
    for name, *_ in servers[1:]:
        rs = ratio(name)
        print(f"{name} / noop, median of per-round ratios: {statistics.median(rs):.2f} "
              f"(rounds: {', '.join(f'{r:.2f}' for r in rs)})")


if __name__ == "__main__":
    main()
