#!/usr/bin/env bash
# Build dist/medbrief/ with PyInstaller. Run after `bash setup.sh` (it installs the ICD table this copies in).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p resources/icd
.venv/bin/python - <<'PY'
import shutil
from inference.icd.table import BUNDLED_TABLE, open_table, table_path
open_table(BUNDLED_TABLE)
from inference.icd.bundle import licence_path
shutil.copyfile(table_path(BUNDLED_TABLE), "resources/icd/who-zh.sqlite")
shutil.copyfile(licence_path(), "resources/icd/COPYING.ICD10")
PY
.venv/bin/python -m pip install -q "pyinstaller>=6.6"
.venv/bin/python -m PyInstaller --noconfirm --clean --distpath dist --workpath build packaging/medbrief.spec
echo "built dist/medbrief/ (medbrief-desktop, medbrief)"
