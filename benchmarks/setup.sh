#!/usr/bin/env bash
# Prepare the benchmark machine (Debian, run as root):
#   * nginx (Debian's package) if missing; the harness starts and stops its own instance
#   * benchmarks/.work/venv-official: aleph-alpha-client==11.5.1 (the official client)
#   * benchmarks/.work/venv-ours: this checkout installed editable with its dependencies (set OURS_EXTRAS=all
#     to benchmark with the optional extras)
# Safe to run again; it only installs what is missing. Needs PyPI and Debian's archive.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
work="$here/.work"
python="${PYTHON:-python3}"
mkdir -p "$work"

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    echo "installing nginx" >&2
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y nginx
fi
# The package may start a system nginx on port 80; the harness does not need it.

if ! "$python" -c "import venv, ensurepip" 2>/dev/null; then
    echo "installing python3-venv" >&2
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv
fi

if [ ! -x "$work/venv-official/bin/python" ]; then
    "$python" -m venv "$work/venv-official"
fi
if ! "$work/venv-official/bin/python" -c "import aleph_alpha_client" 2>/dev/null; then
    "$work/venv-official/bin/pip" install --quiet "aleph-alpha-client==11.5.1"
fi

if [ ! -x "$work/venv-ours/bin/python" ]; then
    "$python" -m venv "$work/venv-ours"
fi
extras="${OURS_EXTRAS:-}"
spec="$repo"
if [ -n "$extras" ]; then spec="$repo[$extras]"; fi
"$work/venv-ours/bin/pip" install --quiet -e "$spec"

echo "official: $("$work/venv-official/bin/python" -c 'from importlib.metadata import version; print(version("aleph-alpha-client"))')"
echo "ours:     $("$work/venv-ours/bin/python" -c 'from importlib.metadata import version; print(version("aleph-alpha-client"))')"
echo "nginx:    $( (command -v nginx || echo /usr/sbin/nginx) )"
