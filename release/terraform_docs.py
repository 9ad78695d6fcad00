"""Render each Terraform module's Inputs and Outputs tables into its README.md
(`make terraform-docs`).

The tables go between the markers `<!-- BEGIN_TF_DOCS -->` and `<!-- END_TF_DOCS -->`, as
terraform-docs would put them, but are rendered here from the module's variable and output
blocks (python-hcl2) so that no Go binary is needed: Inputs (name, description, type, default,
required) and Outputs (name, description), in the order the .tf files declare them. A README
without the markers gets them, with the tables, at its end.

Run with the project's venv: `.venv/bin/python release/terraform_docs.py [--check] [MODULE_DIR...]`
(every directory under terraform/modules by default). `--check` writes nothing and exits 1
naming each README that is out of date.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).resolve().parents[1]
MODULES = ROOT / "terraform" / "modules"
BEGIN = "<!-- BEGIN_TF_DOCS -->"
END = "<!-- END_TF_DOCS -->"
COMMAND = ".venv/bin/python release/terraform_docs.py"


def unquote(value: Any) -> Any:
    """hcl2's tree as Terraform reads it: `"x"` -> x, `${expr}` -> expr, recursively."""
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if not str(k).startswith("__")}
    if isinstance(value, list):
        return [unquote(item) for item in value]
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            return json.loads(value)
        if value.startswith("${") and value.endswith("}"):
            return value[2:-1]
    return value


def blocks(module: Path, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, body) of the module's `variable` or `output` blocks, in declaration order."""
    for tf in sorted(module.glob("*.tf")):
        for block in hcl2.loads(tf.read_text()).get(kind, []):
            for name, body in block.items():
                yield unquote(name), body


def cell(text: str) -> str:
    """Text for one Markdown table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def default(body: dict[str, Any]) -> str:
    if "default" not in body:
        return "n/a"
    value = unquote(body["default"])
    return f"`{cell(json.dumps(value))}`"


def inputs(module: Path) -> list[str]:
    lines = [
        "| Name | Description | Type | Default | Required |",
        "|------|-------------|------|---------|:--------:|",
    ]
    for name, body in blocks(module, "variable"):
        description = cell(unquote(body.get("description", "")))
        type_ = cell(str(unquote(body.get("type", "any"))))
        required = "no" if "default" in body else "yes"
        lines.append(f"| `{name}` | {description} | `{type_}` | {default(body)} | {required} |")
    return lines


def outputs(module: Path) -> list[str]:
    lines = ["| Name | Description |", "|------|-------------|"]
    for name, body in blocks(module, "output"):
        lines.append(f"| `{name}` | {cell(unquote(body.get('description', '')))} |")
    return lines


def render(module: Path) -> str:
    """The text between the markers, markers included."""
    return "\n".join(
        [BEGIN, "## Inputs", "", *inputs(module), "", "## Outputs", "", *outputs(module), END]
    )


def updated(readme: str, block: str) -> str:
    """The README with its marked block replaced by `block` (appended when it has none)."""
    start, end = readme.find(BEGIN), readme.find(END)
    if start == -1 or end < start:
        return readme.rstrip("\n") + "\n\n" + block + "\n"
    return readme[:start] + block + readme[end + len(END) :]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    parser.add_argument("modules", nargs="*", type=Path, help="module directories")
    args = parser.parse_args(argv)
    modules = args.modules or sorted(p for p in MODULES.iterdir() if (p / "variables.tf").is_file())
    stale = []
    for module in modules:
        readme = module / "README.md"
        current = readme.read_text() if readme.is_file() else ""
        wanted = updated(current, render(module))
        if wanted == current:
            continue
        stale.append(readme)
        if not args.check:
            readme.write_text(wanted)
            print(f"updated {readme}")
    if args.check and stale:
        for readme in stale:
            print(f"{readme}: the Inputs/Outputs tables are out of date", file=sys.stderr)
        print(f"run: {COMMAND}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
