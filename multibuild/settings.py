"""The repository's pinned settings (settings.toml), read once into frozen objects.

settings.toml is the one source of truth: the CI configs are generated from it and checked
against it, and the release tools rewrite it. Every `python -m multibuild` flag defaults to a
value from here. The keys each table takes are the fields of its dataclass below.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multibuild._compat import tomllib
from multibuild.errors import ConfigurationError
from multibuild.util.git import ref_problem

SETTINGS_FILE = "settings.toml"
# The repository this package lives in: the release tools find its settings.toml from
# anywhere.
PACKAGE_REPOSITORY = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, kw_only=True)
class ProjectSettings:
    # What CI builds: a wheels repository pins all three; a project's own settings beside its
    # config.sh need none of them (an sdist build takes its name from the sdist).
    name: str = ""
    repo: str = ""
    # Or a release's sdist from the package index, NAME==VERSION (instead of repo and commits:
    # `init --sdist`); nightlies build the same release.
    sdist: str = ""
    build_commit: str = field(default="", metadata={"key": "BUILD_COMMIT"})
    daily_commit: str = field(default="", metadata={"key": "DAILY_COMMIT"})
    # The project's hooks, relative to settings.toml.
    config: Path = Path("config.sh")


@dataclass(frozen=True, kw_only=True)
class BuildSettings:
    config_settings: tuple[str, ...] = ()
    # What the tests need: packages for the test venv, and paths of the project's source
    # tree copied into the directory run_tests runs in (cibuildwheel's test-requires and
    # test-sources).
    test_requires: tuple[str, ...] = ()
    test_sources: tuple[str, ...] = ()
    system_tools: tuple[str, ...] = ()
    # Build in a kept venv with fixed paths instead of an isolated temporary one: compiler
    # caches hit across builds. The build requirements are installed into that venv.
    isolation: bool = True
    ccache: bool = True


@dataclass(frozen=True, kw_only=True)
class MatrixSettings:
    python: tuple[str, ...] = ()
    linux: tuple[str, ...] = ()
    # Linux PLATs built for musl libc as well (musllinux wheels).
    musllinux: tuple[str, ...] = ()
    macos: tuple[str, ...] = ()
    # macOS PLATs built a second time against Apple's Accelerate, "PLAT=X.Y" (the oldest macOS
    # those wheels support), and what those builds give the build backend.
    macos_accelerate: tuple[str, ...] = ()
    accelerate_config_settings: tuple[str, ...] = ()
    windows: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class UploadSettings:
    # Container URLs per channel: a path (relative to the current directory), file://,
    # swift://, s3://.
    pre_release: str = "containers/pre-release"
    release: str = "containers/release"
    # Branch names as regular expressions, each matched against the whole name (docs/upload.md).
    development_branches: tuple[str, ...] = ("master", "main")
    release_branches: tuple[str, ...] = (
        r"v\d+\.\d+\.\d+((a|b|rc)\d+)?",
        r"maintenance/\d+\.\d+\.x",
    )
    # Channel for any other branch: "" (no upload), "pre-release" or "release".
    other_branches: str = ""
    # Retention of nightly builds in the pre-release container.
    keep_nightlies: int = 5
    keep_days: int = 30
    # owner/name of the repository whose CI may upload ("": not checked); other repos are forks.
    repository: str = ""
    # Runs outside Travis, Appveyor and GitHub Actions (by hand, `nox -s build`) upload to
    # local directories under this one (pre-release/, release/) instead ("": the containers
    # above). On those CI providers a local directory is refused: the runner is thrown away.
    local: str = ""
    # Package indexes nightly wheels also go to, besides the pre-release container:
    # anaconda://ORG (anaconda.org, through anaconda-client; ANACONDA_TOKEN).
    nightly_indexes: tuple[str, ...] = ()
    # Package indexes release-branch wheels are staged on, besides (or instead of) the release
    # container: anaconda://ORG, as scipy staged its release wheels before PyPI.
    release_indexes: tuple[str, ...] = ()
    # An anaconda.org channel's PEP 503 simple index, `{org}` for the channel: what
    # release-status and wheel-uploader read for anaconda://ORG (MB_ANACONDA_INDEX wins).
    anaconda_index: str = ""

    @property
    def release_channel(self) -> str:
        """Where release wheels are read from: the release container, else the first
        release index."""
        return self.release or next(iter(self.release_indexes), "")


BUILDERS = ("cibuildwheel", "host")
# The CI providers whose configs are generated here.
CI_PROVIDERS = ("travis", "appveyor", "github")


@dataclass(frozen=True, kw_only=True)
class CISettings:
    # How CI jobs build: "cibuildwheel" (Linux in manylinux containers, macOS and Windows on
    # the runner) or "host" (the engine's own pipeline on the runner).
    builder: str = "cibuildwheel"
    manylinux_image: str = "manylinux_2_28"
    musllinux_image: str = "musllinux_1_2"
    # The nightly schedule (cron syntax, UTC) of the GitHub workflow; Travis and Appveyor take
    # theirs in their web interfaces (README.rst, "Nightly builds").
    schedule: str = "17 3 * * *"
    # Encrypted credentials, safe to commit: `travis encrypt NAME=value` outputs, and
    # "NAME=<encrypted value>" from Appveyor's encrypt page.
    travis_secure: tuple[str, ...] = ()
    appveyor_secure: tuple[str, ...] = ()
    # The one CI provider whose jobs upload to the release container ("": any): the others
    # build and test release branches but never race it for the same immutable file name.
    release_provider: str = ""
    # The CI providers whose jobs upload at all (empty: every one). The others build, test
    # and keep their wheels as the provider's artifacts, and end green.
    upload_providers: tuple[str, ...] = ()
    # Minutes one job needs by family (linux, musllinux, macos, windows: "FAMILY=MINUTES"), and
    # each provider's limit per job ("PROVIDER=MINUTES"): a provider gets only the jobs that fit.
    job_minutes: tuple[str, ...] = ()
    provider_limits: tuple[str, ...] = ()
    # MACOSX_DEPLOYMENT_TARGET per macOS PLAT, "PLAT=VERSION" (cibuildwheel.toml overrides).
    macos_deployment_targets: tuple[str, ...] = ()
    # The macOS version a PLAT's wheels are tagged with when it is older than the deployment
    # target, "PLAT=VERSION": the repaired wheel is retagged after delocate (scipy's arm64
    # OpenBLAS wheels: built for 12.3, tagged 12_0).
    macos_wheel_targets: tuple[str, ...] = ()
    # Arguments delvewheel's repair gets besides the prefix (--strip, --no-dll NAME, ...).
    windows_repair_args: tuple[str, ...] = ()
    # The compilers of the Windows ARM64 jobs, "NAME=value" (cibuildwheel's environment for
    # *-win_arm64): no gcc/gfortran targets it, so LLVM's clang-cl and flang do.
    windows_arm64_compilers: tuple[str, ...] = ()


# Tables of free-form string values: [libraries] (name -> version, given to hooks as
# NAME_VERSION) and [hook_env] (variables given to hooks as they are).
FREE_FORM = ("libraries", "hook_env")
TABLES: dict[str, type[Any]] = {
    "project": ProjectSettings,
    "build": BuildSettings,
    "matrix": MatrixSettings,
    "upload": UploadSettings,
    "ci": CISettings,
}


@dataclass(frozen=True, kw_only=True)
class Settings:
    path: Path
    project: ProjectSettings
    build: BuildSettings = field(default_factory=BuildSettings)
    matrix: MatrixSettings = field(default_factory=MatrixSettings)
    upload: UploadSettings = field(default_factory=UploadSettings)
    ci: CISettings = field(default_factory=CISettings)
    libraries: dict[str, str] = field(default_factory=dict)
    # Variables given to config.sh's hooks as they are (the environment wins).
    hook_env: dict[str, str] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.path.parent

    def pinned(self) -> Settings:
        """These settings, checked to pin what CI builds ([project] name, repo and
        BUILD_COMMIT): the CI configs and the release tools need them."""
        pins = [("name", self.project.name)]
        if not self.project.sdist:
            pins += [("repo", self.project.repo), ("BUILD_COMMIT", self.project.build_commit)]
        missing = [key for key, value in pins if not value]
        if missing:
            raise ConfigurationError(
                f"{self.path}: [project] needs {', '.join(missing)} (what CI builds; or sdist "
                '= "NAME==VERSION" for a release\'s sdist)'
            )
        return self


def known_keys(table: str) -> dict[str, dataclasses.Field[Any]]:
    """The TOML keys of a table, each with its dataclass field."""
    return {f.metadata.get("key", f.name): f for f in dataclasses.fields(TABLES[table])}


def _hint(word: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _describe(kind: Any) -> str:
    if kind is bool:
        return "true or false"
    if kind is int:
        return "a whole number"
    if typing.get_origin(kind) is tuple:
        return "a list of strings"
    return "a string"


def _convert(value: Any, kind: Any, where: str) -> Any:
    if typing.get_origin(kind) is tuple:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
    elif kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind in (str, Path) and isinstance(value, str):
        return value
    raise ConfigurationError(f"{where} must be {_describe(kind)}, not {value!r}")


def _table(path: Path, name: str, data: Any) -> Any:
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: [{name}] must be a table")
    cls = TABLES[name]
    keys = known_keys(name)
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, value in data.items():
        found = keys.get(key)
        if found is None:
            raise ConfigurationError(f"{path}: unknown setting [{name}] {key!r}{_hint(key, keys)}")
        values[found.name] = _convert(value, hints[found.name], f"{path}: [{name}] {key}")
    missing = [
        key
        for key, f in keys.items()
        if f.name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigurationError(f"{path}: [{name}] needs {', '.join(missing)}")
    return cls(**values)


def _free_form(path: Path, name: str, data: Any) -> dict[str, str]:
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: [{name}] must be a table")
    for key, value in data.items():
        if not isinstance(value, str):
            raise ConfigurationError(f"{path}: [{name}] {key} must be a string, not {value!r}")
    return {str(k): v for k, v in data.items()}


BRANCH_KEYS = ("development_branches", "release_branches")


def branch_pattern_problem(pattern: str) -> str | None:
    """Why `pattern` is no regular expression for whole branch names; None when it is one.
    An unescaped `.` that no quantifier follows is refused: it matches any character (so
    `v1.2.3` would match `v1-2-3`), and it is how a shell glob of old settings looks."""
    try:
        re.compile(pattern)
    except re.error as error:
        return f"not a regular expression ({error})"
    in_class = escaped = False
    for index, char in enumerate(pattern):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "." and not in_class and pattern[index + 1 : index + 2] not in tuple("*+?{"):
            return "an unescaped '.' matches any character: write \\. for a dot"
    return None


def find_settings_file(start: Path | None = None) -> Path | None:
    """settings.toml in `start` (default: the working directory) or a parent of it."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / SETTINGS_FILE
        if candidate.is_file():
            return candidate
    return None


