"""The AWS Lambda package `make package` writes (release/package.py), as Lambda would load it.

The zip is built once (pip takes the wheels from the package index, or its cache), then:
- a Python 3.12 interpreter that sees only the zip's files, its standard library and the four
  distributions the Lambda runtime ships (boto3, botocore, s3transfer, jmespath, taken from the
  venv) imports both handlers by name, has each answer a bad payload with a 400 naming the
  field, and imports every mutguard module an AWS scan can load, with neither rich (nor what only
  rich needs) nor PyYAML's libyaml accelerator importable there: only the terminal's table
  renderer misses rich, and yaml.safe_load runs pure-Python;
- it holds no Google or Azure distribution, nothing the runtime ships, nothing only the terminal
  uses, no bytecode, no console script, and no path of the machine that built it; every entry has
  the same time and mode;
- what is left out is computed from the dependency graph: a distribution that something kept
  requires stays;
- it fits Lambda's limits, and a second build gives the same bytes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

# Builds install their backend (setuptools) from the package index.
pytestmark = pytest.mark.needs_index

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_SCRIPT = ROOT / "release" / "package.py"
ZIP_NAME = "mutguard-aws-lambda.zip"
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath")
# Lambda quotas: 250 MB unzipped (the API's error says 262144000 bytes), and 50 MB for a zip
# uploaded directly, as the Terraform module does.
LAMBDA_UNZIPPED_LIMIT = 262_144_000
LAMBDA_DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024
UNZIPPED_TARGET = 15_000_000  # our size budget for the package without the runtime's SDK
# mutguard modules that need another cloud's SDK: not loadable on Lambda, and not meant to be.
OTHER_CLOUD_MODULE = re.compile(r"gke|gcp|gcs|pubsub|aks|azure")
# Third-party modules mutguard imports only when a scan or a sink needs them.
LAZY_IMPORTS = ("urllib3", "slack_sdk", "slack_sdk.webhook", "yaml")
# Left out of every function package (release/package.py): rich and what only it needs, used by
# the terminal CLI alone, and PyYAML's optional libyaml accelerator.
TERMINAL_ONLY = ("rich", "pygments", "markdown_it", "mdurl")
LIBYAML = ("_yaml", "yaml._yaml")
# The mutguard modules that cannot load without rich, and are never loaded by a function.
TERMINAL_MODULES = ("mutguard.render.table",)

SMOKE = """
import importlib, importlib.util, json, pkgutil, re, sys
task, runtime, other_cloud = sys.argv[1:4]
lazy, absent, terminal = (json.loads(argument) for argument in sys.argv[4:7])
sys.path[:0] = [task, runtime]

class Context:
    function_name = "mutguard"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:111111111111:function:mutguard"
    aws_request_id = "a1b2c3d4-0000-4000-8000-000000000000"

worker = importlib.import_module("mutguard.functions.aws_lambda.worker")
dispatcher = importlib.import_module("mutguard.functions.aws_lambda.dispatcher")
answers = {
    "worker": worker.handler(
        {"action": "scan", "targets": [{"provider": "openshift", "account": "111111111111"}]},
        Context(),
    ),
    "dispatcher": dispatcher.handler({"action": "dispatch", "bogus": 1}, Context()),
}
import mutguard
modules = [m.name for m in pkgutil.walk_packages(mutguard.__path__, "mutguard.")
           if not re.search(other_cloud, m.name) and m.name not in terminal]
for name in [*modules, *lazy]:
    importlib.import_module(name)
