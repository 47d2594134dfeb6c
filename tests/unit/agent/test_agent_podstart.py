"""Pod start without process launches: the podexec launcher, /etc binds, the status writes of a pod.

The launcher is built and run for real where a C compiler is; the
namespace steps themselves need root and are covered by the integration
tests (tests/integration/agent).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kubesvc.agent import containers, podexec, podworker


def test_etc_binds_follow_ip_netns_exec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every /etc/netns/<ns>/NAME is bound over /etc/NAME, when /etc/NAME exists."""
    d = tmp_path / "ks-p-x"
    d.mkdir()
    (d / "resolv.conf").write_text("nameserver 10.0.0.10\n")
    (d / "hosts").write_text("127.0.0.1 localhost\n")
    (d / "no-such-file-in-etc.conf").write_text("")
    monkeypatch.setattr(containers, "NETNS_CONF_DIR", tmp_path)
    binds = containers._etc_binds("ks-p-x")
    assert (str(d / "hosts"), "/etc/hosts") in binds
    assert (str(d / "resolv.conf"), "/etc/resolv.conf") in binds
    assert all(dst != "/etc/no-such-file-in-etc.conf" for _, dst in binds)
    assert containers._etc_binds("ks-p-missing") == []


def test_launcher_without_compiler_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(podexec.shutil, "which", lambda _name: None)
    monkeypatch.setattr(podexec, "_built", {})
    assert podexec.launcher(tmp_path) is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler")
def test_launcher_builds_once_and_reports_exec_failures_like_a_shell(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(podexec, "_built", {})
    exe = podexec.launcher(tmp_path)
    assert exe is not None and os.access(exe, os.X_OK)
    mtime = os.stat(exe).st_mtime_ns
    monkeypatch.setattr(podexec, "_built", {})
    assert podexec.launcher(tmp_path) == exe and os.stat(exe).st_mtime_ns == mtime  # cached by source hash
    usage = subprocess.run([exe], capture_output=True, text=True)
    assert usage.returncode == 127 and "usage" in usage.stderr
    missing = subprocess.run([exe, str(tmp_path / "no-netns"), "h", "", "true"], capture_output=True, text=True)
    assert missing.returncode == 127 and "no-netns" in missing.stderr


class _Agent:
    def __init__(self) -> None:
        self.dirty = 0

    def status_dirty(self, worker: object) -> None:
        self.dirty += 1


async def test_quick_pod_gets_no_pending_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pod whose containers start within the delay is reported once; a slow one gets its Pending write."""
    monkeypatch.setattr(podworker, "PENDING_REPORT_DELAY", 0.05)
    agent = _Agent()
    pod = {"metadata": {"uid": "u1", "name": "p", "namespace": "default"}, "spec": {"containers": []}}
    w = podworker.PodWorker(agent, pod)  # type: ignore[arg-type]
    w._report_unless_started()
    w._report_unless_started()  # once per pod
    assert agent.dirty == 0
    await asyncio.sleep(0.1)
    assert agent.dirty == 1
    w2 = podworker.PodWorker(agent, {**pod, "metadata": {**pod["metadata"], "uid": "u2"}})  # type: ignore[arg-type]
    w2._report_unless_started()
    await w2.stop(0)  # stopped (or started) before the delay: the timer is cancelled
    await asyncio.sleep(0.1)
    assert agent.dirty == 1
