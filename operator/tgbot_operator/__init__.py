"""The TelegramBot operator: registers, watches and rotates Telegram bot webhooks (kopf-based).

Public: the ``tgbot-operator`` command (``tgbot_operator.cli:main``), the TelegramBot CRD, and the
generated Secret's keys (``names.py``), which the sidecar reads as files. No other program imports
this package (the programs are independent: ``.importlinter``), so every module is internal.

Layers (enforced by import-linter): ``cli``/``settings`` -> ``handlers`` (kopf) -> ``worker``
(observe -> decide -> execute -> record) -> ``observe``/``execute``/``deletion`` (I/O: ``kube``,
``botapi``) -> pure ``reconcile``, ``record``, ``status``, ``profile*``, ``registration``,
``observation``, ``actions``, ``telegram``, ``model``, ``webhook_secret``: no aiohttp, kopf or
kubernetes there. See docs/architecture.md.
"""

__all__: list[str] = []
