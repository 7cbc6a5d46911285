"""``python -m tgbot_emulator``: the same as the tgbot-emulator script."""

from .cli import main

main()
