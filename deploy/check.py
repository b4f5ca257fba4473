#!/usr/bin/env python3
"""Structural checks for deploy/ that no off-the-shelf tool does; run by deploy/check.sh.

  check.py dashboard DASHBOARD.json RULES_OUT.yml   checks the dashboard, writes its queries
                                                   as recording rules for `promtool check rules`
  check.py compose CONFIG.yml                       bind mounts exist, Prometheus targets are services
  check.py k8s DIR                                  kustomization resources, cross references,
                                                   ServiceMonitor shape
  check.py toml CONFIGMAP.yaml OUT.toml             extracts tokend.toml from the ConfigMap

Needs PyYAML. Exits non-zero with one line per problem.
"""

import json
import os
import re
import sys

import yaml

# Metrics tokend exports (src/metrics.rs); the cache counters may not exist yet.
KNOWN_METRICS = {
    "tokend_verify_duration_seconds",
    "tokend_requests_total",
    "tokend_request_duration_seconds",
    "tokend_requests_in_flight",
    "tokend_jwks_refresh_total",
    "tokend_jwks_fetch_duration_seconds",
    "tokend_jwks_keys",
    "tokend_jwks_last_success_timestamp_seconds",
    "tokend_revocations_total",
    "tokend_revocation_store_up",
    "tokend_revocation_entries",
    "tokend_revocation_feed_lag_seconds",
    "tokend_revocation_resyncs_total",
    "tokend_cache_hits_total",
    "tokend_cache_misses_total",
    "tokend_authz_decisions_total",
    "tokend_revocation_propagation_seconds",
    "tokend_revocation_events_total",
    "tokend_upstream_introspection_total",
    "tokend_upstream_revocations_total",
    "tokend_upstream_cache_hits_total",
    "tokend_upstream_cache_misses_total",
    "tokend_upstream_cache_entries",
}
HISTOGRAMS = {
    "tokend_verify_duration_seconds",
    "tokend_request_duration_seconds",
    "tokend_jwks_fetch_duration_seconds",
    "tokend_revocation_feed_lag_seconds",
    "tokend_revocation_propagation_seconds",
}

problems = []


def problem(msg):
    problems.append(msg)


def metric_names(expr):
    """tokend_* names in a PromQL expression, with histogram suffixes folded back."""
    names = set()
    for name in re.findall(r"\btokend_[a-z_]+", expr):
        base = re.sub(r"_(bucket|count|sum)$", "", name)
        if base in HISTOGRAMS:
            names.add(base)
            if name == base:
                problem(f"histogram {base} used without _bucket/_count/_sum in: {expr}")
        else:
            names.add(name)
    return names


def walk_panels(panels):
    for p in panels:
        yield p
        yield from walk_panels(p.get("panels", []))


def check_dashboard(path, rules_out):
    with open(path) as f:
        d = json.load(f)  # a parse error fails here
    if d.get("uid") != "tokend":
        problem(f"{path}: uid is {d.get('uid')!r}, want 'tokend'")
    variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    for name in ("datasource", "instance", "issuer"):
        if name not in variables:
            problem(f"{path}: template variable ${name} missing")
    ds = variables.get("datasource", {})
    if ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problem(f"{path}: $datasource must be a Prometheus datasource variable")
    ids = set()
    rules = []
    used = set()
    for p in walk_panels(d.get("panels", [])):
        title = p.get("title", "?")
        pid = p.get("id")
        if pid in ids:
            problem(f"{path}: panel id {pid} used twice")
        ids.add(pid)
        if "gridPos" not in p:
            problem(f"{path}: panel {title!r} has no gridPos")
        if p.get("type") == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            problem(f"{path}: panel {title!r} does not use ${{datasource}}")
        targets = p.get("targets", [])
        if not targets:
            problem(f"{path}: panel {title!r} has no query")
        for t in targets:
            if t.get("datasource", {}).get("uid") != "${datasource}":
                problem(f"{path}: a query of {title!r} does not use ${{datasource}}")
            expr = t.get("expr", "")
            if 'instance=~"$instance"' not in expr:
                problem(f"{path}: query of {title!r} ignores $instance: {expr}")
            names = metric_names(expr)
            if not names:
                problem(f"{path}: query of {title!r} reads no tokend metric: {expr}")
            for n in names - KNOWN_METRICS:
                problem(f"{path}: panel {title!r} reads unknown metric {n}")
            used |= names
            concrete = (expr.replace("$__rate_interval", "5m")
                        .replace("$instance", ".*").replace("$issuer", ".*"))
            if "$" in concrete:
                problem(f"{path}: query of {title!r} has an unknown variable: {expr}")
            rules.append({"record": f"dashboard:panel{pid}:{t.get('refId', 'A')}", "expr": concrete})
    # Every metric the brief asks the dashboard to show.
    for n in ("tokend_verify_duration_seconds", "tokend_requests_total", "tokend_requests_in_flight",
              "tokend_jwks_refresh_total", "tokend_jwks_last_success_timestamp_seconds",
              "tokend_revocation_store_up", "tokend_revocation_feed_lag_seconds",
              "tokend_revocation_entries", "tokend_revocations_total", "tokend_cache_hits_total"):
        if n not in used:
            problem(f"{path}: no panel shows {n}")
    with open(rules_out, "w") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, f, sort_keys=False)
    print(f"{path}: {len(ids)} panels, {len(rules)} queries, {len(used)} metrics")


