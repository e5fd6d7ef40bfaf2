"""The contract tables in docs/ against the code they describe: each fact has one place, and a drift
either way fails here.

- docs/send-requests.md, the send request's field table and the slide table: the validator's field sets,
  which fields each action takes and requires, their JSON types, every limit probed at both edges, and the
  media extensions;
- docs/state-table.md, the item table: every key the consumer's planner and the sender's ledger write
  matches one of its rows, and every key prefix in the package's code is named there;
- docs/operations.md, the command table: the commands and options `python -m ops --help` offers;
- every Markdown link from one document to a heading (README.md and docs/) names a heading that exists.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mmsbridge.core.phone_numbers import MAX_DIGITS, MIN_DIGITS
from mmsbridge.postbacks.planner import Received, plan_batch
from mmsbridge.postbacks.reader import parse_postback
from mmsbridge.sending import request as send_request
from mmsbridge.sending.conflicts import CONFLICTS_SK, LISTING_PK
from mmsbridge.sending.ledger import ledger_key, outbound_items, rejected_item
from mmsbridge.sending.limiter import KEY as LIMITER_KEY
from tests.conftest import SAMPLES

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EVENTS = ROOT / "events" / "sender"


def table_after(text: str, header: str) -> list[dict[str, str]]:
    """The rows of the Markdown table whose header line starts with `header`, as {column: cell}."""
    lines = text[text.index(header) :].split("\n\n")[0].splitlines()
    columns = [cell.strip() for cell in lines[0].strip().strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        assert len(cells) == len(columns), line
        rows.append(dict(zip(columns, cells, strict=True)))
    return rows


def code_names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


# ------------------------------------------------------------------------------------- the send request

SEND_DOC = (DOCS / "send-requests.md").read_text(encoding="utf-8")
FIELDS = table_after(SEND_DOC, "| Field | Actions | Required | Type | Limits | Rule |")
SLIDE_ROWS = table_after(SEND_DOC, "| Field | Type | Limits | Rule |")
Action = send_request.Action
ACTIONS = {action.value: action for action in send_request.SEND_ACTIONS}
EXAMPLE_FILES = {
    Action.SEND_SMS: "sms.json",
    Action.SEND_SAVED_MMS: "saved-mms.json",
    Action.SEND_MMS: "inline-mms.json",
}
LIMIT = re.compile(r"(?:<= |(\d+)-)(\d+) (characters|digits|items|entries|seconds)")


def example(action: send_request.Action) -> dict:
    """A request the validator accepts, from events/sender/."""
    payload = json.loads((EVENTS / EXAMPLE_FILES[action]).read_text(encoding="utf-8"))
    send_request.validate_send_request(payload)
    return payload


def accepts(payload: dict) -> bool:
    try:
        send_request.validate_send_request(payload)
    except send_request.InvalidSendRequest:
        return False
    return True


def actions_of(row: dict[str, str]) -> set[send_request.Action]:
    if row["Actions"] == "all":
        return set(ACTIONS.values())
    return {ACTIONS[name] for name in code_names(row["Actions"])}


def field_of(row: dict[str, str]) -> str:
    (name,) = code_names(row["Field"])
    return name


def test_the_field_table_names_every_field_of_every_action_and_the_actions_that_take_it():
    documented = {field_of(row): actions_of(row) for row in FIELDS}
    assert len(documented) == len(FIELDS), "a field has two rows"
    in_code: dict[str, set[send_request.Action]] = {}
    for action in send_request.SEND_ACTIONS:
        for name in send_request.COMMON_FIELDS | send_request.ACTION_FIELDS[action]:
            in_code.setdefault(name, set()).add(action)
    assert documented == in_code


def test_the_slide_table_names_every_field_of_a_slide():
    assert {field_of(row) for row in SLIDE_ROWS} == set(send_request.SLIDE_FIELDS)


@pytest.mark.parametrize("row", FIELDS, ids=field_of)
def test_a_field_is_required_exactly_where_the_table_says(row):
    name = field_of(row)
    assert row["Required"] in ("yes", "no"), row
    for action in sorted(actions_of(row)):
        payload = example(action)
        payload.pop(name, None)
        assert accepts(payload) is (row["Required"] == "no"), (name, action.value)


# One value of each JSON type the tables name, and one of a type they do not.
TYPE_PROBES = {"string": "x", "integer": 7, "boolean": True, "object": {}, "array": []}


def probe_value(name: str, kind: str) -> object:
    """A value of the JSON type `kind` for field `name`, valid in every other respect where it can be."""
    valid = {
        ("campaign_ref", "string"): "Spring",
        ("campaign_ref", "integer"): 1001,
        ("mms_id", "string"): "48213",
        ("mms_id", "integer"): 48213,
        ("operator_id", "string"): "123",
        ("operator_id", "integer"): 123,
        ("custom_text", "object"): {"1": "Hi"},
        ("data", "object"): {"firstname": "Ana"},
        ("slides", "array"): [{"text": "Hi"}],
        ("request_id", "integer"): 7,
        ("from_mask", "string"): "Northwind",
    }
    return valid.get((name, kind), TYPE_PROBES[kind])


@pytest.mark.parametrize("row", FIELDS, ids=field_of)
def test_a_field_takes_exactly_the_json_types_the_table_names(row):
    name = field_of(row)
    types = set(row["Type"].split(" or "))
    assert types <= set(TYPE_PROBES), row["Type"]
    action = min(actions_of(row))
    for kind in TYPE_PROBES:
        if name in ("to", "from", "action", "request_id") and kind == "string":
            continue  # the example's own value is the valid string
        payload = example(action)
        payload[name] = probe_value(name, kind)
        if kind in types:
            assert accepts(payload), (name, kind)
        else:
            assert not accepts(payload), (name, kind)


def sized(name: str, unit: str, size: int) -> object:
    """A value of `size` units for field `name`, valid in every other respect."""
    if unit == "digits":
        return "1" * size
    if unit == "items":
        return [{"text": "Hi"}] * size
    if unit == "entries":
        return {str(slide): "Hi" for slide in range(1, size + 1)}
    if unit == "seconds":
        return size
    if name.endswith("_url"):
        stem = "https://media.example.com/"
        return stem + "a" * (size - len(stem))
    return "a" * size


def limits(rows: list[dict[str, str]]) -> list[tuple[str, str, int | None, int]]:
    found = []
    for row in rows:
        if row["Limits"] == "-":
            continue
        match = LIMIT.fullmatch(row["Limits"])
        assert match, f"{row['Field']}: limits {row['Limits']!r} are not in a form this test reads"
        low = int(match[1]) if match[1] else None
        found.append((field_of(row), match[3], low, int(match[2])))
    return found


@pytest.mark.parametrize(("name", "unit", "low", "high"), limits(FIELDS), ids=lambda v: str(v))
def test_a_fields_limits_hold_at_both_edges(name, unit, low, high):
    (row,) = [row for row in FIELDS if field_of(row) == name]
    payload = example(min(actions_of(row)))

    def with_size(size: int) -> bool:
        return accepts({**payload, name: sized(name, unit, size)})

    assert with_size(high), f"{name}: {high} {unit} refused"
    assert not with_size(high + 1), f"{name}: {high + 1} {unit} accepted"
    if low is not None:
        assert with_size(low), f"{name}: {low} {unit} refused"
        if low > 1:
            assert not with_size(low - 1), f"{name}: {low - 1} {unit} accepted"


@pytest.mark.parametrize(("name", "unit", "low", "high"), limits(SLIDE_ROWS), ids=lambda v: str(v))
def test_a_slides_limits_hold_at_both_edges(name, unit, low, high):
    payload = example(Action.SEND_MMS)

    def with_size(size: int) -> bool:
        slide = {name: sized(name, unit, size)}
        if name not in (*send_request.MEDIA_SLOTS, "text"):
            slide["text"] = "Hi"  # an object only with text; a duration is no content
        return accepts({**payload, "slides": [slide]})

    assert with_size(high), f"{name}: {high} {unit} refused"
    assert not with_size(high + 1), f"{name}: {high + 1} {unit} accepted"
    if low is not None:
        assert with_size(low) or name.endswith("_url"), f"{name}: {low} {unit} refused"
        if low > 1:
            assert not with_size(low - 1), f"{name}: {low - 1} {unit} accepted"


def test_the_slide_table_lists_the_extensions_each_url_takes():
    for row in SLIDE_ROWS:
        name = field_of(row)
        if name.endswith("_url"):
            listed = re.search(r"extension(?:, where the name has one:)? ([\w, ]+)$", row["Rule"])
            assert listed, row
            assert set(listed[1].replace(",", " ").split()) == send_request.MEDIA_EXTENSIONS[name], name


def test_the_numbers_length_is_the_one_the_number_rules_enforce():
    (to,) = [row for row in FIELDS if field_of(row) == "to"]
    assert f"{MIN_DIGITS}-{MAX_DIGITS} digits including the country code" in to["Rule"]


def test_the_message_size_limit_is_the_validators():
    assert send_request.MAX_MESSAGE_BYTES == 256 * 1024
    assert "at most 256 KiB" in SEND_DOC


# ------------------------------------------------------------------------------------------ state table

STATE_DOC = (DOCS / "state-table.md").read_text(encoding="utf-8")
ITEMS = table_after(STATE_DOC, "| Item | pk | sk | What it holds |")
RECEIVED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
PACKAGE = ROOT / "layers" / "mmsbridge" / "mmsbridge"


def key_pattern(shape: str) -> re.Pattern[str]:
    """A documented key (`MSG#<TRACKINGID>`, `EVT#...`, `RANK#<rank>#<code>`) as a regular expression:
    a placeholder stands for any non-empty text, `...` for the rest of the key."""
    parts = re.split(r"(<[^>]+>|\.\.\.)", shape)
    return re.compile("".join(".+" if part and part[0] in "<." else re.escape(part) for part in parts))


@functools.cache
def documented_keys() -> list[tuple[str, re.Pattern[str], re.Pattern[str]]]:
    """(item, pk pattern, sk pattern) for every pk / sk pairing of the item table. A cell with two keys
    (`A` / `B`) pairs with the other cell's keys in order, or with its only one."""
    keys = []
    for row in ITEMS:
        pks = code_names(row["pk"])
        sks = code_names(row["sk"])
        assert pks, row
        assert sks, row
        for index in range(max(len(pks), len(sks))):
            pk = pks[min(index, len(pks) - 1)]
            sk = sks[min(index, len(sks) - 1)]
            keys.append((row["Item"], key_pattern(pk), key_pattern(sk)))
    return keys


