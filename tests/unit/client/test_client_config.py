"""Kubeconfig loading and TLS client auth against the fake API server."""

from __future__ import annotations

import ssl

import aiohttp
import pytest
import yaml

from kubesvc.client.config import ConfigError, config_from_dict, load_kubeconfig
from kubesvc.client.rest import ApiClient
from kubesvc.testing.fakeapi import FakeApiServer


def _kubeconfig(cluster: dict, user: dict, **ctx: str) -> dict:
    return {"current-context": "kubesvc",
            "clusters": [{"name": "kubesvc", "cluster": cluster}],
            "users": [{"name": "kubesvc", "user": user}],
            "contexts": [{"name": "kubesvc", "context": {"cluster": "kubesvc", "user": "kubesvc", **ctx}},
                         {"name": "other", "context": {"cluster": "kubesvc", "user": "kubesvc",
                                                        "namespace": "team-a"}}]}


async def test_data_fields_give_a_verifying_tls_context(pki, tmp_path) -> None:
    """certificate-authority-data and client-*-data load into one SSL context that verifies."""
    fake = FakeApiServer(ssl_context=pki.server_context(tmp_path))
    async with fake:
        path = fake.kubeconfig(tmp_path / "kubeconfig", ca_pem=pki.ca_pem, cert_pem=pki.client_cert,
                               key_pem=pki.client_key)
        cfg = load_kubeconfig(path)
        assert cfg.server.startswith("https://127.0.0.1:")
        assert cfg.ssl_context is not None and cfg.ssl_context.verify_mode == ssl.CERT_REQUIRED
        async with ApiClient(cfg) as api:
            assert (await api.get("/api"))["kind"] == "APIVersions"


async def test_missing_client_cert_is_refused(pki, tmp_path) -> None:
    """Without a client certificate the handshake fails: the fake really demands mTLS."""
    fake = FakeApiServer(ssl_context=pki.server_context(tmp_path))
    async with fake:
        path = fake.kubeconfig(tmp_path / "kubeconfig", ca_pem=pki.ca_pem)
        async with ApiClient(load_kubeconfig(path), timeout=3) as api:
            with pytest.raises((aiohttp.ClientError, ssl.SSLError, OSError)):
                await api.get("/api")


async def test_file_paths_are_relative_to_the_kubeconfig(pki, tmp_path) -> None:
    """certificate-authority / client-certificate / client-key paths resolve next to the file."""
    (tmp_path / "ca.crt").write_bytes(pki.ca_pem)
    (tmp_path / "c.crt").write_bytes(pki.client_cert)
    (tmp_path / "c.key").write_bytes(pki.client_key)
    doc = _kubeconfig({"server": "https://127.0.0.1:6443", "certificate-authority": "ca.crt"},
                      {"client-certificate": "c.crt", "client-key": "c.key"})
    (tmp_path / "config").write_text(yaml.safe_dump(doc))
    cfg = load_kubeconfig(tmp_path / "config")
    assert cfg.ssl_context is not None and cfg.ssl_context.get_ca_certs()


async def test_token_token_file_and_named_context(tmp_path) -> None:
    """Bearer tokens (inline or tokenFile) become an Authorization header; contexts pick the namespace."""
    (tmp_path / "tok").write_text("s3cret\n")
    doc = _kubeconfig({"server": "http://127.0.0.1:8080/"}, {"tokenFile": "tok"})
    cfg = config_from_dict(doc, base_dir=tmp_path)
    assert cfg.server == "http://127.0.0.1:8080" and cfg.ssl_context is None
    assert cfg.auth_headers == {"Authorization": "Bearer s3cret"}
    assert cfg.namespace == "default"
    assert config_from_dict(doc, context="other", base_dir=tmp_path).namespace == "team-a"


async def test_insecure_skip_tls_verify(tmp_path) -> None:
    """insecure-skip-tls-verify turns off both chain and host name checks."""
    doc = _kubeconfig({"server": "https://10.0.0.1", "insecure-skip-tls-verify": True}, {"token": "t"})
    ctx = config_from_dict(doc).ssl_context
    assert ctx is not None and ctx.verify_mode == ssl.CERT_NONE and not ctx.check_hostname


async def test_bad_kubeconfigs_raise_config_error(tmp_path, monkeypatch) -> None:
    """Unknown contexts, missing files and half a key pair are ConfigErrors, not tracebacks."""
    doc = _kubeconfig({"server": "https://x"}, {"client-certificate-data": "AAAA"})
    with pytest.raises(ConfigError, match="together"):
        config_from_dict(doc)
    with pytest.raises(ConfigError, match='context "nope" not found'):
        config_from_dict(doc, context="nope")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_kubeconfig()
