"""A first run that explains itself: what a newcomer meets is one clear line on stderr and the
exit code the README documents, never a traceback; the command line follows the conventions of
other tools (`-` for stdout and stdin, -v/-q anywhere, help for every option)."""

import json
import logging
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path
from types import ModuleType

import pytest

from mutguard.cli import EXIT_CODES, EXIT_OK, EXIT_USAGE, build_parser, main

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def requirements(extra: str) -> list[str]:
    """The distributions pyproject.toml lists for an extra (not the extras it includes)."""
    names = [re.match(r"[A-Za-z0-9._-]+", r).group() for r in EXTRAS[extra]]
    return [name for name in names if name != "mutguard"]


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory, package_script: ModuleType) -> Path:
    """`mutguard` installed with `pip install mutguard`: none of the optional extras."""
    work = tmp_path_factory.mktemp("bare-install")
    package_script.copy_sources(work / "source")
    venv.create(work / "venv", with_pip=True)
    python = work / "venv" / "bin" / "python"
    done = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", str(work / "source")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        pytest.skip(f"could not install mutguard without extras: {done.stderr.strip()[-500:]}")
    return work / "venv" / "bin" / "mutguard"


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == EXIT_USAGE, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    return line


@pytest.mark.needs_index
@pytest.mark.parametrize(
    ("args", "purpose", "extra"),
    [
        (["scan", "--provider", "aws"], "scanning EKS", "aws"),
        (["scan", "--provider", "gcp"], "scanning GKE", "gcp"),
        (["scan", "--provider", "azure"], "scanning AKS", "azure"),
        (["scan", "--kubeconfig", "kubeconfig.yaml"], "reading a kubeconfig", "kube"),
    ],
)
def test_a_scan_without_its_extra_names_the_extra(bare: Path, tmp_path, args, purpose, extra):
    (tmp_path / "kubeconfig.yaml").write_text("apiVersion: v1\nkind: Config\n")
    done = subprocess.run([bare, *args], capture_output=True, text=True, cwd=tmp_path)
    # Every requirement of the extra is missing from a bare install, in pyproject's order.
    wanted = ", ".join(requirements(extra)) if extra != "kube" else "PyYAML"
    assert (
        one_line_error(done)
        == f"mutguard: {purpose} needs {wanted}: pip install 'mutguard[{extra}]'"
    )


@pytest.mark.needs_index
@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--publish", "slack"], "the slack sink needs slack-sdk: pip install 'mutguard[notify]'"),
        (["--publish", "sqs"], "the sqs sink needs boto3: pip install 'mutguard[aws]'"),
        (
            ["--publish", "webhook", "--publish-config", "sinks.yaml"],
            "reading sinks.yaml needs PyYAML: pip install 'mutguard[notify]'",
        ),
        (
            ["--publish", "webhook", "--state-store", "dynamodb:state"],
            "the dynamodb state store needs boto3: pip install 'mutguard[aws]'",
        ),
    ],
)
def test_publishing_without_its_extra_names_the_extra(bare: Path, tmp_path, args, line):
    (tmp_path / "sinks.yaml").write_text("sinks: []\n")
    done = subprocess.run(
        [bare, "demo", "--format", "json", *args], capture_output=True, text=True, cwd=tmp_path
    )
    assert one_line_error(done) == f"mutguard: {line}"
    assert done.stdout == ""  # found before anything was scanned


@pytest.mark.needs_index
def test_the_demo_needs_no_extra(bare: Path):
    done = subprocess.run([bare, "demo", "--as-of", "2026-03-01"], capture_output=True, text=True)
    assert done.returncode == EXIT_OK, done.stderr
    assert "fleet summary" in done.stdout and done.stderr == ""


