"""Message state ranking (docs/provider-protocol.md §3.8) and the ORIGIN/CODE catalogue (§3.2)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmsbridge.core.states import (
    CATALOGUE,
    MessageState,
    PostbackKind,
    TemplateState,
    higher,
    is_terminal_conflict,
    lookup,
)

S = MessageState


def test_ranks_follow_the_state_table():
    assert [state.rank for state in (S.SUBMITTED, S.SENT, S.FAILED, S.UNDELIVERED, S.DELIVERED)] == [
        0,
        1,
        2,
        3,
        4,
    ]


@pytest.mark.parametrize(
    ("state", "terminal"),
    [(S.SUBMITTED, False), (S.SENT, False), (S.FAILED, True), (S.UNDELIVERED, True), (S.DELIVERED, True)],
)
def test_terminal_states(state, terminal):
    assert state.terminal is terminal


def test_states_are_plain_strings_for_storage():
    assert S.DELIVERED == "DELIVERED"
    assert str(S.UNDELIVERED) == "UNDELIVERED"
    assert MessageState("SENT") is S.SENT


@pytest.mark.parametrize(
    ("current", "incoming", "expected"),
    [
        (None, S.SENT, S.SENT),
        (S.SUBMITTED, S.SENT, S.SENT),
        (S.DELIVERED, S.SENT, S.DELIVERED),  # N102 then a late N101 stays DELIVERED
        (S.UNDELIVERED, S.SENT, S.UNDELIVERED),  # E102 then a late N101 stays UNDELIVERED
        (S.SENT, S.FAILED, S.FAILED),
        (S.FAILED, S.DELIVERED, S.DELIVERED),
        (S.DELIVERED, S.UNDELIVERED, S.DELIVERED),
        (S.SENT, S.SENT, S.SENT),
    ],
)
def test_higher_keeps_the_furthest_state(current, incoming, expected):
    assert higher(current, incoming) is expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list(MessageState)), min_size=1, max_size=12), st.randoms())
def test_final_state_does_not_depend_on_arrival_order_or_repeats(events, random):
    shuffled = list(events)
    random.shuffle(shuffled)
    final = None
    for state in shuffled:
        final = higher(final, state)
    assert final is max(events, key=lambda state: state.rank)


@pytest.mark.parametrize(
    ("current", "incoming", "conflict"),
    [
        (S.DELIVERED, S.UNDELIVERED, True),
        (S.FAILED, S.DELIVERED, True),
        (S.DELIVERED, S.DELIVERED, False),  # a repeat is not a conflict
        (S.SENT, S.DELIVERED, False),
        (S.DELIVERED, S.SENT, False),
        (None, S.DELIVERED, False),
    ],
)
def test_terminal_conflict(current, incoming, conflict):
    assert is_terminal_conflict(current, incoming) is conflict


# §3.8's "Set by" column, verbatim.
STATE_SET_BY = {
    S.SENT: {("MMS_MT", "N101"), ("SMS_MT", "N201")},
    S.FAILED: {
        ("MMS_MT", "E101"),
        ("MMS_MT", "E011"),
        ("MMS_MT", "E012"),
        ("MMS_MT", "E013"),
        ("SMS_MT", "E201"),
    },
    S.UNDELIVERED: {("MMS_MT", "E102"), ("MMS_MT", "E202"), ("MMS_MT", "N103"), ("SMS_MT", "E202")},
    S.DELIVERED: {("MMS_MT", "N102"), ("MMS_MT", "N202"), ("SMS_MT", "N202")},
}


def test_catalogue_states_match_the_state_machine_table():
    actual: dict[MessageState, set[tuple[str, str]]] = {}
    for key, info in CATALOGUE.items():
        if info.state is not None:
            actual.setdefault(info.state, set()).add(key)
    assert actual == STATE_SET_BY
    for keys in STATE_SET_BY.values():
        assert all(CATALOGUE[key].kind is PostbackKind.DELIVERY for key in keys)


def test_catalogue_rows_are_keyed_by_their_own_origin_and_code():
    for (origin, code), info in CATALOGUE.items():
        assert (info.origin, info.code) == (origin, code)
        assert origin == origin.upper()
        assert code == code.upper()


@pytest.mark.parametrize("code", ["N501", "N502", "E501", "E502", "N013", "E999"])
def test_record_only_codes_change_no_state(code):
    info = CATALOGUE[("MMS_MT", code)]
    assert info.state is None
    assert info.kind in (PostbackKind.DDM, PostbackKind.MT_RECORD)


def test_e999_alerts_and_nothing_else_does():
    assert [key for key, info in CATALOGUE.items() if info.alert] == [("MMS_MT", "E999")]


@pytest.mark.parametrize(
    ("code", "template_state"),
    [("N003", TemplateState.READY), ("E002", TemplateState.BROKEN), ("E003", TemplateState.BROKEN)],
)
def test_template_codes(code, template_state):
    info = CATALOGUE[("MMS_MT", code)]
    assert info.kind is PostbackKind.TEMPLATE
    assert info.template_state is template_state
    assert info.required == ("MMSID",)


@pytest.mark.parametrize(("code", "ok"), [("N801", True), ("N802", False), ("N803", False), ("N811", False)])
def test_pass_codes_an_n_prefix_is_not_success(code, ok):
    info = CATALOGUE[("GENERATE_PASS", code)]
    assert info.kind is PostbackKind.PASS
    assert info.pass_ok is ok


@pytest.mark.parametrize(
    ("origin", "code", "kind", "subscribed"),
    [
        ("SUB", "N301", PostbackKind.SUBSCRIPTION, True),
        ("SUB", "N302", PostbackKind.SUBSCRIPTION, False),
        ("EMAIL_SUB", "N303", PostbackKind.EMAIL_SUBSCRIPTION, True),
        ("EMAIL_SUB", "N304", PostbackKind.EMAIL_SUBSCRIPTION, False),
    ],
)
def test_subscription_codes(origin, code, kind, subscribed):
    info = CATALOGUE[(origin, code)]
    assert info.kind is kind
    assert info.subscribed is subscribed


# §3.1 "Required fields", plus the documented decisions for N013/E011-E013/E999/DDM.
@pytest.mark.parametrize(
    ("origin", "code", "required"),
    [
        ("MMS_MT", "N101", ("TRACKINGID",)),
        ("MMS_MT", "E102", ("TRACKINGID",)),
        ("MMS_MT", "E011", ("TRACKINGID",)),
        ("MMS_MT", "N501", ("TRACKINGID",)),
        ("MMS_MT", "N013", ("TRACKINGID",)),
        ("MMS_MT", "E999", ()),
        ("MMS_MT", "N003", ("MMSID",)),
        ("SMS_MT", "E202", ("TRACKINGID",)),
        ("SMS_MO", "N211", ("FROM", "TO")),
        ("MMS_MO", "N401", ("TRACKINGID", "FROM", "TO")),
        ("SUB", "N302", ("MOBILE", "CAMPAIGNID")),
        ("EMAIL_SUB", "N303", ("EMAIL", "CAMPAIGNID")),
        ("GENERATE_PASS", "N801", ()),
    ],
)
def test_required_keys(origin, code, required):
    assert CATALOGUE[(origin, code)].required == required


def test_lookup_is_case_insensitive_and_unknowns_are_none():
    assert lookup("mms_mt", "n102") is CATALOGUE[("MMS_MT", "N102")]
    assert lookup("MMS_MT", "N999") is None
    assert lookup("VOICE", "N101") is None


@pytest.mark.parametrize("api_error", ["E104", "E113", "E110", "E626", "E100"])
def test_api_error_codes_are_not_postback_codes(api_error):
    # §3.7: the two namespaces never share a table. E101/E102/E201/E202/E999 exist in both, with different
    # meanings; only their postback meaning is here.
    assert all(lookup(origin, api_error) is None for origin in ("MMS_MT", "SMS_MT"))
    assert CATALOGUE[("MMS_MT", "E101")].state is S.FAILED
