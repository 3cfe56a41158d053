# scipy's hooks for multibuild (see README.rst, "Hooks"). Sourced with `set -e`.
#
# Variables from the engine: BUILD_PREFIX (libraries go here), PLAT, MB_PYTHON_VERSION,
# REPO_DIR (the source tree), PYTHON_EXE (the build / test python), MB_TEST_LEVEL (fast|full),
# and NAME_VERSION for each entry of settings.toml's [libraries].

pre_build() {
    require_tool gfortran pkg-config
    # OpenBLAS as scipy's own wheels get it: the scipy-openblas32 package. Its library is
    # copied into the prefix so the repair step grafts it from there.
    "$PYTHON_EXE" -m pip install --disable-pip-version-check -q \
        "scipy-openblas32==${SCIPY_OPENBLAS32_VERSION}"
    "$PYTHON_EXE" - <<'PY'
import os, shutil, pathlib, scipy_openblas32 as ob
prefix = pathlib.Path(os.environ["BUILD_PREFIX"])
for sub in ("lib", "include", "lib/pkgconfig"):
    (prefix / sub).mkdir(parents=True, exist_ok=True)
for lib in pathlib.Path(ob.get_lib_dir()).glob("*.so*"):
    shutil.copy2(lib, prefix / "lib")
for header in pathlib.Path(ob.get_include_dir()).iterdir():
    shutil.copy2(header, prefix / "include")
pc = ob.get_pkg_config()
pc = pc.replace(ob.get_lib_dir(), str(prefix / "lib")).replace(ob.get_include_dir(), str(prefix / "include"))
(prefix / "lib/pkgconfig/scipy-openblas.pc").write_text(pc)
PY
}

run_tests() {
    # scipy.datasets downloads its data: deselected here, where there is no network.
    "$PYTHON_EXE" -c "import scipy; scipy.show_config()"
    "$PYTHON_EXE" -c "
import sys, scipy
ok = scipy.test(label='${MB_TEST_LEVEL:-fast}', extra_argv=['-k', 'not TestDatasets', '-n', '${MB_JOBS:-2}'])
sys.exit(0 if ok else 1)
"
}
