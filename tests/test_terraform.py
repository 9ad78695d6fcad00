"""terraform/: the modules' structure, least privilege, the function contract, and the linters.

The modules are parsed once (python-hcl2) and read structurally: every variable typed and
described, README tables generated from them, no wildcard action or primitive role, no storage
account key in the Azure app settings, encrypted queues, retained logs, schedules from variables,
and the handler and environment names of the function contract. `terraform fmt` runs when
terraform is installed, `terraform validate` when its providers can be installed too (not
offline), and checkov, which `make setup` installs, always.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from release import terraform_docs

from servers.terraform import AWS_PROVIDER, find_mirror

ROOT = Path(__file__).parents[1]
TERRAFORM = ROOT / "terraform"
MODULES = ("aws", "aws-member", "gcp", "azure")
MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md")
CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"

# The function contract: the handlers and the settings the modules pass to them.
AWS_HANDLERS = {
    "dispatcher": "mutguard.functions.aws_lambda.dispatcher.handler",
    "worker": "mutguard.functions.aws_lambda.worker.handler",
}
AWS_RUNTIME = "python3.12"
GCP_ENTRY_POINTS = {"on_message": "on_message", "audit": "audit"}
GCP_RUNTIME = "python312"
AZURE_PYTHON = "3.12"
CONTRACT_ENV = frozenset(
    {
        "MUTGUARD_TARGETS",
        "MUTGUARD_AWS_ORGANIZATIONS",
        "MUTGUARD_REGIONS",
        "MUTGUARD_ROLE_ARN",
        "MUTGUARD_EXTERNAL_ID",
        "MUTGUARD_QUEUE_URL",
        "MUTGUARD_TOPIC",
        "MUTGUARD_QUEUE_NAME",
        "MUTGUARD_SINKS",
        "MUTGUARD_SINKS_CONFIG",
        "MUTGUARD_STATE_STORE",
        "MUTGUARD_AZURE_STORAGE_CONNECTION_STRING",
        "MUTGUARD_AZURE_TABLE_ENDPOINT",
        "MUTGUARD_REPORT_STORE",
        "MUTGUARD_REPORT_LINK_TTL",
        "MUTGUARD_REPORT_KMS_KEY",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_LOG_LEVEL",
    }
)
# Read by functions/runtime.py (Settings.from_env) besides the contract's names.
RUNTIME_ENV = frozenset({"MUTGUARD_GKE_ENDPOINT", "MUTGUARD_ARM_ENDPOINT"})
# Not in the contract yet: the Azure timer's NCRONTAB, for schedule="%MUTGUARD_SCHEDULE%".
AZURE_SCHEDULE_SETTING = "MUTGUARD_SCHEDULE"
# Settings each function must get to work at all.
REQUIRED_ENV = {
    "aws": {"MUTGUARD_ROLE_ARN", "MUTGUARD_QUEUE_URL"},
    "gcp": {"MUTGUARD_TOPIC"},
    "azure": {"MUTGUARD_QUEUE_NAME", AZURE_SCHEDULE_SETTING},
}

# AWS actions the functions need that are not a Describe/List/Get read.
AWS_NON_READ_ACTIONS = frozenset(
    {
        "sqs:SendMessage",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sns:Publish",
        "ses:SendRawEmail",
        "securityhub:BatchImportFindings",
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:PutItem",  # a publish claim: a conditional write, so one run sends each alert
        "dynamodb:UpdateItem",  # a finished part adds its number to its run's set of parts
        "s3:PutObject",  # a stored report
        "sts:AssumeRole",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "lambda:InvokeFunction",
    }
)
# Actions that support no resource-level permission, so only they may be granted on "*".
AWS_UNSCOPABLE_ACTIONS = frozenset(
    {
        "eks:ListClusters",
        "ec2:DescribeRegions",
        "organizations:ListAccounts",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
)
GCP_ROLES = frozenset(
    {
        "roles/container.clusterViewer",
        "roles/secretmanager.secretAccessor",
        "roles/pubsub.publisher",
        "roles/storage.objectUser",
        # The report bucket: create reports, read them through signed URLs signed by signBlob.
        "roles/storage.objectCreator",
        "roles/storage.objectViewer",
        "roles/iam.serviceAccountTokenCreator",
        "roles/run.invoker",
        # The scc sink: create/update findings and set their state, nothing else in SCC.
        "roles/securitycenter.findingsEditor",
    }
)
GCP_PRIMITIVE_ROLES = frozenset({"roles/owner", "roles/editor", "roles/viewer"})
AZURE_READ_ROLES = frozenset(
    {"Reader", "Azure Kubernetes Service Cluster User Role", "Key Vault Secrets User"}
)
# What an identity-based AzureWebJobsStorage needs (Microsoft's "Connecting to host storage with
# an identity" and Queue storage binding docs): the host and timer (blobs), the queue trigger and
# output binding (queues), the host's diagnostic events and the state store (tables).
AZURE_STORAGE_DATA_ROLES = frozenset(
    {"Storage Blob Data Owner", "Storage Queue Data Contributor", "Storage Table Data Contributor"}
)
AZURE_STORAGE_ACCOUNT_ID = "${azurerm_storage_account.function.id}"
# The first azurerm release whose azurerm_storage_table takes storage_account_id.
AZURERM_TABLE_ACCOUNT_ID_SINCE = (4, 77)
AZURE_PRIVILEGED_ROLES = frozenset(
    {"Owner", "Contributor", "User Access Administrator", "Role Based Access Control Administrator"}
)


# ---------------------------------------------------------------------------------------------
# Parsing: python-hcl2 keeps string quotes, block markers and comments; `plain` drops them.


def plain(value: Any) -> Any:
    """hcl2's tree as Terraform reads it: `"x"` -> x, labels unquoted, no `__is_block__`.
    Expressions stay as `${...}` strings."""
    if isinstance(value, dict):
        return {plain(key): plain(item) for key, item in value.items() if not key.startswith("__")}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        if value.startswith('"<<'):  # a heredoc, kept verbatim
            return value[1:-1]
        return json.loads(value)
    return value


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    tree: dict[str, list[dict[str, Any]]]  # top-level block kind -> its blocks, all .tf files

    def labelled(self, kind: str) -> dict[str, Any]:
        """variable/output blocks: name -> body."""
        return {name: body for block in self.tree.get(kind, []) for name, body in block.items()}

    def typed(self, kind: str, type_: str) -> dict[str, dict[str, Any]]:
        """resource/data blocks of one type: name -> body."""
        found: dict[str, dict[str, Any]] = {}
        for block in self.tree.get(kind, []):
            found.update(block.get(type_, {}))
        return found

    def resource_types(self) -> set[str]:
        return {type_ for block in self.tree.get("resource", []) for type_ in block}

    @property
    def locals(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for block in self.tree.get("locals", []):
            merged.update(block)
        return merged


def load_module(path: Path) -> Module:
    tree: dict[str, list[dict[str, Any]]] = {}
    for tf in sorted(path.glob("*.tf")):
        for kind, blocks in plain(hcl2.loads(tf.read_text())).items():
            tree.setdefault(kind, []).extend(blocks)
    return Module(path.name, path, tree)


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return {name: load_module(TERRAFORM / "modules" / name) for name in MODULES}


@pytest.fixture(scope="module")
def examples() -> dict[str, Module]:
    return {name: load_module(TERRAFORM / "examples" / name) for name in MODULES}


def one(items: Any) -> Any:
    (item,) = items
    return item


def only(module: Module, type_: str) -> dict[str, Any]:
    """The module's one resource of this type."""
    return one(module.typed("resource", type_).values())


