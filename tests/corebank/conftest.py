"""Fixtures: the generated bank (in memory) and a running core-banking service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.corebank.model import Bank as GeneratedBank
from gateway.corebank.synthetic import generate
from tests.corebank.harness import AS_OF, Bank


@pytest.fixture(scope="session")
def generated() -> GeneratedBank:
    return generate(7, 400, AS_OF)


@pytest.fixture
async def bank(tmp_path: Path) -> AsyncIterator[Bank]:
    running = await Bank(tmp_path / "state").start()
    try:
        yield running
    finally:
        await running.close()
