#!/usr/bin/env bash
# Regenerate deploy/requirements.lock: every runtime dependency of pyproject.toml (and the
# build tools the image needs), pinned with their PyPI hashes, at the versions installed
# in the development venv (so the image runs what the tests ran). Run it after changing
# pyproject.toml's dependencies; tests/unit/test_deploy.py fails while the lock is stale.
#
#   deploy/lock.sh            # uses .venv (pip-tools is in the dev extra)
#   VENV=/path/to/venv deploy/lock.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
pins=$(mktemp)
trap 'rm -f "$pins"' EXIT
"$VENV/bin/pip" freeze --exclude-editable | grep -v '^cogmora' > "$pins"
# Only PyPI, whatever the local pip configuration says: the image installs from PyPI.
PIP_CONFIG_FILE=/dev/null "$VENV/bin/pip-compile" --quiet --generate-hashes --allow-unsafe \
  --strip-extras --no-emit-index-url --no-emit-find-links \
  --index-url https://pypi.org/simple --constraint "$pins" \
  --output-file deploy/requirements.lock pyproject.toml deploy/build-requirements.in
# The constraint file's temporary name would change the lock at every run.
sed -i "s|$pins|venv-pins|g" deploy/requirements.lock
