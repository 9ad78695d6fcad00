"""The check catalogue: complete metadata, stable ids, and a test for every check."""

import re
from pathlib import Path

from mutguard.checks import catalogue
from mutguard.models import Provider

TESTS = Path(__file__).parent


def test_every_check_has_complete_metadata():
    checks = catalogue()
    assert len({c.meta.id for c in checks}) == len(checks)
    for check in checks:
        meta = check.meta
        assert meta.title and meta.rationale, meta.id
        assert meta.references and all(r.startswith("https://") for r in meta.references), meta.id
        assert set(meta.remediation) == set(meta.providers), meta.id
        prefix = meta.id.split(".")[0]
        if prefix in {p.value for p in Provider}:
            assert meta.providers == [Provider(prefix)], meta.id


def test_every_check_is_exercised_by_a_test():
    sources = "\n".join(
        p.read_text() for p in TESTS.glob("test_*.py") if p.name != Path(__file__).name
    )
    untested = [
        c.meta.id for c in catalogue() if not re.search(re.escape(f'"{c.meta.id}"'), sources)
    ]
    assert untested == []


def test_provider_filter():
    eks = {c.meta.id for c in catalogue(Provider.EKS)}
    assert "eks.endpoint.public_unrestricted" in eks and "rbac.anonymous_admin" in eks
    assert not [c for c in catalogue(Provider.GKE) if c.meta.id.startswith("eks.")]