def statements(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """An aws_iam_policy_document's statements, the dynamic ones' content included."""
    yield from document.get("statement", [])
    for dynamic in document.get("dynamic", []):
        yield from dynamic.get("statement", {}).get("content", [])


def policy_documents(module: Module) -> dict[str, dict[str, Any]]:
    return module.typed("data", "aws_iam_policy_document")


def permission_statements(module: Module) -> Iterator[tuple[str, dict[str, Any]]]:
    """Statements of the permission policies (trust policies and TLS-only denials excluded)."""
    for name, document in policy_documents(module).items():
        if not name.endswith("trust"):
            for statement in statements(document):
                if not denies_plain_http(statement):
                    yield name, statement


def denies_plain_http(statement: dict[str, Any]) -> bool:
    """A bucket policy's one Deny: every S3 request that does not come over TLS."""
    return (
        statement.get("effect") == "Deny"
        and statement["actions"] == ["s3:*"]
        and statement["condition"]
        == [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]
    )


def readme_table(readme: str, heading: str) -> list[list[str]]:
    """Rows (cells stripped) of the Markdown table under `## heading`."""
    section = readme.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows[2:]]


def first_regex(condition: str) -> re.Pattern[str]:
    """The pattern of the first regex("...") call in a validation condition."""
    match = re.search(r'regex\(("(?:[^"\\]|\\.)*")', condition)
    assert match, condition
    return re.compile(json.loads(match.group(1)))


# ---------------------------------------------------------------------------------------------
# Layout and documentation.


@pytest.mark.parametrize("name", MODULES)
def test_each_module_has_its_files_and_an_example(name: str) -> None:
    for file_name in MODULE_FILES:
        assert (TERRAFORM / "modules" / name / file_name).is_file(), f"{name}/{file_name}"
    assert (TERRAFORM / "examples" / name / "main.tf").is_file()


