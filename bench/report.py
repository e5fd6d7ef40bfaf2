"""The benchmarks' figures as one table: rows from each benchmark's JSON, then Markdown and a PNG chart.

Every row is a figure measured in the run, its baseline measured in the same run, their ratio and the
target the ratio is held to. Nothing here measures: it only reads what the benchmarks printed.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Row:
    area: str
    figure: str
    unit: str
    value: float
    baseline_name: str
    baseline: float | None
    target: str  # e.g. "<= 1.1", ">= 0.95", "= 0"; what `met` compares ("" for a figure only reported)
    met: bool | None

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.baseline else None


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "=": operator.eq,
}


def _row(
    area: str,
    figure: str,
    unit: str,
    value: float,
    baseline_name: str,
    baseline: float | None,
    target: str,
    *,
    on: str = "ratio",
) -> Row:
    """A row whose target applies to the ratio (on="ratio") or to the value itself (on="value")."""
    if not target:
        return Row(area, figure, unit, value, baseline_name, baseline, "reported", None)
    sign, _, limit = target.partition(" ")
    subject = value / baseline if on == "ratio" and baseline else value
    met = _COMPARE[sign](subject, float(limit))
    shown = target if on == "ratio" else f"value {target}"
    return Row(area, figure, unit, value, baseline_name, baseline, shown, met)


def ingest_rows(data: dict[str, Any]) -> list[Row]:
    warm, delayed, cold = data["warm"], data["warm_delayed"], data["cold"]
    return [
        _row(
            "ingest",
            "warm answer p50",
            "ms",
            warm["handler"]["p50_ms"],
            "the same two writes one after the other, bare boto3",
            warm["baseline"]["p50_ms"],
            "<= 1.1",
        ),
        _row(
            "ingest",
            f"warm answer p50, +{data['delay_ms']:.0f} ms per AWS call",
            "ms",
            delayed["handler"]["p50_ms"],
            "the same, sequential",
            delayed["baseline"]["p50_ms"],
            "<= 0.7",
        ),
        _row(
            "ingest",
            "warm answer p95",
            "ms",
            warm["handler"]["p95_ms"],
            "the same two writes one after the other, bare boto3",
            warm["baseline"]["p95_ms"],
            "",
        ),
        _row(
            "ingest",
            "cold process: import + first postback",
            "ms",
            cold["handler"]["p50_ms"],
            "bare boto3 doing the two writes",
            cold["baseline"]["p50_ms"],
            "<= 1.3",
        ),
    ]


def parse_rows(data: dict[str, Any]) -> list[Row]:
    rows = [
        _row(
            "parser",
            "bytes to typed postback",
            "µs",
            data["parse_us"],
            "defusedxml fromstring alone",
            data["defused_us"],
            "<= 1.3",
        )
    ]
    if "stdlib_us" in data:
        floor = "the standard library's ElementTree fromstring (the floor)"
        rows.append(
            _row("parser", "bytes to typed postback", "µs", data["parse_us"], floor, data["stdlib_us"], "")
        )
    return rows


def events_rows(data: dict[str, Any]) -> list[Row]:
    return [
        _row(
            "events",
            f"publisher: {data['stream_records']} stream records to {data['events']} events",
            "events/s",
            data["publisher_per_s"],
            "the same entries put by PutEvents alone, bare boto3",
            data["put_events_per_s"],
            "",
        )
    ]


def consumer_rows(data: dict[str, Any]) -> list[Row]:
    throughput, cold = data["throughput"], data["cold"]
    return [
        _row(
            "consumer",
            "throughput",
            "postbacks/s",
            throughput["handler_per_s"],
            "naive put_item per record",
            throughput["naive_per_s"],
            ">= 1.5",
        ),
        _row(
            "consumer",
            "cold process: import + one 10-record batch",
            "ms",
            cold["handler_ms"],
            "bare boto3 writing the same items",
            cold["baseline_ms"],
            "<= 1.3",
        ),
    ]


def sender_rows(data: dict[str, Any]) -> list[Row]:
    limit, paced, hammer = data["limit"], data["paced"], data["baseline"]
    share = paced["e113"] / paced["calls"] if paced["calls"] else 1.0
    base_share = hammer["e113"] / hammer["calls"] if hammer["calls"] else 1.0
    return [
        _row(
            "sender",
            f"steady goodput at the provider's limit L = {limit}/s",
            "sends/s",
            paced["steady"],
            "the provider's limit L",
            float(limit),
            ">= 0.95",
        ),
        _row(
            "sender",
            "steady goodput against hammer-and-back-off",
            "sends/s",
            paced["steady"],
            "limiter off, E113 redrive only",
            hammer["steady"],
            ">= 1.0",
        ),
        _row(
            "sender",
            "share of provider calls answered E113",
            "%",
            share * 100,
            "limiter off",
            base_share * 100,
            "<= 5",
            on="value",
        ),
        _row(
            "sender",
            "requests lost or sent twice",
            "requests",
            paced["lost"] + paced["duplicates"],
            "limiter off",
            hammer["lost"] + hammer["duplicates"],
            "= 0",
            on="value",
        ),
    ]


def load_rows(data: dict[str, Any]) -> list[Row]:
    stack, floor, audit = data["stack"], data["baseline"], data["audit"]
    name = f"null endpoint, same {data['clients']} clients"
    return [
        _row(
            "load",
            f"{data['postbacks']} postbacks: ack p50",
            "ms",
            stack["ack_p50_ms"],
            name,
            floor["ack_p50_ms"],
            "",
        ),
        _row(
            "load",
            f"{data['postbacks']} postbacks: ack p99",
            "ms",
            stack["ack_p99_ms"],
            name,
            floor["ack_p99_ms"],
            "",
        ),
        _row(
            "load",
            f"{data['postbacks']} postbacks: acknowledged per second",
            "postbacks/s",
            stack["per_second"],
            name,
            floor["per_second"],
            "",
        ),
        _row(
            "load",
            f"{data['postbacks']} postbacks: lost + duplicated + unacknowledged",
            "postbacks",
            audit["lost"] + audit["duplicated"] + audit["wrong_state"] + stack["unacknowledged"],
            "none",
            None,
            "= 0",
            on="value",
        ),
    ]


def coldstart_rows(data: dict[str, Any]) -> list[Row]:
    """Per function: the whole cold import (the runtime's boto3 and client creation included, which
    byte-code cannot change), and the layer's and handler's own modules, the part the byte-code is for."""
    rows = []
    for function, figures in data["functions"].items():
        rows.append(
            _row(
                "cold import",
                f"{function}: whole import, with the build's byte-code",
                "ms",
                figures["with_ms"],
                "the same artifact, byte-code unusable",
                figures["without_ms"],
                "<= 0.6",
            )
        )
        if "with_bytecode" in figures:
            rows.append(
                _row(
                    "cold import",
                    f"{function}: layer and handler modules only",
                    "ms",
                    figures["with_bytecode"]["split_p50_ms"]["artifact_modules"],
                    "the same modules compiled at import",
                    figures["without_bytecode"]["split_p50_ms"]["artifact_modules"],
                    "<= 0.6",
                )
            )
        if "floor_ms" in figures:
            rows.append(
                _row(
                    "cold import",
                    f"{function}: whole import were its own modules free (the floor)",
                    "ms",
                    figures["floor_ms"],
                    "the same artifact, byte-code unusable",
                    figures["without_ms"],
                    "",
                )
            )
    return rows


def _threads(count: int) -> str:
    return f"{count} thread" if count == 1 else f"{count} threads"


def limits_rows(data: dict[str, Any]) -> list[Row]:
    """One hot item on moto: the limiter's conditional writes against unconditional ones, the paced limiter's
    slots against its configured rate, one partition against many. Reported only: moto's figures are what
    the code drives locally, not AWS's limits."""
    rows = [
        _row(
            "limits",
            f"one item, {_threads(hot['threads'])}: the limiter's conditional writes"
            f" ({hot['lost_share']:.0%} of attempts lost the race)",
            "writes/s",
            hot["writes_per_s"],
            f"unconditional PutItem of distinct items, {_threads(hot['threads'])}",
            hot["put_per_s"],
            "",
        )
        for hot in data["hot_item"]
    ]
    for pace in data["paced"]:
        writes, attempts = pace["writes_per_slot"], pace["attempts_per_slot"]
        per_slot = (
            f"{writes:.2f} conditional writes per slot ({attempts:.2f} with lost races)"
            if writes is not None
            else "no slot granted"
        )
        rows.append(
            _row(
                "limits",
                f"limiter at {pace['rate']:,.0f}/s, {pace['threads']} threads, want={pace['want']}:"
                f" {per_slot}",
                "slots/s",
                pace["slots_per_s"],
                "the configured rate x 0.97 (the limiter's spacing)",
                pace["spaced_rate"],
                "",
            )
        )
    part = data["partition"]
    rows.append(
        _row(
            "limits",
            f"{part['threads']} threads, ~1 KB PutItem sharing one partition key (moto has no partition"
            " throttling; the AWS limit is 1,000 WCU/s per partition)",
            "items/s",
            part["one_partition_per_s"],
            "the same items under distinct partition keys",
            part["distinct_partitions_per_s"],
            "",
        )
    )
    return rows