def rows_matching(pk: str, sk: str) -> list[str]:
    return [item for item, pk_p, sk_p in documented_keys() if pk_p.fullmatch(pk) and sk_p.fullmatch(sk)]


def postback_fixtures() -> list[Path]:
    return sorted(path for path in (SAMPLES / "postbacks").rglob("*.xml"))


@functools.cache
def planned_keys() -> set[tuple[str, str]]:
    """Every (pk, sk) the consumer's planner writes for the provider's sample postbacks."""
    received = []
    for path in postback_fixtures():
        body = path.read_bytes()
        sha = hashlib.sha256(body).hexdigest()
        received.append(
            Received(sha, parse_postback(body, received_at=RECEIVED_AT), f"raw/{sha}.xml", sha, RECEIVED_AT)
        )
    plan = plan_batch(received, retention_days=400)
    keys = set(plan.puts)
    keys |= {(item["pk"], item["sk"]) for item, _ in plan.quarantine}
    return keys


def test_the_samples_exercise_the_planner():
    prefixes = {pk.split("#")[0] for pk, _ in planned_keys()}
    assert {"MSG", "TPL", "IN", "SUB", "EMAILSUB", "SUPPRESS", "OTHER"} <= prefixes, prefixes


def test_every_key_the_consumer_writes_is_a_documented_item():
    undocumented = sorted(key for key in planned_keys() if not rows_matching(*key))
    assert undocumented == []


