"""The TelegramBot operator."""
