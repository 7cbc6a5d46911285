"""Kubernetes clients for the operator's own calls, measured: import cost, CPU and latency per call.

Each client runs in a fresh process against the same API server: N concurrent GETs of one Secret,
then N merge-patches of TelegramBot status (N bots), at most C in flight. Clients that are not
installed are skipped (``--path DIR`` puts, say, ``pip install --target DIR lightkube`` on the path;
the operator no longer depends on ``kubernetes``, so its column needs ``--path`` too).

    .venv/bin/python -m benchmarks.kube_clients --calls 1000 --path /tmp/kc-k8s --path /tmp/kc-lk
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tgbot_localdev.processes import ProcessGroup

from . import report
from .processes import stopped_by_sigterm
from .stack import Stack, bot_manifest, kube_env, token_secret

CLIENTS = ["kubernetes+threads", "aiohttp (tgbot_operator.kube)", "kubernetes_asyncio", "lightkube"]


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


async def child(client: str, kubeconfig: str, namespace: str, calls: int, concurrency: int) -> dict[str, Any]:
    t0, c0, r0 = time.perf_counter(), time.process_time(), rss_mb()
    get, patch, close = await _client(client, kubeconfig)
    imported = {"import_s": time.perf_counter() - t0, "import_cpu_s": time.process_time() - c0}
    imported["import_rss_mb"] = rss_mb() - r0
    limit = asyncio.Semaphore(concurrency)
    out: dict[str, Any] = dict(imported)
    await get(namespace, "tok")  # connect once: TLS setup is not per call
    for verb, call in (
        ("get", lambda i: get(namespace, "tok")),
        ("patch", lambda i: patch(namespace, f"b{i}", i)),
    ):
        latencies: list[float] = []

        async def one(i: int, call: Any = call, latencies: list[float] = latencies) -> None:
            async with limit:
                start = time.perf_counter()
                await call(i)
                latencies.append(time.perf_counter() - start)

        w0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(i) for i in range(calls)))
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        latencies.sort()
        out[verb] = {
            "calls_per_s": calls / wall,
            "cpu_ms_per_call": 1000 * cpu / calls,
            "p50_ms": 1000 * report.percentile(latencies, 0.5),
            "p99_ms": 1000 * report.percentile(latencies, 0.99),
        }
    out["rss_mb"] = rss_mb()
    await close()
    return out


async def _client(client: str, kubeconfig: str) -> Any:
    """(get, patch, close) for one client; imports happen here, inside the measurement."""
    status = {"group": "tgbot.dev", "version": "v1alpha1", "plural": "telegrambots"}
    if client == "kubernetes+threads":
        import kubernetes

        api = kubernetes.config.new_client_from_config(kubeconfig)
        api.configuration.connection_pool_maxsize = 32
        core, custom = kubernetes.client.CoreV1Api(api), kubernetes.client.CustomObjectsApi(api)

        async def get(ns: str, name: str) -> Any:
            r = await asyncio.to_thread(core.read_namespaced_secret, name, ns, _preload_content=False)
            return json.loads(r.data)

        async def patch(ns: str, name: str, i: int) -> Any:
            body = {"status": {"observedGeneration": i}}
            return await asyncio.to_thread(
                custom.patch_namespaced_custom_object_status, status["group"], status["version"], ns,
                status["plural"], name, body,
                _content_type="application/merge-patch+json", _preload_content=False,
            )  # fmt: skip

        async def close() -> None:
            api.close()

        return get, patch, close
    if client.startswith("aiohttp"):
        import functools

        from tgbot_operator.kube import Kube
        from tgbot_operator.login import connection_info

        kube = Kube(functools.partial(connection_info, Path(kubeconfig)), secret_reads="poll")

        async def patch_(ns: str, name: str, i: int) -> Any:
            return await kube.patch_bot_status(ns, name, {"observedGeneration": i})

        return kube.get_secret, patch_, kube.close
    if client == "kubernetes_asyncio":
        import kubernetes_asyncio as ka  # type: ignore[import-not-found, unused-ignore]

        api = await ka.config.new_client_from_config(kubeconfig)
        core, custom = ka.client.CoreV1Api(api), ka.client.CustomObjectsApi(api)

        async def get(ns: str, name: str) -> Any:
            r = await core.read_namespaced_secret(name, ns, _preload_content=False)
            assert r.status == 200, r.status
            return json.loads(await r.read())

        async def patch(ns: str, name: str, i: int) -> Any:
            body = {"status": {"observedGeneration": i}}
            r = await custom.patch_namespaced_custom_object_status(
                status["group"], status["version"], ns, status["plural"], name, body,
                _content_type="application/merge-patch+json",
                _preload_content=False,
            )  # fmt: skip
            assert r.status == 200, r.status
            return await r.read()

        return get, patch, api.close
    if client == "lightkube":
        import lightkube  # type: ignore[import-not-found, unused-ignore]
        from lightkube.generic_resource import create_namespaced_resource  # type: ignore[import-not-found, unused-ignore]
        from lightkube.resources.core_v1 import Secret  # type: ignore[import-not-found, unused-ignore]
        from lightkube.types import PatchType  # type: ignore[import-not-found, unused-ignore]

        bot = create_namespaced_resource("tgbot.dev", "v1alpha1", "TelegramBot", "telegrambots")
        lk = lightkube.AsyncClient(lightkube.KubeConfig.from_file(kubeconfig))

        async def get(ns: str, name: str) -> Any:
            return await lk.get(Secret, name, namespace=ns)

        async def patch(ns: str, name: str, i: int) -> Any:
            body = {"status": {"observedGeneration": i}}
            return await lk.patch(bot.Status, name, body, namespace=ns, patch_type=PatchType.MERGE)

        return get, patch, lk.close
    raise ValueError(client)


async def run(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    async with kube_env(None, workdir) as env:
        s = Stack(env, workdir, "kube-clients", ProcessGroup(workdir / "logs"))
        await s.setup()
        bots = [
            bot_manifest(f"b{i}", "http://127.0.0.1:1", "tok", f"https://x.example/{i}")
            for i in range(args.calls)
        ]
        for start in range(0, len(bots), 500):
            await s.apply(*bots[start : start + 500], verb="create")
        await s.apply(token_secret("tok", "123:" + "a" * 35), verb="create")
        results = []
        pythonpath = os.pathsep.join([*map(str, args.path), os.environ.get("PYTHONPATH", "")])
        for client in CLIENTS:
            argv = [sys.executable, "-m", "benchmarks.kube_clients", "--child", client,
                    "--calls", str(args.calls), "--concurrency", str(args.concurrency),
                    "--kubeconfig", env["KUBECONFIG"]]  # fmt: skip
            done = subprocess.run(
                argv, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": pythonpath}
            )
            if done.returncode != 0:
                print(f"{client}: skipped ({done.stderr.strip().splitlines()[-1:]})", file=sys.stderr)
                continue
            results.append({"client": client, **json.loads(done.stdout)})
        return results


def render(results: list[dict[str, Any]]) -> str:
    rows = [
        [r["client"], f"{r['import_s']:.2f} / {r['import_cpu_s']:.2f}", f"{r['import_rss_mb']:.0f}",
         *(f"{r[v]['cpu_ms_per_call']:.2f}" for v in ("get", "patch")),
         *(f"{r[v]['p50_ms']:.0f} / {r[v]['p99_ms']:.0f}" for v in ("get", "patch")),
         *(f"{r[v]['calls_per_s']:.0f}" for v in ("get", "patch")), f"{r['rss_mb']:.0f}"]
        for r in results
    ]  # fmt: skip
    headers = ["client", "import s (CPU s)", "import MB", "GET CPU ms/call", "PATCH CPU ms/call",
               "GET p50/p99 ms", "PATCH p50/p99 ms", "GET/s", "PATCH/s", "RSS MB"]  # fmt: skip
    return report.table(headers, rows)


@stopped_by_sigterm
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.kube_clients", description=__doc__.split("\n")[0])
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument("--path", type=Path, action="append", default=[], help="extra import path (other clients)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--kubeconfig", help=argparse.SUPPRESS)
    p.add_argument("--results", type=Path, default=None)
    args = p.parse_args(argv)
    if args.child:
        print(
            json.dumps(
                asyncio.run(child(args.child, args.kubeconfig, "kube-clients", args.calls, args.concurrency))
            )
        )
        return
    with tempfile.TemporaryDirectory(prefix="tgbot-kube-clients-") as tmp:
        results = asyncio.run(run(args, Path(tmp)))
    print(render(results))
    data = {"benchmark": "kube_clients", "machine": report.machine(), "results": results}
    print(f"JSON: {report.write_json('kube_clients', data, args.results)}")


if __name__ == "__main__":
    main()