@pytest.mark.parametrize("name", MODULES)
def test_every_variable_is_typed_and_described(modules: dict[str, Module], name: str) -> None:
    variables = modules[name].labelled("variable")
    assert variables
    for variable, body in variables.items():
        assert body.get("type"), f"{name}: variable {variable} has no type"
        assert str(body.get("description", "")).strip(), f"{name}: {variable} has no description"


@pytest.mark.parametrize("name", MODULES)
def test_every_output_is_described(modules: dict[str, Module], name: str) -> None:
    for output, body in modules[name].labelled("output").items():
        assert str(body.get("description", "")).strip(), f"{name}: output {output}"


@pytest.mark.parametrize("name", MODULES)
def test_the_readme_tables_list_exactly_the_inputs_and_outputs(
    modules: dict[str, Module], name: str
) -> None:
    module = modules[name]
    readme = (module.path / "README.md").read_text()
    variables = module.labelled("variable")
    inputs = {row[0].strip("`"): row for row in readme_table(readme, "Inputs")}
    assert set(inputs) == set(variables)
    for variable, row in inputs.items():
        required = "no" if "default" in variables[variable] else "yes"
        assert row[-1] == required, f"{name}: {variable} is documented as required={row[-1]}"
    outputs = {row[0].strip("`") for row in readme_table(readme, "Outputs")}
    assert outputs == set(module.labelled("output"))


def test_every_readme_table_is_generated_from_the_module() -> None:
    stale = [
        str(module.relative_to(ROOT))
        for module in (TERRAFORM / "modules" / name for name in MODULES)
        if terraform_docs.updated((module / "README.md").read_text(), terraform_docs.render(module))
        != (module / "README.md").read_text()
    ]
    assert not stale, f"README tables out of date in {stale}: run {terraform_docs.COMMAND}"


def test_the_readme_generator_renders_types_defaults_and_escapes(tmp_path: Path) -> None:
    (tmp_path / "variables.tf").write_text(
        'variable "a" {\n  type = list(object({ x = string }))\n'
        '  description = "A | B, e.g. [\\"x\\"]."\n  default = ["x"]\n}\n'
        'variable "b" {\n  type = string\n  description = "Needed."\n}\n'
        'variable "c" {\n  type = string\n  description = "Optional."\n  default = null\n}\n'
    )
    (tmp_path / "outputs.tf").write_text(
        'output "o" {\n  description = "The id."\n  value = 1\n}\n'
    )
    block = terraform_docs.render(tmp_path)
    assert block.startswith(terraform_docs.BEGIN) and block.endswith(terraform_docs.END)
    assert '| `a` | A \\| B, e.g. ["x"]. | `list(object({x = string}))` | `["x"]` | no |' in block
    assert "| `b` | Needed. | `string` | n/a | yes |" in block
    assert "| `c` | Optional. | `string` | `null` | no |" in block
    assert "| `o` | The id. |" in block
    readme = "# m\n\nProse.\n"
    once = terraform_docs.updated(readme, block)
    assert once.startswith(readme) and terraform_docs.updated(once, block) == once
    (tmp_path / "README.md").write_text(readme)
    assert terraform_docs.main(["--check", str(tmp_path)]) == 1
    assert terraform_docs.main([str(tmp_path)]) == 0
    assert terraform_docs.main(["--check", str(tmp_path)]) == 0


def test_versions_are_pinned_with_wide_ranges(
    modules: dict[str, Module], examples: dict[str, Module]
) -> None:
    for module in [*modules.values(), *examples.values()]:
        terraform = one(module.tree["terraform"])
        assert terraform["required_version"].startswith("~> "), module.path
        for provider in one(terraform["required_providers"]).values():
            assert provider["source"].startswith("hashicorp/"), module.path
            if provider["source"] == "hashicorp/aws":
                # 5.100 (the newest 5.x, which offline mirrors carry) and every 6.x
                assert provider["version"] == ">= 5.100, < 7.0", module.path
            else:
                assert provider["version"].startswith("~> "), module.path


@pytest.mark.parametrize("name", MODULES)
def test_each_example_calls_its_module_with_real_inputs(
    modules: dict[str, Module], examples: dict[str, Module], name: str
) -> None:
    variables = modules[name].labelled("variable")
    call = one(examples[name].labelled("module").values())
    assert call["source"] == f"../../modules/{name}"
    arguments = set(call) - {"source"}
    assert arguments <= set(variables), arguments - set(variables)
    required = {v for v, body in variables.items() if "default" not in body}
    assert required <= arguments, required - arguments


# ---------------------------------------------------------------------------------------------
# Least privilege.


