"""The project's source, from git (URL, local path or mirror) or from an sdist."""

from __future__ import annotations

import contextlib
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from packaging.utils import canonicalize_name, parse_sdist_filename
from packaging.version import InvalidVersion, Version

from multibuild._compat import tomllib
from multibuild.errors import SourceError
from multibuild.log import Logger
from multibuild.options import GitSource, SdistSource
from multibuild.util import http
from multibuild.util.archives import download, unpack
from multibuild.util.cmd import Result, excerpt, stream
from multibuild.util.files import remove_tree, sha256_file
from multibuild.util.git import check_ref, check_remote, git_command, git_environ, run_git
from multibuild.util.http import HttpError
from multibuild.util.index import configured_indexes, project_files
from multibuild.util.urls import hide_userinfo, local_path


@dataclass(frozen=True, kw_only=True)
class PreparedSource:
    path: Path
    record: dict[str, str]  # what the build record says about the source


# -- git ---------------------------------------------------------------------------------------


def _git(
    args: list[str], cwd: Path | None, env: Mapping[str, str], timeout: float | None = None
) -> Result:
    return run_git(args, cwd, env, timeout=timeout)


def _resolve(repo: Path, ref: str, env: Mapping[str, str]) -> str | None:
    for candidate in (f"refs/tags/{ref}", f"refs/remotes/origin/{ref}", ref):
        done = _git(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{candidate}^{{commit}}"],
            repo,
            env,
        )
        if done.returncode == 0:
            return done.stdout.strip()
    return None


def released_version(ref: str) -> str | None:
    """The release a ref names (v1.17.1, 1.17.1rc1), or None (a branch or a hash)."""
    if "." in ref:
        with contextlib.suppress(InvalidVersion):
            return str(Version(ref.removeprefix("v")))
    return None


# A git source's checkout, in the work dir.
SOURCE_DIR = "src"
REACH_TIMEOUT_S = 30.0


