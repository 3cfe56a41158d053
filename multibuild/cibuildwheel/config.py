"""cibuildwheel's configuration, generated from settings.toml, and how the CI jobs run it.

cibuildwheel builds each job in CI (Linux wheels in manylinux containers; macOS and Windows on
the runner). The hooks are written once, in config.sh: cibuildwheel's before-build runs its
pre_build (the libraries, built fresh into a fixed prefix), its test-command runs run_tests
in cibuildwheel's clean test venv, both through scripts/cibw-step; the repair is auditwheel,
delocate or delvewheel with the prefix on their search paths. `environment` carries the prefix
variables and settings' [libraries] and [hook_env], so nothing inside the container needs to
read settings.toml.
"""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from multibuild import platforms
from multibuild.errors import ConfigurationError
from multibuild.matrix import (
    ACCELERATE,
    Job,
    accelerate_targets,
    deployment_targets,
    jobs,
    macos_platform_tag,
    variant_build,
    wheel_targets,
)
from multibuild.settings import Settings
from multibuild.util.cmd import run

CONFIG_FILE = "cibuildwheel.toml"
STEP = "python {project}/scripts/cibw-step"
# Placeholders only the engine's own pipeline fills (its fixed build dir, job count).
ENGINE_PLACEHOLDERS = ("{build_dir}", "{work_dir}", "{python}", "{jobs}")


def environment(settings: Settings, os_name: str) -> dict[str, str]:
    """cibuildwheel's `environment` for one OS: prefix variables appended to the runner's own
    ($VAR), then the hooks' variables from settings.toml."""
    platform = platforms.by_name(os_name)
    prefix = platform.ci_prefix
    names = (
        "CPPFLAGS",
        "LDFLAGS",
        "PKG_CONFIG_PATH",
        "CMAKE_PREFIX_PATH",
        "PATH",
        "INCLUDE",
        "LIB",
        platform.library_path_var,
    )
    env = {
        # config.sh relative to the repository ({project}; scripts/cibw-step resolves it)
        "MB_CONFIG": settings.project.config.relative_to(settings.root).as_posix(),
        "MB_PREFIX": str(prefix),
        "MB_CACHE_DIR": str(prefix.parent / "cache"),
        **platform.prefix_env(prefix, {n: f"${n}" for n in names}, pathsep=platform.pathsep),
    }
    for library, version in sorted(settings.libraries.items()):
        env[f"{library.upper()}_VERSION"] = version
    env.update(sorted(settings.hook_env.items()))
    for name, value in env.items():
        if '"' in value:
            raise ConfigurationError(f"{name}: a value for cibuildwheel may not hold a quote")
    return env


def repair_command(settings: Settings, os_name: str, plat: str | None = None) -> str:
    """cibuildwheel's repair-wheel-command for an OS (for a macOS PLAT whose wheels are
    retagged, with the retag after delocate)."""
    platform = platforms.by_name(os_name)
    extra = settings.ci.windows_repair_args if os_name == "windows" else ()
    command = platform.cibuildwheel_repair_command(platform.ci_prefix, extra)
    tag = wheel_targets(settings).get(plat or "") if os_name == "macos" else None
    if plat is None or tag is None:
        return command
    built = deployment_targets(settings)[plat]
    old, new = macos_platform_tag(plat, built), macos_platform_tag(plat, tag)
    return f"{command} && {STEP} retag {{dest_dir}} {old} {new}"


def test_command(test_sources: Sequence[str]) -> str:
    for name in test_sources:
        if not name or any(c in name for c in "\"'\\ $`") or name.startswith("-"):
            raise ConfigurationError(f"[build] test_sources: {name!r} is not a plain path")
    return " ".join([f"{STEP} run_tests {{package}}", *test_sources])


def config_settings(settings: Settings) -> list[str]:
    return [
        s for s in settings.build.config_settings if not any(p in s for p in ENGINE_PLACEHOLDERS)
    ]


def _toml(value: object) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)  # TOML's basic strings and arrays read JSON's


