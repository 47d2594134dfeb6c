"""Every kubectl the installed dispatcher can pick (1.27 to 1.33) works unchanged."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from kubesvc.testing.cluster import Cluster

pytestmark = pytest.mark.e2e
BIN = Path("/usr/lib/google-cloud-sdk/bin")
VERSIONS = ["1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33"]

MANIFEST = """\
apiVersion: v1
kind: Service
metadata:
  name: v{tag}
spec:
  selector:
    app: v{tag}
  ports:
  - port: 80
    targetPort: {target}
"""


@pytest.mark.parametrize("version", VERSIONS)
def test_kubectl_version(cluster: Cluster, version: str, tmp_path: Path) -> None:
    exe = BIN / f"kubectl.{version}"
    if not exe.exists():
        pytest.skip(f"{exe} is not installed")
    tag = version.replace(".", "")

    def k(*args: str) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([str(exe), f"--kubeconfig={cluster.kubeconfig}", f"--cache-dir={tmp_path / 'c'}", *args],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, f"kubectl {version} {' '.join(args)}: {p.stderr}"
        return p

    f = tmp_path / "svc.yaml"
    f.write_text(MANIFEST.format(tag=tag, target=80))
    assert "created" in k("apply", "-f", str(f)).stdout
    assert "unchanged" in k("apply", "-f", str(f)).stdout
    f.write_text(MANIFEST.format(tag=tag, target=8080))
    assert "configured" in k("apply", "-f", str(f)).stdout
    assert json.loads(k("get", "svc", f"v{tag}", "-o", "json").stdout)["spec"]["ports"][0]["targetPort"] == 8080
    out = k("get", "svc", f"v{tag}").stdout.split()
    assert out[:6] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    k("create", "deployment", f"d{tag}", "--image=nginx", "--replicas=2")
    assert "app=v" in k("describe", "svc", f"v{tag}").stdout
    k("delete", "svc", f"v{tag}")
    k("delete", "deployment", f"d{tag}")
