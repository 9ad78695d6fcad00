"""Build the cloud function packages into dist/, reproducibly (`make package`).

- mutguard-aws-lambda.zip: mutguard and the function-aws extra's dependencies at the zip's root,
  built for the Lambda runtime python3.12 on x86_64, less the AWS SDK that runtime ships (boto3,
  botocore, s3transfer, jmespath). Handlers: mutguard.functions.aws_lambda.dispatcher.handler and
  mutguard.functions.aws_lambda.worker.handler (worker.direct_handler for direct invokes only).
- mutguard-gcp-function.zip: Cloud Functions (2nd gen, python312) source: a main.py re-exporting
  the entry points `on_message` and `audit`, mutguard itself vendored at the root (the Functions
  Framework puts the source directory on sys.path), and a requirements.txt pinning every
  third-party distribution of the function-gcp extra, which the build installs.
- mutguard-azure-function.zip: function_app.py, host.json, requirements.txt, and
  .python_packages/lib/site-packages holding mutguard and the function-azure extra's dependencies
  for Linux python 3.12: where the Python worker finds prebuilt dependencies when the app runs
  from the package.

mutguard goes in as the wheel `pip wheel --no-deps` builds from a fresh copy of its sources, never
as an editable or path install, so no local path reaches a package. Third-party versions are the
ones installed in the environment running this script (the project's venv, which the tests ran
against) wherever it has them; pip resolves the rest. Each zip lists its files sorted, with one
timestamp (SOURCE_DATE_EPOCH, else 1980-01-01) and mode 0644, and holds no bytecode, console
scripts or installer records naming a path: building twice gives the same bytes.

No package holds or pins what only the terminal CLI uses: rich, and whatever the resolved
dependency graph reaches only through it (pygments, markdown-it-py, mdurl). What this script
installs (Lambda, Azure) leaves out PyYAML's optional libyaml accelerator, whose absence makes
`yaml` use its pure-Python loader, and the parts of slack-sdk the Slack sink never loads; Cloud
Build installs both whole for Cloud Functions.

Run with the project's venv: `.venv/bin/python release/package.py [aws gcp azure] [--dist DIR]`.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# PyPA's parser of requirements and markers; the dev venv has it (pytest requires it).
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "dist"
WORK = ROOT / "build" / "package"

PROJECT = "mutguard"
PYTHON_VERSION = "3.12"
# Wheels for glibc up to 2.34, which Lambda's python3.12 (Amazon Linux 2023) has; the same
# conservative set serves Azure Functions' Linux image, and picks the versions pinned for Cloud
# Functions (google-22 stack, Ubuntu 22.04). pip expands manylinux2014 (= manylinux_2_17) to the
# older manylinux2010/manylinux1 tags itself, but not to the newer manylinux_2_x ones.
PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(34, 17, -1)),
    "manylinux2014_x86_64",
)
# mutguard's requirements that only its terminal CLI imports (the table renderer, the progress
# bar), never a function: left out of every package with what nothing kept needs but them.
TERMINAL_ONLY = frozenset({"rich"})
# mutguard's own files only its terminal uses: the bundled snapshots `mutguard demo` scans.
TERMINAL_ONLY_FILES = ("mutguard/demo/",)
# PyYAML's optional libyaml accelerator, a compiled extension and its top-level shim: without it
# `yaml` sets __with_libyaml__ False and uses its pure-Python loader, ample for the small
# documents mutguard reads with yaml.safe_load.
LIBYAML_ACCELERATOR = ("yaml/_yaml.*.so", "_yaml")
# slack-sdk's parts the Slack sink never loads (it uses slack_sdk.WebClient and
# slack_sdk.webhook.WebhookClient, which import none of them): the asyncio and legacy clients,
# OAuth, Socket Mode, RTM, SCIM and audit-log APIs, and the deprecated `slack` alias package.
# About 1 MB of the Lambda zip's 15 MB budget.
SLACK_SDK_UNUSED = (
    "slack",
    "slack_sdk/oauth",
    "slack_sdk/socket_mode",
    "slack_sdk/rtm",
    "slack_sdk/rtm_v2",
    "slack_sdk/scim",
    "slack_sdk/audit_logs",
    "slack_sdk/web/async_*.py",
    "slack_sdk/web/legacy_*.py",
    "slack_sdk/webhook/async_client.py",
)
# The wheel's build backend, pinned: its version is written into the wheel's metadata.
BUILD_BACKEND = "setuptools==84.2.1"
# ZIP cannot store times before 1980.
ZIP_EPOCH = 315532800
ZIP_FILE_MODE = (stat.S_IFREG | 0o644) << 16

GCP_MAIN = '''\
"""Cloud Functions entry points: `on_message` (Pub/Sub CloudEvent) and `audit` (HTTP)."""

from mutguard.functions.gcp.main import audit, on_message

__all__ = ["audit", "on_message"]
'''
AZURE_FUNCTION_APP = '''\
"""Azure Functions app (Python v2 programming model): the timer, queue and HTTP triggers."""

from mutguard.functions.azure.function_app import app

__all__ = ["app"]
'''
# Extension bundle v4: the bindings of the timer, storage queue and HTTP triggers.
AZURE_HOST = {
    "version": "2.0",
    "extensionBundle": {
        "id": "Microsoft.Azure.Functions.ExtensionBundle",
        "version": "[4.*, 5.0.0)",
    },
}


class BuildError(Exception):
    """A step of the build failed; the message says which and why."""


@dataclass(frozen=True)
class Dist:
    """One third-party distribution, pinned, and the wheel pip chose for it."""

    name: str
    version: str
    url: str
    sha256: str | None

    @property
    def key(self) -> str:
        return canonical(self.name)

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class Built:
    path: Path
    zipped: int
    unzipped: int
    files: int
    sha256: str


@dataclass(frozen=True)
class Context:
    """What every artifact is made from."""

    wheel: Path
    constraints: Path
    work: Path


@dataclass(frozen=True)
class Artifact:
    key: str
    zip_name: str
    extra: str
    layout: Callable[[Context, Artifact, Path], None]  # fills the directory that is zipped
    provided: frozenset[str] = frozenset()  # distributions the runtime already ships


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- steps ------------------------------------------------------------------------------------


def pip(*args: str) -> str:
    """Run pip of this interpreter; its output only matters when it fails."""
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pip", *args], capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        raise BuildError(f"pip {args[0]} failed:\n{done.stderr[-4000:]}")
    return done.stdout


def copy_sources(source: Path) -> None:
    """What building mutguard reads, copied into `source`: pyproject.toml, the readme, the
    licence files and the package directories, and nothing stale (build/, egg-info, bytecode)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = config["project"]
    source.mkdir(parents=True)
    for name in ("pyproject.toml", project["readme"], *project["license-files"]):
        shutil.copy2(ROOT / name, source / name)
    for directory in sorted(set(config["tool"]["setuptools"]["package-dir"].values())):
        shutil.copytree(
            ROOT / directory,
            source / directory,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"),
        )


