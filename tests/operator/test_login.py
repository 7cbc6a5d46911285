"""Where the credentials come from (login.py), and a 401 logging in again (kube_http.py)."""

from __future__ import annotations

import base64
import importlib.util
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from tgbot_operator.kube import Kube, KubeError
from tgbot_operator.login import EXTRA, LoginError, connection_info

NO_POD = Path("/nonexistent/serviceaccount")


def write_kubeconfig(path: Path, *, user: dict[str, Any], cluster: dict[str, Any] | None = None) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "dev",
        "contexts": [{"name": "dev", "context": {"cluster": "c", "user": "u", "namespace": "bots"}}],
        "clusters": [{"name": "c", "cluster": cluster or {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": user}],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_inline_data_and_token(tmp_path: Path) -> None:
    ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode()
    path = write_kubeconfig(
        tmp_path / "config",
        user={"token": "t0ken"},
        cluster={"server": "https://10.0.0.1:6443", "certificate-authority-data": ca},
    )
    info = connection_info(path, environ={}, service_account=NO_POD)
    assert (info.server, info.token, info.ca_data, info.default_namespace) == (
        "https://10.0.0.1:6443",
        "t0ken",
        ca,
        "bots",
    )
    assert info.as_http_headers() == {"Authorization": "Bearer t0ken"}


def test_relative_files_are_read_from_the_kubeconfig_folder(tmp_path: Path) -> None:
    (tmp_path / "kube").mkdir()
    (tmp_path / "kube" / "token").write_text("from-file\n")
    path = write_kubeconfig(
        tmp_path / "kube" / "config",
        user={"tokenFile": "token", "client-certificate": "pki/me.crt", "client-key": "/abs/me.key"},
        cluster={"server": "https://k:6443", "certificate-authority": "pki/ca.crt"},
    )
    info = connection_info(path, environ={}, service_account=NO_POD)
    assert info.token == "from-file"
    assert info.ca_path == str(tmp_path / "kube" / "pki" / "ca.crt")
    assert info.certificate_path == str(tmp_path / "kube" / "pki" / "me.crt")
    assert info.private_key_path == "/abs/me.key"


def test_kubeconfig_env_merges_files_first_entry_wins(tmp_path: Path) -> None:
    first = write_kubeconfig(tmp_path / "a", user={"token": "first"})
    second = tmp_path / "b"
    second.write_text(yaml.safe_dump({"users": [{"name": "u", "user": {"token": "second"}}]}))
    environ = {"KUBECONFIG": f"{second}:{first}"}
    info = connection_info(None, environ=environ, service_account=NO_POD)
    assert info.token == "second"  # the user entry of the first file that has it


def test_in_cluster_uses_the_service_account_and_the_service_env(tmp_path: Path) -> None:
    folder = tmp_path / "sa"
    folder.mkdir()
    (folder / "token").write_text("sa-token\n")
    (folder / "ca.crt").write_text("ca")
    (folder / "namespace").write_text("tgbot-system")
    environ = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}
    info = connection_info(None, environ=environ, service_account=folder)
    assert (info.server, info.token, info.ca_path, info.default_namespace) == (
        "https://[fd00::1]:6443",
        "sa-token",
        str(folder / "ca.crt"),
        "tgbot-system",
    )
    # --kubeconfig wins over the pod's account, as kubectl's does.
    path = write_kubeconfig(tmp_path / "config", user={"token": "mine"})
    assert connection_info(path, environ=environ, service_account=folder).token == "mine"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("current-context: nope\ncontexts: []\n", "has no such entry"),
        ("clusters: []\n", "no current-context"),
        ("- a list\n", "not a mapping"),
        ("{unclosed", "cannot read the kubeconfig"),
        (
            "current-context: a\ncontexts: [{name: a, context: {cluster: c, user: u}}]\n"
            "clusters: [{name: c, cluster: 'not a mapping'}]\nusers: [{name: u, user: {}}]\n",
            "has no server",
        ),
        (
            "current-context: a\ncontexts: [{name: a, context: {cluster: c, user: u}}]\n"
            "clusters: [{name: c, cluster: {server: 'https://k', certificate-authority: ca.crt,"
            " certificate-authority-data: eA==}}]\nusers: [{name: u, user: {tokenFile: nope}}]\n",
            "tokenFile: FileNotFoundError",
        ),
        (
            "current-context: a\ncontexts: [{name: a, context: {cluster: c, user: u}}]\n"
            "clusters: [{name: c, cluster: {server: 'https://k', certificate-authority: ca.crt,"
            " certificate-authority-data: eA==}}]\nusers: [{name: u, user: {token: t}}]\n",
            "inconsistent: Both CA path & data",
        ),
    ],
)
def test_a_broken_kubeconfig_is_a_login_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "config"
    path.write_text(content)
    with pytest.raises(LoginError, match=message):
        connection_info(path, environ={}, service_account=NO_POD)


