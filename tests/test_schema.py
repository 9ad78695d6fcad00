"""schemas/report.schema.json is what the models generate (run `make schema` after a change)."""

import json
from pathlib import Path

from mutguard.models import SCHEMA_VERSION
from mutguard.schema import report_schema

SCHEMA_FILE = Path(__file__).parents[1] / "schemas" / "report.schema.json"


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
