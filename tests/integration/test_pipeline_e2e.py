"""The whole pipeline on real builds: fixture projects with a C and a Fortran extension, each
linking a shared library built fresh, through real auditwheel repair and a clean-venv test."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.helpers import (
    Run,
    build_args,
    config_copy,
    engine_environ,
    git,
    make_repo,
    run_multibuild,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hello_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Path]:
    tmp = tmp_path_factory.mktemp("hello")
    repo = make_repo("hello-c", tmp / "repo")
    # A submodule (a local path, as in a mirror): the clone must bring it along.
    vendored = tmp / "vendored"
    vendored.mkdir()
    (vendored / "DATA.txt").write_text("vendored data\n")
    git("init", "-q", "-b", "main", cwd=vendored)
    git("add", "-A", cwd=vendored)
    git("commit", "-q", "-m", "data", cwd=vendored)
    git(
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        str(vendored),
        "vendor/data",
        cwd=repo,
    )
    git("commit", "-q", "-m", "add a submodule", cwd=repo)
    git("tag", "-f", "v1.0", cwd=repo)
    # The hooks write down what they were given.
    config = config_copy(
        "hello-c",
        tmp / "config",
        edit={
            "pre_build() {\n": (
                'pre_build() {\n    env > "$MB_WORK_DIR/env-pre_build-$MB_PYTHON_VERSION"\n'
            ),
            "run_tests() {\n": "run_tests() {\n"
            '    echo "tests left out: none" >> "$MB_TEST_NOTES"\n'
            '    { env; echo "PWD=$PWD"; } > '
            '"$MB_WORK_DIR/env-run_tests-$MB_PYTHON_VERSION"\n',
        },
    )
    run = run_multibuild(
        tmp,
        *build_args(repo, config, pythons=("3.11", "3.12")),
    )
    assert run.returncode == 0, run.output
    return run, repo


def hook_env(run: Run, hook: str, python: str) -> dict[str, str]:
    text = (run.work_dir / f"env-{hook}-{python}").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_submodules_are_checked_out(hello_build: tuple[Run, Path]) -> None:
    run, _ = hello_build
    assert (run.work_dir / "src/vendor/data/DATA.txt").read_text() == "vendored data\n"


def test_hooks_get_multibuild_variables(hello_build: tuple[Run, Path]) -> None:
    run, _ = hello_build
    # The prefix is the work dir's, seen through a path of one length wherever the work dir
    # is (the record's inputs name it): a wheel's bytes do not depend on where it was built.
    prefix = run.record()["inputs"]["prefix"]
    if os.geteuid() == 0:
        # As root, one path for every build: a bind mount in a mount namespace of the build's
        # own (this process sees none of it); what pre_build installed there is in the work dir.
        assert prefix == "/tmp/mb-prefix", prefix
        assert any((run.work_dir / "prefix").rglob("libhello*"))
    else:
        assert re.fullmatch(r"/tmp/mb-prefix-\d+", prefix), prefix
        assert Path(prefix).resolve() == (run.work_dir / "prefix").resolve()
    pre = hook_env(run, "pre_build", "3.12")
    assert pre["BUILD_PREFIX"] == prefix
    assert pre["PLAT"] == "x86_64"
    assert pre["MB_PYTHON_VERSION"] == "3.12"
    assert pre["REPO_DIR"] == str(run.work_dir / "src")
    assert pre["CPPFLAGS"].startswith(f"-I{prefix}/include")
    assert pre["PKG_CONFIG_PATH"].startswith(f"{prefix}/lib/pkgconfig")
    assert pre["CMAKE_PREFIX_PATH"].startswith(prefix)
    assert pre["MB_TEST_LEVEL"] == "fast"
    tests = hook_env(run, "run_tests", "3.11")
    # No way back to the prefix or the source tree for the wheel under test.
    assert prefix not in tests.get("LD_LIBRARY_PATH", "")
    assert str(run.work_dir / "prefix") not in tests.get("LD_LIBRARY_PATH", "")
    assert not tests["PWD"].startswith(str(run.work_dir / "src"))
    assert tests["VIRTUAL_ENV"].endswith("test-cp311")
    assert tests["MB_WHEEL"].endswith(".whl")


@pytest.fixture(scope="module")
def fstats_build(tmp_path_factory: pytest.TempPathFactory) -> Run:
    tmp = tmp_path_factory.mktemp("fstats")
    repo = make_repo("fstats", tmp / "repo")
    config = config_copy("fstats", tmp / "config")
    run = run_multibuild(
        tmp,
        *build_args(repo, config, commit="main", test_requires="pytest"),
        "-C",
        "setup-args=-Doptimization=1",
    )
    assert run.returncode == 0, run.output
    return run


def wheel_members(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        return zf.namelist()


def clean_venv_python(tmp: Path, wheel: Path) -> Path:
    """A venv made here, outside the engine, holding only the wheel."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True)
    return python


