"""How much work an XML parse did, counted instead of timed: the tests that say a hostile document is refused
"without expanding" or "without recursion" bound the parser's work by what it handed on (elements started,
characters of text) and where expat stopped reading, which a loaded machine cannot change.

    work = count_parses(monkeypatch, "mmsbridge.postbacks.reader")  # the module whose parses are counted
    ...parse something...
    assert work[-1].elements == 0 and work[-1].stopped_at < body.index(b"<!ENTITY")
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import TreeBuilder  # nosec B405  # the tree builder only; defusedxml parses

import pytest
from defusedxml.ElementTree import DefusedXMLParser
from defusedxml.ElementTree import fromstring as defused_fromstring


@dataclass
class ParseWork:
    elements: int = 0  # start-element events expat delivered
    characters: int = 0  # characters of text it delivered
    stopped_at: int | None = None  # the byte offset expat had reached when the parse ended or was aborted


def count_parses(monkeypatch: pytest.MonkeyPatch, module: str) -> list[ParseWork]:
    """Replace `module`'s DefusedXMLParser with one that counts; one ParseWork per parser made, in order."""
    made: list[ParseWork] = []

    class Counting(DefusedXMLParser):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.work = ParseWork()
            made.append(self.work)

        def feed(self, data: Any) -> None:
            # The handlers as the caller left them (it may set its own after construction), counted.
            expat, work = self.parser, self.work
            start, text = expat.StartElementHandler, expat.CharacterDataHandler

            def counted_start(*args: Any) -> Any:
                work.elements += 1
                return start(*args)

            def counted_text(data: str) -> Any:
                work.characters += len(data)
                return text(data)

            expat.StartElementHandler = counted_start
            if text is not None:
                expat.CharacterDataHandler = counted_text
            try:
                super().feed(data)
            finally:
                work.stopped_at = expat.CurrentByteIndex

    def fromstring(
        text: Any, forbid_dtd: bool = False, forbid_entities: bool = True, forbid_external: bool = True
    ) -> Any:
        """defusedxml's fromstring (which holds on to the parser class it was made with), counted."""
        parser = Counting(
            target=TreeBuilder(),
            forbid_dtd=forbid_dtd,
            forbid_entities=forbid_entities,
            forbid_external=forbid_external,
        )
        parser.feed(text)
        return parser.close()

    target = importlib.import_module(module)
    replaced = []
    if getattr(target, "DefusedXMLParser", None) is DefusedXMLParser:
        monkeypatch.setattr(target, "DefusedXMLParser", Counting)
        replaced.append("DefusedXMLParser")
    if getattr(target, "fromstring", None) is defused_fromstring:
        monkeypatch.setattr(target, "fromstring", fromstring)
        replaced.append("fromstring")
    assert replaced, f"{module} parses with neither defusedxml's DefusedXMLParser nor its fromstring"
    return made
