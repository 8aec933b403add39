#!/usr/bin/env bash
# Build dist/medbrief/ with PyInstaller. Run after `bash setup.sh`; everything it ships is in the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pip install -q "pyinstaller>=6.6"
.venv/bin/python -m PyInstaller --noconfirm --clean --distpath dist --workpath build packaging/medbrief.spec
echo "built dist/medbrief/ (medbrief-desktop, medbrief)"