def test_every_policy_is_a_checked_policy_document(modules: dict[str, Module]) -> None:
    """Inline JSON would escape the statement checks below."""
    for name in ("aws", "aws-member"):
        module = modules[name]
        for body in module.typed("resource", "aws_iam_role_policy").values():
            assert body["policy"].startswith("${data.aws_iam_policy_document."), name
        for body in module.typed("resource", "aws_iam_role").values():
            assert body["assume_role_policy"].startswith("${data.aws_iam_policy_document.")
        assert "aws_iam_role_policy_attachment" not in module.resource_types()


def test_no_aws_action_has_a_wildcard(modules: dict[str, Module]) -> None:
    for name in ("aws", "aws-member"):
        for document in policy_documents(modules[name]).values():
            for statement in statements(document):
                if denies_plain_http(statement):
                    continue
                assert "not_actions" not in statement and "not_resources" not in statement
                assert statement.get("effect", "Allow") == "Allow"
                for action in statement["actions"]:
                    assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z]+", action), f"{name}: {action}"


def test_the_scanner_policies_allow_reads_and_the_contract_calls_only(
    modules: dict[str, Module],
) -> None:
    for name in ("aws", "aws-member"):
        for document, statement in permission_statements(modules[name]):
            for action in statement["actions"]:
                service, verb = action.split(":")
                read = verb.startswith(("Describe", "List", "Get"))
                assert read or action in AWS_NON_READ_ACTIONS, f"{name}/{document}: {action}"
                if service in {"eks", "iam"}:
                    assert read, f"{name}/{document}: mutating {action}"


def test_only_unscopable_actions_are_granted_on_every_resource(
    modules: dict[str, Module],
) -> None:
    for name in ("aws", "aws-member"):
        for document, statement in permission_statements(modules[name]):
            resources = statement["resources"]
            if resources == ["*"]:
                assert set(statement["actions"]) <= AWS_UNSCOPABLE_ACTIONS, f"{name}/{document}"
            else:
                assert "*" not in resources, f"{name}/{document}"


def test_the_functions_read_clusters_only_through_the_member_role(
    modules: dict[str, Module],
) -> None:
    for document, statement in permission_statements(modules["aws"]):
        assert not any(a.startswith(("eks:", "ec2:")) for a in statement["actions"]), document
    granted = [s for _, s in permission_statements(modules["aws"])]
    assume = one(s for s in granted if "sts:AssumeRole" in s["actions"])
    assert assume["resources"] == "${local.member_role_arns}"


def test_the_member_role_grants_exactly_the_reads_the_readme_lists(
    modules: dict[str, Module],
) -> None:
    section = (ROOT / "README.md").read_text().split("### IAM permissions (read-only)", 1)[1]
    policy = json.loads(section.split("```json", 1)[1].split("```", 1)[0])
    documented = set(policy["Statement"][0]["Action"])
    granted = {a for _, s in permission_statements(modules["aws-member"]) for a in s["actions"]}
    assert granted == documented


def test_the_member_role_trusts_only_the_scanner_with_the_external_id(
    modules: dict[str, Module],
) -> None:
    statement = one(list(statements(policy_documents(modules["aws-member"])["trust"])))
    assert statement["actions"] == ["sts:AssumeRole"]
    principal = one(statement["principals"])
    assert principal == {"type": "AWS", "identifiers": ["${var.scanner_role_arn}"]}
    assert one(statement["condition"]) == {
        "test": "StringEquals",
        "variable": "sts:ExternalId",
        "values": ["${var.external_id}"],
    }


def test_gcp_grants_only_predefined_narrow_roles(modules: dict[str, Module]) -> None:
    module = modules["gcp"]
    iam_types = {t for t in module.resource_types() if "_iam_" in t}
    assert all(t.endswith("_iam_member") for t in iam_types), "no authoritative IAM resource"
    roles = {body["role"] for t in iam_types for body in module.typed("resource", t).values()}
    assert roles <= GCP_ROLES and not roles & GCP_PRIMITIVE_ROLES, roles
    for t in iam_types:
        for body in module.typed("resource", t).values():
            assert "allUsers" not in body["member"] and "allAuthenticated" not in body["member"]


def test_the_security_hubs_are_written_only_where_a_sink_is_turned_on(
    modules: dict[str, Module],
) -> None:
    worker = policy_documents(modules["aws"])["worker"]
    (hub,) = [s for s in statements(worker) if s["sid"] == "ImportSecurityHubFindings"]
    assert hub["actions"] == ["securityhub:BatchImportFindings"]
    assert hub["resources"] == "${var.securityhub_product_arns}"
    scc = modules["gcp"].typed("resource", "google_organization_iam_member")["scc_findings"]
    assert scc["count"] == "${var.scc_organization_id == null ? 0 : 1}"
    assert scc["role"] == "roles/securitycenter.findingsEditor"