def build_wheel(work: Path) -> Path:
    """mutguard's wheel, built from a copy of its sources."""
    source = work / "source"
    copy_sources(source)
    backend = work / "build-constraints.txt"
    backend.write_text(BUILD_BACKEND + "\n")
    wheels = work / "wheel"
    pip(
        "wheel",
        "--quiet",
        "--no-deps",
        "--build-constraint",
        str(backend),
        "-w",
        str(wheels),
        str(source),
    )
    (wheel,) = wheels.glob(f"{PROJECT}-*.whl")
    return wheel


def write_constraints(work: Path) -> Path:
    """The versions installed here (the ones the tests ran against), as pip constraints."""
    pins = {
        canonical(d.metadata["Name"]): f"{d.metadata['Name']}=={d.version}"
        for d in importlib.metadata.distributions()
        if canonical(d.metadata["Name"]) != PROJECT
    }
    path = work / "constraints.txt"
    path.write_text("".join(f"{pins[key]}\n" for key in sorted(pins)))
    return path


def target_options() -> list[str]:
    """pip options that pick wheels for CPython 3.12 on Linux x86_64, whatever runs pip."""
    platforms = [option for platform in PLATFORMS for option in ("--platform", platform)]
    return [
        *platforms,
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
        "--only-binary=:all:",
    ]


