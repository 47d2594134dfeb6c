"""What a container started by the podexec launcher sees of the host's mounts (root: real namespaces)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from kubesvc.agent import nsutil, podexec


def _mount_points(mountinfo: str) -> set[str]:
    return {line.split()[4] for line in mountinfo.splitlines() if len(line.split()) > 4}


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")
def test_container_sees_no_pod_namespace_mounts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's /run/netns (every pod's namespace) is detached in the container's mount namespace."""
    if os.geteuid() != 0:
        pytest.skip("needs root: makes a network namespace and runs the launcher in it")
    monkeypatch.setattr(podexec, "_built", {})
    exe = podexec.launcher(tmp_path)
    assert exe is not None
    name = f"ks-mnttest-{uuid.uuid4().hex[:8]}"
    os.close(nsutil.create_netns(name))
    try:
        host = _mount_points(Path("/proc/self/mountinfo").read_text())
        assert str(nsutil.netns_path(name)) in host  # the host does see it
        out = subprocess.run([exe, str(nsutil.netns_path(name)), "mnt-test", "", "sh", "-c",
                              "hostname; cat /proc/self/mountinfo"], capture_output=True, text=True, check=True)
        hostname, _, mountinfo = out.stdout.partition("\n")
        assert hostname == "mnt-test"
        inside = _mount_points(mountinfo)
        assert "/" in inside and "/sys" in inside
        assert not any(m == "/run/netns" or m.startswith("/run/netns/") for m in inside)
    finally:
        nsutil.delete_netns(name)