# The postback kinds shown in the report (every kind is in results.json and docs/cost.md).
REQUEST_KINDS = {
    "sms_mt_n201": "SMS sent report (SMS_MT N201)",
    "sms_mt_n202": "SMS delivered report (SMS_MT N202)",
    "mms_mt_n102": "MMS delivered report (MMS_MT N102)",
    "sms_mo_n211": "inbound SMS (SMS_MO N211)",
    "mms_mo_n401": "inbound MMS (MMS_MO N401)",
    "sub_n302": "opt-out (SUB N302)",
    "mms_mt_n003": "template ready (MMS_MT N003)",
}


def requests_rows(data: dict[str, Any]) -> list[Row]:
    """AWS requests per message against the floor the invariants allow (bench/bench_requests.py says which
    and why); the rest is reported: write units, log bytes, the busiest shared partition."""
    floor = data["floor"]
    by_stem = {row["label"].rpartition("(")[2].rstrip(")"): row for row in data["postbacks"]}
    rows = []
    for stem, name in REQUEST_KINDS.items():
        row = by_stem[stem]
        rows.append(
            _row(
                "requests",
                f"per postback, {name}: {sum(row['wcu'].values()):.1f} WCU,"
                f" {sum(row['log_bytes'].values()):,.0f} log bytes",
                "requests",
                row["billed_requests"],
                "the floor: S3 + SQS in the ingest, a batch's receive, delete and write",
                floor["postback"],
                "<= 2.0",
            )
        )
    worst = max(data["postbacks"], key=lambda row: row["billed_requests"])
    rows.append(
        _row(
            "requests",
            f"per postback, the most of any kind: {worst['label']}",
            "requests",
            worst["billed_requests"],
            "the floor",
            floor["postback"],
            "",
        )
    )
    sends = {row["label"]: row for row in data["sends"]}
    accepted = sends["accepted"]
    hot = accepted["hot"][0] if accepted["hot"] else {"partition": "-", "busiest_wcu_per_message": 0}
    rows.append(
        _row(
            "requests",
            f"per send request, accepted: {sum(accepted['wcu'].values()):.1f} WCU; busiest shared partition"
            f" {hot['partition']} {hot['busiest_wcu_per_message']:.2f} WCU",
            "requests",
            accepted["billed_requests"],
            "the floor: a batch's receive and delete, the opt-out read, claim, outcome, outbound record",
            floor["send accepted"],
            "<= 1.5",
        )
    )
    rows.append(
        _row(
            "requests",
            "per send request refused before any call (invalid)",
            "requests",
            sends["invalid request"]["billed_requests"],
            "the floor: a batch's receive and delete, its record",
            floor["send refused before a call"],
            "<= 1.5",
        )
    )
    for label, row in sends.items():
        if label not in ("accepted", "invalid request"):
            rows.append(
                _row(
                    "requests",
                    f"per send request, {label}: {sum(row['wcu'].values()):.1f} WCU",
                    "requests",
                    row["billed_requests"],
                    "the floor of an accepted send",
                    floor["send accepted"],
                    "",
                )
            )
    event = data["event"]
    rows.append(
        _row(
            "requests",
            f"per published event ({event['events']} events): {event['rcu']:.2f} RCU,"
            f" {event['log_bytes']:.0f} log bytes",
            "requests",
            event["billed_requests"],
            "the floor: a tenth of a PutEvents",
            floor["event"],
            "",
        )
    )
    return rows


