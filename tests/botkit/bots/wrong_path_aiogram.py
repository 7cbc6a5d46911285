"""An aiogram bot that serves /hook instead of $BOT_WEBHOOK_PATH (test fixture)."""

import dataclasses

from aiogram import Dispatcher

import tgbot_aiogram

if __name__ == "__main__":
    environment = dataclasses.replace(tgbot_aiogram.BotEnvironment.from_env(), webhook_path="/hook")
    tgbot_aiogram.run(Dispatcher(), environment=environment)
