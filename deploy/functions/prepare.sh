#!/usr/bin/env bash
# Predeploy step (deploy/firebase.json): build the cogmora wheel that requirements.txt
# names into vendor/, and the venv that `firebase deploy` loads main.py from to read the
# functions' triggers. Idempotent; run it by hand to try the functions locally.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3.12}"
command -v "$python" >/dev/null || python=python3
rm -rf "$here/vendor"
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$here/vendor" "$root"
[ -x "$here/venv/bin/python" ] || "$python" -m venv "$here/venv"
"$here/venv/bin/pip" install --quiet --upgrade -r "$here/requirements.txt"
