"""The member accounts of an AWS Organization, for a dispatcher set to scan all of them
(MUTGUARD_AWS_ORGANIZATIONS=true).

ListAccounts answers only in the organization's management account or a delegated
administrator account; the function's role needs organizations:ListAccounts there. Accounts
that are suspended, closing or not yet activated are skipped: AssumeRole into them fails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mutguard import __version__
from mutguard.errors import ConfigurationError
from mutguard.functions.payload import Target

ENABLED_ENV = "MUTGUARD_AWS_ORGANIZATIONS"
ACTIVE = "ACTIVE"


def enabled(environ: Mapping[str, str]) -> bool:
    value = environ.get(ENABLED_ENV, "").strip().lower()
    if value not in ("", "true", "false"):
        raise ConfigurationError(f"{ENABLED_ENV} is {value!r}: set it to true or false")
    return value == "true"


def organization_targets(regions: Sequence[str], organizations: Any = None) -> list[Target]:
    """One EKS target per active account and region (region None: every enabled one)."""
    accounts = active_accounts(organizations or _client())
    if not accounts:
        raise ConfigurationError(
            f"{ENABLED_ENV} is true but the organization has no active accounts"
        )
    return [
        Target(provider="eks", account=account, region=region)
        for account in accounts
        for region in (regions or [None])
    ]


def active_accounts(organizations: Any) -> list[str]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        pages = organizations.get_paginator("list_accounts").paginate()
        return sorted(a["Id"] for page in pages for a in page["Accounts"] if _state(a) == ACTIVE)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        reason = f"{error.get('Code', 'Error')}: {error.get('Message', '')}"
    except BotoCoreError as exc:
        reason = str(exc)
    raise ConfigurationError(
        f"{ENABLED_ENV} is true but organizations:ListAccounts failed ({reason}); run the "
        "dispatcher in the management or a delegated administrator account, with that permission"
    )


def _state(account: dict[str, Any]) -> str | None:
    # `State` replaces `Status`, which AWS retires from the API on 9 September 2026.
    state: str | None = account.get("State") or account.get("Status")
    return state


def _client() -> Any:
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard"}, user_agent_extra=f"mutguard/{__version__}")
    return boto3.client("organizations", config=config)
