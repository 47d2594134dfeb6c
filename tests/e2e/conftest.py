"""Whole-cluster fixtures: a real ``kubesvc up`` driven by the real kubectl and client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kubesvc.testing.cluster import Cluster, start_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("cluster")
    c = start_cluster(base / "data", base / "kcache")
    yield c
    rc = c.stop()
    assert rc == 0, f"kubesvc up exited with {rc}"
