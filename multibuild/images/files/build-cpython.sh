#!/bin/bash
# Runs inside a container of the image's base stage, without network (multibuild/images/
# build.py): builds one CPython from its release tarball as manylinux's build-cpython.sh does
# (static libpython, no PGO/LTO, no ensurepip) into PREFIX, and packs PREFIX into OUT, which
# finalize-image.sh unpacks at / in the final image.
# usage: build-cpython.sh TARBALL PREFIX gil|nogil OUT
set -euo pipefail
tarball=$1 prefix=$2 variant=$3 out=$4
args=(--prefix="$prefix" --disable-shared --with-ensurepip=no)
if [ "$variant" = nogil ]; then
    args+=(--disable-gil)
fi
# A fixed build directory: ccache (CPython compiles with -g, so the directory is hashed) and
# the debug info do not depend on a random name.
work=/tmp/cpython-build
rm -rf "$work" "$prefix"
mkdir -p "$work"
tar -xf "$tarball" -C "$work" --strip-components=1
cd "$work"
echo "configure ${args[*]}"
./configure CC=gcc CXX=g++ "${args[@]}" > configure.log 2>&1 || { tail -40 configure.log; exit 1; }
echo "make -j$(nproc)"
make -j"$(nproc)" > make.log 2>&1 || { tail -60 make.log; exit 1; }
echo "make install"
make install > install.log 2>&1 || { tail -40 install.log; exit 1; }
# What the build left out: only _tkinter is expected (no Tk in the image).
grep -A4 -E '^(The necessary bits to build these optional modules were not found|Failed to build these modules|The following modules are \*disabled\*|Following modules built successfully but were removed)' make.log || true
[ -e "$prefix/bin/python" ] || ln -s python3 "$prefix/bin/python"
# As manylinux: no static libpython (extension modules do not link it), no bytecode, stripped.
find "$prefix" -name 'libpython*.a' -delete
find "$prefix" -name __pycache__ -type d -prune -exec rm -rf {} +
find "$prefix" -type f \( -perm -u+x -o -name '*.so' \) \
    -exec sh -c 'file -b "$1" | grep -q ELF && strip --strip-unneeded "$1" || true' _ {} \;
"$prefix/bin/python" -c 'import bz2, ctypes, decimal, hashlib, json, lzma, readline, sqlite3, ssl, uuid, zlib'
"$prefix/bin/python" -c 'import sys; print("built CPython", sys.version.replace("\n", " "))'
cd /
rm -rf "$work"
tar -cf "$out" -C / "${prefix#/}"
if command -v ccache > /dev/null && [ -n "${CCACHE_DIR:-}" ]; then
    ccache -s | grep -i -E 'hit|miss' | head -4 || true
fi
