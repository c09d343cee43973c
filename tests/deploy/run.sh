#!/usr/bin/env bash
# Deployment checks: the Helm chart (lint, render with default and example values, Kubernetes
# schema validation; tests/deploy/check_chart.py) and the compose file (`docker-compose config`).
# Creates or reuses a Python venv under ${VAXCRED_CACHE:-$HOME/.cache/vaxcred}/venv with pinned
# packages; installs Debian's docker-compose when missing (needs root and apt). Run from anywhere.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${VAXCRED_CACHE:-$HOME/.cache/vaxcred}"
venv="$cache/venv"

# Pinned: helm-python-sdk bundles Helm's Go SDK (v4) as a library; kubernetes-validate ships the
# Kubernetes JSON schemas. Bump together with KUBE_VERSION in check_chart.py.
requirements=(helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 PyYAML==6.0.2)
stamp="$venv/.vaxcred-requirements"

python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "creating venv $venv"
  mkdir -p "$cache"
  "$python" -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${requirements[*]}" ]; then
  echo "installing ${requirements[*]}"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}"
  printf '%s' "${requirements[*]}" > "$stamp"
fi

echo "== Helm chart"
"$venv/bin/python" "$here/check_chart.py"

echo "== docker-compose.yml"
if ! command -v docker-compose >/dev/null 2>&1; then
  echo "installing Debian's docker-compose"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq docker-compose >/dev/null
fi
# `config` parses, interpolates and validates the file; it needs no Docker engine.
(cd "$repo" && docker-compose -f docker-compose.yml config -q)
services="$(cd "$repo" && docker-compose -f docker-compose.yml config --services | sort | tr '\n' ' ')"
if [ "$services" != "postgres rabbitmq vaxcred " ]; then
  echo "unexpected compose services: $services" >&2
  exit 1
fi
echo "compose file valid: services $services"

echo "deploy checks passed"