def check_compose(rendered, root="."):
    with open(rendered) as f:
        c = yaml.safe_load(f)
    services = c.get("services", {})
    for name, svc in services.items():
        for v in svc.get("volumes", []):
            if isinstance(v, str):
                parts = v.split(":")
                src, typ = parts[0], ("bind" if parts[0].startswith(("/", ".")) else "volume")
            else:
                src, typ = v.get("source"), v.get("type")
            if typ == "bind" and not os.path.exists(src):
                problem(f"compose: service {name} mounts {src}, which does not exist")
        if not svc.get("healthcheck"):
            problem(f"compose: service {name} has no healthcheck")
    redis = " ".join(map(str, services.get("redis", {}).get("command", [])))
    if "--appendonly yes" not in redis or "--appendfsync always" not in redis:
        problem("compose: redis must run with --appendonly yes --appendfsync always")
    for name in ("tokend-1", "tokend-2"):
        dep = services.get(name, {}).get("depends_on", {})
        if not isinstance(dep, dict) or dep.get("redis", {}).get("condition") != "service_healthy":
            problem(f"compose: {name} must depend on redis being healthy")
    with open(os.path.join(root, "deploy/prometheus/prometheus.yml")) as f:
        prom = yaml.safe_load(f)
    for job in prom.get("scrape_configs", []):
        for sc in job.get("static_configs", []):
            for target in sc.get("targets", []):
                host = target.rsplit(":", 1)[0]
                if host != "localhost" and host not in services:
                    problem(f"prometheus: target {target} of job {job['job_name']} is no compose service")
    print(f"compose: {len(services)} services: {', '.join(sorted(services))}")


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def check_k8s(directory):
    kpath = os.path.join(directory, "kustomization.yaml")
    kust = load_all(kpath)[0]
    if kust.get("kind") != "Kustomization":
        problem(f"{kpath}: kind is not Kustomization")
    docs = {}
    for res in kust.get("resources", []):
        p = os.path.join(directory, res)
        if not os.path.isfile(p):
            problem(f"{kpath}: resource {res} does not exist")
            continue
        for d in load_all(p):
            docs[(d.get("kind"), d.get("metadata", {}).get("name"))] = d
    kinds = {k for k, _ in docs}
    for want in ("Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler",
                 "ConfigMap", "ServiceMonitor"):
        if want not in kinds:
            problem(f"{kpath}: no {want} among the resources")
    if "secret.example.yaml" in kust.get("resources", []):
        problem(f"{kpath}: the example Secret must not be deployed")

    dep = next((d for (k, _), d in docs.items() if k == "Deployment"), None)
    if dep is None:
        return
    tmpl = dep["spec"]["template"]
    pod_labels = tmpl["metadata"].get("labels", {})
    sel = dep["spec"]["selector"]["matchLabels"]
    if any(pod_labels.get(k) != v for k, v in sel.items()):
        problem("Deployment selector does not match its pod labels")
    pod = tmpl["spec"]
    c = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    if ports != {"http": 8080, "grpc": 50051, "metrics": 9090}:
        problem(f"Deployment container ports are {ports}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        g = c.get(probe, {}).get("httpGet", {})
        if g.get("path") != path or g.get("port") not in ("metrics", 9090):
            problem(f"Deployment {probe} must GET {path} on the metrics port, has {g}")
    sc = c.get("securityContext", {})
    psc = pod.get("securityContext", {})
    if not (sc.get("readOnlyRootFilesystem") and (sc.get("runAsNonRoot") or psc.get("runAsNonRoot"))):
        problem("Deployment container must be non-root with a read-only root filesystem")
    if sc.get("allowPrivilegeEscalation") is not False:
        problem("Deployment container must set allowPrivilegeEscalation: false")
    if not c.get("resources", {}).get("requests", {}).get("cpu"):
        problem("Deployment needs a CPU request (the HPA scales on CPU utilization)")
    for vol in pod.get("volumes", []):
        cm = vol.get("configMap", {}).get("name")
        if cm and ("ConfigMap", cm) not in docs:
            problem(f"Deployment mounts ConfigMap {cm}, which is not among the resources")
    mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
    args = c.get("args", [])
    if "--config" in args:
        cfg = args[args.index("--config") + 1]
        if os.path.dirname(cfg) not in mounts:
            problem(f"Deployment reads {cfg}, but nothing is mounted at {os.path.dirname(cfg)}")
    secret_refs = [e["valueFrom"]["secretKeyRef"] for e in c.get("env", [])
                   if "secretKeyRef" in e.get("valueFrom", {})]
    if not secret_refs:
        problem("Deployment takes no secrets from a Secret")
    example = os.path.join(directory, "secret.example.yaml")
    if os.path.isfile(example):
        ex = load_all(example)[0]
        keys = set(ex.get("stringData", {})) | set(ex.get("data", {}))
        for ref in secret_refs:
            if ref["name"] != ex["metadata"]["name"] or ref["key"] not in keys:
                problem(f"Deployment uses secret {ref['name']}/{ref['key']}, absent from secret.example.yaml")

    for (kind, name), d in docs.items():
        if kind == "Service":
            if any(pod_labels.get(k) != v for k, v in d["spec"]["selector"].items()):
                problem(f"Service {name} selector does not match the pods")
            sports = {p["name"]: (p["port"], p.get("targetPort")) for p in d["spec"]["ports"]}
            for pname, (port, target) in sports.items():
                if isinstance(target, str) and target not in ports:
                    problem(f"Service {name} port {pname} targets unknown container port {target}")
            if {n: p for n, (p, _) in sports.items()} != {"http": 8080, "grpc": 50051, "metrics": 9090}:
                problem(f"Service {name} ports are {sports}")
        elif kind == "PodDisruptionBudget":
            if any(pod_labels.get(k) != v for k, v in d["spec"]["selector"]["matchLabels"].items()):
                problem(f"PodDisruptionBudget {name} selects no tokend pod")
        elif kind == "HorizontalPodAutoscaler":
            ref = d["spec"]["scaleTargetRef"]
            if (ref["kind"], ref["name"]) != ("Deployment", dep["metadata"]["name"]):
                problem(f"HorizontalPodAutoscaler {name} targets {ref}")
            if d.get("apiVersion") != "autoscaling/v2":
                problem(f"HorizontalPodAutoscaler {name} must be autoscaling/v2")
        elif kind == "ServiceMonitor":
            if d.get("apiVersion") != "monitoring.coreos.com/v1":
                problem(f"ServiceMonitor {name}: apiVersion {d.get('apiVersion')}")
            spec = d.get("spec", {})
            svc = [s for (k, _), s in docs.items() if k == "Service"]
            sel = spec.get("selector", {}).get("matchLabels", {})
            if not any(all(s["metadata"].get("labels", {}).get(k) == v for k, v in sel.items()) for s in svc):
                problem(f"ServiceMonitor {name} selects no Service")
            eps = spec.get("endpoints", [])
            if not eps:
                problem(f"ServiceMonitor {name} has no endpoints")
            for ep in eps:
                if not any(ep.get("port") in {p["name"] for p in s["spec"]["ports"]} for s in svc):
                    problem(f"ServiceMonitor {name} scrapes unknown Service port {ep.get('port')}")
    print(f"k8s: {len(docs)} resources: " + ", ".join(f"{k}/{n}" for k, n in sorted(docs)))


def extract_toml(configmap, out):
    cm = load_all(configmap)[0]
    with open(out, "w") as f:
        f.write(cm["data"]["tokend.toml"])


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "dashboard":
        check_dashboard(*args)
    elif cmd == "compose":
        check_compose(*args)
    elif cmd == "k8s":
        check_k8s(*args)
    elif cmd == "toml":
        extract_toml(*args)
    else:
        sys.exit(f"unknown command {cmd}")
    for p in problems:
        print(f"PROBLEM: {p}", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
