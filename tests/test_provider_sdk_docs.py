"""docs/providers.md: its Python blocks run, in order, as one script; the conformance test
class the page defines is collected from here and run against the page's provider; and
the API reference names everything ``wippy.providers`` exports."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

import wippy.providers
import wippy.testing
from wippy.registry.kinds import KINDS, KindSpec, register_kind

PAGE = Path(__file__).resolve().parents[1] / "docs" / "providers.md"
TEXT = PAGE.read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```python\n(.*?)^```", TEXT, flags=re.M | re.S)


REGISTERED: list[KindSpec] = []  # the kinds the page registers


def _run_page() -> dict[str, Any]:
    """Every block in order in one namespace. The kinds the page registers are withdrawn
    afterwards (other tests compare lists of known kinds) and registered again only while
    this module's tests run (:func:`page_kinds`)."""

    def record(spec: KindSpec) -> None:
        REGISTERED.append(spec)
        register_kind(spec)

    namespace: dict[str, Any] = {"__name__": "providers_md"}
    try:
        with mock.patch.object(wippy.providers, "register_kind", record):
            for number, block in enumerate(BLOCKS, 1):
                code = compile(block, f"{PAGE.name} (python block {number})", "exec")
                exec(code, namespace)  # noqa: S102 -- the page's own samples
    finally:
        _withdraw()
    return namespace


def _withdraw() -> None:
    for spec in REGISTERED:
        if KINDS.get(spec.name) is spec:
            del KINDS[spec.name]


@pytest.fixture(autouse=True, scope="module")
def page_kinds() -> Iterator[None]:
    for spec in REGISTERED:
        register_kind(spec)
    yield
    _withdraw()


PAGE_NAMESPACE = _run_page()  # at import: the page's test class must exist for collection
TestBoundedHost = PAGE_NAMESPACE["TestBoundedHost"]


def test_the_page_has_samples_of_every_step() -> None:
    assert len(BLOCKS) >= 7
    for name in ("BoundedHost", "SPEC", "QuickHost", "DictAdmin", "TestBoundedHost"):
        assert name in PAGE_NAMESPACE, f"the page no longer defines {name}"


def test_the_reference_names_every_export() -> None:
    reference = TEXT.split("## API reference: `wippy.providers`", 1)[1]
    missing = [n for n in wippy.providers.__all__ if f"`{n}" not in reference]
    assert not missing, f"docs/providers.md does not describe {missing}"


def test_the_reference_names_every_conformance_export() -> None:
    reference = TEXT.split("## API reference: `wippy.testing`", 1)[1]
    missing = [n for n in wippy.testing.__all__ if f"`{n}" not in reference]
    assert not missing, f"docs/providers.md does not describe {missing}"