missing = {}
for name in terminal:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing[name] = exc.name
import boto3, yaml
print(json.dumps({
    "python": list(sys.version_info[:2]),
    "answers": answers,
    "imported": len(modules),
    "terminal_missing": missing,
    "importable": [name for name in absent if importlib.util.find_spec(name) is not None],
    "loaded": sorted({name.split(".")[0] for name in sys.modules} & set(absent)),
    "libyaml": yaml.__with_libyaml__,
    "safe_load": yaml.safe_load("checks:\\n  - id: eks.endpoint\\n    ignore: true\\n"),
    "files": {name: getattr(sys.modules[name], "__file__", None)
              for name in ("mutguard", "pydantic_core", "urllib3", "yaml", "boto3")},
}))
"""


@dataclass(frozen=True)
class LambdaZip:
    path: Path
    sha256: str


def build(dist: Path, work: Path) -> LambdaZip:
    done = subprocess.run(
        [sys.executable, str(PACKAGE_SCRIPT), "aws", "--dist", str(dist), "--work", str(work)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    path = dist / ZIP_NAME
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest in done.stdout  # the summary names what it built
    return LambdaZip(path, digest)


@pytest.fixture(scope="module")
def lambda_zip(tmp_path_factory: pytest.TempPathFactory) -> LambdaZip:
    root = tmp_path_factory.mktemp("package")
    return build(root / "dist", root / "work")


@pytest.fixture(scope="module")
def entries(lambda_zip: LambdaZip) -> list[zipfile.ZipInfo]:
    with zipfile.ZipFile(lambda_zip.path) as archive:
        return archive.infolist()


def python312() -> str | None:
    """A CPython 3.12 interpreter, the Lambda runtime's version (the venv may be older)."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [
        os.environ.get("MUTGUARD_PYTHON312"),
        shutil.which("python3.12"),
        *sorted(str(p) for p in pyenv.glob("versions/3.12*/bin/python3.12")),
    ]
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
            capture_output=True,
            text=True,
        )
        if probe.stdout.strip() == "True":
            return candidate
    return None


def runtime_sdk(directory: Path) -> Path:
    """What the Lambda runtime adds to sys.path after the function's code: its AWS SDK."""
    directory.mkdir()
    for name in RUNTIME_PROVIDED:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.submodule_search_locations, name
        (directory / name).symlink_to(spec.submodule_search_locations[0])
    return directory


