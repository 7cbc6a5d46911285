"""aiogram's own echo bot (from its docs), served behind the tgbot-sidecar.

The only change from aiogram's example: ``await dp.start_polling(bot)`` became
``await tgbot_aiogram.serve(dp, bot)``. ``/menu`` adds an inline keyboard whose buttons edit
the message, to try ``tgbot-dev run`` with buttons and edits.
"""

import asyncio
import logging
import sys
from os import getenv

from aiogram import Bot, Dispatcher, F, html
from aiogram.client.default import DefaultBotProperties
from aiogram.enums import ParseMode
from aiogram.filters import Command, CommandStart
from aiogram.types import CallbackQuery, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

import tgbot_aiogram

# Bot token can be obtained via https://t.me/BotFather
TOKEN = getenv("BOT_TOKEN")

# All handlers should be attached to the Router (or Dispatcher)
dp = Dispatcher()


@dp.message(CommandStart())
async def command_start_handler(message: Message) -> None:
    """
    This handler receives messages with `/start` command
    """
    assert message.from_user is not None
    await message.answer(f"Hello, {html.bold(message.from_user.full_name)}!")


@dp.message(Command("menu"))
async def command_menu_handler(message: Message) -> None:
    keyboard = InlineKeyboardBuilder()
    keyboard.button(text="Tea", callback_data="drink:tea")
    keyboard.button(text="Coffee", callback_data="drink:coffee")
    await message.answer("What would you like?", reply_markup=keyboard.as_markup())


@dp.callback_query(F.data.startswith("drink:"))
async def drink_chosen(callback: CallbackQuery) -> None:
    assert callback.data is not None
    drink = callback.data.split(":", 1)[1]
    if isinstance(callback.message, Message):
        await callback.message.edit_text(f"One {drink}, coming up.")
    await callback.answer(f"You chose {drink}")


@dp.message()
async def echo_handler(message: Message) -> None:
    """
    Handler will forward receive a message back to the sender

    By default, message handler will handle all message types (like a text, photo, sticker etc.)
    """
    try:
        # Send a copy of the received message
        await message.send_copy(chat_id=message.chat.id)
    except TypeError:
        # But not all the types is supported to be copied so need to handle it
        await message.answer("Nice try!")


async def main() -> None:
    assert TOKEN, "BOT_TOKEN is not set"
    # Initialize Bot instance with default bot properties which will be passed to all API calls
    bot = Bot(token=TOKEN, default=DefaultBotProperties(parse_mode=ParseMode.HTML))

    # Behind the tgbot-sidecar: serve the webhook on $BOT_SOCKET instead of polling.
    await tgbot_aiogram.serve(dp, bot)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stdout)
    asyncio.run(main())
