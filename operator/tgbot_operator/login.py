"""Where the operator's Kubernetes credentials come from: one ``kopf.ConnectionInfo`` for kopf's
watches and our own calls (kube_http.py) alike.

* In a pod (unless ``--kubeconfig`` is given): the ServiceAccount's token, CA and namespace, and the
  API server from ``KUBERNETES_SERVICE_HOST``/``_PORT`` as client-go has it (no cluster DNS needed).
  The token file is read again at every login: the kubelet rotates it, and a 401 logs in again.
* Else ``--kubeconfig``, ``$KUBECONFIG`` (files joined by ``:``, the first entry of a name wins) or
  ``~/.kube/config``, its current context: certificates and keys inline or as files (relative paths
  from the file that names them), ``token``, ``tokenFile``, basic auth, ``insecure-skip-tls-verify``,
  ``proxy-url``.
* A user that authenticates through an ``exec`` plugin or an ``auth-provider`` (EKS, GKE, OIDC
  helpers) is handed to the ``kubernetes`` client when it is installed
  (``pip install 'tgbot-operator[kubernetes]'``); without it that is a LoginError saying so.

Why not the ``kubernetes`` client for everything: kopf imports it whenever it is installed, and its
import alone is ~43 MB of the operator's RSS (docs/benchmarks.md, "Operator memory"), for a few
fields of a kubeconfig. Reading, never writing: nothing here touches the filesystem but to read.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kopf
import yaml

__all__ = ["EXTRA", "SERVICE_ACCOUNT_DIR", "LoginError", "connection_info"]

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
#: The extra that brings the ``kubernetes`` client, for exec plugins and auth-providers.
EXTRA = "tgbot-operator[kubernetes]"
LoginError = kopf.LoginError


def connection_info(
    kubeconfig: Path | None,
    *,
    environ: Mapping[str, str] = os.environ,
    service_account: Path = SERVICE_ACCOUNT_DIR,
) -> kopf.ConnectionInfo:
    """The credentials to use now; LoginError (kopf's) when there are none or they are unusable."""
    if kubeconfig is None and (service_account / "token").exists():
        return in_cluster(service_account, environ)
    paths = kubeconfig_paths(kubeconfig, environ)
    if not paths:
        raise LoginError(
            "no Kubernetes credentials: not in a pod, no --kubeconfig, no $KUBECONFIG, no ~/.kube/config"
        )
    return from_kubeconfig(paths)


def in_cluster(folder: Path, environ: Mapping[str, str]) -> kopf.ConnectionInfo:
    host = environ.get("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc")
    port = environ.get("KUBERNETES_SERVICE_PORT", "443")
    if _is_ipv6(host):
        host = f"[{host}]"
    namespace = folder / "namespace"
    ca = folder / "ca.crt"
    return kopf.ConnectionInfo(
        server=f"https://{host}:{port}",
        token=(folder / "token").read_text().strip() or None,
        ca_path=str(ca) if ca.exists() else None,
        default_namespace=namespace.read_text().strip() if namespace.exists() else None,
    )


def kubeconfig_paths(kubeconfig: Path | None, environ: Mapping[str, str]) -> list[Path]:
    if kubeconfig is not None:
        return [kubeconfig]
    listed = [Path(p).expanduser() for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p.strip()]
    if listed:
        return listed
    default = Path("~/.kube/config").expanduser()
    return [default] if default.exists() else []


def from_kubeconfig(paths: list[Path]) -> kopf.ConnectionInfo:
    """The current context of the merged kubeconfig files (first entry of a name wins)."""
    current: str | None = None
    entries: dict[str, dict[str, tuple[dict[str, Any], Path]]] = {"contexts": {}, "clusters": {}, "users": {}}
    for path in paths:
        try:
            config = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise LoginError(f"cannot read the kubeconfig {path}: {type(exc).__name__}") from None
        if not isinstance(config, dict):
            raise LoginError(f"the kubeconfig {path} is not a mapping")
        current = current or config.get("current-context")
        for kind, table in entries.items():
            field = kind[:-1]  # contexts -> context
            for item in config.get(kind) or []:
                if isinstance(item, dict) and item.get("name") not in table:
                    value = item.get(field)
                    table[str(item.get("name"))] = (value if isinstance(value, dict) else {}, path.parent)
    if not current:
        raise LoginError(f"no current-context in the kubeconfig ({', '.join(map(str, paths))})")
    context, _ = _entry(entries, "contexts", current)
    cluster, cluster_dir = _entry(entries, "clusters", str(context.get("cluster")))
    user, user_dir = _entry(entries, "users", str(context.get("user")))
    if not cluster.get("server"):
        raise LoginError(f"the kubeconfig's cluster {context.get('cluster')!r} has no server")
    if "exec" in user or "auth-provider" in user:
        return via_kubernetes_client(paths, current, what="exec" if "exec" in user else "auth-provider")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        try:
            token = _resolve(user_dir, user["tokenFile"]).read_text().strip()
        except OSError as exc:
            raise LoginError(f"cannot read the kubeconfig user's tokenFile: {type(exc).__name__}") from None
    try:
        return kopf.ConnectionInfo(
            server=str(cluster["server"]),
            ca_path=_path(cluster_dir, cluster.get("certificate-authority")),
            ca_data=cluster.get("certificate-authority-data"),
            insecure=bool(cluster.get("insecure-skip-tls-verify")) or None,
            certificate_path=_path(user_dir, user.get("client-certificate")),
            certificate_data=user.get("client-certificate-data"),
            private_key_path=_path(user_dir, user.get("client-key")),
            private_key_data=user.get("client-key-data"),
            username=user.get("username"),
            password=user.get("password"),
            token=token or None,
            default_namespace=context.get("namespace"),
            proxy_url=cluster.get("proxy-url"),
        )
    except ValueError as exc:  # both a file and inline data for one certificate or key
        raise LoginError(f"the kubeconfig's current context is inconsistent: {exc}") from None


def via_kubernetes_client(paths: list[Path], context: str, *, what: str) -> kopf.ConnectionInfo:
    """An exec plugin's or auth-provider's credentials, through the ``kubernetes`` client."""
    if importlib.util.find_spec("kubernetes") is None:
        raise LoginError(
            f"the kubeconfig's user (context {context!r}) authenticates with an {what} plugin: "
            f"that needs the kubernetes client (pip install '{EXTRA}')"
        )
    import kubernetes  # only for these users: its import alone is ~43 MB of RSS

    configuration = kubernetes.client.Configuration()
    try:
        # The client merges $KUBECONFIG itself; a single --kubeconfig is passed as the file.
        kubernetes.config.load_kube_config(
            config_file=str(paths[0]) if len(paths) == 1 else None,
            context=context,
            client_configuration=configuration,
        )
    except (kubernetes.config.ConfigException, OSError) as exc:
        raise LoginError(f"the kubernetes client cannot log in: {type(exc).__name__}") from None
    header = configuration.get_api_key_with_prefix("BearerToken") or configuration.get_api_key_with_prefix(
        "authorization"
    )
    scheme, _, token = (header or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
        scheme=scheme or None,
        token=token or None,
    )


def _entry(
    entries: Mapping[str, Mapping[str, tuple[dict[str, Any], Path]]], kind: str, name: str
) -> tuple[dict[str, Any], Path]:
    found = entries[kind].get(name)
    if found is None:
        raise LoginError(f"the kubeconfig names {kind[:-1]} {name!r} but has no such entry")
    return found


def _resolve(folder: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else folder / path


def _path(folder: Path, value: str | None) -> str | None:
    return str(_resolve(folder, value)) if value else None


def _is_ipv6(host: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address)
    except ValueError:
        return False
