"""The `aws_deployment` fixture as a pytest plugin: listed in `pytest_plugins` by the test
modules that use it, it is one fixture for the session, so they share one deployment."""

from collections.abc import Iterator

import pytest

from .aws_deployment import Deployment, build_lambda_package
from .aws_recorder import AwsRecorder
from .chat import ChatServer
from .moto import MotoServer
from .terraform import TerraformRoot, find_mirror, missing_tools


@pytest.fixture(scope="session")
def aws_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Both AWS modules applied to a moto_server of their own, shared by every test module."""
    reason = missing_tools()
    if reason is not None:
        pytest.skip(reason)
    mirror = find_mirror()
    assert mirror is not None
    directory = tmp_path_factory.mktemp("aws-deployment")
    with MotoServer() as moto, AwsRecorder(moto.url) as recorder, ChatServer() as chat:
        lambda_zip, package = build_lambda_package(directory)
        deployment = Deployment(
            directory=directory,
            moto=moto,
            recorder=recorder,
            chat=chat,
            lambda_zip=lambda_zip,
            package=package,
            scanner=TerraformRoot(directory / "scanner", mirror),
            member=TerraformRoot(directory / "member", mirror),
        )
        deployment.create_sinks()
        deployment.create_member_clusters()
        deployment.apply()
        yield deployment
