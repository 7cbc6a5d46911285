"""An aiogram bot that never answers (test fixture for --expect-reply)."""

from aiogram import Dispatcher

import tgbot_aiogram

if __name__ == "__main__":
    tgbot_aiogram.run(Dispatcher())
