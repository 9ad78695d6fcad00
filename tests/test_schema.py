"""schemas/report.schema.json is what the models generate (run `make schema` after a change), and
it holds mutguard's reports to the contract a reader relies on."""

import datetime
import json
from pathlib import Path

import jsonschema
import pytest

from mutguard.cli import main
from mutguard.models import SCHEMA_VERSION, Report
from mutguard.schema import report_schema

SCHEMA_FILE = Path(__file__).parents[1] / "schemas" / "report.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))


@pytest.fixture
def demo_report(capsys) -> dict:
    main(["demo", "--format", "json"])
    return json.loads(capsys.readouterr().out)


def test_committed_schema_matches_the_models():
    assert json.loads(SCHEMA_FILE.read_text()) == report_schema(), "run `make schema`"


def test_schema_names_the_design_fields():
    schema = report_schema()
    assert schema["properties"]["schema_version"]["default"] == SCHEMA_VERSION
    cluster = schema["$defs"]["ClusterReport"]["properties"]
    for field in (
        "mut",
        "mut_workload",
        "mut_credential",
        "mut_basis",
        "paths",
        "maturity",
        "findings",
        "errors",
    ):
        assert field in cluster
    assert "from" in schema["$defs"]["AttackPath"]["properties"]


def test_the_demo_report_is_valid(validator, demo_report):
    assert demo_report["schema_version"] == SCHEMA_VERSION
    validator.validate(demo_report)


def test_a_report_without_schema_version_is_invalid(validator, demo_report):
    del demo_report["schema_version"]
    with pytest.raises(jsonschema.ValidationError, match="'schema_version' is a required property"):
        validator.validate(demo_report)


def test_a_report_built_or_read_without_schema_version_gets_the_current_one():
    generated_at = datetime.datetime(2026, 3, 1, 8, 0, tzinfo=datetime.UTC)
    built = Report(generated_at=generated_at, clusters=[])
    read = Report.model_validate({"generated_at": generated_at.isoformat(), "clusters": []})
    assert built.schema_version == read.schema_version == SCHEMA_VERSION
    assert json.loads(built.to_json())["schema_version"] == SCHEMA_VERSION
