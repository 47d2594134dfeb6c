"""The ``index`` fixture: the static fake index every DNS table test reads."""

from __future__ import annotations

import pytest
from dnsfixtures import static_index

from kubesvc.dns.index import MemoryIndex


@pytest.fixture
def index() -> MemoryIndex:
    return static_index()
