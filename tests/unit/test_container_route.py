"""The container route's decisions, in-process: the local image's recipe and content keys,
the Debian archive found in apt sources, the engine's settings and failures, the options
cibuildwheel gets (read back with cibuildwheel's own parser), and the plans of Linux jobs
with the local image. No container engine runs here: where a plan asks whether one answers,
the answer is given."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from cibuildwheel.oci_container import OCIContainerEngineConfig

from multibuild.ci import channels, providers
from multibuild.ci import plan as cijob
from multibuild.ci.jobs import runnable_here
from multibuild.cibuildwheel.config import render
from multibuild.cibuildwheel.container import ContainerChoice, PreparedContainer, choose_container
from multibuild.cibuildwheel.route import render_settings
from multibuild.debian.archive import archives_from, entries_from_list, entries_from_sources
from multibuild.errors import ConfigurationError, ContainerError, LibraryError
from multibuild.images import recipe
from multibuild.images.build import Cross, content_keys, simulated_packages
from multibuild.images.emulation import emulation_problem, read_handler
from multibuild.images.oci import (
    Engine,
    containers_conf,
    engine_environ,
    engine_failure,
    find_engine,
)
from multibuild.images.record import ImageRecord, label
from multibuild.matrix import find_job
from multibuild.options import BuildArguments, EnvironmentOptions, resolve_build_options
from multibuild.platforms.linux import LinuxPlatform
from multibuild.settings import load_settings
from multibuild.util.pythons import PythonVersion
from tests.helpers import REPO_ROOT

SETTINGS = load_settings(REPO_ROOT / "settings.toml")
V = PythonVersion.parse

SIMULATION = """\
I: automatically chosen mode: root
Inst gcc-10-base (10.2.1-6 Debian:11.11/oldoldstable [amd64])
Inst libc6 (2.31-13+deb11u14 Debian-Security:11/oldoldstable-security [amd64]) []
Inst libgcc-s1 (10.2.1-6 Debian:11.11/oldoldstable [amd64])
Conf libc6 (2.31-13+deb11u14 Debian-Security:11/oldoldstable-security [amd64])
"""


def test_apt_resolution_gives_the_package_list() -> None:
    assert simulated_packages(SIMULATION) == {
        "gcc-10-base": "10.2.1-6",
        "libc6": "2.31-13+deb11u14",
        "libgcc-s1": "10.2.1-6",
    }


def test_content_keys_change_with_content_only() -> None:
    spec = recipe.image_spec([V("3.11"), V("3.13")], machine="x86_64")
    packages = simulated_packages(SIMULATION)
    keys = content_keys(spec, packages)
    assert keys == content_keys(spec, dict(reversed(packages.items())))  # order: no matter
    assert len(keys.cpythons) == 2 and len({keys.base, *keys.cpythons, keys.final}) == 4
    # A security update of any package of the root: every stage is rebuilt.
    updated = content_keys(spec, {**packages, "libc6": "2.31-13+deb11u15"})
    assert updated.base != keys.base and updated.final != keys.final
    assert not set(updated.cpythons) & set(keys.cpythons)
    # Another CPython source: only its stage and the final one change.
    newer = dataclasses.replace(recipe.SOURCES["3.13"], orig_sha256="0" * 64)
    other = dataclasses.replace(
        spec, cpythons=(spec.cpythons[0], dataclasses.replace(spec.cpythons[1], source=newer))
    )
    changed = content_keys(other, packages)
    assert changed.base == keys.base and changed.cpythons[0] == keys.cpythons[0]
    assert changed.cpythons[1] != keys.cpythons[1] and changed.final != keys.final
    # The image with one CPython fewer is another image.
    assert content_keys(recipe.image_spec([V("3.11")]), packages).final != keys.final


def test_the_recipe_says_which_pythons_debian_gives() -> None:
    builds = recipe.cpython_builds([V("3.13t"), V("3.11")])
    assert [b.tag for b in builds] == ["cp311-cp311", "cp313-cp313t"]
    assert [b.prefix for b in builds] == [
        "/opt/_internal/cpython-3.11.2",
        "/opt/_internal/cpython-3.13.15-nogil",
    ]
    with pytest.raises(ConfigurationError, match=r"Debian has no python3\.12 source package"):
        recipe.cpython_builds([V("3.12")])
    with pytest.raises(ConfigurationError, match=r"serves none of its files \(404"):
        recipe.cpython_builds([V("3.14t")])
    pythons, notes = recipe.image_pythons([], ["3.11", "3.12", "3.13", "3.13t", "3.14"])
    assert [str(v) for v in pythons] == ["3.11", "3.13", "3.13t"]
    assert [n.split(":")[0] for n in notes] == [
        "CPython 3.12 of the matrix is not in the local image",
        "CPython 3.14 of the matrix is not in the local image",
    ]
    spec = recipe.image_spec([V("3.11")], machine="x86_64")
    assert spec.repository == "localhost/multibuild-manylinux_2_31_x86_64"
    assert spec.platform_tag == "manylinux_2_31_x86_64"
    with pytest.raises(ConfigurationError, match=r"glibc 2\.31 \(bullseye\), not 2\.17"):
        recipe.image_spec([V("3.11")], glibc="2.17")
    with pytest.raises(
        ConfigurationError, match=r"made on aarch64 or x86_64 machines, not ppc64le"
    ):
        recipe.image_spec([V("3.11")], machine="ppc64le")
    # Another architecture: its own repository and tag, foreign on this machine only.
    arm = recipe.image_spec([V("3.11")], machine="x86_64", arch="arm64")
    assert arm.arch == "aarch64" and arm.foreign
    assert arm.repository == "localhost/multibuild-manylinux_2_31_aarch64"
    assert arm.platform_tag == "manylinux_2_31_aarch64"
    assert not recipe.image_spec([V("3.11")], machine="aarch64").foreign
    with pytest.raises(ConfigurationError, match=r"--arch s390x: the local image is made for"):
        recipe.image_spec([V("3.11")], machine="x86_64", arch="s390x")


def test_a_foreign_image_is_keyed_by_its_cross_build_too() -> None:
    spec = recipe.image_spec([V("3.11")], machine="x86_64", arch="aarch64")
    packages = simulated_packages(SIMULATION)
    cross = Cross("aarch64-linux-gnu", "12.2.0", {"3.11": ("/usr/bin/python3.11", "3.11.2")})
    keys = content_keys(spec, packages, cross)
    assert keys.base != content_keys(recipe.image_spec([V("3.11")]), packages).base  # its arch
    newer = content_keys(spec, packages, dataclasses.replace(cross, compiler="12.3.0"))
    assert newer.base == keys.base and newer.cpythons != keys.cpythons
    python = dataclasses.replace(cross, build_pythons={"3.11": ("/x/python3.11", "3.11.9")})
    assert content_keys(spec, packages, python).cpythons != keys.cpythons
    # Where the build Python lives is no part of the content.
    moved = dataclasses.replace(cross, build_pythons={"3.11": ("/x/python3.11", "3.11.2")})
    assert content_keys(spec, packages, moved) == keys


def test_emulation_is_read_from_binfmt_misc(tmp_path: Path) -> None:
    """binfmt_misc's files as the kernel writes them (a directory standing for /proc's)."""
    assert emulation_problem("x86_64", machine="x86_64", binfmt_misc=tmp_path) is None
    assert emulation_problem("aarch64", machine="aarch64", binfmt_misc=tmp_path) is None
    problem = emulation_problem("aarch64", machine="x86_64", binfmt_misc=tmp_path)
    assert problem is not None and "binfmt_misc is not mounted" in problem
    assert "qemu-user-static binfmt-support" in problem and "mount -t binfmt_misc" in problem
    (tmp_path / "status").write_text("enabled\n")
    problem = emulation_problem("aarch64", machine="x86_64", binfmt_misc=tmp_path)
    assert problem is not None and "no qemu-aarch64 handler is registered" in problem
    entry = (
        "{state}\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: {flags}\n"
        "offset 0\nmagic 7f454c460201010000000000000000000200b700\n"
    )
    (tmp_path / "qemu-aarch64").write_text(entry.format(state="disabled", flags="PF"))
    problem = emulation_problem("aarch64", machine="x86_64", binfmt_misc=tmp_path)
    assert problem is not None and "handler is disabled" in problem
    assert "update-binfmts --enable qemu-aarch64" in problem
    (tmp_path / "qemu-aarch64").write_text(entry.format(state="enabled", flags="P"))
    problem = emulation_problem("aarch64", machine="x86_64", binfmt_misc=tmp_path)
    assert problem is not None and "lacks the F flag (flags P)" in problem
    (tmp_path / "qemu-aarch64").write_text(entry.format(state="enabled", flags="PF"))
    assert emulation_problem("aarch64", machine="x86_64", binfmt_misc=tmp_path) is None
    handler = read_handler("aarch64", tmp_path)
    assert handler.usable and handler.interpreter.endswith("aarch64-binfmt-P")


def test_the_debian_archive_comes_from_the_apt_sources() -> None:
    deb822 = (
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "# Types: deb\n# URIs: http://disabled.example/debian\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security/\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "Types: deb\nURIs: https://other.example/node\nSuites: nodistro\nEnabled: no\n"
    )
    archives = archives_from(entries_from_sources(deb822))
    assert archives.debian == "http://mirror.example/debian"
    assert archives.security == "http://mirror.example/debian-security"
    assert archives.suite_sources("bullseye") == [
        "deb http://mirror.example/debian bullseye main",
        "deb http://mirror.example/debian bullseye-updates main",
        "deb http://mirror.example/debian-security bullseye-security main",
    ]
    [text] = archives.source_entries(("trixie", "sid")).values()
    assert "Types: deb-src\n" in text and "Suites: trixie sid\n" in text
    one_line = "deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n"
    assert archives_from(entries_from_list(one_line)).keyring == "/k.gpg"
    with pytest.raises(LibraryError, match=r"URI ends in /debian"):
        archives_from(entries_from_list("deb https://other.example/apt stable main\n"))


def test_podman_settings_go_to_our_containers_conf(tmp_path: Path) -> None:
    assert "default_ulimits = []" in containers_conf(runc=False)
    assert 'runtime = "runc"' not in containers_conf(runc=False)
    assert 'runtime = "runc"' in containers_conf(runc=True)
    made = engine_environ("podman", {"PATH": ""}, tmp_path)
    assert made == {"CONTAINERS_CONF": str(tmp_path / "containers.conf")}
    assert "default_ulimits = []" in (tmp_path / "containers.conf").read_text()
    # A containers.conf of the user's own is theirs; docker has none.
    assert engine_environ("podman", {"CONTAINERS_CONF": "/mine.conf"}, tmp_path / "x") == {}
    assert engine_environ("docker", {}, tmp_path / "y") == {}


def test_no_engine_is_one_clear_error() -> None:
    with pytest.raises(ContainerError) as raised:
        find_engine(None, {}, None, which=lambda name: None)
    message = str(raised.value)
    assert "docker is not installed" in message and "podman is not installed" in message
    assert "apt-get install podman runc catatonit" in message and "--builder host" in message
    assert raised.value.return_code == 13
    with pytest.raises(ContainerError, match="--container-engine is docker or podman"):
        find_engine("rkt", {}, None, which=lambda name: None)


def test_engine_failures_are_told_apart_from_build_failures() -> None:
    refused = (
        "+ podman version -f '{{json .}}'\nError: unable to start container 0f1e: runc: runc "
        "create failed: error setting rlimit type 7: operation not permitted: OCI permission "
        "denied\nTraceback (most recent call last):\nRuntimeError: Failed to read the return "
        "code, the container shell has exited"
    )
    assert engine_failure(refused) == (
        "RuntimeError: Failed to read the return code, the container shell has exited"
    )
    missing = "Error: initializing source docker://localhost/x:y: pinging container registry"
    assert engine_failure(missing)
    assert engine_failure("error: command 'gcc' failed: No such file or directory") is None


def test_cibuildwheel_reads_the_container_options_as_meant() -> None:
    engine = Engine("podman", "/usr/bin/podman", {"CONTAINERS_CONF": "/c/containers.conf"})
    prepared = PreparedContainer(
        choice=choose_container(None, "podman", on_ci=False, official="manylinux_2_28"),
        engine=engine,
        reference="localhost/multibuild-manylinux_2_31_x86_64:0123456789abcdef",
        create_args=(
            "--volume=/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro",
            "--volume=/my mirror:/tmp/multibuild/mirrors/0:ro",
        ),
        host_environ={
            "CONTAINERS_CONF": "/c/containers.conf",
            "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt",
        },
        passed=("MB_TEST_LEVEL", "PIP_CERT", "SCIPY_TEST_MODULES"),
    )
    env = prepared.cibuildwheel_environ("x86_64")
    config = OCIContainerEngineConfig.from_config_string(env["CIBW_CONTAINER_ENGINE"])
    assert config.name == "podman" and config.disable_host_mount
    assert config.create_args == prepared.create_args  # quoting survives cibuildwheel's split
    assert env["CIBW_MANYLINUX_X86_64_IMAGE"] == prepared.reference
    # A musllinux build's image is cibuildwheel's musllinux option, never the manylinux one.
    musl = prepared.cibuildwheel_environ("aarch64", musl=True)
    assert musl["CIBW_MUSLLINUX_AARCH64_IMAGE"] == prepared.reference
    assert not any(name.startswith("CIBW_MANYLINUX") for name in musl)
    assert env["CIBW_ENVIRONMENT_PASS_LINUX"] == "MB_TEST_LEVEL PIP_CERT SCIPY_TEST_MODULES"
    assert env["CONTAINERS_CONF"] == "/c/containers.conf"
    # The official image on CI: cibuildwheel.toml's image and engine, only the hooks' variables.
    on_ci = PreparedContainer(
        choice=choose_container(None, None, on_ci=True, official="manylinux_2_28"),
        engine=None,
        reference="manylinux_2_28",
    )
    assert on_ci.cibuildwheel_environ("x86_64") == {"CIBW_ENVIRONMENT_PASS_LINUX": "MB_TEST_LEVEL"}


def test_the_container_is_decided_once_per_run() -> None:
    assert choose_container(None, None, on_ci=True, official="manylinux_2_28").origin == "official"
    here = choose_container(None, None, on_ci=False, official="manylinux_2_28")
    assert here.origin == "local" and "Debian bullseye" in here.describe()
    given = choose_container("localhost/mine:1", "docker", on_ci=False, official="x")
    assert given.origin == "given" and given.describe() == "the image localhost/mine:1 (docker)"
    with pytest.raises(ConfigurationError, match="--container-engine is one of docker, podman"):
        choose_container(None, "lxc", on_ci=False, official="x")
    with pytest.raises(ConfigurationError, match="official, local or an image reference"):
        choose_container("my image", None, on_ci=False, official="x")


def test_a_linux_job_here_plans_the_local_image() -> None:
    info = providers.detect({}, git_branch=lambda: "main")
    decision = channels.decide(info, SETTINGS)
    container = choose_container(None, "podman", on_ci=False, official="manylinux_2_28")
    plan = cijob.make_plan(
        SETTINGS,
        find_job(SETTINGS, "cp311-manylinux_x86_64"),
        info,
        decision,
        builder="cibuildwheel",
        engine=lambda: "podman",
        container=container,
    )
    steps = dict(plan.steps)
    assert list(steps)[:2] == ["image", "source"]
    assert "in the local image's container" in steps["build"]
    text = plan.describe()
    assert "image    the local image made from Debian bullseye packages (glibc 2.31" in text
    assert plan.to_json()["image"] == {"image": "local", "engine": "podman", "origin": "local"}
    # CPython 3.12 has no Debian source: the job cannot run in the local image, and says so.
    plan12 = cijob.make_plan(
        SETTINGS,
        find_job(SETTINGS, "cp312-manylinux_x86_64"),
        info,
        decision,
        builder="cibuildwheel",
        engine=lambda: "podman",
        container=container,
    )
    assert not plan12.runnable.ok
    assert "the local image cannot hold CPython 3.12: Debian has no python3.12" in (
        plan12.runnable.reason
    )
    job = find_job(SETTINGS, "cp312-manylinux_x86_64")
    assert runnable_here(job, "host", os_name="linux", machine="x86_64", local_image=True).ok


def test_any_projects_cibuildwheel_toml_comes_from_its_options(tmp_path: Path) -> None:
    config = tmp_path / "proj-config" / "config.sh"
    config.parent.mkdir()
    config.write_text("pre_build() { :; }\nrun_tests() { :; }\n")
    options = resolve_build_options(
        BuildArguments(
            repo="/src/x",
            commit="v1",
            config=str(config),
            python=("3.11",),
            test_requires="pytest",
            config_setting=("setup-args=-Dblas=none",),
        ),
        settings=None,
        env_options=EnvironmentOptions(),
        platform=LinuxPlatform(),
        environ={},
        cwd=tmp_path,
    )
    job = find_job(SETTINGS, "cp311-manylinux_x86_64")
    stage = tmp_path / "stage"
    settings = render_settings(options, [job], stage, "manylinux_2_28")
    text = render(settings)
    assert 'build = [\n    "cp311-manylinux_x86_64",\n]' in text
    assert 'MB_CONFIG = "config/config.sh"' in text
    assert 'test-requires = ["pytest"]' in text
    assert 'config-settings = { setup-args = "-Dblas=none" }' in text
    assert "[tool.cibuildwheel.macos]" not in text


def test_the_image_record_round_trips_and_its_labels_summarize_it() -> None:
    record = ImageRecord(
        reference="localhost/multibuild-manylinux_2_31_x86_64:0123456789abcdef",
        content_key="0123456789abcdef" + "0" * 48,
        suite="bullseye",
        glibc="2.31",
        libc6="2.31-13+deb11u14",
        platform_tag="manylinux_2_31_x86_64",
        pythons={
            "cp311-cp311": {
                "version": "3.11.2",
                "source": {
                    "file": "python3.11_3.11.2.orig.tar.gz",
                    "sha256": "ab" * 32,
                    "package": "python3.11",
                    "debian_version": "3.11.2-6+deb12u8",
                },
            }
        },
        tools={"gcc": "10.2.1-6", "auditwheel": "6.8.2"},
        packages={"libc6": "2.31-13+deb11u14", "gcc-10": "10.2.1-6"},
    )
    assert ImageRecord.from_json(record.to_json()) == record
    labels = record.labels()
    assert labels[label("pythons")] == "cp311-cp311=3.11.2"
    assert labels[label("cpython-sources")] == f"python3.11_3.11.2.orig.tar.gz=sha256:{'ab' * 32}"
    back = ImageRecord.from_labels(record.reference, labels)
    assert back is not None and back.content_key == record.content_key
    assert back.glibc == "2.31" and back.pythons["cp311-cp311"]["version"] == "3.11.2"
    assert "Debian bullseye, glibc 2.31 (libc6 2.31-13+deb11u14), 2 packages" in record.summary()
    assert ImageRecord.from_json({"schema": 1, "kind": "something else"}) is None


def test_variables_for_the_container_are_named_by_a_knob() -> None:
    env_options = EnvironmentOptions.from_environ(
        {"MB_CONTAINER_ENV": "SCIPY_TEST_MODULES, OMP_NUM_THREADS"}
    )
    assert env_options.container_env == ("SCIPY_TEST_MODULES", "OMP_NUM_THREADS")
    with pytest.raises(ConfigurationError, match="MB_CONTAINER_ENV: 'A=B' is not a variable"):
        EnvironmentOptions.from_environ({"MB_CONTAINER_ENV": "A=B"})


def test_a_ci_run_keeps_the_official_image() -> None:
    info = providers.detect(
        {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push", "GITHUB_REF_NAME": "main"},
        git_branch=lambda: None,
    )
    plan = cijob.make_plan(
        SETTINGS,
        find_job(SETTINGS, "cp312-manylinux_x86_64"),
        info,
        channels.decide(info, SETTINGS),
        builder="cibuildwheel",
        engine=lambda: "docker",
    )
    assert plan.container == ContainerChoice("official", None, "manylinux_2_28", on_ci=True)
    assert plan.runnable.ok  # no local image: every CPython of the matrix
    assert "in a manylinux_2_28 container" in dict(plan.steps)["build"]


def test_the_build_cache_mount_reaches_the_official_image_on_ci(tmp_path: Path) -> None:
    """On CI (cibuildwheel's default engine and the official image) the build cache's mount
    still goes in: docker named with the create_args, the image left to cibuildwheel.toml."""
    on_ci = PreparedContainer(
        choice=choose_container(None, None, on_ci=True, official="manylinux_2_28"),
        engine=None,
        reference="manylinux_2_28",
        create_args=("--volume", f"{tmp_path}/cache dir:/tmp/multibuild/cache"),
        passed=("MB_TEST_LEVEL", "CCACHE_DIR"),
    )
    env = on_ci.cibuildwheel_environ("x86_64")
    config = OCIContainerEngineConfig.from_config_string(env["CIBW_CONTAINER_ENGINE"])
    assert config.name == "docker" and config.create_args == on_ci.create_args
    assert config.disable_host_mount
    assert not any(name.startswith(("CIBW_MANYLINUX", "CIBW_MUSLLINUX")) for name in env)
    assert env["CIBW_ENVIRONMENT_PASS_LINUX"] == "MB_TEST_LEVEL CCACHE_DIR"