def test_the_audit_function_is_never_public(modules: dict[str, Module]) -> None:
    variables = modules["gcp"].labelled("variable")
    invokers = first_regex(one(variables["audit_invokers"]["validation"])["condition"])
    assert invokers.match("group:secops@example.com")
    assert not invokers.match("allUsers") and not invokers.match("allAuthenticatedUsers")
    assert variables["audit_ingress_settings"]["default"] == "ALLOW_INTERNAL_ONLY"
    audit = modules["gcp"].typed("resource", "google_cloudfunctions2_function")["audit"]
    assert one(audit["service_config"])["ingress_settings"] == "${var.audit_ingress_settings}"
    assert "event_trigger" not in audit


def test_azure_writes_only_to_its_own_storage_account(modules: dict[str, Module]) -> None:
    module = modules["azure"]
    assignments = module.typed("resource", "azurerm_role_assignment")
    assert all("role_definition_id" not in body for body in assignments.values())
    storage = assignments.pop("storage")
    assert storage["role_definition_name"] == "${each.value}"
    assert storage["scope"] == AZURE_STORAGE_ACCOUNT_ID
    assert storage["for_each"] == "${local.storage_data_roles}"
    roles = {body["role_definition_name"] for body in assignments.values()}
    assert roles <= AZURE_READ_ROLES and not roles & AZURE_PRIVILEGED_ROLES, roles


def test_azure_grants_the_documented_roles_for_identity_based_storage(
    modules: dict[str, Module],
) -> None:
    module = modules["azure"]
    roles = module.locals["storage_data_roles"]
    assert set(re.findall(r'"([^"]+)"', roles)) == AZURE_STORAGE_DATA_ROLES, roles
    for assignment in module.typed("resource", "azurerm_role_assignment").values():
        assert assignment["principal_id"] == "${local.principal_id}"
        assert assignment["principal_type"] == "ServicePrincipal"
    assert module.locals["principal_id"] == (
        "${azurerm_linux_function_app.this.identity[0].principal_id}"
    )


def test_azure_app_settings_hold_no_storage_account_key(modules: dict[str, Module]) -> None:
    module = modules["azure"]
    app = module.typed("resource", "azurerm_linux_function_app")["this"]
    # azurerm then sets AzureWebJobsStorage__accountName, and no key-based content share.
    assert app["storage_uses_managed_identity"] is True
    assert "storage_account_access_key" not in app and "storage_key_vault_secret_id" not in app
    text = "\n".join(tf.read_text() for tf in module.path.glob("*.tf"))
    for secret in ("primary_access_key", "secondary_access_key", "connection_string"):
        assert not re.search(rf"azurerm_storage_account\.\w+\.\w*{secret}", text), secret
    endpoint = module.locals["environment"]["MUTGUARD_AZURE_TABLE_ENDPOINT"]
    assert "azurerm_storage_account.function.primary_table_endpoint" in endpoint
    assert "MUTGUARD_AZURE_STORAGE_CONNECTION_STRING" not in module.locals["environment"]


def test_the_azure_state_table_is_named_by_account_id(
    modules: dict[str, Module], examples: dict[str, Module]
) -> None:
    table = modules["azure"].typed("resource", "azurerm_storage_table")["state"]
    assert table["storage_account_id"] == AZURE_STORAGE_ACCOUNT_ID
    assert "storage_account_name" not in table
    for module in (modules["azure"], examples["azure"]):
        provider = one(one(module.tree["terraform"])["required_providers"])["azurerm"]
        minimum = re.fullmatch(r"~> (\d+)\.(\d+)", provider["version"])
        assert minimum, provider["version"]
        assert tuple(map(int, minimum.groups())) >= AZURERM_TABLE_ACCOUNT_ID_SINCE, module.path


# ---------------------------------------------------------------------------------------------
# Data protection, logging, schedules.


def test_every_sqs_queue_is_encrypted_and_the_scan_queue_has_a_dead_letter_queue(
    modules: dict[str, Module],
) -> None:
    queues = modules["aws"].typed("resource", "aws_sqs_queue")
    for name, queue in queues.items():
        # SQS managed SSE when no key is given, the customer-managed key otherwise.
        assert queue["sqs_managed_sse_enabled"] == "${var.kms_key_arn == null ? true : null}", name
        assert queue["kms_master_key_id"] == "${var.kms_key_arn}", name
    assert "aws_sqs_queue.dead_letter.arn" in queues["scan"]["redrive_policy"]


def test_the_state_table_is_encrypted_and_recoverable(modules: dict[str, Module]) -> None:
    table = modules["aws"].typed("resource", "aws_dynamodb_table")["state"]
    assert table["hash_key"] == "cluster_key"
    assert one(table["attribute"]) == {"name": "cluster_key", "type": "S"}
    assert table["billing_mode"] == "PAY_PER_REQUEST"
    assert one(table["server_side_encryption"])["enabled"] is True
    assert one(table["point_in_time_recovery"])["enabled"] is True


