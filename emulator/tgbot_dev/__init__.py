"""tgbot-dev: run your own bot locally behind the real sidecar and the Bot API emulator."""
