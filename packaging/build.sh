#!/usr/bin/env bash
# Build the ward-PC folder, dist/medbrief/ (medbrief-desktop and medbrief), with PyInstaller. Run after
# `bash setup.sh`; everything it ships is in the checkout. No model goes in: see the README, "Ward PCs".
#   MEDBRIEF_DIST=DIR   build into DIR/medbrief/ instead (the packaging test builds into a temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
dist="${MEDBRIEF_DIST:-dist}"
.venv/bin/python -m pip install -q "pyinstaller>=6.6,<7"
.venv/bin/python -m PyInstaller --noconfirm --clean --log-level WARN --distpath "$dist" \
  --workpath "$dist/.build" packaging/medbrief.spec
rm -rf "$dist/.build"
echo "built $dist/medbrief/ ($(du -sm "$dist/medbrief" | cut -f1) MB): medbrief-desktop, medbrief"
