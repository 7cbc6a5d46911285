"""The few Kubernetes calls the operator makes, on the event loop.

Credentials come from login.py (in-cluster, --kubeconfig, $KUBECONFIG), passed in as a callable; the
calls go through aiohttp (kube_http.py); Secrets are read through a metadata-only watch (secret_cache.py)
unless polling by name is chosen. Secrets come back decoded as :class:`SecretView`.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import quote

from . import names
from .kube_http import MERGE_PATCH, Conflict, KubeError, Login, Transport
from .secret_cache import OnRead, SecretCache

__all__ = ["Conflict", "Kube", "KubeApi", "KubeError", "Login", "SecretView", "secret_body"]


@dataclass(frozen=True)
class SecretView:
    name: str
    namespace: str
    type: str
    data: dict[str, bytes] = field(repr=False)
    labels: dict[str, str]
    #: Out of repr too: kubectl apply keeps the whole manifest, token and all, in an annotation.
    annotations: dict[str, str] = field(repr=False)
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

    def secrets_epoch(self, namespace: str) -> int | None:
        """Changes whenever a ``read_secret`` in ``namespace`` could answer differently; None when
        that is not known (every read asks the API server)."""
        ...


SecretReads = Literal["watch", "poll"]
#: Until the operator's settings carry it (chart value ``secretReads``): how Secrets are read.
SECRET_READS_ENV = "TGBOT_OPERATOR_SECRET_READS"  # noqa: S105 - a variable name


def secret_reads_from_env() -> SecretReads:
    value = os.environ.get(SECRET_READS_ENV, "watch").strip().lower() or "watch"
    if value not in ("watch", "poll"):
        raise ValueError(f"{SECRET_READS_ENV} must be watch or poll, not {value[:20]!r}")
    return "watch" if value == "watch" else "poll"


class Kube:
    """The operator's Kubernetes calls, async on aiohttp (kube_http.py).

    ``secret_reads="watch"`` (the default) serves :meth:`read_secret` from a metadata-only watch
    per namespace (secret_cache.py: needs list/watch on secrets); ``"poll"`` reads by name on
    every call, for clusters that grant only get.
    """

    def __init__(
        self, login: Login, secret_reads: SecretReads | None = None, on_secret_read: OnRead | None = None
    ) -> None:
        self._http = Transport(login)
        self.secret_reads: SecretReads = secret_reads or secret_reads_from_env()
        self._on_secret_read = on_secret_read or (lambda _how: None)
        self._cache = (
            SecretCache(self._http, self._on_secret_read) if self.secret_reads == "watch" else None  # noqa: S105
        )

    @property
    def in_flight(self) -> int:
        """Calls waiting for the API server's answer now (``tgbot_operator_kube_requests_in_flight``)."""
        return self._http.in_flight

    async def close(self) -> None:
        if self._cache is not None:
            await self._cache.close()
        await self._http.close()

    async def read_secret(self, namespace: str, name: str) -> SecretView | None:
        if self._cache is None:
            self._on_secret_read("poll")
            return await self.get_secret(namespace, name)
        return await self._cache.read(namespace, name, self.get_secret)

    def secrets_epoch(self, namespace: str) -> int | None:
        return None if self._cache is None else self._cache.epoch(namespace)

    async def get_secret(self, namespace: str, name: str) -> SecretView | None:
        """The Secret as the API server has it now (a GET, whatever the mode)."""
        raw = await self._http.request(
            "GET", _secrets_path(namespace, name), what=f'read Secret "{name}"', missing_ok=True
        )
        return None if raw is None else SecretView.from_dict(raw)

    async def create_secret(self, namespace: str, body: Mapping[str, Any]) -> None:
        name = body["metadata"]["name"]
        await self._write_secret("POST", _secrets_path(namespace), namespace, name, body, "create")

    async def replace_secret(self, namespace: str, body: Mapping[str, Any]) -> None:
        name = body["metadata"]["name"]
        await self._write_secret("PUT", _secrets_path(namespace, name), namespace, name, body, "update")

    async def _write_secret(
        self, method: str, path: str, namespace: str, name: str, body: Mapping[str, Any], verb: str
    ) -> None:
        try:
            raw = await self._http.request(method, path, what=f'{verb} Secret "{name}"', body=body)
        except Conflict:
            if self._cache is not None:
                self._cache.forget(namespace, name)
            raise
        if self._cache is not None and raw:
            self._cache.remember(SecretView.from_dict(raw))

    async def patch_bot_status(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        path = (
            f"/apis/{names.GROUP}/{names.VERSION}/namespaces/{quote(namespace, safe='')}/"
            f"{names.PLURAL}/{quote(name, safe='')}/status"
        )
        # None for 404: the TelegramBot was deleted meanwhile.
        await self._http.request(
            "PATCH",
            path,
            what=f'patch status of TelegramBot "{name}"',
            body={"status": dict(patch)},
            content_type=MERGE_PATCH,
            missing_ok=True,
        )


def _secrets_path(namespace: str, name: str | None = None) -> str:
    path = f"/api/v1/namespaces/{quote(namespace, safe='')}/secrets"
    return path if name is None else f"{path}/{quote(name, safe='')}"