def resolve(context: Context, extra: str) -> list[Dist]:
    """Every third-party distribution mutguard[extra] needs on the target, pinned: the ones pip
    resolves, less those reached only through TERMINAL_ONLY."""
    report = context.work / f"resolve-{extra}.json"
    pip(
        "install",
        "--quiet",
        "--dry-run",
        "--ignore-installed",
        "--report",
        str(report),
        "--constraint",
        str(context.constraints),
        *target_options(),
        f"{context.wheel}[{extra}]",
    )
    resolved = json.loads(report.read_text())
    needed = needed_by_functions(resolved["install"], resolved["environment"])
    kept = [
        Dist(
            item["metadata"]["name"],
            item["metadata"]["version"],
            item["download_info"]["url"],
            item["download_info"].get("archive_info", {}).get("hashes", {}).get("sha256"),
        )
        for item in resolved["install"]
        if canonical(item["metadata"]["name"]) in needed
    ]
    return sorted((d for d in kept if d.key != PROJECT), key=lambda d: d.key)


def needed_by_functions(install: list[dict[str, Any]], environment: Mapping[str, str]) -> set[str]:
    """The distributions of pip's report reached from mutguard (with the extras requested) by
    requirements whose markers hold in pip's environment, not following mutguard's own
    requirements on TERMINAL_ONLY: what only those need is left out, what anything kept needs
    stays."""
    metadata = {canonical(item["metadata"]["name"]): item["metadata"] for item in install}
    (root,) = (item for item in install if canonical(item["metadata"]["name"]) == PROJECT)
    extras_reached: dict[str, set[str]] = {}
    pending = [(PROJECT, frozenset(root.get("requested_extras") or ()))]
    while pending:
        key, extras = pending.pop()
        if key in extras_reached and extras <= extras_reached[key]:
            continue
        extras_reached.setdefault(key, set()).update(extras)
        for line in metadata[key].get("requires_dist") or ():
            requirement = Requirement(line)
            target = canonical(requirement.name)
            if target not in metadata or (key == PROJECT and target in TERMINAL_ONLY):
                continue
            marker = requirement.marker
            if marker is None or any(
                marker.evaluate({**environment, "extra": extra}) for extra in ("", *extras)
            ):
                pending.append((target, frozenset(requirement.extras)))
    return set(extras_reached)


def install(dists: Iterable[Dist], site: Path) -> None:
    """Install the chosen wheels into `site`, then strip what names this machine. Naming each
    wheel by URL and hash spares pip a second round of index look-ups."""
    wheels = [f"{d.name} @ {d.url}" + (f"#sha256={d.sha256}" if d.sha256 else "") for d in dists]
    pip(
        "install",
        "--quiet",
        "--no-deps",
        "--no-compile",
        "--target",
        str(site),
        *target_options(),
        *wheels,
    )
    remove_unused(site)
    scrub(site)


def remove_unused(site: Path) -> None:
    for pattern in (*LIBYAML_ACCELERATOR, *SLACK_SDK_UNUSED):
        for path in sorted(site.glob(pattern)):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def scrub(site: Path) -> None:
    """Remove bytecode, console scripts (their shebang names this interpreter) and direct_url.json
    (a path or URL), and the RECORD lines of whatever is gone."""
    shutil.rmtree(site / "bin", ignore_errors=True)
    for path in sorted(site.rglob("*"), reverse=True):
        if path.is_dir() and path.name == "__pycache__":
            shutil.rmtree(path)
        elif path.suffix in {".pyc", ".pyo"} or path.name == "direct_url.json":
            path.unlink()
    for record in site.glob("*.dist-info/RECORD"):
        lines = record.read_bytes().decode().splitlines(keepends=True)
        kept = [line for line in lines if _present(site, next(csv.reader([line]))[0])]
        record.write_bytes("".join(kept).encode())


def _present(site: Path, relative: str) -> bool:
    path = (site / relative).resolve()
    return path.is_relative_to(site.resolve()) and path.is_file()