def render(settings: Settings) -> str:
    all_jobs = jobs(settings)
    lines = [
        "# Generated from settings.toml by `python -m multibuild check-config --write`.",
        "# cibuildwheel's configuration for the CI jobs: `python -m multibuild ci` runs",
        "# `cibuildwheel --config-file cibuildwheel.toml --only <job>`. The hooks live in",
        "# config.sh: before-build runs its pre_build (the libraries, built fresh into",
        "# MB_PREFIX), test-command its run_tests in cibuildwheel's clean test venv.",
        "[tool.cibuildwheel]",
        "# Exactly the jobs of settings.toml's [matrix] (an Accelerate job builds its",
        "# PLAT's identifier: see the end of this file).",
        "build = [",
        *(f"    {_toml(build_id)}," for build_id in dict.fromkeys(j.build_id for j in all_jobs)),
        "]",
    ]
    if any(j.version.free_threaded and j.version.minor == 13 for j in all_jobs):
        lines += [
            "# cp313t is opt-in (cibuildwheel 3.x; 4.x cannot build it: pyproject.toml pins 3.x).",
            'enable = ["cpython-freethreading"]',
        ]
    lines += [
        'build-frontend = "build"',
    ]
    pairs = dict(s.split("=", 1) for s in config_settings(settings) if "=" in s)
    if pairs:
        lines.append(f"config-settings = {_toml(pairs)}")
    lines += [
        "build-verbosity = 1",
        f'before-build = "{STEP} pre_build {{package}}"',
        f"test-requires = {_toml(list(settings.build.test_requires))}",
        # The step copies test_sources from {package} into its own test directory, as the
        # engine's test step does (cibuildwheel's test-sources would copy from the wheels
        # repository, where the project's source is not).
        f"test-command = {_toml(test_command(settings.build.test_sources))}",
    ]
    for os_name in ("linux", "macos", "windows"):
        archs = list(dict.fromkeys(j.plat for j in all_jobs if j.os == os_name))
        if not archs:
            continue
        lines += ["", f"[tool.cibuildwheel.{os_name}]", f"archs = {_toml(archs)}"]
        if os_name == "linux":
            for arch in settings.matrix.linux:
                lines.append(f"manylinux-{arch}-image = {_toml(settings.ci.manylinux_image)}")
            for arch in settings.matrix.musllinux:
                lines.append(f"musllinux-{arch}-image = {_toml(settings.ci.musllinux_image)}")
        repair = repair_command(settings, os_name)
        if os_name == "windows" and settings.ci.windows_repair_args:
            lines.append("# With settings.toml's [ci] windows_repair_args (it says why).")
        lines.append(f"repair-wheel-command = {_toml(repair)}")
        lines.append(f"[tool.cibuildwheel.{os_name}.environment]")
        lines += [f"{k} = {_toml(v)}" for k, v in environment(settings, os_name).items()]
    retagged = wheel_targets(settings)
    for plat, target in deployment_targets(settings).items():
        lines += [
            "",
            "# The oldest macOS the wheel supports: compilers and delocate target it.",
            "[[tool.cibuildwheel.overrides]]",
            f"select = {_toml(f'*-macosx_{plat}')}",
            'inherit.environment = "append"',
            f"environment = {_toml({'MACOSX_DEPLOYMENT_TARGET': target})}",
        ]
        if plat in retagged:
            lines[-4:-4] = [
                f"# Built for {target}, tagged {retagged[plat]} after delocate "
                "([ci] macos_wheel_targets).",
            ]
            lines.append(f"repair-wheel-command = {_toml(repair_command(settings, 'macos', plat))}")
    accelerate = [j for j in all_jobs if j.variant == ACCELERATE]
    if accelerate:
        targets = ", ".join(f"{p}={t}" for p, t in accelerate_targets(settings.matrix).items())
        lines += [
            "",
            f"# The Accelerate jobs ({accelerate[0].id}, ...) build the same identifiers with",
            f"# MACOSX_DEPLOYMENT_TARGET of [matrix] macos_accelerate ({targets}),",
            "# MB_BLAS=accelerate and config settings "
            f"{' '.join(settings.matrix.accelerate_config_settings) or '(none)'}:",
            "# `python -m multibuild ci` passes them as CIBW_ENVIRONMENT_MACOS and",
            "# CIBW_CONFIG_SETTINGS_MACOS (no override can select a variant).",
        ]
    compilers = dict(entry.split("=", 1) for entry in settings.ci.windows_arm64_compilers)
    if compilers and any(j.build_id.endswith("-win_arm64") for j in all_jobs):
        lines += [
            "",
            "# No gcc or gfortran targets Windows ARM64: LLVM's compilers do (the workflow",
            "# installs them).",
            "[[tool.cibuildwheel.overrides]]",
            'select = "*-win_arm64"',
            'inherit.environment = "append"',
            f"environment = {_toml(compilers)}",
        ]
    return "\n".join(lines) + "\n"


def job_environ(settings: Settings, job: Job) -> dict[str, str]:
    """The CIBW_* variables a job's variant needs besides cibuildwheel.toml; {} for most.
    An Accelerate job shares cibuildwheel's build identifier with its PLAT's OpenBLAS job,
    so no override can select it: its whole environment and config settings, with the
    variant's (matrix.variant_build), replace the file's for this run."""
    if job.variant != ACCELERATE:
        return {}  # the file's overrides give the others their deployment target
    variables, extra_settings = variant_build(settings, job)
    env = {**environment(settings, job.os), **variables}
    settings_list = [*config_settings(settings), *extra_settings]
    suffix = job.os.upper()
    return {
        f"CIBW_ENVIRONMENT_{suffix}": " ".join(f'{k}="{v}"' for k, v in env.items()),
        f"CIBW_CONFIG_SETTINGS_{suffix}": " ".join(shlex.quote(s) for s in settings_list),
    }


def command(job: Job, package: Path, output_dir: Path, config_file: Path) -> list[str]:
    """The cibuildwheel command that runs `job` (and only it)."""
    return [
        sys.executable,
        "-m",
        "cibuildwheel",
        "--only",
        job.build_id,
        "--config-file",
        str(config_file),
        "--output-dir",
        str(output_dir),
        str(package),
    ]


def clean_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment without CIBW_* variables, which would override the generated config."""
    return {k: v for k, v in environ.items() if not k.startswith("CIBW_")}


def build_identifiers(config_file: Path, platform: str, environ: Mapping[str, str]) -> list[str]:
    """What cibuildwheel itself selects from `config_file` on `platform` (linux, macos,
    windows): `cibuildwheel --print-build-identifiers`, which needs no container."""
    with tempfile.TemporaryDirectory(prefix="mb-cibw-") as tmp:
        # A package of no requires-python, so only the configuration selects.
        (Path(tmp) / "pyproject.toml").write_text('[project]\nname = "probe"\nversion = "0"\n')
        done = run(
            [
                sys.executable,
                "-m",
                "cibuildwheel",
                "--print-build-identifiers",
                "--platform",
                platform,
                "--config-file",
                str(config_file),
                tmp,
            ],
            env=clean_environ(environ),
            cwd=Path(tmp),
        )
    if not done.ok:
        shown = f"cibuildwheel --print-build-identifiers --platform {platform}"
        raise ConfigurationError(done.failure(shown))
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]
