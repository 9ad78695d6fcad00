"""Terraform on this machine, offline: the binary, a provider mirror, and one root module run
with a CLI configuration of its own (never the user's ~/.terraformrc)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

MIRROR_ENV = "MUTGUARD_TF_MIRROR"
# Where filesystem mirrors usually live; Terraform's own implied mirror directories included.
KNOWN_MIRRORS = (
    Path("/opt/tf-plugins"),
    Path.home() / ".terraform.d" / "plugins",
    Path("/usr/local/share/terraform/plugins"),
    Path("/usr/share/terraform/plugins"),
)
AWS_PROVIDER = Path("registry.terraform.io") / "hashicorp" / "aws"
PLATFORM = "linux_amd64"
TIMEOUT_SECONDS = 300


def _supported(version: str) -> bool:
    """The range the AWS modules accept: >= 5.100, < 7.0."""
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (5, 100) and major < 7


def find_mirror() -> Path | None:
    """A filesystem mirror holding hashicorp/aws in the modules' range for this platform."""
    configured = os.environ.get(MIRROR_ENV)
    for root in [Path(configured)] if configured else KNOWN_MIRRORS:
        provider = root / AWS_PROVIDER
        if provider.is_dir() and any(
            _supported(v.name) and (v / PLATFORM).is_dir() for v in provider.iterdir()
        ):
            return root
    return None


def missing_tools() -> str | None:
    """Why Terraform cannot run here, or None."""
    if shutil.which("terraform") is None:
        return "terraform is not on PATH"
    if find_mirror() is None:
        where = os.environ.get(MIRROR_ENV) or ", ".join(str(p) for p in KNOWN_MIRRORS)
        return (
            f"no provider mirror with hashicorp/aws >= 5.100, < 7.0 for {PLATFORM} in {where} "
            f"(set {MIRROR_ENV})"
        )
    return None


class TerraformRoot:
    """A root module in `directory`; every command runs with its own CLI configuration."""

    def __init__(self, directory: Path, mirror: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        cli_config = directory / "terraform.rc"
        cli_config.write_text(
            "provider_installation {\n"
            f"  filesystem_mirror {{\n    path = {json.dumps(str(mirror))}\n  }}\n"
            "}\n"
        )
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(directory),
            "TF_CLI_CONFIG_FILE": str(cli_config),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }

    def write(self, text: str) -> None:
        (self.directory / "main.tf").write_text(text)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["terraform", *args, "-no-color"],
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"terraform {' '.join(args)} failed ({result.returncode}):\n"
                + result.stdout[-4000:]
                + result.stderr[-4000:]
            )
        return result

    def start(self, *args: str) -> Running:
        """Run a command in the background; `wait()` on the result fails as `run` would."""
        process = subprocess.Popen(
            ["terraform", *args, "-no-color"],
            cwd=self.directory,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        return Running(process, args)

    def init(self) -> None:
        self.run("init", "-input=false", "-backend=false")

    def show_json(self, plan: str | None = None) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(
            self.run("show", "-json", *([plan] if plan else [])).stdout
        )
        return document

    def outputs(self) -> dict[str, Any]:
        raw = json.loads(self.run("output", "-json").stdout)
        return {name: value["value"] for name, value in raw.items()}


class Running:
    def __init__(self, process: subprocess.Popen[str], args: tuple[str, ...]) -> None:
        self.process, self.args = process, args
        self.stdout = ""

    def wait(self) -> None:
        try:
            self.stdout, stderr = self.process.communicate(timeout=TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise
        if self.process.returncode != 0:
            raise AssertionError(
                f"terraform {' '.join(self.args)} failed ({self.process.returncode}):\n"
                + self.stdout[-4000:]
                + stderr[-4000:]
            )


def wait_all(*steps: Running) -> None:
    """Wait for every step, then fail with the first that failed."""
    failures = []
    for step in steps:
        try:
            step.wait()
        except (AssertionError, subprocess.TimeoutExpired) as exc:
            failures.append(exc)
    if failures:
        raise failures[0]


def aws_provider(endpoint: str, region: str, alias: str | None = None, role_arn: str = "") -> str:
    """An aws provider block that sends every service to `endpoint` with moto's dummy keys."""
    services = (
        *("dynamodb", "ec2", "eks", "iam", "lambda", "logs", "scheduler", "secretsmanager"),
        *("s3", "ses", "sns", "sqs", "sts"),
    )
    endpoints = "\n".join(f"    {s} = {json.dumps(endpoint)}" for s in services)
    assume = f'  assume_role {{\n    role_arn = "{role_arn}"\n  }}\n' if role_arn else ""
    return (
        'provider "aws" {\n'
        + (f'  alias = "{alias}"\n' if alias else "")
        + f'  region = "{region}"\n'
        + '  access_key = "testing"\n  secret_key = "testing"\n'
        + "  skip_credentials_validation = true\n"
        + "  skip_requesting_account_id = true\n"
        + "  skip_metadata_api_check = true\n"
        + "  skip_region_validation = true\n"
        + "  s3_use_path_style = true\n"
        + assume
        + f"  endpoints {{\n{endpoints}\n  }}\n"
        + "}\n"
    )