def test_handlers_load_and_answer_in_python312(lambda_zip: LambdaZip, tmp_path: Path):
    interpreter = python312()
    if interpreter is None:
        pytest.skip("no CPython 3.12 here (set MUTGUARD_PYTHON312): the zip's binaries are cp312")
    task = tmp_path / "task"
    with zipfile.ZipFile(lambda_zip.path) as archive:
        archive.extractall(task)
    runtime = runtime_sdk(tmp_path / "runtime")
    # -I -S: no environment variables, no user or system site-packages, only the paths given.
    arguments = [
        str(task),
        str(runtime),
        OTHER_CLOUD_MODULE.pattern,
        *(
            json.dumps(names)
            for names in (LAZY_IMPORTS, [*TERMINAL_ONLY, *LIBYAML], TERMINAL_MODULES)
        ),
    ]
    done = subprocess.run(
        [interpreter, "-I", "-S", "-c", SMOKE, *arguments],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "LANG": "C.UTF-8"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["python"] == [3, 12]
    for name, field in (("worker", "targets[0].provider"), ("dispatcher", "bogus")):
        answer = result["answers"][name]
        assert answer["statusCode"] == 400
        assert answer["error"]["field"] == field
    assert result["imported"] > 50
    for name in ("mutguard", "pydantic_core", "urllib3", "yaml"):
        assert result["files"][name].startswith(str(task))
    assert result["files"]["boto3"].startswith(str(runtime))
    # Nothing of the terminal's, nor libyaml, can load; only the table renderer misses rich.
    assert result["importable"] == []
    assert result["loaded"] == []
    assert result["terminal_missing"] == dict.fromkeys(TERMINAL_MODULES, "rich")
    assert result["libyaml"] is False
    assert result["safe_load"] == {"checks": [{"id": "eks.endpoint", "ignore": True}]}


def test_holds_no_other_cloud_and_nothing_the_runtime_ships(entries: list[zipfile.ZipInfo]):
    top_level = {info.filename.split("/")[0] for info in entries}
    distributions = {
        re.sub(r"-[^-]+\.dist-info$", "", name).lower().replace("_", "-")
        for name in top_level
        if name.endswith(".dist-info")
    }
    assert not {n for n in top_level if n.startswith(("google", "azure", "grpc"))}
    assert not {d for d in distributions if d.startswith(("google-", "azure-", "grpcio"))}
    assert not top_level & set(RUNTIME_PROVIDED)
    assert not distributions & set(RUNTIME_PROVIDED)
    assert {"mutguard", "pydantic", "pydantic_core", "aws_lambda_powertools"} <= top_level


def test_holds_nothing_only_the_terminal_uses(
    lambda_zip: LambdaZip, entries: list[zipfile.ZipInfo]
):
    names = [info.filename for info in entries]
    top_level = {name.split("/")[0] for name in names}
    distributions = {re.sub(r"-[^-]+\.dist-info$", "", n).lower() for n in top_level}
    assert not top_level & {*TERMINAL_ONLY, "_yaml"}
    assert not distributions & {"rich", "pygments", "markdown_it_py", "mdurl"}
    assert "yaml/__init__.py" in names
    assert not [n for n in names if n.startswith(("yaml/_yaml", "mutguard/demo/"))]
    # scrub() keeps installer records true to what is there.
    with zipfile.ZipFile(lambda_zip.path) as archive:
        (record,) = (n for n in names if re.fullmatch(r"pyyaml-[^/]+\.dist-info/RECORD", n))
        assert "_yaml" not in archive.read(record).decode()
        (own,) = (n for n in names if re.fullmatch(r"mutguard-[^/]+\.dist-info/RECORD", n))
        assert "mutguard/demo/" not in archive.read(own).decode()


def test_entries_are_clean_and_uniform(lambda_zip: LambdaZip, entries: list[zipfile.ZipInfo]):
    names = [info.filename for info in entries]
    assert names == sorted(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    assert not [n for n in names if n.startswith("bin/") or n.endswith("/direct_url.json")]
    assert {info.date_time for info in entries} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in entries} == {0o100644}
    leaked = [str(ROOT), str(lambda_zip.path.parent.parent), sys.prefix]
    with zipfile.ZipFile(lambda_zip.path) as archive:
        for info in entries:
            data = archive.read(info)
            assert not [p for p in leaked if p.encode() in data], info.filename


def report_item(name: str, *requires: str, extras: tuple[str, ...] = ()) -> dict[str, Any]:
    """One `install` entry of `pip install --report`, as much of it as the graph needs."""
    item: dict[str, Any] = {"metadata": {"name": name, "requires_dist": list(requires)}}
    return item | ({"requested_extras": list(extras)} if extras else {})


RESOLVED = [
    report_item(
        "rich", "pygments>=2.13", "markdown-it-py (>=2.2.0)", 'ipywidgets; extra == "jupyter"'
    ),
    report_item("markdown-it-py", "mdurl~=0.1"),
    report_item("mdurl"),
    report_item("Pygments"),
    report_item("pydantic"),
    report_item("PyYAML"),
    report_item("boto3"),
]
# pip's marker environment for the run (its `environment`), here a Python 3.12 one.
ENVIRONMENT = {"python_version": "3.12", "python_full_version": "3.12.8", "sys_platform": "linux"}


def test_what_only_the_terminal_needs_is_left_out(package_script: ModuleType):
    mutguard = report_item(
        "mutguard",
        "pydantic>=2.6",
        "rich>=13",
        'boto3; extra == "aws"',
        'PyYAML>=6; extra == "kube"',
        'mutguard[kube]; extra == "function-aws"',
        'report-tool; python_version >= "3.12"',
        extras=("function-aws",),
    )
    # Kept for mutguard, report-tool needs pygments (which stays) and, on old Pythons only, mdurl.
    tool = report_item("report-tool", "Pygments", 'mdurl; python_version < "3.9"')
    needed = package_script.needed_by_functions([mutguard, tool, *RESOLVED], ENVIRONMENT)
    assert needed == {"mutguard", "pydantic", "pyyaml", "report-tool", "pygments"}


def test_what_something_kept_requires_stays(package_script: ModuleType):
    mutguard = report_item("mutguard", "pydantic>=2.6", "rich>=13", "tui-kit")
    tui = report_item("tui-kit", "rich")
    needed = package_script.needed_by_functions([mutguard, tui, *RESOLVED], ENVIRONMENT)
    assert needed == {
        "mutguard",
        "pydantic",
        "tui-kit",
        "rich",
        "pygments",
        "markdown-it-py",
        "mdurl",
    }


def test_fits_lambda_limits(lambda_zip: LambdaZip, entries: list[zipfile.ZipInfo]):
    assert sum(info.file_size for info in entries) < LAMBDA_UNZIPPED_LIMIT
    assert lambda_zip.path.stat().st_size < LAMBDA_DIRECT_UPLOAD_LIMIT


# Strict: once the package meets the target, this marker must go and the assertion stand.
def test_meets_the_size_target(entries: list[zipfile.ZipInfo]):
    assert sum(info.file_size for info in entries) < UNZIPPED_TARGET


def test_second_build_is_identical(lambda_zip: LambdaZip, tmp_path: Path):
    again = build(tmp_path / "dist", tmp_path / "work")
    assert again.sha256 == lambda_zip.sha256