def unpack_wheel(wheel: Path, site: Path) -> None:
    """mutguard's own files as the wheel holds them, less TERMINAL_ONLY_FILES."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        if any(".data/" in name for name in names):
            raise BuildError(f"{wheel.name} has a .data directory, which this build cannot place")
        archive.extractall(
            site, [name for name in names if not name.startswith(TERMINAL_ONLY_FILES)]
        )
    scrub(site)


def requirements_txt(context: Context, artifact: Artifact, dists: Iterable[Dist]) -> str:
    header = (
        f"# The {artifact.extra} extra of {context.wheel.name}, resolved for CPython "
        f"{PYTHON_VERSION} on Linux x86_64 by release/package.py.\n"
    )
    return header + "".join(f"{d.pin}\n" for d in dists)


# --- layouts ----------------------------------------------------------------------------------


def aws_layout(context: Context, artifact: Artifact, root: Path) -> None:
    dists = resolve(context, artifact.extra)
    install([d for d in dists if d.key not in artifact.provided], root)
    unpack_wheel(context.wheel, root)


def gcp_layout(context: Context, artifact: Artifact, root: Path) -> None:
    dists = resolve(context, artifact.extra)
    unpack_wheel(context.wheel, root)
    (root / "main.py").write_text(GCP_MAIN)
    (root / "requirements.txt").write_text(requirements_txt(context, artifact, dists))


def azure_layout(context: Context, artifact: Artifact, root: Path) -> None:
    dists = resolve(context, artifact.extra)
    site = root / ".python_packages" / "lib" / "site-packages"
    install(dists, site)
    unpack_wheel(context.wheel, site)
    (root / "function_app.py").write_text(AZURE_FUNCTION_APP)
    (root / "host.json").write_text(json.dumps(AZURE_HOST, indent=2) + "\n")
    (root / "requirements.txt").write_text(requirements_txt(context, artifact, dists))


ARTIFACTS = {
    "aws": Artifact(
        "aws",
        "mutguard-aws-lambda.zip",
        "function-aws",
        aws_layout,
        provided=frozenset({"boto3", "botocore", "s3transfer", "jmespath"}),
    ),
    "gcp": Artifact("gcp", "mutguard-gcp-function.zip", "function-gcp", gcp_layout),
    "azure": Artifact("azure", "mutguard-azure-function.zip", "function-azure", azure_layout),
}


# --- the zip ----------------------------------------------------------------------------------


def zip_time() -> tuple[int, int, int, int, int, int]:
    epoch = max(int(os.environ.get("SOURCE_DATE_EPOCH", ZIP_EPOCH)), ZIP_EPOCH)
    return time.gmtime(epoch)[:6]


def write_zip(root: Path, path: Path) -> Built:
    """Zip every file under root: sorted names, one timestamp, mode 0644."""
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    stamp = zip_time()
    partial = path.with_name(path.name + ".partial")
    unzipped = 0
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            data = (root / name).read_bytes()
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so that external_attr holds the mode
            info.external_attr = ZIP_FILE_MODE
            archive.writestr(info, data)
            unzipped += len(data)
    partial.replace(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Built(path, path.stat().st_size, unzipped, len(names), digest)


# --- the run ----------------------------------------------------------------------------------


def build(keys: Iterable[str], dist: Path = DIST, work: Path = WORK) -> list[Built]:
    """Build the named artifacts into dist; `work` is emptied first."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    dist.mkdir(parents=True, exist_ok=True)
    context = Context(build_wheel(work), write_constraints(work), work)
    built = []
    for key in keys:
        artifact = ARTIFACTS[key]
        root = work / key
        root.mkdir()
        artifact.layout(context, artifact, root)
        built.append(write_zip(root, dist / artifact.zip_name))
    return built


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "artifacts", nargs="*", metavar="ARTIFACT", help=f"any of {', '.join(ARTIFACTS)} (all)"
    )
    parser.add_argument("--dist", type=Path, default=DIST, help="where the zips go (dist/)")
    parser.add_argument("--work", type=Path, default=WORK, help="emptied, then built in")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.artifacts) - set(ARTIFACTS))
    if unknown:
        parser.error(f"unknown artifact {', '.join(unknown)}: choose from {', '.join(ARTIFACTS)}")
    try:
        built = build(dict.fromkeys(args.artifacts or ARTIFACTS), args.dist, args.work)
    except BuildError as exc:
        print(f"package: error: {exc}", file=sys.stderr)
        return 1
    width = max(len(b.path.name) for b in built)
    print(f"{'artifact':<{width}}  {'zipped':>9}  {'unzipped':>9}  {'files':>6}  sha256")
    for b in built:
        print(
            f"{b.path.name:<{width}}  {megabytes(b.zipped):>9}  {megabytes(b.unzipped):>9}  "
            f"{b.files:>6}  {b.sha256}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
