"""The provider fixtures (tests/fixtures/provider): every file is indexed in its README.md once, is
well-formed UTF-8 XML, and has the expectations the tests hold it to; the values are fictional."""

from __future__ import annotations

import re

import pytest
from defusedxml.ElementTree import fromstring

from tests.conftest import SAMPLES
from tests.unit.test_provider_api import API_KEY, FAILURE_SAMPLES, SAMPLE_REQUESTS, SUCCESS_SAMPLES

INDEX = SAMPLES / "README.md"
FILES = sorted(path for path in SAMPLES.rglob("*") if path.is_file() and path != INDEX)


def indexed() -> list[str]:
    """The file of every table row in README.md, relative to the fixtures folder: a section headed
    `## <folder>/ ...` lists the files of that folder, one per row, named in the first cell."""
    listed = []
    folder = None
    for line in INDEX.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            heading = line[3:].split()[0]
            folder = heading if heading.endswith("/") else None
            continue
        cell = line.strip().strip("|").split("|")[0].strip()
        if folder is not None and re.fullmatch(r"`[^`/]+`", cell):
            listed.append(folder + cell.strip("`"))
    return listed


def relative(path) -> str:
    return path.relative_to(SAMPLES).as_posix()


def test_the_index_lists_every_fixture_once_and_nothing_else():
    listed = indexed()
    assert len(listed) >= 100  # the tables were read
    assert sorted(set(listed)) == sorted(listed), "a file is listed twice"
    assert set(listed) == {relative(path) for path in FILES}


def test_the_index_has_the_sections_the_parser_tests_read():
    headings = [line for line in INDEX.read_text(encoding="utf-8").splitlines() if line.startswith("## ")]
    assert [heading.split()[1] for heading in headings] == [
        "postbacks/",
        "postbacks/lower/",
        "postbacks/legacy/",
        "responses/",
        "requests/",
    ]
    assert headings[0].startswith("## postbacks/ (")  # test_postback_parser.readme_rows keys on it


@pytest.mark.parametrize("path", FILES, ids=relative)
def test_every_fixture_is_well_formed_utf8_xml_without_a_doctype(path):
    body = path.read_bytes()
    body.decode("utf-8")
    assert b"<!DOCTYPE" not in body.upper()
    assert fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True) is not None
    assert body.endswith(b">\n")


def test_every_response_and_request_fixture_has_expectations():
    responses = {path.name for path in (SAMPLES / "responses").glob("*.xml")}
    assert responses == set(SUCCESS_SAMPLES) | set(FAILURE_SAMPLES)
    assert not set(SUCCESS_SAMPLES) & set(FAILURE_SAMPLES)
    assert {path.name for path in (SAMPLES / "requests").glob("*.xml")} == set(SAMPLE_REQUESTS)


def test_phone_numbers_are_fictional():
    """Every number in international format (country code 1, ten digits) is in a 555-01xx range."""
    numbers = {
        number
        for path in FILES
        for number in re.findall(rb"(?<![0-9])1[0-9]{10}(?![0-9])", path.read_bytes())
    }
    assert numbers  # the pattern does find the fixtures' numbers
    assert {number for number in numbers if not re.fullmatch(rb"1[0-9]{3}55501[0-9]{2}", number)} == set()


def test_every_request_carries_the_fixtures_dummy_key():
    for path in (SAMPLES / "requests").glob("*.xml"):
        assert fromstring(path.read_bytes()).findtext("API_KEY") == API_KEY, path.name
    assert API_KEY.startswith("FIXTURE-KEY-")
