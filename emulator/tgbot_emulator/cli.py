"""Command line entry point (placeholder until its issue fills it in)."""

import argparse


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The Telegram Bot API emulator.")
    parser.parse_args(argv)