def test_every_key_the_sender_writes_is_a_documented_item():
    ledger = {
        **ledger_key("order-1"),
        "tracking_id": "U01T",
        "accepted_at": "2026-01-02T03:04:05Z",
        "to": "1",
    }
    refused = rejected_item('{"request_id": 7}', 7, [("request_id", "must be a string")], RECEIVED_AT)
    keys = [
        (ledger["pk"], ledger["sk"]),
        (refused["pk"], refused["sk"]),
        (LIMITER_KEY["pk"], LIMITER_KEY["sk"]),
        (ledger["pk"], CONFLICTS_SK),
        *((item["pk"], item["sk"]) for item in outbound_items(ledger)),
    ]
    for key in keys:
        assert rows_matching(*key), key
    assert refused["gsi2pk"].startswith("REJECTED_ID#")
    assert LISTING_PK in STATE_DOC


def test_every_key_prefix_in_the_code_is_documented_and_every_documented_one_is_in_the_code():
    """A literal `PREFIX#` in the package (a partition, sort key or index key prefix) is named in the
    document, and each pk prefix of the item table is written somewhere in the code."""
    in_code: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        in_code |= set(re.findall(r"""f?["']([A-Z][A-Z_]+)#""", source))
    in_doc = set(re.findall(r"(?<![\w#])([A-Z][A-Z_]+)#", STATE_DOC))
    assert in_code <= in_doc, (
        f"prefixes the code writes and docs/state-table.md does not name: {in_code - in_doc}"
    )
    pk_prefixes = {code.split("#")[0] for row in ITEMS for code in code_names(row["pk"])}
    assert pk_prefixes <= in_code, f"documented partitions no code writes: {pk_prefixes - in_code}"


# ----------------------------------------------------------------------------------------- the ops CLI

OPS_DOC = (DOCS / "operations.md").read_text(encoding="utf-8")
COMMANDS = table_after(OPS_DOC, "| Command | What it shows |")