EXTRACTORS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "ingest": ingest_rows,
    "parse": parse_rows,
    "consumer": consumer_rows,
    "sender": sender_rows,
    "load": load_rows,
    "coldstart": coldstart_rows,
    "events": events_rows,
    "limits": limits_rows,
    "requests": requests_rows,
}


VERDICT = {True: "met", False: "**not met**", None: ""}


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}" if value else "0"


def table(rows: Iterable[Row]) -> str:
    """The rows as one Markdown table."""
    lines = [
        "| area | figure | value | baseline (same run) | ratio | target | |",
        "|---|---|---:|---|---:|---|---|",
    ]
    for row in rows:
        baseline = row.baseline_name
        if row.baseline is not None:
            baseline = f"{_number(row.baseline)} {row.unit}: {baseline}"
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "-"
        lines.append(
            f"| {row.area} | {row.figure} | {_number(row.value)} {row.unit} | {baseline} | {ratio} |"
            f" {row.target} | {VERDICT[row.met]} |"
        )
    return "\n".join(lines) + "\n"


def markdown(rows: list[Row], *, header: str, failures: list[str]) -> str:
    text = f"# mmsbridge benchmark report\n\n{header}\n\n{table(rows)}"
    if failures:
        text += "\nBenchmarks that did not finish: " + ", ".join(failures) + "\n"
    text += "\n![ratios against their baselines](report.png)\n"
    return text