def reachable(url: str, environ: Mapping[str, str]) -> bool:
    """Whether git gets an answer from the repository at `url` (`git ls-remote`, no prompt)."""
    check_remote(url, SourceError, hide_userinfo(url))
    path = local_path(url)
    env = git_environ(environ, allow_file=path is not None)
    remote = str(path.resolve()) if path is not None else url
    try:
        done = _git(["ls-remote", "--", remote, "HEAD"], None, env, timeout=REACH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def _way_out(source: GitSource) -> str:
    """How to build without reaching the repository: the released sdist or a local copy."""
    name = hide_userinfo(source.url).rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    version = released_version(source.ref) or "VERSION"  # a branch or a hash names no release
    return (
        "\nWithout access to it, build a released sdist from the package index: "
        f"--sdist {name}=={version}; or a local clone or mirror: --repo PATH"
    )


def prepare_git(
    source: GitSource, dest: Path, logger: Logger, environ: Mapping[str, str]
) -> PreparedSource:
    """Clone (or update a previous clone) and check out `ref` with submodules, clean. The ref
    and the URL are checked before git sees them (multibuild.util.git)."""
    shown = hide_userinfo(source.url)
    check_ref(source.ref, SourceError)
    check_remote(source.url, SourceError, shown)
    path = local_path(source.url)
    # Submodules of a local clone or mirror are often local paths too, which git refuses by
    # default since 2.38.1; the user chose this source, so the file transport is allowed
    # then (and only then: a remote repository's submodules must not read local files).
    env = git_environ(environ, allow_file=path is not None)
    url = str(path.resolve()) if path is not None else source.url
    if path is not None and not path.exists():
        raise SourceError(f"cannot clone {shown}: no such directory")
    same_remote = (dest / ".git").exists() and _git(
        ["config", "--get", "--", "remote.origin.url"], dest, env
    ).stdout.strip() == url
    if not same_remote:
        remove_tree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        done = stream(
            git_command("clone", "--no-checkout", "--", url, str(dest)),
            logger,
            label="git clone",
            env=env,
        )
        if done.returncode != 0:
            remove_tree(dest)
            raise SourceError(
                f"cannot clone {shown}:\n{excerpt(done.tail, 5)}"
                + ("" if path is not None else _way_out(source))
            )
    else:
        done = stream(
            git_command(
                "fetch",
                "--force",
                "--tags",
                "--prune",
                "--",
                "origin",
                "+refs/heads/*:refs/remotes/origin/*",
            ),
            logger,
            cwd=dest,
            label="git fetch",
            env=env,
        )
        if done.returncode != 0:
            raise SourceError(
                f"cannot fetch from {shown}:\n{excerpt(done.tail, 5)}"
                + ("" if path is not None else _way_out(source))
            )
    commit = _resolve(dest, source.ref, env)
    if commit is None:
        # A commit hash that no branch or tag reaches can still be fetched by name.
        fetched = _git(["fetch", "--quiet", "--", "origin", source.ref], dest, env)
        commit = _resolve(dest, "FETCH_HEAD", env) if fetched.returncode == 0 else None
        if commit is None:
            raise SourceError(f"{source.ref!r} is not a branch, tag or commit of {shown}")
    for args in (
        ["checkout", "--quiet", "--force", "--detach", commit, "--"],
        ["clean", "-fxdq", "--"],
        ["submodule", "sync", "--recursive", "--"],
        ["submodule", "update", "--init", "--recursive", "--force", "--"],
        ["submodule", "foreach", "--recursive", "--quiet", "git clean -fxdq --"],
    ):
        done = stream(git_command(*args), logger, cwd=dest, label="git", env=env)
        if done.returncode != 0:
            raise SourceError(
                f"`git {' '.join(args)}` failed in the clone of {shown}:\n{excerpt(done.tail, 5)}"
            )
    logger.info(f"source: {shown} at {source.ref} = {commit}")
    # The commit's date: SOURCE_DATE_EPOCH of the build (reproducible wheels).
    date = _git(["log", "-1", "--format=%ct", "--end-of-options", commit], dest, env).stdout.strip()
    return PreparedSource(
        path=dest,
        record={
            "kind": "git",
            "url": shown,
            "ref": source.ref,
            "commit": commit,
            "date_epoch": date if date.isdigit() else "0",
        },
    )


PEEK_TIMEOUT_S = 300.0


def read_committed_file(url: str, ref: str, name: str, environ: Mapping[str, str]) -> str | None:
    """`name` as committed at `ref` in the repository at `url` (URL, local path or mirror),
    without a checkout: a shallow fetch of that one commit with no file contents but the one
    read (a blob-less partial fetch where the server offers it). None when the commit has no
    such file; SourceError when the commit cannot be fetched."""
    shown = hide_userinfo(url)
    check_ref(ref, SourceError)
    check_remote(url, SourceError, shown)
    path = local_path(url)
    remote = str(path.resolve()) if path is not None else url
    env = git_environ(environ, allow_file=path is not None)
    with tempfile.TemporaryDirectory(prefix="mb-peek-") as tmp:
        steps = [
            ["init", "--quiet", "--bare", "--", tmp],
            ["-C", tmp, "remote", "add", "--", "origin", remote],
            [
                "-C",
                tmp,
                *(["-c", "protocol.file.allow=always"] if path is not None else []),
                "fetch",
                "--quiet",
                "--depth",
                "1",
                "--filter=blob:none",
                "--no-tags",
                "--",
                "origin",
                ref,
            ],
        ]
        for args in steps:
            try:
                done = _git(args, None, env, timeout=PEEK_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                raise SourceError(
                    f"cannot read {name} at {ref} of {shown}: no answer in {PEEK_TIMEOUT_S:.0f} s"
                ) from None
            if done.returncode != 0:
                raise SourceError(
                    f"cannot read {name} at {ref} of {shown}: {done.stderr.strip()[-500:]}"
                )
        shown_file = _git(["-C", tmp, "show", "--end-of-options", f"FETCH_HEAD:{name}"], None, env)
    return shown_file.stdout if shown_file.returncode == 0 else None


def requires_python(pyproject: str | None) -> str | None:
    """The [project] requires-python of a pyproject.toml's text (None: none declared)."""
    if not pyproject:
        return None
    try:
        data = tomllib.loads(pyproject)
    except tomllib.TOMLDecodeError as error:
        raise SourceError(f"the project's pyproject.toml does not parse: {error}") from None
    value = (data.get("project") or {}).get("requires-python")
    return value if isinstance(value, str) and value.strip() else None


# -- sdist -------------------------------------------------------------------------------------


def prepare_sdist(
    source: SdistSource,
    work_dir: Path,
    logger: Logger,
    environ: Mapping[str, str],
    cache_dir: Path,
) -> PreparedSource:
    """The unpacked sdist: a file, or NAME==VERSION from the index (kept in the cache by name
    and sha256: a rerun does not download it again)."""
    if "==" in source.spec and not Path(source.spec).exists():
        name, _, version = source.spec.partition("==")
        downloads = cache_dir / "sdists"
        downloads.mkdir(parents=True, exist_ok=True)
        archive, sha256 = fetch_sdist(name.strip(), version.strip(), downloads, logger, environ)
    else:
        archive = Path(source.spec).resolve()
        if not archive.is_file():
            raise SourceError(f"no sdist at {source.spec}")
        sha256 = sha256_file(archive)
    tree = unpack_sdist(archive, work_dir / "src-sdist")
    logger.info(f"source: {archive.name} sha256={sha256}")
    return PreparedSource(
        path=tree,
        record={
            "kind": "sdist",
            "path": archive.name,
            "sha256": sha256,
            "date_epoch": str(sdist_date(archive)),
        },
    )


def sdist_date(archive: Path) -> int:
    """The sdist's own date: its PKG-INFO's (the time its project's tools made it; the file's
    mtime on disk is when it was downloaded)."""
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    if info.filename.count("/") == 1 and info.filename.endswith("/PKG-INFO"):
                        return int(datetime(*info.date_time, tzinfo=timezone.utc).timestamp())
        else:
            with tarfile.open(archive) as tf:
                for member in tf.getmembers():
                    if member.name.count("/") == 1 and member.name.endswith("/PKG-INFO"):
                        return int(member.mtime)
    except (OSError, tarfile.TarError, zipfile.BadZipFile, ValueError):
        pass
    return 0


def unpack_sdist(archive: Path, dest: Path) -> Path:
    tree = unpack(archive, dest, error=SourceError)
    if tree == dest:
        raise SourceError(f"{archive.name} does not hold one top-level directory")
    return tree


def fetch_sdist(
    name: str, version: str, dest: Path, logger: Logger, environ: Mapping[str, str]
) -> tuple[Path, str]:
    """Download NAME==VERSION's sdist file itself (no build, unlike `pip download`) from the
    indexes pip is configured with, checked against the sha256 the index gives."""
    try:
        wanted = Version(version)
    except InvalidVersion:
        raise SourceError(f"{version!r} is not a valid version") from None
    tried = []
    for index in configured_indexes(environ):
        try:
            files = project_files(http.shared(), index, name) or []
        except HttpError as error:
            tried.append(f"{hide_userinfo(index)} ({error})")
            continue
        tried.append(hide_userinfo(index))
        for found in files:
            filename, url, digest = found.filename, found.url, found.sha256 or None
            try:
                sdist_name, sdist_version = parse_sdist_filename(filename)
            except ValueError:
                continue
            if sdist_name != canonicalize_name(name) or sdist_version != wanted:
                continue
            target = dest / filename
            if digest and target.is_file() and sha256_file(target) == digest:
                logger.info(f"{filename}: in the cache (sha256 {digest[:16]}…)")
                return target, digest
            logger.info(f"fetching {filename} from {hide_userinfo(index)}")
            actual = download(url, target, sha256=digest, error=SourceError)
            return target, actual
    raise SourceError(
        f"no sdist of {name}=={version} on the package index (looked at: "
        f"{'; '.join(tried) or 'no index'})"
    )


def requested(source: GitSource | SdistSource) -> dict[str, str]:
    """What the record says about the source before it is had (a build that cannot fetch
    it still names what it asked for)."""
    if isinstance(source, GitSource):
        return {"kind": "git", "url": hide_userinfo(source.url), "ref": source.ref, "commit": ""}
    return {"kind": "sdist", "spec": hide_userinfo(source.spec)}


def prepare_source(
    source: GitSource | SdistSource,
    work_dir: Path,
    logger: Logger,
    environ: Mapping[str, str],
    cache_dir: Path,
) -> PreparedSource:
    """The source tree of a git checkout (work_dir/src) or an unpacked sdist."""
    if isinstance(source, GitSource):
        return prepare_git(source, work_dir / SOURCE_DIR, logger, environ)
    return prepare_sdist(source, work_dir, logger, environ, cache_dir)
