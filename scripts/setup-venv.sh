#!/usr/bin/env bash
# Create <repo>/.venv (if missing) and install tests/requirements.txt into it
# (only when the requirements changed since the last successful install).
# Prints the venv's python path on stdout, e.g.:
#
#   PY="$(scripts/setup-venv.sh)" && "$PY" tests/oracle/proto_equal.py a.onnx b.onnx
#
# Environment: PYTHON  interpreter used to create the venv (default: python3, >= 3.11)
set -euo pipefail

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
repo_root="$(dirname -- "$script_dir")"
venv="$repo_root/.venv"
req="$repo_root/tests/requirements.txt"
stamp="$venv/.requirements.sha256"
python="${PYTHON:-python3}"
venv_python="$venv/bin/python"

die() { echo "setup-venv: error: $*" >&2; exit 1; }

[[ -f "$req" ]] || die "$req not found"
want="$(sha256sum "$req" | cut -d' ' -f1)"

# Fast no-op path: venv exists and was installed from these exact requirements.
if [[ -x "$venv_python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "$venv_python"
    exit 0
fi

if [[ ! -x "$venv_python" ]]; then
    command -v "$python" >/dev/null 2>&1 || die "'$python' not found (set PYTHON=...)"
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$python is $("$python" -V 2>&1); Python >= 3.11 is required (set PYTHON=...)"
    rm -rf "$venv"
    if ! "$python" -m venv "$venv" >&2; then
        rm -rf "$venv"
        die "'$python -m venv' failed (on Debian: apt-get install python3-venv)"
    fi
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
rm -f "$stamp"
if ! "$venv_python" -m pip install --disable-pip-version-check --no-input -q \
        -r "$req" >"$log" 2>&1; then
    cat "$log" >&2
    die "pip install -r $req failed"
fi
if ! "$venv_python" -c 'import onnx, onnxruntime, numpy, PIL, cv2' >"$log" 2>&1; then
    cat "$log" >&2
    die "packages installed but failed to import in $venv"
fi
echo "$want" >"$stamp"
echo "$venv_python"