def test_the_aws_report_bucket_is_private_encrypted_tls_only_and_expires(
    modules: dict[str, Module],
) -> None:
    aws = modules["aws"]
    block = only(aws, "aws_s3_bucket_public_access_block")
    assert all(block[flag] is True for flag in ("block_public_acls", "block_public_policy"))
    assert all(block[flag] is True for flag in ("ignore_public_acls", "restrict_public_buckets"))
    ownership = one(only(aws, "aws_s3_bucket_ownership_controls")["rule"])
    assert ownership["object_ownership"] == "BucketOwnerEnforced"
    encryption = one(only(aws, "aws_s3_bucket_server_side_encryption_configuration")["rule"])
    default = one(encryption["apply_server_side_encryption_by_default"])
    assert default["sse_algorithm"] == '${var.kms_key_arn == null ? "AES256" : "aws:kms"}'
    expiry = one(only(aws, "aws_s3_bucket_lifecycle_configuration")["rule"])
    assert one(expiry["expiration"])["days"] == "${var.report_retention_days}"
    policy = only(aws, "aws_s3_bucket_policy")["policy"]
    assert policy == "${data.aws_iam_policy_document.reports_tls_only.json}"
    (deny,) = statements(policy_documents(aws)["reports_tls_only"])
    assert denies_plain_http(deny)
    # The worker writes, and reads for its links, under the report prefix only.
    granted = {
        s["sid"]: s["resources"]
        for s in statements(policy_documents(aws)["worker"])
        if s["sid"] in {"StoreReports", "ReadReportsThroughLinks"}
    }
    prefix = ["${aws_s3_bucket.reports[0].arn}/${var.report_prefix}/*"]
    assert granted == {"StoreReports": prefix, "ReadReportsThroughLinks": prefix}


def test_every_log_is_retained_for_a_set_time(modules: dict[str, Module]) -> None:
    aws = modules["aws"]
    groups = aws.typed("resource", "aws_cloudwatch_log_group")
    assert all(g["retention_in_days"] == "${var.log_retention_in_days}" for g in groups.values())
    # Each function's log group exists before it, so Lambda never creates one without retention.
    functions = aws.typed("resource", "aws_lambda_function")
    assert {g["name"] for g in groups.values()} == {
        "/aws/lambda/" + f["function_name"] for f in functions.values()
    }
    workspace = only(modules["azure"], "azurerm_log_analytics_workspace")
    assert workspace["retention_in_days"] == "${var.log_retention_in_days}"
    gcp = modules["gcp"]
    bucket = only(gcp, "google_logging_project_bucket_config")
    assert bucket["retention_days"] == "${var.log_retention_days}"
    assert gcp.labelled("variable")["log_retention_days"]["default"] >= 365


def test_the_gcp_functions_logs_go_to_the_retained_bucket(modules: dict[str, Module]) -> None:
    gcp = modules["gcp"]
    sink = only(gcp, "google_logging_project_sink")
    bucket_id = "${google_logging_project_bucket_config.functions.id}"
    assert sink["destination"] == f"logging.googleapis.com/{bucket_id}"
    assert sink["filter"] == "${local.function_log_filter}"
    functions = gcp.typed("resource", "google_cloudfunctions2_function")
    names = {name: f["name"] for name, f in functions.items()}
    assert names == {
        "on_message": "${local.function_names[0]}",
        "audit": "${local.function_names[1]}",
    }
    for resource_type in ("cloud_run_revision", "cloud_function"):
        assert f'resource.type=\\"{resource_type}\\"' in gcp.locals["function_log_filter"]


def test_every_schedule_comes_from_variables(modules: dict[str, Module]) -> None:
    schedule = only(modules["aws"], "aws_scheduler_schedule")
    assert schedule["schedule_expression"] == "${var.schedule_expression}"
    assert schedule["schedule_expression_timezone"] == "${var.schedule_timezone}"
    # A scheduled run alerts: the dispatch asks its scans to publish (as the Azure timer does).
    assert (
        one(schedule["target"])["input"] == '${jsonencode({action = "dispatch", publish = true})}'
    )
    job = only(modules["gcp"], "google_cloud_scheduler_job")
    assert job["schedule"] == "${var.schedule}" and job["time_zone"] == "${var.time_zone}"
    assert (
        one(job["pubsub_target"])["data"]
        == '${base64encode(jsonencode({action = "dispatch", publish = true}))}'
    )
    assert modules["azure"].locals["environment"][AZURE_SCHEDULE_SETTING] == "${var.schedule}"


# ---------------------------------------------------------------------------------------------
# The function contract.