def settings_from(path: str | Path | None, *, fallback: Path | None = None) -> Settings | None:
    """The settings every command uses: the file given (it must exist; the null device means
    none), else settings.toml found from the working directory upwards, else from `fallback`;
    None if there is none."""
    if path and str(path) in (os.devnull, "/dev/null", "NUL"):
        return None
    if path:
        given = Path(path)
        if not given.is_file():
            raise ConfigurationError(f"settings file {given} does not exist")
        return load_settings(given)
    found = find_settings_file() or (find_settings_file(fallback) if fallback else None)
    return load_settings(found) if found else None


def project_settings(settings: str | None, config: str | None) -> Settings | None:
    """The settings of a build: the file given (--settings; the null device: none), else the
    settings.toml beside a config.sh given with --config (a project's own, or none: neutral
    defaults, never another project's), else the one found from the working directory."""
    if settings or not config:
        return settings_from(settings)
    beside = Path(config).resolve().parent / SETTINGS_FILE
    return load_settings(beside) if beside.is_file() else None


def _check_sdist(path: Path, project: ProjectSettings) -> None:
    """[project] sdist: one release of this project, NAME==VERSION, and no git source beside it."""
    # Here, not at the top: cibw-step imports settings in test venvs without packaging.
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    if project.repo or project.build_commit:
        raise ConfigurationError(
            f"{path}: [project] sdist builds a release's sdist: it excludes repo and BUILD_COMMIT"
        )
    try:
        wanted = Requirement(project.sdist)
    except InvalidRequirement as error:
        raise ConfigurationError(f"{path}: [project] sdist {project.sdist!r}: {error}") from None
    pins = list(wanted.specifier)
    if len(pins) != 1 or pins[0].operator != "==" or "*" in pins[0].version or wanted.extras:
        raise ConfigurationError(
            f"{path}: [project] sdist {project.sdist!r} is not one release: NAME==VERSION"
        )
    if project.name and canonicalize_name(wanted.name) != canonicalize_name(project.name):
        raise ConfigurationError(
            f"{path}: [project] sdist {project.sdist!r} is not of {project.name!r} ([project] name)"
        )