def test_a_snapshot_path_that_is_wrong_says_how(capsys, tmp_path):
    assert main(["scan", "--snapshot", str(tmp_path / "absent")]) == EXIT_USAGE
    assert capsys.readouterr().err == (
        f"mutguard: snapshot {tmp_path / 'absent'}: no such file or directory\n"
    )
    (tmp_path / "cluster.json").write_text("{}")
    assert main(["scan", "--snapshot", str(tmp_path / "cluster.json")]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "not a directory; pass the folder that holds cluster.json" in err


def test_a_dash_writes_the_report_to_stdout(capsys):
    assert main(["demo", "--format", "json", "--as-of", "2026-03-01", "-o", "-"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert len(report["clusters"]) == 6 and not Path("-").exists()


def test_publish_reads_the_report_from_stdin(tmp_path):
    demo = subprocess.run(
        [sys.executable, "-m", "mutguard.cli", "demo", "--format", "json", "--as-of", "2026-03-01"],
        capture_output=True,
        text=True,
    )
    state = tmp_path / "state.sqlite3"
    published = subprocess.run(
        [sys.executable, "-m", "mutguard.cli", "publish", "-", "--to", "webhook", "--dry-run"],
        input=demo.stdout,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "MUTGUARD_STATE_FILE": str(state)},
    )
    assert published.returncode == EXIT_OK, published.stderr
    # A first run (empty state): one message for each cluster with a failure to tell.
    clusters = json.loads(demo.stdout)["clusters"]
    failing = sum(any(f["status"] == "FAIL" for f in c["findings"]) for c in clusters)
    assert f"publish webhook: would send {failing} message(s)" in published.stderr
    broken = subprocess.run(
        [sys.executable, "-m", "mutguard.cli", "publish", "-", "--to", "webhook"],
        input="{}",
        capture_output=True,
        text=True,
    )
    assert broken.returncode == EXIT_USAGE
    assert broken.stderr.startswith("mutguard: stdin: not a mutguard JSON report")


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbosity_flags_go_before_or_after_the_command(capsys, where):
    flag = ["-q"]
    argv = [*flag, "demo", "--as-of", "2026-03-01"]
    if where == "after":
        argv = ["demo", "--as-of", "2026-03-01", *flag]
    assert main(argv) == EXIT_OK
    assert build_parser().parse_args(argv).quiet is True
    assert build_parser().parse_args(["-v", "demo"]).verbose is True
    capsys.readouterr()


def test_sdk_warnings_are_quiet_unless_verbose():
    # DefaultAzureCredential logs a multi-line warning when none of its credentials can be used;
    # AZURE_TOKEN_CREDENTIALS limits it to the environment's, so nothing leaves the machine.
    env = {"PATH": "/usr/bin:/bin", "AZURE_TOKEN_CREDENTIALS": "EnvironmentCredential"}
    scan = ["scan", "--provider", "azure", "--skip-in-cluster"]
    scan += ["--subscriptions", "00000000-0000-0000-0000-000000000000"]
    runs = {
        flags: subprocess.run(
            [sys.executable, "-m", "mutguard.cli", *scan, *flags],
            capture_output=True,
            text=True,
            env=env,
        )
        for flags in ((), ("-v",))
    }
    plain, verbose = runs[()], runs[("-v",)]
    assert plain.returncode == verbose.returncode == 5
    assert plain.stderr.splitlines() == [
        "mutguard: no cluster could be read: aks:00000000-0000-0000-0000-000000000000: "
        "Microsoft.ContainerService/managedClusters/read: DefaultAzureCredential failed to "
        "retrieve a token from the included credentials."
    ]
    assert "WARNING azure.identity" in verbose.stderr
    assert "EnvironmentCredential authentication unavailable" in verbose.stderr


def test_the_cli_leaves_a_hosts_logger_levels_as_it_found_them():
    sdk = logging.getLogger("azure")
    sdk.setLevel(logging.DEBUG)
    assert main(["demo", "--format", "json", "--as-of", "2026-03-01", "-o", "/dev/null"]) == 0
    assert sdk.level == logging.DEBUG
    sdk.setLevel(logging.NOTSET)


def test_every_option_has_help_and_the_help_lists_every_exit_code():
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name, command in [("mutguard", parser), *commands.items()]:
        for action in command._actions:
            if action.dest in ("help", "version"):
                continue
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
        text = command.format_help()
        assert all(f"  {code}  {meaning}" in text for code, meaning in EXIT_CODES.items()), name


def test_the_readme_documents_the_exit_codes_the_cli_uses():
    readme = (ROOT / "README.md").read_text()
    table = dict(re.findall(r"^\| (\d+) \| (.+) \|$", readme, flags=re.M))
    assert sorted(int(code) for code in table) == sorted(EXIT_CODES)