def ops_help(*args: str) -> str:
    """`python -m ops [args] --help`, as an operator sees it."""
    done = subprocess.run(
        [sys.executable, "-m", "ops", *args, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    return done.stdout


def documented_commands() -> dict[str, set[str]]:
    """{command: the options its rows show} from the command table."""
    commands: dict[str, set[str]] = {}
    for row in COMMANDS:
        for usage in code_names(row["Command"]):
            name = usage.split()[0]
            commands.setdefault(name, set()).update(re.findall(r"--[a-z][a-z0-9-]*", usage))
    return commands


@functools.cache
def offered_commands() -> list[str]:
    """The subcommands under COMMAND in `python -m ops --help`."""
    listing = ops_help().split("positional arguments:", 1)[1].split("\noptions:", 1)[0]
    return re.findall(r"^ {4}([a-z][a-z-]*)(?:\s|$)", listing, re.MULTILINE)


def test_the_command_table_lists_every_command_the_cli_offers():
    assert set(documented_commands()) == set(offered_commands())


@pytest.mark.parametrize("command", sorted(documented_commands()))
def test_every_option_the_command_table_shows_is_the_commands(command):
    offered = set(re.findall(r"--[a-z][a-z0-9-]*", ops_help(command)))
    assert documented_commands()[command] <= offered


def test_the_global_options_are_the_clis():
    (usage,) = re.findall(r"^ {4}python -m ops (.*)$", OPS_DOC, re.MULTILINE)
    assert set(re.findall(r"--[a-z][a-z0-9-]*", usage)) <= set(re.findall(r"--[a-z][a-z0-9-]*", ops_help()))


# ---------------------------------------------------------------------------------------- links between

HEADING = re.compile(r"^#{1,6} (.+?)\s*#*$", re.MULTILINE)
FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        anchor = slug(heading)
        number = 0
        while (anchor if number == 0 else f"{anchor}-{number}") in found:
            number += 1
        found.add(anchor if number == 0 else f"{anchor}-{number}")
    return found


DOCUMENTS = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_link_to_a_heading_finds_it(document):
    text = FENCE.sub("", document.read_text(encoding="utf-8"))
    broken = []
    for target in LINK.findall(text):
        path, _, fragment = target.partition("#")
        if not fragment or re.match(r"^[a-z]+:", target):
            continue
        linked = (document.parent / path).resolve() if path else document
        if linked.suffix == ".md" and fragment not in anchors(linked):
            broken.append(target)
    assert broken == []


def test_the_heading_anchors_are_githubs():
    assert slug("Operating it: `python -m ops`") == "operating-it-python--m-ops"
    assert slug("The account's API Gateway logging role") == "the-accounts-api-gateway-logging-role"
    assert slug("2.3 sendSavedMMS (§2.3)") == "23-sendsavedmms-23"


def test_the_state_ranks_and_the_open_index_shards_are_the_codes():
    from mmsbridge.core.states import MessageState
    from mmsbridge.core.table_model import OPEN_SHARDS

    (ranking,) = re.findall(r"\((DELIVERED \d >[^)]*)\)", STATE_DOC)
    documented = {name: int(rank) for name, rank in re.findall(r"([A-Z]+) (\d)", ranking)}
    assert documented == {state.value: state.rank for state in MessageState}
    assert f"`gsi1pk = OPEN#0..{OPEN_SHARDS - 1}`" in STATE_DOC


def test_the_inbound_shards_are_the_codes():
    from mmsbridge.core.table_model import INBOUND_SHARDS

    assert f"`<shard>` = 0..{INBOUND_SHARDS - 1}" in STATE_DOC


# ------------------------------------------------------------------------------------------- postbacks

POSTBACKS_DOC = (DOCS / "postbacks.md").read_text(encoding="utf-8")


def test_the_quarantine_reasons_are_the_ones_the_consumer_gives():
    from mmsbridge.postbacks.own_numbers import NOT_OUR_NUMBER
    from mmsbridge.postbacks.reader import REASONS

    (row,) = [line for line in POSTBACKS_DOC.splitlines() if line.startswith("| not an envelope")]
    documented = set(code_names(row.split("|")[1]))
    # not-bytes and internal are a caller's bug and this module's: no body the queue carries gets them.
    expected = (REASONS - {"not-bytes", "internal"}) | {"not-an-envelope", "hash-mismatch", NOT_OUR_NUMBER}
    assert documented == expected


def test_the_stop_keywords_are_the_readers():
    from mmsbridge.postbacks.reader import STOP_KEYWORDS

    (listed,) = re.findall(r"an inbound ((?:[A-Z]+, )+[A-Z]+)\)", STATE_DOC)
    documented = {word.lower() for word in listed.split(", ")}
    assert documented == STOP_KEYWORDS
