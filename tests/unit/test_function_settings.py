"""Each function's settings, read once from its environment in one style (mmsbridge.config): typed values,
defaults where the template has them, and an error naming the variable when one is missing or malformed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from local.template.resolve import load_stack
from mmsbridge.config import Env, SettingError
from mmsbridge.events.service import PublisherFunctionSettings
from mmsbridge.ingest.service import IngestFunctionSettings
from mmsbridge.postbacks.service import ConsumerFunctionSettings
from mmsbridge.sending.sender import Delivery
from mmsbridge.sending.service import SenderFunctionSettings
from mmsbridge.sending.upkeep import StaleFunctionSettings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {
    "IngestFunction": IngestFunctionSettings,
    "ConsumerFunction": ConsumerFunctionSettings,
    "SenderFunction": SenderFunctionSettings,
    "StaleMessagesFunction": StaleFunctionSettings,
    "EventPublisherFunction": PublisherFunctionSettings,
}


# ---- the reader -----------------------------------------------------------------------------------------


def test_required_text_names_the_missing_variable():
    with pytest.raises(SettingError, match=r"^STATE_TABLE is not set$"):
        Env({}).text("STATE_TABLE")
    with pytest.raises(SettingError, match="STATE_TABLE"):
        Env({"STATE_TABLE": "  "}).text("STATE_TABLE")
    assert Env({}).text("ARCHIVE_PREFIX", "raw/") == "raw/"
    assert Env({"ARCHIVE_PREFIX": ""}).text("ARCHIVE_PREFIX", "raw/") == ""  # set empty: as given


def test_numbers_are_typed_and_checked():
    env = Env({"MAX_ATTEMPTS": "7", "RATE": "2.5", "ZERO": "0", "WORDS": "ten", "EMPTY": ""})
    assert env.integer("MAX_ATTEMPTS", 5) == 7
    assert env.integer("UNSET", 5) == 5
    assert env.number("RATE") == 2.5
    with pytest.raises(SettingError, match=r"^WORDS must be an integer, got 'ten'$"):
        env.integer("WORDS", 5)
    with pytest.raises(SettingError, match=r"^EMPTY must be a number, got ''$"):
        env.number("EMPTY", 1.0)
    with pytest.raises(SettingError, match=r"^UNSET is not set$"):
        env.number("UNSET")
    with pytest.raises(SettingError, match=r"^ZERO must be at least 1, got 0$"):
        env.integer("ZERO", 5, minimum=1)


def test_flags_and_lists():
    env = Env({"ON": "TRUE", "OFF": "false", "EMPTY": "", "ODD": "yes", "CIDRS": " 10.0.0.0/8, ,::1/128,"})
    assert env.flag("ON") is True
    assert env.flag("OFF", default=True) is False
    assert env.flag("EMPTY") is False
    assert env.flag("UNSET", default=True) is True
    with pytest.raises(SettingError, match=r'^ODD must be "true" or "false"'):
        env.flag("ODD")
    assert env.items("CIDRS") == ("10.0.0.0/8", "::1/128")
    assert env.items("UNSET") == ()
    assert Env({"CODE": ""}).optional("CODE") is None


def test_a_setting_error_is_a_value_error():
    assert issubclass(SettingError, ValueError)


# ---- each function's settings ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def environments() -> dict[str, dict[str, str]]:
    """Each function's environment as the template gives it (the local environment's parameters)."""
    stack = load_stack(ROOT / "template.yaml", ROOT / "samconfig.toml")
    return {lid: dict(stack.functions()[lid].environment) for lid in SETTINGS}


@pytest.mark.parametrize("lid", sorted(SETTINGS))
def test_every_function_reads_its_settings_from_the_templates_environment(environments, lid):
    settings = SETTINGS[lid].from_env(environments[lid])
    assert settings == SETTINGS[lid].from_env(environments[lid])  # frozen values, read the same every time


@pytest.mark.parametrize(
    ("lid", "variable"),
    [
        ("IngestFunction", "ARCHIVE_BUCKET"),
        ("IngestFunction", "POSTBACK_QUEUE_URL"),
        ("IngestFunction", "POSTBACK_TOKEN_SECRET"),
        ("ConsumerFunction", "STATE_TABLE"),
        ("ConsumerFunction", "ARCHIVE_BUCKET"),
        ("SenderFunction", "STATE_TABLE"),
        ("SenderFunction", "SEND_QUEUE_URL"),
        ("SenderFunction", "SEND_DLQ_URL"),
        ("SenderFunction", "PROVIDER_API_URL"),
        ("SenderFunction", "PROVIDER_API_KEY_SECRET"),
        ("SenderFunction", "THROUGHPUT_PER_SECOND"),
        ("StaleMessagesFunction", "STATE_TABLE"),
        ("EventPublisherFunction", "STATE_TABLE"),
        ("EventPublisherFunction", "EVENT_BUS_NAME"),
    ],
)
def test_a_missing_variable_stops_the_cold_start_by_name(environments, lid, variable):
    environment = {name: value for name, value in environments[lid].items() if name != variable}
    with pytest.raises(SettingError, match=f"^{variable} is not set$"):
        SETTINGS[lid].from_env(environment)


@pytest.mark.parametrize(
    ("lid", "variable", "value"),
    [
        ("IngestFunction", "ALLOWED_SOURCE_CIDRS", "not-a-cidr"),
        ("IngestFunction", "MAX_BODY_BYTES", "0"),
        ("ConsumerFunction", "HISTORY_RETENTION_DAYS", "forever"),
        ("ConsumerFunction", "OWN_NUMBERS", "47215,12"),
        ("SenderFunction", "DELIVERY", "exactly-once"),
        ("SenderFunction", "MAX_ATTEMPTS", "five"),
        ("SenderFunction", "MEDIA_PREFLIGHT", "yes"),
        ("SenderFunction", "THROUGHPUT_PER_SECOND", "fast"),
        ("StaleMessagesFunction", "STALE_MESSAGE_HOURS", "a day"),
    ],
)
def test_a_malformed_value_stops_the_cold_start_by_name(environments, lid, variable, value):
    with pytest.raises(SettingError, match=f"^{variable}"):
        SETTINGS[lid].from_env({**environments[lid], variable: value})


def test_the_values_are_typed():
    consumer = ConsumerFunctionSettings.from_env(
        {"STATE_TABLE": "t", "ARCHIVE_BUCKET": "b", "OWN_NUMBERS": "47215, +1 (312) 555-0100"}
    )
    assert (consumer.retention_days, consumer.own_numbers) == (0, frozenset({"47215", "13125550100"}))
    stale = StaleFunctionSettings.from_env({"STATE_TABLE": "t"})
    assert stale.stale_after == timedelta(hours=72)
    assert StaleFunctionSettings.from_env({"STATE_TABLE": "t", "STALE_MESSAGE_HOURS": "1.5"}).stale_after == (
        timedelta(minutes=90)
    )
    sender = SenderFunctionSettings.from_env(
        {
            "STATE_TABLE": "t",
            "SEND_QUEUE_URL": "q",
            "SEND_DLQ_URL": "d",
            "PROVIDER_API_URL": "http://provider",
            "PROVIDER_API_KEY_SECRET": "arn:secret",
            "THROUGHPUT_PER_SECOND": "10",
            "DELIVERY": "at-least-once",
        }
    )
    assert sender.throughput_per_second == 10.0
    assert sender.sender.delivery is Delivery.AT_LEAST_ONCE
    assert not hasattr(sender, "api_key")  # the secret's name only, never the key