def test_no_credentials_at_all_is_a_login_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(LoginError, match="no Kubernetes credentials"):
        connection_info(None, environ={}, service_account=NO_POD)


@pytest.mark.skipif(importlib.util.find_spec("kubernetes") is not None, reason="the client is installed")
def test_an_exec_plugin_without_the_client_names_the_extra(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "config", user={"exec": {"command": "aws", "apiVersion": "v1"}})
    with pytest.raises(LoginError, match=r"exec plugin.*" + EXTRA.replace("[", r"\[").replace("]", r"\]")):
        connection_info(path, environ={}, service_account=NO_POD)


# --- a 401 logs in again, once ----------------------------------------------------------------

Serve = Callable[[web.Application], Awaitable[TestServer]]


@pytest.fixture
async def aiohttp_server() -> AsyncIterator[Serve]:
    servers: list[TestServer] = []

    async def start(app: web.Application) -> TestServer:
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


async def test_a_401_logs_in_again_and_repeats_the_call(aiohttp_server: Serve) -> None:
    seen: list[str] = []

    async def secret(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != "Bearer fresh":
            return web.json_response({"kind": "Status", "message": "Unauthorized"}, status=401)
        return web.json_response({"metadata": {"name": "s", "namespace": "ns"}, "data": {}})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/ns/secrets/s", secret)
    server = await aiohttp_server(app)
    tokens = iter(["stale", "fresh", "never"])
    logins = []

    def login() -> kopf.ConnectionInfo:
        logins.append(1)
        return kopf.ConnectionInfo(server=str(server.make_url("")), token=next(tokens))

    kube = Kube(login, secret_reads="poll")
    try:
        view = await kube.read_secret("ns", "s")
        assert view is not None
        assert view.name == "s"
        assert seen == ["Bearer stale", "Bearer fresh"]
        assert len(logins) == 2
    finally:
        await kube.close()


async def test_credentials_still_refused_after_a_login_are_a_kube_error(aiohttp_server: Serve) -> None:
    calls: list[str] = []

    async def refuse(request: web.Request) -> web.Response:
        calls.append(request.headers.get("Authorization", ""))
        return web.Response(status=401, text=json.dumps({"kind": "Status", "message": "Unauthorized"}))

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/ns/secrets/s", refuse)
    server = await aiohttp_server(app)
    counter = iter(range(100))

    def login() -> kopf.ConnectionInfo:  # a new token every time, never a good one
        return kopf.ConnectionInfo(server=str(server.make_url("")), token=f"t{next(counter)}")

    kube = Kube(login, secret_reads="poll")
    try:
        with pytest.raises(KubeError, match="401 Unauthorized") as caught:
            await kube.read_secret("ns", "s")
        assert caught.value.status == 401
        assert calls == ["Bearer t0", "Bearer t1"]  # one login again, one repeat, then the error
        assert "t1" not in str(caught.value)
    finally:
        await kube.close()


@pytest.mark.parametrize(
    ("cluster", "message"),
    [
        (None, "cannot read the kubeconfig"),
        ({"server": "https://k:6443", "certificate-authority": "missing.crt"}, "TLS credentials"),
    ],
)
def test_the_cli_says_what_is_wrong_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cluster: dict[str, Any] | None, message: str
) -> None:
    from tgbot_operator.cli import main

    path = tmp_path / "missing"
    if cluster is not None:
        path = write_kubeconfig(tmp_path / "config", user={"token": "t"}, cluster=cluster)
    with pytest.raises(SystemExit) as exited:
        main(["--kubeconfig", str(path), "--namespace", "bots"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "tgbot-operator: cannot load the Kubernetes configuration: " in err
    assert message in err
    assert "Traceback" not in err