def test_c_extension_wheels_for_each_python(hello_build: tuple[Run, Path]) -> None:
    run, _ = hello_build
    names = [w.name for w in run.wheels()]
    assert len(names) == 2
    assert any("-cp311-cp311-" in n for n in names)
    assert any("-cp312-cp312-" in n for n in names)
    for wheel in run.wheels():
        grafted = [
            m
            for m in wheel_members(wheel)
            if m.startswith("mb_hello_c.libs/") and not m.endswith("/")
        ]
        assert len(grafted) == 1 and Path(grafted[0]).name.startswith("libhello-"), grafted


def test_auditwheel_show_reports_the_policy(hello_build: tuple[Run, Path]) -> None:
    run, _ = hello_build
    record = run.record()
    for build, wheel in zip(record["builds"], run.wheels(), strict=True):
        shown = subprocess.run(
            [sys.executable, "-m", "auditwheel", "show", str(wheel)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        policy = build["repair"]["policy"]
        assert policy.startswith("manylinux_") and policy.endswith("_x86_64")
        assert f'"{policy}"' in " ".join(shown.split()), shown
        assert policy in wheel.name


def test_record_describes_the_build(hello_build: tuple[Run, Path]) -> None:
    run, repo = hello_build
    record = run.record()
    assert record["status"] == "success" and record["exit_code"] == 0
    assert record["project"] == "mb-hello-c" and record["version"] == "1.0"
    assert record["source"] == {
        "kind": "git",
        "url": str(repo),
        "ref": "v1.0",
        "commit": git("rev-parse", "v1.0^{commit}", cwd=repo),
        "date_epoch": git("log", "-1", "--format=%ct", "v1.0", cwd=repo),
    }
    assert {"auditwheel", "build", "patchelf", "python"} <= set(record["tools"])
    for build in record["builds"]:
        assert build["status"] == "success"
        assert set(build["steps"]) >= {"pre_build", "build", "repair", "test"}
        (wheel,) = build["wheels"]
        path = run.wheelhouse / wheel["name"]
        assert wheel["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert wheel["size"] == path.stat().st_size
        assert build["libraries"][0]["name"] == "libhello"
        assert build["tests"]["notes"] == ["tests left out: none"]  # what run_tests said
    log = run.wheelhouse / record["log"]
    text = log.read_text()
    assert "==> python 3.11: build" in text and "auditwheel" in text
    assert "SUCCESS" in run.output  # the summary


def test_wheel_works_with_the_prefix_gone(hello_build: tuple[Run, Path], tmp_path: Path) -> None:
    run, _ = hello_build
    prefix = run.work_dir / "prefix"
    hidden = run.work_dir / "prefix-hidden"
    prefix.rename(hidden)
    try:
        wheel = next(w for w in run.wheels() if "cp311" in w.name)
        python = clean_venv_python(tmp_path, wheel)
        out = subprocess.run(
            [str(python), "-c", "import hello_c; print(hello_c.add(40, 2), hello_c.greeting())"],
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin"},
        ).stdout
        assert out.strip() == "42 hello from libhello 1.0"
    finally:
        hidden.rename(prefix)


def test_fortran_extension_grafts_libgfortran(fstats_build: Run, tmp_path: Path) -> None:
    (wheel,) = fstats_build.wheels()
    libs = [Path(m).name for m in wheel_members(wheel) if m.startswith("mb_fstats.libs/")]
    assert any(n.startswith("libgfortran-") for n in libs), libs
    assert any(n.startswith("libfstats-") for n in libs), libs
    record = fstats_build.record()
    assert record["builds"][0]["tests"]["counts"] == {"passed": 4}
    # -C config settings reach the backend (meson shows the option it was given).
    log = (fstats_build.wheelhouse / record["log"]).read_text()
    assert re.search(r"optimization\s*:\s*1", log), "config setting did not reach meson"
    # The Fortran runtime now comes from the wheel, not the system.
    shutil.rmtree(fstats_build.work_dir / "prefix")
    python = clean_venv_python(tmp_path, wheel)
    ldd = subprocess.run(
        [str(python), "-c", "import fstats_py._fstats as m; print(m.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout.strip()
    deps = subprocess.run(["ldd", ldd], capture_output=True, text=True, check=True).stdout
    gfortran = next(line for line in deps.splitlines() if "libgfortran" in line)
    assert "mb_fstats.libs" in gfortran, deps
    out = subprocess.run(
        [
            str(python),
            "-c",
            "import fstats_py as f; print(f.format_mean([1, 2]), f.weighted_mean([1, 3], [3, 1]))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert out.split() == ["1.5000", "1.5"]


def sdist_in_an_index(tmp_path: Path) -> tuple[Path, str]:
    """The C fixture's sdist (mb-hello-c 1.0) in a file:// package index at tmp_path/index:
    its path there and its sha256."""
    repo = make_repo("hello-c", tmp_path / "repo")
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path / "dist"), str(repo)],
        check=True,
        capture_output=True,
    )
    (sdist,) = (tmp_path / "dist").glob("*.tar.gz")
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    index = tmp_path / "index" / "mb-hello-c"
    index.mkdir(parents=True)
    shutil.copy(sdist, index / sdist.name)
    (index / "index.html").write_text(
        f'<html><body><a href="{sdist.name}#sha256={digest}">{sdist.name}</a></body></html>'
    )
    return index / sdist.name, digest


def test_sdist_route(tmp_path: Path) -> None:
    """--sdist NAME==VERSION from a package index pip is configured with (here an extra
    file:// index), its sha256 checked."""
    sdist, digest = sdist_in_an_index(tmp_path)
    config = config_copy("hello-c", tmp_path / "config")
    # The config in a repository of its own, as in this wheels repository: its commit is
    # recorded as the recipe that built the wheels.
    git("init", "-q", "-b", "main", cwd=config.parent)
    git("add", "config.sh", cwd=config.parent)
    git("commit", "-q", "-m", "recipe", cwd=config.parent)
    recipe = git("rev-parse", "HEAD", cwd=config.parent)
    run = run_multibuild(
        tmp_path,
        "build",
        "--sdist",
        "mb-hello-c==1.0",
        "--config",
        str(config),
        "--python",
        "3.11",
        "--test-requires",
        "",
        env={"PIP_EXTRA_INDEX_URL": (tmp_path / "index").as_uri()},
    )
    assert run.returncode == 0, run.output
    assert run.record()["recipe"] == {"commit": recipe, "modified": "no"}
    source = run.record()["source"]
    # SOURCE_DATE_EPOCH of an sdist build: its PKG-INFO's date (not when it was downloaded).
    with tarfile.open(sdist) as archive:
        [pkg_info] = [m for m in archive.getmembers() if m.name.count("/") == 1
                      and m.name.endswith("/PKG-INFO")]  # fmt: skip
    date = str(int(pkg_info.mtime))
    assert source == {"kind": "sdist", "path": sdist.name, "sha256": digest, "date_epoch": date}
    assert len(run.wheels()) == 1

    # The same index with a wrong hash: refused before anything is built.
    (sdist.parent / "index.html").write_text(f'<a href="{sdist.name}#sha256={"0" * 64}">x</a>')
    bad = run_multibuild(
        tmp_path,
        "build",
        "--sdist",
        "mb-hello-c==1.0",
        "--config",
        str(config),
        "--python",
        "3.11",
        work_dir=tmp_path / "work2",
        env={"PIP_EXTRA_INDEX_URL": (tmp_path / "index").as_uri()},
    )
    assert bad.returncode == 3, bad.output
    assert "sha256 mismatch" in bad.output
    assert "mb-hello-c mb-hello-c==1.0: FAILED (exit code 3)" in bad.output

    # Both builds on the history page: the sdist labelled as one, with its sha256 (not in a
    # commit column where it would pass for a git hash); the failed build's reason on its row.
    container = tmp_path / "container"
    upload = subprocess.run(
        [sys.executable, "-m", "multibuild", "upload", "--container", str(container),
         "--channel", "pre-release", str(run.wheelhouse)],
        cwd=tmp_path, env=engine_environ(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert upload.returncode == 0, upload.stdout + upload.stderr
    rows = {
        "failed" if 'class="build failed"' in row else "success": row
        for row in (container / "history.html").read_text().split("<tr ")[1:]
        if row.startswith('class="build')
    }
    good_row, bad_row = rows["success"], rows["failed"]
    assert '<td class="version">1.0</td>' in good_row
    assert f'<td class="source sdist" title="{digest}">sdist {sdist.name}<br>sha256 ' in good_row
    assert '<td class="python">3.11</td>' in good_row
    assert f'<td class="recipe" title="{recipe}">{recipe[:12]}</td>' in good_row
    assert '<td class="python">(none started)</td>' in bad_row
    assert '<td class="source sdist" title="">sdist mb-hello-c==1.0</td>' in bad_row
    assert '<div class="reason">' in bad_row and "sha256 mismatch" in bad_row


def test_plat_chooses_the_policy(tmp_path: Path) -> None:
    repo = make_repo("hello-c", tmp_path / "repo")
    config = config_copy("hello-c", tmp_path / "config")
    run = run_multibuild(
        tmp_path,
        *build_args(repo, config),
        "--plat",
        "manylinux_2_17_x86_64",
    )
    assert run.returncode == 0, run.output
    (wheel,) = run.wheels()
    # The requested policy is among the wheel's tags (the default build has only 2_5 ones).
    tags = wheel.name.removesuffix(".whl").split("-")[-1].split(".")
    assert "manylinux_2_17_x86_64" in tags, wheel.name
    repair = run.record()["builds"][0]["repair"]
    assert repair["requested_plat"] == repair["policy"] == "manylinux_2_17_x86_64"


def test_an_unreachable_pinned_release_builds_its_sdist_from_the_index(tmp_path: Path) -> None:
    """By hand, settings.toml pinning a release (v1.0) of a repository that does not answer
    (a loopback port with nothing listening): the release's sdist from the package index
    (an extra file:// index here), said loudly, the record naming the sdist and its sha256.
    An explicit --repo insists on git."""
    _, digest = sdist_in_an_index(tmp_path)
    wheels = tmp_path / "wheels-repo"
    config_copy("hello-c", wheels / "cfg")
    (wheels / "settings.toml").write_text(
        '[project]\nname = "mb-hello-c"\nrepo = "https://127.0.0.1:9/mb-hello-c.git"\n'
        'BUILD_COMMIT = "v1.0"\nconfig = "cfg/config.sh"\n'
    )
    env = {"PIP_EXTRA_INDEX_URL": (tmp_path / "index").as_uri()}
    run = run_multibuild(wheels, "build", "--python", "3.11", "--test-requires", "", env=env)
    assert run.returncode == 0, run.output
    assert "cannot be reached from here: building mb-hello-c==1.0, the released sdist" in run.output
    source = run.record()["source"]
    assert source["kind"] == "sdist" and source["sha256"] == digest
    assert len(run.wheels()) == 1
    insisted = run_multibuild(
        wheels, "build", "--python", "3.11", "--repo", "https://127.0.0.1:9/mb-hello-c.git",
        wheelhouse=tmp_path / "insisted", env=env,
    )  # fmt: skip
    assert insisted.returncode == 3 and "cannot clone" in insisted.output
    assert "cannot be reached from here" not in insisted.output
