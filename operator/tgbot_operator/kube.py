"""The few Kubernetes calls the operator makes, off the event loop.

The official ``kubernetes`` client is blocking, so every call runs in a worker thread via
``asyncio.to_thread``. Reads return plain dicts (``_preload_content=False``), Secrets decoded.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import kubernetes
import urllib3

from . import names


class KubeError(Exception):
    """A failed Kubernetes API call. The message names the object, never its data."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Conflict(KubeError):
    """409: someone else wrote the object first (or it already exists)."""


# What the ``kubernetes`` client raises when it gets no HTTP answer at all (API server down or
# restarting: connection refused, reset, timed out) - not an ``ApiException``.
_TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, OSError)


@dataclass(frozen=True)
class SecretView:
    name: str
    namespace: str
    type: str
    data: dict[str, bytes] = field(repr=False)
    labels: dict[str, str]
    annotations: dict[str, str]
    owner_references: list[dict[str, Any]]
    resource_version: str | None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SecretView:
        meta = raw.get("metadata") or {}
        data = {k: base64.b64decode(v) for k, v in (raw.get("data") or {}).items()}
        for key, value in (raw.get("stringData") or {}).items():
            data.setdefault(key, str(value).encode())
        return cls(
            name=str(meta.get("name", "")),
            namespace=str(meta.get("namespace", "")),
            type=str(raw.get("type") or "Opaque"),
            data=data,
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
            owner_references=list(meta.get("ownerReferences") or []),
            resource_version=meta.get("resourceVersion"),
        )

    def controlled_by(self, uid: str) -> bool:
        return any(ref.get("uid") == uid and ref.get("controller") for ref in self.owner_references)


#: (connect, read) seconds for each call: an API server that hangs instead of refusing must not
#: block a worker (and a thread of the pool) forever; the worker retries with backoff.
REQUEST_TIMEOUT = (5.0, 30.0)


def load_api_client(kubeconfig: Path | None) -> kubernetes.client.ApiClient:
    """An API client from ``kubeconfig``, else in-cluster config, else $KUBECONFIG/~/.kube/config."""
    configuration = kubernetes.client.Configuration()
    if kubeconfig is not None:
        kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    else:
        try:
            kubernetes.config.load_incluster_config(client_configuration=configuration)
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config(client_configuration=configuration)
    return kubernetes.client.ApiClient(configuration)


def owner_reference(bot_name: str, bot_uid: str) -> dict[str, Any]:
    return {
        "apiVersion": names.API_VERSION,
        "kind": names.KIND,
        "name": bot_name,
        "uid": bot_uid,
        "controller": True,
    }


def secret_body(
    *,
    name: str,
    namespace: str,
    bot_name: str,
    bot_uid: str,
    data: Mapping[str, bytes],
    annotations: Mapping[str, str],
    base: SecretView | None = None,
) -> dict[str, Any]:
    """The generated Secret; keeps labels/annotations others put on ``base``."""
    labels = dict(base.labels) if base else {}
    labels.update({names.MANAGED_BY_LABEL: names.MANAGED_BY_VALUE, names.BOT_LABEL: bot_name})
    merged_annotations = dict(base.annotations) if base else {}
    for key in [k for k in merged_annotations if k.startswith(f"{names.GROUP}/")]:
        del merged_annotations[key]
    merged_annotations.update(annotations)
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": labels,
        "annotations": merged_annotations,
        "ownerReferences": [owner_reference(bot_name, bot_uid)],
    }
    if base is not None and base.resource_version:
        metadata["resourceVersion"] = base.resource_version
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata,
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }


class KubeApi(Protocol):
    """What workers need from Kubernetes (a seam: tests pass an in-memory fake)."""

    async def read_secret(self, namespace: str, name: str) -> SecretView | None: ...

    async def create_secret(self, namespace: str, body: Mapping[str, Any]) -> None: ...

    async def replace_secret(self, namespace: str, body: Mapping[str, Any]) -> None: ...

    async def patch_bot_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None: ...


