#!/usr/bin/env bash
# Build llama.cpp's OpenAI-compatible `llama-server` from the MIT-licensed source inside the
# llama-cpp-python sdist (no binary wheel of llama.cpp reaches a machine that only sees PyPI), into
# the toolkit's cache, where `emoneg` finds it (`emoneg_bench.backends.llama_server.server_binary`).
# Cached: a second run with the binary present does nothing. 5 minutes on 2 quiet cores, ~27 on busy ones.
#
#   bash scripts/setup-server.sh                # or: make setup-server
#   JOBS=1 bash scripts/setup-server.sh         # fewer compile jobs on a busy machine
set -euo pipefail
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
PYTHON="${PYTHON:-python3}"
CACHE="${EMONEG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/emoneg-bench}"
DEST="$CACHE/llama-server/$VERSION"
JOBS="${JOBS:-$(nproc)}"
if [ -x "$DEST/bin/llama-server" ]; then
  echo "llama-server $VERSION already built: $DEST/bin/llama-server"
  exit 0
fi
for tool in cmake g++; do
  command -v "$tool" >/dev/null || { echo "error: setup-server needs $tool (Debian: apt-get install cmake g++)" >&2; exit 1; }
done
WORK="$(mktemp -d "${TMPDIR:-/tmp}/emoneg-llama.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
echo "downloading the llama-cpp-python $VERSION source distribution"
"$PYTHON" -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$WORK"
tar -xzf "$WORK"/llama_cpp_python-"$VERSION".tar.gz -C "$WORK"
SRC="$WORK/llama_cpp_python-$VERSION/vendor/llama.cpp"
GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)
echo "building llama-server with $JOBS jobs (5-30 minutes on 2 cores)"
cmake -S "$SRC" -B "$WORK/build" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF \
  -DGGML_NATIVE="${GGML_NATIVE:-ON}" -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=ON -DBUILD_SHARED_LIBS=OFF >"$WORK/cmake.log" 2>&1 \
  || { tail -20 "$WORK/cmake.log" >&2; echo "error: configuring llama.cpp failed (log above)" >&2; exit 1; }
cmake --build "$WORK/build" --target llama-server llama-quantize -j "$JOBS" >"$WORK/build.log" 2>&1 \
  || { tail -30 "$WORK/build.log" >&2; echo "error: building llama-server failed (log above)" >&2; exit 1; }
mkdir -p "$DEST.partial/bin"
cp "$WORK/build/bin/llama-server" "$WORK/build/bin/llama-quantize" "$DEST.partial/bin/"
cp "$SRC/LICENSE" "$DEST.partial/LICENSE" 2>/dev/null || true
cp "$SRC/convert_lora_to_gguf.py" "$SRC/convert_hf_to_gguf.py" "$DEST.partial/" 2>/dev/null || true
cp -r "$SRC/gguf-py" "$SRC/conversion" "$DEST.partial/" 2>/dev/null || true
rm -rf "$DEST" && mv "$DEST.partial" "$DEST"
echo "llama-server built: $DEST/bin/llama-server"
