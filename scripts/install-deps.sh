#!/usr/bin/env bash
# Installs the system libraries Vigil builds against (and, with --test, the tools its tests use),
# with apt-get, only when they are missing. Safe to run repeatedly.
set -euo pipefail

need=()
pkg-config --exists rdkafka 2>/dev/null || need+=(librdkafka-dev)
pkg-config --exists libnghttp2 2>/dev/null || need+=(libnghttp2-dev)
pkg-config --exists sqlite3 2>/dev/null || need+=(libsqlite3-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)

if [[ "${1:-}" == "--test" ]]; then
    # Tools the tests talk to the system with; tests that need a missing one skip and say so.
    command -v kcat >/dev/null || need+=(kcat)
    command -v curl >/dev/null || need+=(curl)
    command -v nghttp >/dev/null || need+=(nghttp2-client)
    command -v ip >/dev/null || need+=(iproute2)
    command -v sqlite3 >/dev/null || need+=(sqlite3)
    command -v openssl >/dev/null || need+=(openssl)
    command -v unzip >/dev/null || need+=(unzip)
    command -v zip >/dev/null || need+=(zip)
fi

# FoundationNetworking (the alert webhook client) loads libcurl at run time.
ldconfig -p 2>/dev/null | grep -q "libcurl.so.4" || need+=(libcurl4)

# Best effort, for the operator tests (which skip, saying so, without them): promtool (Debian's
# `prometheus` package, ~100 MB) lints /metrics; headless `chromium` renders the dashboard.
optional=()
if [[ "${1:-}" == "--test" ]]; then
    command -v promtool >/dev/null || optional+=(prometheus)
    command -v chromium >/dev/null || optional+=(chromium)
fi

if [[ ${#need[@]} -eq 0 && ${#optional[@]} -eq 0 ]]; then
    exit 0
fi

if ! command -v apt-get >/dev/null; then
    if [[ ${#need[@]} -eq 0 ]]; then
        echo "install-deps: optional ${optional[*]} missing and apt-get is not available; the tests that use them will skip" >&2
        exit 0
    fi
    echo "install-deps: missing ${need[*]}, and apt-get is not available; install them with your package manager" >&2
    exit 1
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# An update is needed on fresh machines (empty lists); a failing mirror is not fatal if the install works.
$sudo apt-get update -qq || echo "install-deps: apt-get update failed; trying the install anyway" >&2
if [[ ${#need[@]} -gt 0 ]]; then
    echo "install-deps: installing ${need[*]}" >&2
    $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [[ ${#optional[@]} -gt 0 ]]; then
    echo "install-deps: installing ${optional[*]} (optional: tests that need them skip without them)" >&2
    $sudo apt-get install -y -qq --no-install-recommends "${optional[@]}" >/dev/null \
        || echo "install-deps: could not install ${optional[*]}; the tests that use them will skip" >&2
fi
