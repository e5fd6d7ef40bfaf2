"""A lazily created client talks where the container's environment said at init, not where the process
environment points when it is first used."""

from __future__ import annotations

from local.runtime import patched_environ
from mmsbridge.aws.clients import LazyClient

INIT = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:45999",
    "AWS_REGION": "eu-west-2",
    "AWS_ACCESS_KEY_ID": "init-key",
    "AWS_SECRET_ACCESS_KEY": "init-secret",
}
LATER = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:46999",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "later-key",
    "AWS_SECRET_ACCESS_KEY": "later-secret",
}


def test_the_first_use_keeps_the_init_environment():
    with patched_environ(INIT):
        s3 = LazyClient("s3")
    with patched_environ(LATER):
        assert s3.meta.endpoint_url == INIT["AWS_ENDPOINT_URL"]
        assert s3.meta.region_name == "eu-west-2"
        assert s3._request_signer._credentials.access_key == "init-key"


def test_a_service_endpoint_wins_over_the_general_one():
    with patched_environ({**INIT, "AWS_ENDPOINT_URL_SECRETSMANAGER": "http://127.0.0.1:47999"}):
        secrets = LazyClient("secretsmanager")
    with patched_environ(LATER):
        assert secrets.meta.endpoint_url == "http://127.0.0.1:47999"