def test_the_lambdas_run_the_contract_handlers(modules: dict[str, Module]) -> None:
    functions = modules["aws"].typed("resource", "aws_lambda_function")
    assert {name: f["handler"] for name, f in functions.items()} == AWS_HANDLERS
    for function in functions.values():
        assert function["runtime"] == AWS_RUNTIME
        assert function["filename"] == "${var.lambda_zip_path}"
        assert one(function["environment"])["variables"] == "${local.lambda_environment}"


def test_the_worker_reports_batch_item_failures(modules: dict[str, Module]) -> None:
    mapping = only(modules["aws"], "aws_lambda_event_source_mapping")
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    assert mapping["event_source_arn"] == "${aws_sqs_queue.scan.arn}"
    assert mapping["function_name"] == "${aws_lambda_function.worker.arn}"


def test_the_cloud_functions_run_the_contract_entry_points(modules: dict[str, Module]) -> None:
    functions = modules["gcp"].typed("resource", "google_cloudfunctions2_function")
    assert {name: one(f["build_config"])["entry_point"] for name, f in functions.items()} == (
        GCP_ENTRY_POINTS
    )
    for function in functions.values():
        assert one(function["build_config"])["runtime"] == GCP_RUNTIME
        config = one(function["service_config"])
        assert config["environment_variables"] == "${local.function_environment}"
        assert config["service_account_email"] == "${google_service_account.scanner.email}"
    trigger = one(functions["on_message"]["event_trigger"])
    assert trigger["event_type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert trigger["pubsub_topic"] == "${google_pubsub_topic.scan.id}"


def test_the_function_app_is_python_and_hardened(modules: dict[str, Module]) -> None:
    module = modules["azure"]
    app = module.typed("resource", "azurerm_linux_function_app")["this"]
    site = one(app["site_config"])
    assert one(site["application_stack"])["python_version"] == AZURE_PYTHON
    assert site["minimum_tls_version"] == "1.2" and site["scm_minimum_tls_version"] == "1.2"
    assert site["ftps_state"] == "Disabled"
    assert app["https_only"] is True
    assert app["ftp_publish_basic_authentication_enabled"] is False
    assert app["webdeploy_publish_basic_authentication_enabled"] is False
    assert one(app["identity"])["type"] == "SystemAssigned"
    assert app["app_settings"] == "${local.app_settings}"
    storage = module.typed("resource", "azurerm_storage_account")["function"]
    assert storage["min_tls_version"] == "TLS1_2"
    assert storage["allow_nested_items_to_be_public"] is False
    assert storage["infrastructure_encryption_enabled"].startswith("${var.")
    queue = module.locals["environment"]["MUTGUARD_QUEUE_NAME"]
    assert queue == "${azurerm_storage_queue.scan.name}"
    assert "@Microsoft.KeyVault(SecretUri=${id})" in module.locals["key_vault_settings"]


@pytest.mark.parametrize("name", ("aws", "gcp", "azure"))
def test_the_functions_get_only_contract_settings(modules: dict[str, Module], name: str) -> None:
    settings = set(modules[name].locals["environment"])
    known = CONTRACT_ENV | RUNTIME_ENV | ({AZURE_SCHEDULE_SETTING} if name == "azure" else set())
    assert settings <= known, settings - known
    assert REQUIRED_ENV[name] <= settings


def test_every_setting_the_modules_pass_is_read_by_the_code(modules: dict[str, Module]) -> None:
    # The names above are the modules' side of the contract; this ties them to the Python side,
    # so a setting renamed in one place fails here instead of being silently ignored.
    sources = [*(ROOT / "functions").rglob("*.py"), *(ROOT / "mutguard").rglob("*.py")]
    code = "\n".join(path.read_text() for path in sources)
    read = set(re.findall(r"[\"%](MUTGUARD_[A-Z0-9_]+)[\"%]", code))
    passed = {
        setting
        for name in ("aws", "gcp", "azure")
        for setting in modules[name].locals["environment"]
        if setting.startswith("MUTGUARD_")
    }
    assert passed <= read, passed - read


def test_the_contract_handlers_are_callables_of_the_functions_package() -> None:
    import importlib

    for dotted in AWS_HANDLERS.values():
        module, _, attribute = dotted.rpartition(".")
        assert callable(getattr(importlib.import_module(module), attribute)), dotted
    gcp = importlib.import_module("mutguard.functions.gcp.main")
    assert all(callable(getattr(gcp, entry)) for entry in GCP_ENTRY_POINTS.values())


def test_the_access_entries_use_the_group_the_reader_role_binds(
    modules: dict[str, Module],
) -> None:
    documents = yaml.safe_load_all((ROOT / "deploy" / "mutguard-reader.yaml").read_text())
    bound = {
        subject["name"]
        for document in documents
        if document["kind"] in {"ClusterRoleBinding", "RoleBinding"}
        for subject in document["subjects"]
        if subject["kind"] == "Group"
    }
    member = modules["aws-member"]
    assert set(member.locals["kubernetes_groups"]) == bound
    entry = member.typed("resource", "aws_eks_access_entry")["reader"]
    assert entry["type"] == "STANDARD"
    assert entry["kubernetes_groups"] == "${local.kubernetes_groups}"
    assert entry["principal_arn"] == "${aws_iam_role.reader.arn}"


# ---------------------------------------------------------------------------------------------
# Linters.

CHECKOV_SKIP = re.compile(r"#checkov:skip=(?P<check>[^:\s]+)(?::(?P<reason>.*))?")


def test_every_checkov_skip_names_a_check_and_says_why() -> None:
    for tf in sorted(TERRAFORM.rglob("*.tf")):
        for line in tf.read_text().splitlines():
            if "checkov:skip" in line:
                skip = CHECKOV_SKIP.search(line)
                assert skip, f"{tf}: {line}"
                assert re.fullmatch(r"CKV2?_[A-Z]+_\d+", skip["check"]), f"{tf}: {line}"
                reason = skip["reason"] or ""
                assert len(reason.split()) >= 5, f"{tf}: {skip['check']} says not why"


def terraform_env(tmp_path: Path) -> dict[str, str]:
    """Terraform writes its data and plugin cache under tmp_path, never into the repository;
    the AWS provider comes from a local mirror where this machine has one, the others from the
    registry (so those modules are validated only where it can be reached)."""
    cache = tmp_path / "plugin-cache"
    cache.mkdir(exist_ok=True)
    cli_config = Path(os.devnull)
    mirror = find_mirror()
    if mirror is not None:
        aws = json.dumps(AWS_PROVIDER.as_posix())
        cli_config = tmp_path / "terraform.rc"
        cli_config.write_text(
            "provider_installation {\n"
            f"  filesystem_mirror {{\n    path = {json.dumps(str(mirror))}\n"
            f"    include = [{aws}]\n  }}\n"
            f"  direct {{\n    exclude = [{aws}]\n  }}\n"
            "}\n"
        )
    return {
        **os.environ,
        "TF_CLI_CONFIG_FILE": str(cli_config),
        "TF_DATA_DIR": str(tmp_path / ".terraform"),
        "TF_PLUGIN_CACHE_DIR": str(cache),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
    }


def terraform() -> str:
    found = shutil.which("terraform")
    if found is None:
        pytest.skip("terraform is not on PATH: install Terraform >= 1.5 to check formatting")
    return found


def test_terraform_files_are_formatted(tmp_path: Path) -> None:
    result = subprocess.run(
        [terraform(), "fmt", "-check", "-recursive", "-diff", "-no-color", str(TERRAFORM)],
        capture_output=True,
        text=True,
        timeout=60,
        env=terraform_env(tmp_path),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", MODULES)
def test_terraform_validate(tmp_path: Path, name: str) -> None:
    binary = terraform()
    module = tmp_path / name
    shutil.copytree(TERRAFORM / "modules" / name, module)  # init writes a lock file beside it
    env = terraform_env(tmp_path)
    init = subprocess.run(
        [binary, "init", "-backend=false", "-input=false", "-no-color"],
        cwd=module,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    if init.returncode != 0:
        reason = next((line for line in init.stderr.splitlines() if line.strip()), "")
        pytest.skip(f"terraform init could not install {name}'s providers (offline?): {reason}")
    result = subprocess.run(
        [binary, "validate", "-no-color"],
        cwd=module,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def checkov_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One checkov run over terraform/ (examples included, so modules are scanned with real
    inputs), offline, and deaf to the developer's own checkov settings."""
    if not CHECKOV.is_file():
        pytest.fail(f"checkov is not installed at {CHECKOV.relative_to(ROOT)}: run `make setup`")
    home = tmp_path_factory.mktemp("checkov")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BC_", "CKV_", "CHECKOV_", "PRISMA_"))
    }
    env.update(
        HOME=str(home),
        BC_SKIP_MAPPING="TRUE",
        CKV_SKIP_PACKAGE_UPDATE_CHECK="true",
        CKV_PARSE_ERROR_FAIL="true",
        CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false",
    )
    result = subprocess.run(
        [
            str(CHECKOV),
            *("-d", str(TERRAFORM), "--framework", "terraform"),
            *("--quiet", "--compact", "--skip-download", "-o", "json"),
        ],
        cwd=home,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    return one(report) if isinstance(report, list) else report


def test_checkov_finds_no_failed_check(checkov_report: dict[str, Any]) -> None:
    summary = checkov_report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] > 0 and summary["passed"] > 0
    failed = [
        f"{f['check_id']} {f['resource']} ({f['file_path']}): {f['check_name']}"
        for f in checkov_report.get("results", {}).get("failed_checks", [])
    ]
    assert failed == [], "\n".join(failed)
