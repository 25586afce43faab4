#!/bin/sh
# Sets up the peers `npm run bench` compares torchface with. Never run by
# `npm install`: the bench harness (scripts/bench/harness/index.ts) calls it first.
#  * Python PyTorch: Debian's python3-torch (1.13, the same libtorch as torchface)
#    at /usr/bin/python3 (or $TORCHFACE_PYTHON, the test suite's variable, formerly
#    $TORCHFACE_BENCH_PYTHON here; `none`: no Python peer). Installed with apt when it
#    is missing and we are root; otherwise reported as missing.
#  * face-api: @vladmandic/face-api, @tensorflow/tfjs and
#    @tensorflow/tfjs-backend-wasm (dev dependencies; `npm install` in the
#    repository installs them). Checked, not installed.
# Prints one line per peer ("ok: ..." or "missing: ...") and exits 0 when every
# peer is present, 1 otherwise (the bench then runs without the missing ones).
# Set TORCHFACE_BENCH_NO_APT=1 to only check.
cd "$(dirname "$0")/../../.." || exit 2
PY="${TORCHFACE_PYTHON:-/usr/bin/python3}"
status=0

if [ "$PY" = /usr/bin/python3 ] && ! dpkg -s python3-torch >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && [ -z "$TORCHFACE_BENCH_NO_APT" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing python3-torch with apt-get (peer for the PyTorch comparisons)..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch) >/dev/null 2>&1 \
      || echo "apt-get install python3-torch failed"
  fi
fi
if [ "$PY" = none ]; then
  echo "skipped: PyTorch (TORCHFACE_PYTHON=none)"
elif v=$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null); then
  echo "ok: PyTorch $v ($PY)"
else
  echo "missing: PyTorch at $PY (Debian: apt-get install python3-torch, as root)"
  status=1
fi

for pkg in @vladmandic/face-api @tensorflow/tfjs @tensorflow/tfjs-backend-wasm; do
  if v=$(node -e "process.stdout.write(require('$pkg/package.json').version)" 2>/dev/null); then
    echo "ok: $pkg $v"
  else
    echo "missing: $pkg (npm install --include=dev in the repository)"
    status=1
  fi
done
exit $status
