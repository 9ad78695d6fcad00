"""The import rules of the layers (docs/architecture.md, Layers), read from the source with `ast`.

- checks (mutguard/checks/) import no network library or cloud SDK, not even through the
  first-party modules they import: a check judges documents already collected;
- nothing under mutguard/ imports an SDK at module level: a sink, store or secret source that
  wraps one imports it inside the function that uses it, so that nothing loads before it is needed;
- providers/ never import the publishing layer or the command line;
- only the terminal renderer (mutguard/render/table.py) imports rich, which no function package
  ships (the command line's progress bar and check listing are drawn there too).

Each rule lists every offending file:line in its assertion message.
"""

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The installed package maps these folders into `mutguard` (pyproject.toml, package-dir).
PACKAGE_DIRS = {
    "mutguard": ROOT / "mutguard",
    "mutguard.providers": ROOT / "providers",
    "mutguard.functions": ROOT / "functions",
}
CHECKS = ROOT / "mutguard" / "checks"
RENDERER = ROOT / "mutguard" / "render" / "table.py"

# Third-party clients of a cloud or a network service.
SDKS = frozenset(
    {
        "aws_lambda_powertools",
        "azure",
        "boto3",
        "botocore",
        "cloudevents",
        "flask",
        "functions_framework",
        "google",
        "google_crc32c",
        "grpc",
        "kubernetes",
        "msal",
        "requests",
        "s3transfer",
        "slack_sdk",
        "urllib3",
    }
)
# What a check may not import: the SDKs, and the standard library's own network modules.
NETWORK = SDKS | {"http", "socket", "ssl", "smtplib", "urllib.request"}


# Commands of the terminal CLI that draw with rich: the progress bar of a live read
# (cli._live_items) and the catalogue table (cli.cmd_checks). Both import it inside the function,
# and no function package loads mutguard.cli, so the packages can leave rich out.
@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    module: str  # the full dotted name imported (`from a import b` gives a.b and a)
    function: str | None  # the enclosing function; None at module level (a class body included)

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.py") if "__pycache__" not in p.parts)


def source_files() -> list[Path]:
    return [path for directory in PACKAGE_DIRS.values() for path in _files(directory)]


def _module_name(path: Path) -> str:
    for package, directory in PACKAGE_DIRS.items():
        if path.is_relative_to(directory):
            parts = list(path.relative_to(directory).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            return ".".join([package, *parts])
    raise ValueError(path)


def _imported(node: ast.Import | ast.ImportFrom, path: Path) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: resolved against the importing module's package
        package = _module_name(path).split(".")
        if path.name != "__init__.py":
            package.pop()
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(filter(None, [*package, base]))
    # `from a import b` may import the submodule a.b: both names are kept.
    return [base, *(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")]


@cache
def imports(path: Path) -> tuple[Import, ...]:
    found: list[Import] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                name = getattr(child, "name", "<lambda>")
                visit(child, function or name)
            elif isinstance(child, ast.Import | ast.ImportFrom):
                found.extend(
                    Import(path, child.lineno, m, function) for m in _imported(child, path)
                )
            else:
                visit(child, function)

    visit(ast.parse(path.read_text("utf-8"), str(path)), None)
    return tuple(found)


def _is(module: str, names: frozenset[str] | set[str]) -> bool:
    """Whether module is one of names or inside one (`google.cloud.storage` is in `google`)."""
    return any(module == name or module.startswith(name + ".") for name in names)


@cache
def _first_party() -> dict[str, Path]:
    return {_module_name(path): path for path in source_files()}


def _module_level_closure(start: Path) -> Iterator[tuple[Path, str]]:
    """Every first-party file importing `start` loads (module-level imports, followed), with the
    chain of modules that leads to it."""
    modules = _first_party()
    seen = {start}
    queue = [(start, _module_name(start))]
    while queue:
        path, chain = queue.pop(0)
        yield path, chain
        for item in imports(path):
            if item.function is not None:
                continue
            # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
            parts = item.module.split(".")
            for end in range(1, len(parts) + 1):
                target = modules.get(".".join(parts[:end]))
                if target is not None and target not in seen:
                    seen.add(target)
                    queue.append((target, f"{chain} -> {_module_name(target)}"))


def _report(offences: list[str]) -> str:
    """One line per import statement (`from a import b` reads as both a and a.b)."""
    by_place: dict[str, str] = {}
    for offence in offences:
        by_place.setdefault(offence.split(": ", 1)[0], offence)
    return "\n".join(by_place[place] for place in sorted(by_place))


def test_the_layout_is_what_the_rules_read():
    # A rule over an empty or moved folder would pass without reading anything.
    assert _files(CHECKS) and RENDERER.is_file()
    assert (ROOT / "providers" / "__init__.py").is_file()
    assert (ROOT / "mutguard" / "publish" / "__init__.py").is_file()
    assert ROOT / "mutguard" / "cli.py" in source_files()


def test_checks_import_no_network_library_or_cloud_sdk():
    offences = []
    for check_file in _files(CHECKS):
        for path, chain in _module_level_closure(check_file):
            for item in imports(path):
                direct = path == check_file
                if _is(item.module, NETWORK) and (direct or item.function is None):
                    via = "" if direct else f" (loaded by {chain})"
                    offences.append(f"{item.where()}: imports {item.module}{via}")
    assert not offences, "checks must judge collected documents only:\n" + _report(offences)


def test_no_sdk_is_imported_at_module_level_under_mutguard():
    offences = [
        f"{item.where()}: imports {item.module} at module level"
        for path in _files(PACKAGE_DIRS["mutguard"])
        for item in imports(path)
        if item.function is None and _is(item.module, SDKS)
    ]
    assert not offences, (
        "import an SDK inside the function that uses it (a sink, store or secret source):\n"
        + _report(offences)
    )


def test_providers_never_import_publishing_or_the_cli():
    offences = [
        f"{item.where()}: imports {item.module}"
        for path in _files(PACKAGE_DIRS["mutguard.providers"])
        for item in imports(path)
        if _is(item.module, {"mutguard.publish", "mutguard.cli"})
    ]
    assert not offences, "providers only collect and parse:\n" + _report(offences)


def test_only_the_terminal_renderer_imports_rich():
    offences = []
    for path in source_files():
        if path == RENDERER:
            continue
        for item in imports(path):
            if _is(item.module, {"rich"}):
                offences.append(f"{item.where()}: imports {item.module}")
    message = "rich is for the terminal only (mutguard/render/table.py):\n"
    assert not offences, message + _report(offences)


def test_the_rules_see_what_they_look_for():
    # The reader itself: a lazy import is inside its function, a module-level one is not.
    assert any(_is(item.module, {"rich"}) and item.function is None for item in imports(RENDERER))
    lazy = imports(ROOT / "mutguard" / "publish" / "aws.py")
    assert any(_is(item.module, {"boto3"}) and item.function for item in lazy)