def chart(rows: list[Row], path: Path) -> None:
    """A horizontal bar per ratio row (value / baseline, log scale), green where its target is met."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [row for row in rows if row.ratio is not None and not row.target.startswith(("value", "="))]
    figure, axes = plt.subplots(figsize=(10, 0.45 * len(shown) + 1.5))
    labels = [f"{row.area}: {row.figure}" for row in shown]
    ratios = [row.ratio or 0.0 for row in shown]
    colours = [{True: "#2e7d32", False: "#c62828", None: "#757575"}[row.met] for row in shown]
    positions = range(len(shown))
    axes.barh(list(positions), ratios, color=colours)
    for position, row in zip(positions, shown, strict=True):
        axes.annotate(
            f"{row.ratio:.2f}" + (f"  (target {row.target})" if row.met is not None else ""),
            (row.ratio or 0.0, position),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    axes.axvline(1.0, color="#555555", linewidth=0.8)
    axes.set_xscale("log")
    ticks = [0.1, 0.2, 0.5, 1, 2, 5, 10]
    axes.set_xticks(ticks, [f"{tick:g}" for tick in ticks])
    axes.set_xlim(min([0.1, *ratios]) * 0.9, max([10, *ratios]) * 1.6)
    axes.set_yticks(list(positions), labels, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("ratio to the baseline measured in the same run (log scale; 1 = equal)")
    axes.set_title("mmsbridge benchmarks: each figure against its baseline")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
