"""State stores and configuration files under faults, through the real command line.

A state that cannot be read stops the run before anything is sent (exit 4: the platform should
run it again); a configuration file that cannot be used is an input error (exit 2). Either way
stderr holds exactly one line, naming the file, and never a traceback.
"""

import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mutguard.cli import main
from mutguard.publish.stores.sqlite import SqliteStateStore

from servers.chat import ChatServer

AS_OF = "2026-03-01"  # the demo is judged on a fixed day, not today
HOOK_PATH = "/hook/T0-state-faults"
SUPPRESSION = "suppressions:\n  - check_id: eks.x\n    owner: o@example.com\n    reason: r\n"
SINK = "sinks:\n  - kind: webhook\n"


@pytest.fixture
def report(tmp_path: Path, chat: ChatServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo report saved to a file, and a webhook sink pointed at the local receiver."""
    monkeypatch.setenv("MUTGUARD_WEBHOOK_URL", chat.url + HOOK_PATH)
    monkeypatch.setenv("MUTGUARD_WEBHOOK_SECRET", "hmac-key-for-tests")
    monkeypatch.setenv("MUTGUARD_STATE_FILE", str(tmp_path / "unused.sqlite3"))
    saved = tmp_path / "report.json"
    assert main(["demo", "--format", "json", "--as-of", AS_OF, "-o", str(saved)]) == 0
    return saved


def publish(capsys: pytest.CaptureFixture[str], report: Path, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["publish", str(report), "--to", "webhook", *args])
    return code, capsys.readouterr().err


# --- A state that cannot be read: exit 4, nothing sent ------------------------------------


def random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(8192))


def text_file(path: Path) -> None:
    path.write_text("cluster,mut\nshop-prod,2\n")


def truncated_database(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE filler (body TEXT)")
        connection.executemany("INSERT INTO filler VALUES (?)", [("x" * 1000,)] * 100)
    connection.close()
    path.write_bytes(path.read_bytes()[:8192])


def another_programs_database(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE clusters (key TEXT PRIMARY KEY, colour TEXT)")
    connection.close()


def directory(path: Path) -> None:
    path.mkdir()


def parent_is_a_file(path: Path) -> None:
    path.parent.mkdir()
    path.parent.rmdir()
    path.parent.write_text("not a folder")


def parent_not_writable(path: Path) -> None:
    path.parent.mkdir()
    path.parent.chmod(0o500)


@dataclass(frozen=True)
class StateFault:
    make: Callable[[Path], None]
    reason: str
    state_name: str = "state.sqlite3"


STATE_FAULTS = {
    "random bytes": StateFault(random_bytes, "file is not a database"),
    "a text file": StateFault(text_file, "file is not a database"),
    "a truncated database": StateFault(truncated_database, "malformed"),
    "another program's database": StateFault(another_programs_database, "no such column"),
    "a directory": StateFault(directory, "unable to open database file"),
    "in a path through a file": StateFault(parent_is_a_file, "", "folder/state.sqlite3"),
    "in a folder that is not writable": StateFault(
        parent_not_writable, "unable to open database file", "folder/state.sqlite3"
    ),
}


@pytest.mark.parametrize("fault", STATE_FAULTS.values(), ids=STATE_FAULTS.keys())
def test_a_state_that_cannot_be_read_fails_before_sending(
    fault: StateFault,
    report: Path,
    chat: ChatServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    if fault.make is parent_not_writable and os.geteuid() == 0:
        pytest.skip("root writes to any folder")
    state = tmp_path / fault.state_name
    fault.make(state)

    code, err = publish(capsys, report, "--state", str(state))

    assert code == 4
    assert_one_line_naming(err, state, f"could not read the state: state store sqlite:{state}")
    assert fault.reason in err
    assert chat.requests("/") == []


def test_a_locked_state_is_waited_for_then_fails_before_sending(
    report: Path,
    chat: ChatServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
):
    state = tmp_path / "state.sqlite3"
    SqliteStateStore(state).save({})  # a good state file, then another writer holds it
    monkeypatch.setattr(SqliteStateStore, "lock_wait_seconds", 0.3)
    other_run = sqlite3.connect(state, isolation_level=None, check_same_thread=False)
    other_run.execute("BEGIN EXCLUSIVE")
    try:
        code, err = publish(capsys, report, "--state", str(state))
    finally:
        other_run.close()

    assert code == 4
    assert_one_line_naming(err, state, "database is locked")
    assert chat.requests("/") == []


def test_a_lock_released_within_the_wait_does_not_fail_the_run(
    report: Path,
    chat: ChatServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    state = tmp_path / "state.sqlite3"
    SqliteStateStore(state).save({})
    other_run = sqlite3.connect(state, isolation_level=None, check_same_thread=False)
    other_run.execute("BEGIN EXCLUSIVE")
    threading.Timer(0.5, other_run.close).start()

    code, err = publish(capsys, report, "--state", str(state))

    assert code == 0, err
    assert "publish webhook: sent 6 message(s)" in err
    assert len(chat.delivered(HOOK_PATH)) == 6


def test_a_state_file_in_a_folder_that_does_not_exist_yet_is_created(
    report: Path, chat: ChatServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    state = tmp_path / "new" / "folder" / "state.sqlite3"
    code, err = publish(capsys, report, "--state", str(state))
    assert code == 0, err
    assert state.is_file() and len(chat.delivered(HOOK_PATH)) == 6


# --- A configuration file that cannot be used: exit 2 -------------------------------------


def text(body: str) -> Callable[[Path], None]:
    return lambda path: path.write_text(body, encoding="utf-8")


def not_utf8(body: str) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(body.encode("latin-1"))


# Nine levels of ten aliases each: a billion strings once expanded.
BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{this}: &{this} [{', '.join([f'*{last}'] * 10)}]\n"
    for last, this in zip("abcdefgh", "bcdefghi", strict=True)
)


@dataclass(frozen=True)
class ConfigFault:
    option: str
    make: Callable[[Path], None]
    reason: str


CONFIG_FAULTS = {
    "suppression dated in month 13": ConfigFault(
        "--suppressions",
        text(SUPPRESSION + "    expires: 2026-13-01\n"),
        "suppression #1 (eks.x): expires: Input should be a valid date or datetime, month value",
    ),
    "suppression dated with a list": ConfigFault(
        "--suppressions",
        text(SUPPRESSION + "    expires: [2026, 3, 1]\n"),
        "suppression #1 (eks.x): expires: Input should be a valid date",
    ),
    "suppression dated with a time of day": ConfigFault(
        "--suppressions",
        text(SUPPRESSION + "    expires: 2026-03-01T10:00:00\n"),
        "suppression #1 (eks.x): expires: Datetimes provided to dates should have zero time",
    ),
    "suppressions with aliases": ConfigFault(
        "--suppressions", text(BILLION_LAUGHS), "YAML aliases (*name) are not accepted"
    ),
    "suppressions not in UTF-8": ConfigFault(
        "--suppressions",
        not_utf8(SUPPRESSION.replace("reason: r", "reason: caf\u00e9")),
        "not UTF-8 text",
    ),
    "suppressions file is a directory": ConfigFault(
        "--suppressions", Path.mkdir, "cannot be read: Is a directory"
    ),
    "sink options a list": ConfigFault(
        "--publish-config",
        text(SINK + "    options: [url_env, MY_HOOK]\n"),
        "sinks[0] (webhook): `options` must be a mapping, not list",
    ),
    "sink options a string": ConfigFault(
        "--publish-config",
        text(SINK + "    options: url_env=MY_HOOK\n"),
        "sinks[0] (webhook): `options` must be a mapping, not str",
    ),
    "sink name a list": ConfigFault(
        "--publish-config",
        text(SINK + "    name: [primary]\n"),
        "sinks[0] (webhook): `name` must be a string, not list",
    ),
    "sink kind a number": ConfigFault(
        "--publish-config", text("sinks:\n  - kind: 7\n"), "sinks[0] needs a `kind` (a string)"
    ),
    "sink entry a string": ConfigFault(
        "--publish-config", text("sinks:\n  - webhook\n"), "sinks[0] needs a `kind` (a string)"
    ),
    "sinks not valid YAML": ConfigFault(
        "--publish-config", text("sinks: [\n"), "not valid YAML: while parsing a flow node"
    ),
    "sinks with aliases": ConfigFault(
        "--publish-config", text(BILLION_LAUGHS), "YAML aliases (*name) are not accepted"
    ),
    "sinks not in UTF-8": ConfigFault(
        "--publish-config", not_utf8(SINK + "    name: caf\u00e9\n"), "not UTF-8 text"
    ),
    "sinks file is a directory": ConfigFault(
        "--publish-config", Path.mkdir, "cannot be read: Is a directory"
    ),
}


@pytest.mark.parametrize("fault", CONFIG_FAULTS.values(), ids=CONFIG_FAULTS.keys())
@pytest.mark.parametrize("command", ["publish", "demo"])
def test_a_configuration_file_that_cannot_be_used_is_an_input_error(
    fault: ConfigFault,
    command: str,
    report: Path,
    chat: ChatServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    config = tmp_path / "config.yaml"
    fault.make(config)
    state = ["--state", str(tmp_path / "state.sqlite3")]

    if command == "publish":
        code, err = publish(capsys, report, fault.option, str(config), *state)
    else:
        capsys.readouterr()
        demo = ["demo", "--as-of", AS_OF, "--publish", "webhook", "--dry-run"]
        code = main([*demo, fault.option, str(config), *state])
        err = capsys.readouterr().err

    assert code == 2
    assert_one_line_naming(err, config, fault.reason)
    assert chat.requests("/") == []


def assert_one_line_naming(err: str, path: Path, reason: str) -> None:
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("mutguard: ") and str(path) in err and reason in err, err
