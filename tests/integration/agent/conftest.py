"""Fixtures for the node agent tests: a real ``kubesvc up --nodes 2`` as root, driven by kubectl."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from agent_helpers import nodes_ready, wait_for

from kubesvc.testing.cluster import Cluster, start_cluster


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: nodes and pods are network namespaces")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    need_root()
    base = tmp_path_factory.mktemp("nodes")
    c = start_cluster(base / "data", base / "kcache", "--nodes", "2", timeout=180)
    try:
        wait_for(lambda: nodes_ready(c) == 2, 30, "2 Ready nodes")
        yield c
    finally:
        rc = c.stop(timeout=60)
        assert rc == 0, f"kubesvc up exited with {rc}:\n" + "".join(c.output)