class Kube:
    """The operator's Kubernetes calls; async, each in a worker thread."""

    def __init__(self, api_client: kubernetes.client.ApiClient) -> None:
        self.configuration: kubernetes.client.Configuration = api_client.configuration
        self._core = kubernetes.client.CoreV1Api(api_client)
        self._custom = kubernetes.client.CustomObjectsApi(api_client)

    async def read_secret(self, namespace: str, name: str) -> SecretView | None:
        def call() -> SecretView | None:
            try:
                response = self._core.read_namespaced_secret(
                    name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
                )
            except kubernetes.client.ApiException as exc:
                if exc.status == 404:
                    return None
                raise _error(exc, f'read Secret "{name}"') from None
            except _TRANSPORT_ERRORS as exc:
                raise _unreachable(exc, f'read Secret "{name}"') from None
            return SecretView.from_dict(json.loads(response.data))

        return await asyncio.to_thread(call)

    async def create_secret(self, namespace: str, body: Mapping[str, Any]) -> None:
        name = body["metadata"]["name"]

        def call() -> None:
            try:
                self._core.create_namespaced_secret(
                    namespace, dict(body), _preload_content=False, _request_timeout=REQUEST_TIMEOUT
                )
            except kubernetes.client.ApiException as exc:
                raise _error(exc, f'create Secret "{name}"') from None
            except _TRANSPORT_ERRORS as exc:
                raise _unreachable(exc, f'create Secret "{name}"') from None

        await asyncio.to_thread(call)

    async def replace_secret(self, namespace: str, body: Mapping[str, Any]) -> None:
        name = body["metadata"]["name"]

        def call() -> None:
            try:
                self._core.replace_namespaced_secret(
                    name, namespace, dict(body), _preload_content=False, _request_timeout=REQUEST_TIMEOUT
                )
            except kubernetes.client.ApiException as exc:
                raise _error(exc, f'update Secret "{name}"') from None
            except _TRANSPORT_ERRORS as exc:
                raise _unreachable(exc, f'update Secret "{name}"') from None

        await asyncio.to_thread(call)

    async def patch_bot_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        def call() -> None:
            try:
                self._custom.patch_namespaced_custom_object_status(
                    names.GROUP,
                    names.VERSION,
                    namespace,
                    names.PLURAL,
                    name,
                    {"status": dict(patch)},
                    _content_type="application/merge-patch+json",
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                )
            except kubernetes.client.ApiException as exc:
                if exc.status == 404:
                    return  # deleted meanwhile
                raise _error(exc, f'patch status of TelegramBot "{name}"') from None
            except _TRANSPORT_ERRORS as exc:
                raise _unreachable(exc, f'patch status of TelegramBot "{name}"') from None

        await asyncio.to_thread(call)


def _error(exc: kubernetes.client.ApiException, what: str) -> KubeError:
    detail = exc.reason or ""
    try:
        payload = json.loads(exc.body) if exc.body else None
    except (TypeError, ValueError):
        payload = None
    if isinstance(payload, dict) and payload.get("kind") == "Status" and payload.get("message"):
        detail = str(payload["message"])
    message = f"cannot {what}: {exc.status} {detail}".strip()
    if exc.status == 409:
        return Conflict(message, exc.status)
    return KubeError(message, exc.status)


def _unreachable(exc: BaseException, what: str) -> KubeError:
    """No HTTP answer: a KubeError like any other failed call (the worker retries with backoff)."""
    reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason else exc
    return KubeError(f"cannot {what}: the API server did not answer ({type(reason).__name__})")


def connection_fields(configuration: kubernetes.client.Configuration) -> dict[str, Any]:
    """kopf ``ConnectionInfo`` fields for the same credentials the ``kubernetes`` client uses."""
    header = configuration.get_api_key_with_prefix("BearerToken") or configuration.get_api_key_with_prefix(
        "authorization"
    )
    parts = header.split(" ", 1) if header else []
    scheme, token = (
        (None, None) if not parts else (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    )
    return {
        "server": configuration.host,
        "ca_path": configuration.ssl_ca_cert,
        "insecure": not configuration.verify_ssl,
        "username": configuration.username or None,
        "password": configuration.password or None,
        "scheme": scheme,
        "token": token,
        "certificate_path": configuration.cert_file,
        "private_key_path": configuration.key_file,
    }
