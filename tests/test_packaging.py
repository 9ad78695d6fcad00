"""The sdist and the wheel a user installs from: built as PyPI's would be, the sdist from a copy of
the sources (release/package.py's copy) and the wheel from that sdist, with the build backend
release/package.py pins. They carry the Apache-2.0 licence text and its PEP 639 metadata, the
wheel holds every data file mutguard reads and the JSON schemas, and the build warns of nothing.
"""

from __future__ import annotations

import email.parser
import hashlib
import os
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from types import ModuleType

import pytest

from mutguard import __version__

# Builds install their backend (setuptools) from the package index.
pytestmark = pytest.mark.needs_index

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_SCRIPT = ROOT / "release" / "package.py"
# https://www.apache.org/licenses/LICENSE-2.0.txt, unmodified (with its appendix).
APACHE_2_0_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
SDIST_ROOT = f"mutguard-{__version__}"
DIST_INFO = f"mutguard-{__version__}.dist-info"


@dataclass(frozen=True)
class Built:
    sdist: Path
    wheel: Path
    log: str  # the build's stdout and stderr, interleaved


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, package_script: ModuleType) -> Built:
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    package_script.copy_sources(source)
    constraints = work / "build-constraints.txt"
    constraints.write_text(package_script.BUILD_BACKEND + "\n")
    dist = work / "dist"
    # `build` installs the backend into an isolated environment with pip, which reads the pin
    # from PIP_CONSTRAINT; with no --sdist or --wheel it builds the wheel from the sdist.
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(source)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PIP_CONSTRAINT": str(constraints)},
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    (sdist,) = dist.glob("mutguard-*.tar.gz")
    (wheel,) = dist.glob("mutguard-*.whl")
    return Built(sdist, wheel, done.stdout)


def sdist_read(built: Built, name: str) -> bytes:
    with tarfile.open(built.sdist) as archive:
        member = archive.extractfile(f"{SDIST_ROOT}/{name}")
        assert member is not None, name
        return member.read()


def wheel_names(built: Built) -> set[str]:
    with zipfile.ZipFile(built.wheel) as archive:
        return set(archive.namelist())


def wheel_read(built: Built, name: str) -> bytes:
    with zipfile.ZipFile(built.wheel) as archive:
        return archive.read(name)


def metadata(text: bytes) -> Message:
    return email.parser.BytesParser().parsebytes(text)


def test_the_licence_is_the_apache_2_0_text_in_both(built: Built):
    licence = (ROOT / "LICENSE").read_bytes()
    assert hashlib.sha256(licence).hexdigest() == APACHE_2_0_SHA256
    assert sdist_read(built, "LICENSE") == licence
    assert wheel_read(built, f"{DIST_INFO}/licenses/LICENSE") == licence


@pytest.mark.parametrize("archive", ["sdist", "wheel"])
def test_metadata_declares_the_licence_and_where_the_project_lives(built: Built, archive: str):
    fields = metadata(
        sdist_read(built, "PKG-INFO")
        if archive == "sdist"
        else wheel_read(built, f"{DIST_INFO}/METADATA")
    )
    assert fields["License-Expression"] == "Apache-2.0"
    assert fields.get_all("License-File") == ["LICENSE"]
    # PEP 639: no License classifier beside the expression, nor the legacy free-text field.
    assert not [c for c in fields.get_all("Classifier") or [] if c.startswith("License ::")]
    assert fields["License"] is None
    urls = dict(url.split(", ", 1) for url in fields.get_all("Project-URL") or [])
    assert set(urls) == {"Homepage", "Documentation", "Issues", "Source"}


def test_the_wheel_holds_every_data_file_and_schema(built: Built):
    names = wheel_names(built)
    data = sorted(ROOT.glob("mutguard/data/*.json"))
    demo = sorted(ROOT.glob("mutguard/demo/*/*.json"))
    schemas = sorted(ROOT.glob("schemas/*.json"))
    assert data and demo and schemas
    missing = {p.relative_to(ROOT).as_posix() for p in [*data, *demo]} - names
    assert not missing
    for schema in schemas:
        assert wheel_read(built, f"mutguard/schemas/{schema.name}") == schema.read_bytes()
    assert "mutguard/py.typed" in names


def test_the_build_warns_of_nothing(built: Built):
    assert "absent from the `packages` configuration" not in built.log
    # `build` reports each warning the backend raises on a line of its own.
    assert [line for line in built.log.splitlines() if line.startswith("WARNING")] == []
