"""Kubeconfig loading: from a file to the few facts an API client needs.

A kubeconfig names clusters, users and contexts; a client needs one server URL,
one TLS context (the cluster's CA, the user's client certificate) and maybe a
bearer token.  This module resolves the chosen context into that
:class:`ClientConfig` and nothing more, so the REST client never reads YAML and
tests can build a config by hand.  Both the inline ``*-data`` fields (base64,
what kubesvc writes) and file paths (relative to the kubeconfig, as kubectl
resolves them) are accepted, because the same client must work against real
clusters whose kubeconfigs use either form.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(Exception):
    """The kubeconfig is missing, malformed, or names a context it lacks."""


@dataclass
class ClientConfig:
    """Where the API server is and how to authenticate to it."""

    server: str
    ssl_context: ssl.SSLContext | None = None  # None for plain http://
    token: str | None = None
    namespace: str = "default"  # the context's default namespace
    tls_server_name: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def auth_headers(self) -> dict[str, str]:
        out = dict(self.headers)
        if self.token:
            out["Authorization"] = f"Bearer {self.token}"
        return out


def default_kubeconfig_path() -> Path:
    """``$KUBECONFIG`` (its first entry) or ``~/.kube/config``, as kubectl picks."""
    env = os.environ.get("KUBECONFIG")
    if env:
        first = next((p for p in env.split(os.pathsep) if p), "")
        if first:
            return Path(first).expanduser()
    return Path.home() / ".kube" / "config"


def load_kubeconfig(path: str | os.PathLike[str] | None = None, context: str | None = None) -> ClientConfig:
    """Read a kubeconfig file and resolve ``context`` (default: current-context)."""
    p = Path(path).expanduser() if path else default_kubeconfig_path()
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read kubeconfig {p}: {e}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"invalid kubeconfig {p}: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"invalid kubeconfig {p}: not a mapping")
    return config_from_dict(data, context=context, base_dir=p.parent)


def _named(items: Any, name: str, what: str) -> dict[str, Any]:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            return item.get(what) or {}
    raise ConfigError(f'{what} "{name}" not found in kubeconfig')


def config_from_dict(
    data: dict[str, Any], context: str | None = None, base_dir: str | os.PathLike[str] = "."
) -> ClientConfig:
    """Resolve a parsed kubeconfig; file paths in it are relative to ``base_dir``."""
    ctx_name = context or data.get("current-context")
    if not ctx_name:
        raise ConfigError("kubeconfig has no current-context and no context was given")
    ctx = _named(data.get("contexts"), ctx_name, "context")
    cluster = _named(data.get("clusters"), ctx.get("cluster", ""), "cluster")
    user = _named(data.get("users"), ctx["user"], "user") if ctx.get("user") else {}
    server = str(cluster.get("server") or "").rstrip("/")
    if not server:
        raise ConfigError(f'cluster "{ctx.get("cluster")}" has no server')
    base = Path(base_dir)
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = _resolve(base, user["tokenFile"]).read_text().strip()
    ssl_ctx = None
    if server.startswith("https://"):
        ssl_ctx = make_ssl_context(cluster, user, base)
    return ClientConfig(
        server=server,
        ssl_context=ssl_ctx,
        token=token or None,
        namespace=ctx.get("namespace") or "default",
        tls_server_name=cluster.get("tls-server-name") or None,
    )


def _resolve(base: Path, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base / p


def _pem(section: dict[str, Any], data_key: str, file_key: str, base: Path) -> bytes | None:
    """The PEM bytes from ``<x>-data`` (base64) or the file named by ``<x>``."""
    if section.get(data_key):
        try:
            return base64.b64decode(section[data_key])
        except ValueError as e:
            raise ConfigError(f"{data_key} is not valid base64") from e
    if section.get(file_key):
        try:
            return _resolve(base, section[file_key]).read_bytes()
        except OSError as e:
            raise ConfigError(f"cannot read {file_key}: {e}") from e
    return None


def make_ssl_context(cluster: dict[str, Any], user: dict[str, Any], base: Path) -> ssl.SSLContext:
    """A client TLS context: the cluster CA (or skip-verify) and the user's key pair."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if cluster.get("insecure-skip-tls-verify"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ca = _pem(cluster, "certificate-authority-data", "certificate-authority", base)
        if ca:
            try:
                ctx.load_verify_locations(cadata=ca.decode())
            except (ssl.SSLError, ValueError) as e:
                raise ConfigError(f"invalid certificate authority: {e}") from e
    cert = _pem(user, "client-certificate-data", "client-certificate", base)
    key = _pem(user, "client-key-data", "client-key", base)
    if cert and key:
        _load_cert_chain(ctx, cert, key)
    elif cert or key:
        raise ConfigError("client certificate and client key must be given together")
    return ctx


def _load_cert_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """``ssl`` only loads key pairs from files: write them to a private temp dir briefly."""
    with tempfile.TemporaryDirectory(prefix="kubesvc-tls-") as d:
        cert_path, key_path = Path(d) / "tls.crt", Path(d) / "tls.key"
        cert_path.write_bytes(cert)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        try:
            ctx.load_cert_chain(str(cert_path), str(key_path))
        except ssl.SSLError as e:
            raise ConfigError(f"invalid client certificate or key: {e}") from e
