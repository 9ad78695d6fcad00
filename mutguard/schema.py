"""Print the JSON Schema of the report (schemas/report.schema.json is this output, committed)."""

from __future__ import annotations

import json

from mutguard.models import SCHEMA_VERSION, Report


def report_schema() -> dict:
    schema = Report.model_json_schema(by_alias=True, mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"urn:mutguard:report:{SCHEMA_VERSION}"
    return schema


if __name__ == "__main__":
    print(json.dumps(report_schema(), indent=2, sort_keys=True))
