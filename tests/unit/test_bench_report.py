"""The benchmark report: rows from each benchmark's JSON, their verdicts, the Markdown and the chart."""

from __future__ import annotations

import pytest

from bench import report


def test_a_ratio_target_is_judged_on_value_over_baseline():
    rows = report.parse_rows({"parse_us": 12.0, "defused_us": 10.0})
    assert [(r.value, r.baseline, r.ratio, r.met) for r in rows] == [(12.0, 10.0, pytest.approx(1.2), True)]
    assert report.parse_rows({"parse_us": 14.0, "defused_us": 10.0})[0].met is False


def test_sender_rows_judge_goodput_against_the_limit_and_e113_share_on_its_value():
    data = {
        "limit": 10,
        "paced": {"steady": 9.6, "e113": 1, "calls": 401, "lost": 0, "duplicates": 0},
        "baseline": {"steady": 6.5, "e113": 140, "calls": 540, "lost": 0, "duplicates": 0},
    }
    goodput, versus_hammer, e113, lost = report.sender_rows(data)
    assert (goodput.ratio, goodput.met) == (pytest.approx(0.96), True)
    assert versus_hammer.met is True
    assert e113.value == pytest.approx(100 / 401)
    assert e113.met is True
    assert (lost.value, lost.met) == (0, True)
    data["paced"]["lost"] = 1
    assert report.sender_rows(data)[3].met is False


def test_load_figures_are_reported_and_only_losses_are_judged():
    data = {
        "postbacks": 2000,
        "clients": 8,
        "stack": {"ack_p50_ms": 200.0, "ack_p99_ms": 400.0, "per_second": 30.0, "unacknowledged": 0},
        "baseline": {"ack_p50_ms": 40.0, "ack_p99_ms": 50.0, "per_second": 170.0},
        "audit": {"lost": 0, "duplicated": 1, "wrong_state": 0},
    }
    rows = report.load_rows(data)
    assert [r.met for r in rows] == [None, None, None, False]
    assert rows[0].ratio == pytest.approx(5.0)


def test_markdown_table_carries_every_row_and_the_chart_link():
    rows = report.parse_rows({"parse_us": 14.0, "defused_us": 10.0}) + report.coldstart_rows(
        {"functions": {"ingest": {"with_ms": 40.0, "without_ms": 100.0}}}
    )
    text = report.markdown(rows, header="Measured here.", failures=["sender"])
    assert "| parser | bytes to typed postback | 14 µs | 10 µs: defusedxml fromstring alone | 1.40 |" in text
    assert "**not met**" in text
    assert "| 0.40 | <= 0.6 | met |" in text
    assert "did not finish: sender" in text
    assert "](report.png)" in text


def test_chart_is_a_png(tmp_path):
    rows = report.parse_rows({"parse_us": 12.0, "defused_us": 10.0}) + report.consumer_rows(
        {
            "throughput": {"handler_per_s": 300.0, "naive_per_s": 100.0},
            "cold": {"handler_ms": 500.0, "baseline_ms": 450.0},
        }
    )
    report.chart(rows, tmp_path / "chart.png")
    data = (tmp_path / "chart.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 5000


def test_event_rows_report_the_publisher_against_put_events_alone_without_a_target():
    data = {"stream_records": 400, "events": 200, "publisher_per_s": 50.0, "put_events_per_s": 200.0}
    (row,) = report.events_rows(data)
    assert (row.value, row.baseline, row.ratio) == (50.0, 200.0, pytest.approx(0.25))
    assert (row.target, row.met) == ("reported", None)
    assert "400 stream records to 200 events" in row.figure
