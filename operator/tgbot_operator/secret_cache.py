"""Secrets served from a metadata-only watch: the API server is asked for a Secret's data only
when its resourceVersion changed.

Before, every worker read its token Secret (and TLS and webhook Secrets) by name every token check
(30 s): 1,000 bots cost the API server ~100 GETs per second forever. Now one list+watch per
namespace that has bots tells each Secret's resourceVersion (PartialObjectMetadata: names and
versions, no data crosses the wire), and :meth:`SecretCache.read` GETs a Secret only when the
version it last read is no longer the current one. At its token check a worker first asks
:meth:`SecretCache.epoch` whether anything in its namespace changed since its last pass: nothing
did -> no pass at all (at 10,000 bots those passes were 333 a second, most of the operator's
steady-state CPU); something did -> a full pass, so a changed token is still picked up within the
interval.

Anything uncertain is a GET, never a stale answer: a Secret the watch has not seen (yet), a watch
that is not (re)connected, a namespace where list/watch is refused (403: that namespace falls back
to reading by name, with one log line saying which grant is missing). A Secret a GET found missing
is missing until the watch reports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .kube_http import KubeError

if TYPE_CHECKING:
    from .kube import SecretView
    from .kube_http import Transport

logger = logging.getLogger("tgbot_operator.kube")

LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
WATCH_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
LIST_PAGE = "500"
#: The API server ends each watch after this long (kopf uses the same order of magnitude).
WATCH_SECONDS = 300
#: How long a first read waits for the namespace's initial list before it GETs by name.
SYNC_WAIT = 10.0
MAX_RETRY_DELAY = 30.0

Fetch = Callable[[str, str], Awaitable["SecretView | None"]]
#: Told how each read was answered: "cache", or why it was a GET - "unsynced" (the namespace's
#: watch is not listed yet, reconnecting or refused), "unseen" (the watch has not reported the
#: Secret), "unread" (reported, never read by us), "changed" (its version moved on).
OnRead = Callable[[str], None]

#: Every change a cache records takes the next number: an epoch is never reused, not even by the
#: state that replaces a namespace's ended watch.
_EPOCHS = itertools.count(1)


@dataclass
class NamespaceSecrets:
    """The current resourceVersion of every Secret in one namespace, kept by a watch."""

    namespace: str
    versions: dict[str, str] = field(default_factory=dict)
    #: Secrets read (or written) by the operator, as they were at their resourceVersion.
    views: dict[str, SecretView] = field(default_factory=dict, repr=False)
    #: Secrets a GET found missing and the watch has not reported since: read as missing, no GET.
    #: A new bot's first passes read its webhook Secret before creating it (getMe comes first):
    #: each of those was a 404 GET.
    absent: set[str] = field(default_factory=set)
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set once the first list has succeeded or failed: only the first reads wait for it.
    tried: asyncio.Event = field(default_factory=asyncio.Event)
    refused: bool = False
    task: asyncio.Task[None] | None = None
    #: Changes with the change of anything a read could answer (a version, a view, a relist).
    epoch: int = field(default_factory=lambda: next(_EPOCHS))

    def changed(self) -> None:
        self.epoch = next(_EPOCHS)

    @property
    def trusted(self) -> bool:
        return self.synced.is_set() and not self.refused


class SecretCache:
    def __init__(self, transport: Transport, on_read: OnRead) -> None:
        self._transport = transport
        self._namespaces: dict[str, NamespaceSecrets] = {}
        self._on_read = on_read

    async def read(self, namespace: str, name: str, fetch: Fetch) -> SecretView | None:
        state = self._namespace(namespace)
        if not state.tried.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SYNC_WAIT):
                    await state.tried.wait()
        how = self._how(state, name)
        self._on_read(how)
        if how == "cache":
            return state.views.get(name)  # None: known to be missing
        view = await fetch(namespace, name)
        if view is None:
            state.views.pop(name, None)
            if state.trusted:
                state.absent.add(name)
        else:
            self._keep(state, view)
        return view

    def epoch(self, namespace: str) -> int | None:
        """A number that changes whenever a read in ``namespace`` could answer differently; None
        while the namespace's watch is not trusted (every read is a GET then)."""
        state = self._namespaces.get(namespace)
        return state.epoch if state is not None and state.trusted else None

    @staticmethod
    def _how(state: NamespaceSecrets, name: str) -> str:
        if not state.trusted:
            return "unsynced"
        version, view = state.versions.get(name), state.views.get(name)
        if version is None:
            return "cache" if name in state.absent else "unseen"
        if view is None:
            return "unread"
        return "cache" if view.resource_version == version else "changed"

    def remember(self, view: SecretView) -> None:
        """Our own write's answer: the Secret as it is now, like a GET's."""
        state = self._namespaces.get(view.namespace)
        if state is not None:
            self._keep(state, view)

    @staticmethod
    def _keep(state: NamespaceSecrets, view: SecretView) -> None:
        """Serve ``view`` until the watch reports another version. What a GET or our write just
        returned is current: waiting for the watch to confirm it cost every new bot ~3 more GETs
        (3.9 per bot at 1,000 bots). An event the watch still has in flight only makes the
        versions differ (a GET), never serves an older view: a view is served only while its
        version is the last one recorded, and the watch records every later change."""
        state.views[view.name] = view
        state.absent.discard(view.name)
        if state.trusted and view.resource_version:
            state.versions[view.name] = view.resource_version
        state.changed()

    def forget(self, namespace: str, name: str) -> None:
        """After a conflict: the next read GETs the Secret whatever the watch says."""
        state = self._namespaces.get(namespace)
        if state is not None:
            state.views.pop(name, None)
            state.absent.discard(name)
            state.changed()

    async def close(self) -> None:
        tasks = [s.task for s in self._namespaces.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._namespaces.clear()

    def _namespace(self, namespace: str) -> NamespaceSecrets:
        state = self._namespaces.get(namespace)
        if state is None or state.task is None or (state.task.done() and not state.refused):
            state = NamespaceSecrets(namespace)
            state.task = asyncio.create_task(self._follow(state), name=f"secret watch {namespace}")
            self._namespaces[namespace] = state
        return state

    # --- the watch -----------------------------------------------------------------------------

    async def _follow(self, state: NamespaceSecrets) -> None:
        """List, then watch from the list's version; relist when the version is too old (410)."""
        path = f"/api/v1/namespaces/{quote(state.namespace, safe='')}/secrets"
        what = f'list/watch Secrets in namespace "{state.namespace}"'
        failures = 0
        while True:
            try:
                version: str | None = await self._list(state, path, what)
                state.synced.set()
                state.tried.set()
                failures = 0
                while version is not None:
                    version = await self._watch(state, path, what, version)
            except KubeError as exc:
                state.synced.clear()  # reads GET by name until the watch is back
                state.tried.set()
                if exc.status in {401, 403}:
                    state.refused = True
                    logger.warning(
                        "Cannot list/watch Secrets in namespace %s (%s): reading each Secret by name "
                        "at every token check instead; grant list and watch on secrets there",
                        state.namespace,
                        exc.status,
                    )
                    return
                failures += 1
                delay = min(MAX_RETRY_DELAY, 2.0 ** min(failures, 5)) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret
                logger.info(
                    "Secret watch in namespace %s interrupted (%s); again in %.0fs",
                    state.namespace,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
            except ValueError:
                state.synced.clear()
                state.tried.set()
                logger.warning(
                    "Secret watch in namespace %s: malformed answer; listing again", state.namespace
                )
                await asyncio.sleep(1.0)

    async def _list(self, state: NamespaceSecrets, path: str, what: str) -> str:
        versions: dict[str, str] = {}
        params = {"limit": LIST_PAGE}
        while True:
            page = await self._transport.request("GET", path, what=what, params=params, accept=LIST_ACCEPT)
            assert page is not None
            for item in page.get("items") or []:
                _record(versions, item)
            meta = page.get("metadata") or {}
            if not meta.get("continue"):
                break
            params = {"limit": LIST_PAGE, "continue": str(meta["continue"])}
        state.versions = versions
        for name in [n for n in state.views if n not in versions]:
            del state.views[name]
        state.absent -= versions.keys()
        state.changed()
        return str(meta.get("resourceVersion") or "")

    async def _watch(self, state: NamespaceSecrets, path: str, what: str, version: str) -> str | None:
        """Events until the server ends the watch: the version to go on from, None to relist."""
        params = {
            "watch": "1",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        stream = self._transport.stream(
            path, what=what, params=params, accept=WATCH_ACCEPT, read_timeout=WATCH_SECONDS + 30
        )
        async for event in stream:
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    return None  # Gone: the version is too old, relist
                raise KubeError(f"cannot {what}: {obj.get('code')} {obj.get('reason', '')}", obj.get("code"))
            meta: dict[str, Any] = obj.get("metadata") or {}
            version = str(meta.get("resourceVersion") or version)
            if kind in {"ADDED", "MODIFIED"}:
                _record(state.versions, obj)
                state.changed()
            elif kind == "DELETED":
                state.versions.pop(str(meta.get("name")), None)
                state.views.pop(str(meta.get("name")), None)
                state.changed()
        return version


def _record(versions: dict[str, str], item: dict[str, Any]) -> None:
    meta = item.get("metadata") or {}
    if meta.get("name") and meta.get("resourceVersion"):
        versions[str(meta["name"])] = str(meta["resourceVersion"])
