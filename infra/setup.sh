#!/usr/bin/env bash
# Idempotent project setup: a project venv with the pinned vision + MLOps stack.
#
# Why a script and not just `pip install -e .`: mmcv 2.1.0 has no wheels on PyPI and
# must be compiled (~17 min on 2 cores). We build it once and keep the wheel in a
# per-user cache that a fresh clone on the same machine (CI) finds again.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
VENV="${VENV:-$ROOT/.venv}"
WHEELS="${VITDET_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vitdet-mlops/wheels}"
STAMP="$VENV/.setup-stamp"
want="$(cat pyproject.toml infra/setup.sh | sha256sum | cut -d' ' -f1)"

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  log "venv up to date ($VENV); running self-check only"
  "$VENV/bin/python" -m components.common.selfcheck
  exit 0
fi

[[ -x "$VENV/bin/python" ]] || { log "creating venv $VENV"; "$PY" -m venv "$VENV"; }
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
export PIP_NO_INPUT=1

log "torch 2.14.1 + torchvision 0.29.1"
"${PIP[@]}" install -q torch==2.14.1 torchvision==0.29.1
# mmcv's setup.py and mmengine's config inheritance import pkg_resources (gone in setuptools 82).
"${PIP[@]}" install -q "setuptools>=77.0.3,<82" wheel ninja

mkdir -p "$WHEELS"
if ! ls "$WHEELS"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
  log "building mmcv 2.1.0 with compiled CPU ops (one time, ~17 min on 2 cores) into $WHEELS"
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation mmcv==2.1.0 -d "$tmp"
  tar -xzf "$tmp"/mmcv-2.1.0.tar.gz -C "$tmp"
  # torch 2.14 headers require C++20; mmcv appends its own -std flag last, so patch it.
  sed -i "s/'-std=c++17'/'-std=c++20'/g" "$tmp/mmcv-2.1.0/setup.py"
  MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "${PIP[@]}" wheel -q --no-deps --no-build-isolation \
    "$tmp/mmcv-2.1.0" -w "$tmp/built"
  # The .so is ~80 MB of debug info; stripping gives a 1.4 MB wheel that works the same.
  (cd "$tmp/built" && "$VENV/bin/python" -m wheel unpack mmcv-2.1.0-*.whl -d un \
     && find un -name '_ext*.so' -exec strip --strip-debug {} + \
     && "$VENV/bin/python" -m wheel pack un/mmcv-2.1.0 -d "$WHEELS")
fi

log "installing mmcv (cached wheel) and the project"
"${PIP[@]}" install -q --find-links "$WHEELS" mmcv==2.1.0
"${PIP[@]}" install -q --find-links "$WHEELS" -e ".[dev]"
# torch pulls a newer setuptools in some resolutions; keep it below 82 for pkg_resources.
"${PIP[@]}" install -q "setuptools>=77.0.3,<82"
"${PIP[@]}" check

"$VENV/bin/python" -m components.common.selfcheck
echo "$want" > "$STAMP"
log "done: activate with 'source $VENV/bin/activate' or use make targets"