def load_settings(path: Path) -> Settings:
    data = _read_toml(path)
    project: ProjectSettings = _table(path, "project", data.get("project", {}))
    project = dataclasses.replace(
        project,
        daily_commit=project.daily_commit or project.build_commit,
        config=(path.parent / project.config).resolve(),
    )
    tables: dict[str, Any] = {
        name: _table(path, name, data[name]) for name in TABLES if name in data
    }
    tables["project"] = project
    tables.update({name: _free_form(path, name, data[name]) for name in FREE_FORM if name in data})
    settings = Settings(path=path.resolve(), **tables)
    if settings.project.sdist:
        _check_sdist(path, settings.project)
    _check_refs(path, settings)
    _check_ci_names(path, settings)
    _check_ci_entries(path, settings)
    _check_generated_values(path, settings)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    """The settings file's tables, each one this project knows."""
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigurationError(f"cannot read settings file {path}: {error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"{path} is not valid TOML: {error}") from None
    for table in data:
        if table not in TABLES and table not in FREE_FORM:
            known = [*TABLES, *FREE_FORM]
            raise ConfigurationError(f"{path}: unknown table [{table}]{_hint(table, known)}")
    return data


def _check_refs(path: Path, settings: Settings) -> None:
    """The pinned commits and the upload branch patterns, each against its own syntax."""
    project = settings.project
    for key in ("BUILD_COMMIT", "DAILY_COMMIT"):
        ref = project.build_commit if key == "BUILD_COMMIT" else project.daily_commit
        # Empty: not pinned (a project's own settings; `pinned()` asks for it where needed).
        problem = ref_problem(ref) if ref else None
        if problem:
            raise ConfigurationError(
                f"{path}: [project] {key} {ref!r} is not a branch, tag or commit name: {problem}"
            )
    for key in BRANCH_KEYS:
        for pattern in getattr(settings.upload, key):
            problem = branch_pattern_problem(pattern)
            if problem:
                raise ConfigurationError(
                    f"{path}: [upload] {key} {pattern!r}: {problem} (patterns are regular "
                    "expressions matched against the whole branch name)"
                )


def _check_ci_names(path: Path, settings: Settings) -> None:
    """[ci] builder and providers: names this project knows."""
    if settings.ci.builder not in BUILDERS:
        raise ConfigurationError(
            f"{path}: [ci] builder is one of {', '.join(BUILDERS)}, not {settings.ci.builder!r}"
        )
    if settings.ci.release_provider not in ("", *CI_PROVIDERS):
        raise ConfigurationError(
            f"{path}: [ci] release_provider is one of {', '.join(CI_PROVIDERS)}, not "
            f"{settings.ci.release_provider!r}"
        )
    unknown = [p for p in settings.ci.upload_providers if p not in CI_PROVIDERS]
    if unknown:
        raise ConfigurationError(
            f"{path}: [ci] upload_providers are of {', '.join(CI_PROVIDERS)}, not "
            f"{', '.join(map(repr, unknown))}"
        )


def _check_ci_entries(path: Path, settings: Settings) -> None:
    """[ci] and [matrix] entries the CI generator writes out: PLAT=X.Y, NAME=value."""
    for table, key, entries in (
        ("ci", "macos_deployment_targets", settings.ci.macos_deployment_targets),
        ("ci", "macos_wheel_targets", settings.ci.macos_wheel_targets),
        ("matrix", "macos_accelerate", settings.matrix.macos_accelerate),
    ):
        for entry in entries:
            if not re.fullmatch(r"[A-Za-z0-9_]+=\d+\.\d+", entry, flags=re.ASCII):
                raise ConfigurationError(
                    f"{path}: [{table}] {key} entries are PLAT=X.Y, not {entry!r}"
                )
    for key, entries, names in (
        ("job_minutes", settings.ci.job_minutes, ("linux", "musllinux", "macos", "windows")),
        ("provider_limits", settings.ci.provider_limits, CI_PROVIDERS),
    ):
        for entry in entries:
            name, _, minutes = entry.partition("=")
            if name not in names or not minutes.isdigit():
                raise ConfigurationError(
                    f"{path}: [ci] {key} entries are NAME=MINUTES with NAME one of "
                    f"{', '.join(names)}, not {entry!r}"
                )
    for entry in settings.ci.windows_arm64_compilers:
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*=[^\s\"]+", entry):
            raise ConfigurationError(
                f"{path}: [ci] windows_arm64_compilers entries are NAME=value, not {entry!r}"
            )
    for entry in settings.ci.appveyor_secure:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S+", entry):
            raise ConfigurationError(f"{path}: [ci] appveyor_secure entries are NAME=ENCRYPTED")


# Distribution names as the packaging specifications write them (ASCII letters and digits,
# inner ".", "_", "-"): a name is a file name in the wheelhouse and the containers.
PROJECT_NAME = re.compile(r"[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]", re.ASCII)
# A cron field list: five fields of digits, "*", ",", "-", "/" (GitHub's schedule syntax).
_CRON = re.compile(r"[0-9*,/-]+( [0-9*,/-]+){4}", re.ASCII)
_REPOSITORY = re.compile(r"[A-Za-z0-9-]+/[A-Za-z0-9._-]+", re.ASCII)
# Container URLs and package indexes: no space, quote, "$", backquote, backslash or control
# character, so a value written into a generated config never adds structure to it.
_URL = re.compile(r"[A-Za-z0-9._~:/@%+=,-]+", re.ASCII)


def _check_generated_values(path: Path, settings: Settings) -> None:
    """Every settings value a generated CI config holds, checked against its own syntax: a
    value with quotes or newlines would add triggers or steps to the workflow."""
    name = settings.project.name
    if name and not PROJECT_NAME.fullmatch(name):
        raise ConfigurationError(
            f"{path}: [project] name {name!r} is no distribution name (ASCII letters, digits "
            "and inner '.', '_', '-')"
        )
    if not _CRON.fullmatch(settings.ci.schedule):
        raise ConfigurationError(
            f"{path}: [ci] schedule {settings.ci.schedule!r} is no cron schedule (five fields "
            "of digits, '*', ',', '-', '/', one space apart)"
        )
    if settings.upload.repository and not _REPOSITORY.fullmatch(settings.upload.repository):
        raise ConfigurationError(
            f"{path}: [upload] repository is owner/name, not {settings.upload.repository!r}"
        )
    for key in ("pre_release", "release", "local"):
        value = getattr(settings.upload, key)
        if value and not _URL.fullmatch(value):
            raise ConfigurationError(
                f"{path}: [upload] {key} {value!r} holds a character a container URL or path "
                "here cannot (space, quote, '$', backquote, backslash, control)"
            )
    for value in settings.upload.nightly_indexes:
        if not _URL.fullmatch(value):
            raise ConfigurationError(
                f"{path}: [upload] nightly_indexes {value!r} holds a character an index URL cannot"
            )
