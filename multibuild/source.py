"""Step 1: the project's source, from git (URL, local path or mirror) or from an sdist."""

from __future__ import annotations

import html.parser
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name, parse_sdist_filename
from packaging.version import InvalidVersion, Version

from multibuild.errors import SourceError
from multibuild.log import Logger
from multibuild.util.archives import download, unpack
from multibuild.util.cmd import excerpt, run
from multibuild.util.files import remove_tree, sha256_file
from multibuild.util.urls import basename, local_path, redact


@dataclass(frozen=True, kw_only=True)
class GitSource:
    url: str
    ref: str


@dataclass(frozen=True, kw_only=True)
class SdistSource:
    spec: str  # a path to an sdist, or name==version


@dataclass(frozen=True, kw_only=True)
class PreparedSource:
    path: Path
    record: dict[str, str]  # what the build record says about the source


# -- git ---------------------------------------------------------------------------------------


def _git(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="true")
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def _resolve(repo: Path, ref: str) -> str | None:
    for candidate in (f"refs/tags/{ref}", f"refs/remotes/origin/{ref}", ref):
        done = _git(["rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"], repo)
        if done.returncode == 0:
            return done.stdout.strip()
    return None


def prepare_git(source: GitSource, dest: Path, logger: Logger) -> PreparedSource:
    """Clone (or update a previous clone) and check out `ref` with submodules, clean."""
    shown = redact(source.url)
    path = local_path(source.url)
    url = str(path.resolve()) if path is not None else source.url
    if path is not None and not path.exists():
        raise SourceError(f"cannot clone {shown}: no such directory")
    same_remote = (dest / ".git").exists() and _git(
        ["config", "--get", "remote.origin.url"], dest
    ).stdout.strip() == url
    if not same_remote:
        remove_tree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        done = run(
            ["git", "clone", "--no-checkout", url, dest],
            logger,
            label="git clone",
            env=dict(os.environ, GIT_TERMINAL_PROMPT="0"),
        )
        if done.returncode != 0:
            remove_tree(dest)
            raise SourceError(f"cannot clone {shown}:\n{excerpt(done.tail, 5)}")
    else:
        done = run(
            [
                "git",
                "fetch",
                "--force",
                "--tags",
                "--prune",
                "origin",
                "+refs/heads/*:refs/remotes/origin/*",
            ],
            logger,
            cwd=dest,
            label="git fetch",
        )
        if done.returncode != 0:
            raise SourceError(f"cannot fetch from {shown}:\n{excerpt(done.tail, 5)}")
    commit = _resolve(dest, source.ref)
    if commit is None:
        # A commit hash that no branch or tag reaches can still be fetched by name.
        fetched = _git(["fetch", "--quiet", "origin", source.ref], dest)
        commit = _resolve(dest, "FETCH_HEAD") if fetched.returncode == 0 else None
        if commit is None:
            raise SourceError(f"{source.ref!r} is not a branch, tag or commit of {shown}")
    for args in (
        ["checkout", "--quiet", "--force", "--detach", commit],
        ["clean", "-fxdq"],
        ["submodule", "sync", "--recursive"],
        # Submodules of a local clone or mirror are often local paths too, which git refuses
        # by default since 2.38.1; the user chose this source, so allow the file protocol.
        [
            *(["-c", "protocol.file.allow=always"] if path is not None else []),
            "submodule",
            "update",
            "--init",
            "--recursive",
            "--force",
        ],
        ["submodule", "foreach", "--recursive", "--quiet", "git clean -fxdq"],
    ):
        done = run(["git", *args], logger, cwd=dest, label="git")
        if done.returncode != 0:
            raise SourceError(
                f"`git {' '.join(args)}` failed in the clone of {shown}:\n{excerpt(done.tail, 5)}"
            )
    logger.info(f"source: {shown} at {source.ref} = {commit}")
    return PreparedSource(
        path=dest,
        record={"kind": "git", "url": shown, "ref": source.ref, "commit": commit},
    )


# -- sdist -------------------------------------------------------------------------------------


