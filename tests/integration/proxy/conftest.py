from __future__ import annotations

from collections.abc import Iterator

import pytest
from proxy_netlab import Lab, root


@pytest.fixture
def lab() -> Iterator[Lab]:
    if not root():
        pytest.skip("needs root: creates network namespaces and nftables rules")
    lab = Lab().start()
    try:
        yield lab
    finally:
        lab.close()
