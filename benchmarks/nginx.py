"""nginx (Debian's package) as the reverse proxy, run unprivileged from a generated config."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from tgbot_localdev.processes import LocalProcess

from . import tools
from .processes import Group

CONFIG = """\
{user}daemon off;
master_process on;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 1000000;
    upstream bot {{
        server {upstream};
        keepalive 128;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        location = /webhook {{
            proxy_pass http://bot;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


def write_config(prefix: Path, port: int, upstream: str) -> Path:
    """``upstream`` as nginx writes it: ``unix:/path/bot.sock`` or ``127.0.0.1:8081``."""
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    # As root, nginx's workers would switch to nobody and could not reach our sockets.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    conf.write_text(CONFIG.format(prefix=prefix, port=port, upstream=upstream, user=user))
    return conf


def start(group: Group, prefix: Path, port: int, upstream: str) -> LocalProcess:
    binary = tools.nginx()
    if binary is None:
        raise RuntimeError(f"nginx not found: {tools.INSTALL_HINT}")
    conf = write_config(prefix, port, upstream)
    argv = [str(binary), "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    return group.start("nginx", argv, listen=("127.0.0.1", port))