def prepare_sdist(source: SdistSource, work_dir: Path, logger: Logger) -> PreparedSource:
    downloads = work_dir / "sdists"
    downloads.mkdir(parents=True, exist_ok=True)
    if "==" in source.spec and not Path(source.spec).exists():
        name, _, version = source.spec.partition("==")
        archive, sha256 = fetch_sdist(name.strip(), version.strip(), downloads, logger)
    else:
        archive = Path(source.spec).resolve()
        if not archive.is_file():
            raise SourceError(f"no sdist at {source.spec}")
        sha256 = sha256_file(archive)
    tree = unpack_sdist(archive, work_dir / "src-sdist")
    logger.info(f"source: {archive.name} sha256={sha256}")
    return PreparedSource(
        path=tree,
        record={"kind": "sdist", "path": archive.name, "sha256": sha256},
    )


def unpack_sdist(archive: Path, dest: Path) -> Path:
    tree = unpack(archive, dest, error=SourceError)
    if tree == dest:
        raise SourceError(f"{archive.name} does not hold one top-level directory")
    return tree


def pip_index_urls() -> list[str]:
    """Index URLs as pip itself is configured (env, config files, then pip's own default)."""
    urls: list[str] = []
    config = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    values: dict[str, str] = {}
    for line in config.splitlines():
        key, _, value = line.partition("=")
        values[key.split(".", 1)[-1]] = value.strip().strip("'\"")
    index = os.environ.get("PIP_INDEX_URL") or values.get("index-url")
    if not index:
        index = subprocess.run(
            [
                sys.executable,
                "-c",
                "from pip._internal.models.index import PyPI; print(PyPI.simple_url)",
            ],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    if index:
        urls.append(index)
    extra = os.environ.get("PIP_EXTRA_INDEX_URL") or values.get("extra-index-url", "")
    urls.extend(extra.split())
    return urls


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.links.append(href)


def _read(url: str, accept: str) -> tuple[str, str]:
    path = local_path(url)
    if path is not None:
        target = path / "index.html" if path.is_dir() else path
        return target.read_text(encoding="utf-8"), "text/html"
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read().decode("utf-8"), response.headers.get("Content-Type", "")


def _sdist_files(index: str, name: str) -> list[tuple[str, str | None]]:
    """(file URL, sha256 or None) of every file the index lists for `name`."""
    page = index.rstrip("/") + f"/{canonicalize_name(name)}/"
    text, content_type = _read(page, "application/vnd.pypi.simple.v1+json, text/html;q=0.1")
    files: list[tuple[str, str | None]] = []
    if "json" in content_type:
        for entry in json.loads(text).get("files", []):
            files.append(
                (urllib.parse.urljoin(page, entry["url"]), entry.get("hashes", {}).get("sha256"))
            )
        return files
    parser = _Links()
    parser.feed(text)
    for href in parser.links:
        url, _, fragment = urllib.parse.urljoin(page, href).partition("#")
        digest = fragment.removeprefix("sha256=") if fragment.startswith("sha256=") else None
        files.append((url, digest))
    return files


def fetch_sdist(name: str, version: str, dest: Path, logger: Logger) -> tuple[Path, str]:
    """Download NAME==VERSION's sdist file itself (no build, unlike `pip download`)."""
    try:
        wanted = Version(version)
    except InvalidVersion:
        raise SourceError(f"{version!r} is not a valid version") from None
    for index in pip_index_urls():
        try:
            files = _sdist_files(index, name)
        except (OSError, urllib.error.URLError, ValueError):
            continue
        for url, digest in files:
            filename = basename(url)
            try:
                sdist_name, sdist_version = parse_sdist_filename(filename)
            except ValueError:
                continue
            if sdist_name != canonicalize_name(name) or sdist_version != wanted:
                continue
            target = dest / filename
            logger.info(f"fetching {filename} from {redact(index)}")
            actual = download(url, target, sha256=digest, error=SourceError)
            return target, actual
    raise SourceError(f"no sdist of {name}=={version} on the package index")
