"""One way to turn flags and environment variables into a program's settings model.

Why pydantic-settings' ``CliApp``: each program already has one pydantic-settings model whose
validators are the truth about what a value may be. ``CliApp`` derives the flags from that model
(kebab-case names, ``--x/--no-x`` for booleans, repeated flags for lists, ``-n``-style shortcuts),
merges them over ``PREFIX_*`` environment variables (flags win) and validates everything once -
where three hand-made argparse parsers each repeated the field list, the metavars and the
"only pass the flags actually given" trick.

Where we work around it (all through ``CliSettingsSource``'s documented ``root_parser`` and
``add_argument_method`` hooks, no private API):

- ``--help``: CliApp names values by their Python type (``list[str]``, ``float``) and writes
  ``(default factory: <lambda>)``; :class:`_Arguments` writes our metavars (a field's
  :class:`~tgbot_kit.types.Metavar`, or the type's), defaults as users write them (``300s``,
  ``a, b``) and the environment variable names.
- An alias that spells an extra environment variable (``TGBOT_OPERATOR_NAMESPACE`` beside
  ``..._NAMESPACES``: the env source reads aliases verbatim) would become a flag
  ``--tgbot-operator-namespace``: ``flags`` names a field's flags outright (``--namespace``, ``-n``).
- Mutually exclusive flags (``-n`` / ``-A``) only exist for nested models in CliApp; the hook puts
  the fields named in ``exclusive`` into one argparse mutually exclusive group.
- Short flags: the CLI source lower-cases arguments unless told ``case_sensitive=True``, which
  would turn ``-A`` into ``-a``.
- Errors: a pydantic ValidationError becomes ``PROG: invalid settings:`` and one ``--flag: problem``
  line per error, exit status 2, never the input values (they may be tokens).
"""

from __future__ import annotations

import argparse
import inspect
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings, CliApp, CliSettingsSource, SettingsError

from .types import Metavar, format_duration

S = TypeVar("S", bound=BaseSettings)

_TYPE_METAVARS: dict[Any, str] = {int: "N", float: "NUMBER", str: "TEXT", Path: "PATH"}


def _inner(annotation: Any) -> Any:
    """``X | None`` -> X, ``list[X]`` -> X."""
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list) and len(args) == 1:
        return _inner(args[0])
    return annotation


def metavar_of(field: FieldInfo) -> str:
    for item in field.metadata:
        if isinstance(item, Metavar):
            return item.text
    inner = _inner(field.annotation)
    if typing.get_origin(inner) is typing.Literal:
        return "{" + ",".join(map(str, typing.get_args(inner))) + "}"
    return str(getattr(inner, "metavar", None) or _TYPE_METAVARS.get(inner, "VALUE"))


def default_of(field: FieldInfo) -> str | None:
    """The default as a user writes it, or None when there is none to show."""
    if field.default_factory is not None:
        try:
            value = typing.cast(Callable[[], Any], field.default_factory)()
        except TypeError:  # a factory taking the validated data
            return None
        if not isinstance(value, list):
            return None  # drawn per process: the description says how
        return ", ".join(map(str, value)) if value else "none"
    value = field.default
    if value is PydanticUndefined or value is None:
        return None
    if isinstance(value, bool):
        return "on" if value else "off"
    if any(isinstance(item, Metavar) and item.text == "DURATION" for item in field.metadata):
        return format_duration(float(value))
    return str(value)


class _Arguments:
    """``CliSettingsSource``'s ``add_argument_method``: our help, metavars and exclusive groups."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        exclusive: Iterable[Iterable[str]],
        flags: Mapping[str, Sequence[str]],
    ) -> None:
        self.fields = settings_cls.model_fields
        self.prefix = str(settings_cls.model_config.get("env_prefix", "")).upper()
        self.flags = flags
        self.exclusive = {name: index for index, names in enumerate(exclusive) for name in names}
        self.groups: dict[int, Any] = {}

    def env_names(self, name: str, field: FieldInfo) -> list[str]:
        aliases = getattr(field.validation_alias, "choices", [])
        extra = [a.upper() for a in aliases if isinstance(a, str) and a.upper().startswith(self.prefix)]
        return [self.prefix + name.upper(), *[a for a in extra if a != self.prefix + name.upper()]]

    def __call__(self, parser: Any, *names: str, **kwargs: Any) -> Any:
        name = kwargs.get("dest")
        field = self.fields.get(name) if isinstance(name, str) else None
        if field is None or kwargs.get("help") == argparse.SUPPRESS:
            return parser.add_argument(*names, **kwargs)
        assert isinstance(name, str)
        names = tuple(self.flags.get(name, names))
        if "metavar" in kwargs:
            kwargs["metavar"] = metavar_of(field)
        help_text = field.description or ""
        default = default_of(field)
        if field.is_required():
            help_text += " (required)"
        elif default is not None and "default" not in help_text:
            help_text += f" (default: {default})"
        help_text += f" [env {', '.join(self.env_names(name, field))}]"
        kwargs["help"] = help_text.strip().replace("%", "%%")
        if name in self.exclusive:
            index = self.exclusive[name]
            if index not in self.groups:
                self.groups[index] = parser.add_mutually_exclusive_group()
            parser = self.groups[index]
        return parser.add_argument(*names, **kwargs)


def parse(
    settings_cls: type[S],
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str | None = None,
    epilog: str | None = None,
    exclusive: Iterable[Iterable[str]] = (),
    flags: Mapping[str, Sequence[str]] | None = None,
    **init: Any,
) -> S:
    """Flags (``argv``, default ``sys.argv[1:]``) over ``PREFIX_*`` variables over defaults.

    ``--help`` and malformed command lines exit as argparse does; invalid values raise
    ValidationError (:func:`parse_or_exit` reports it). ``exclusive``: groups of fields whose
    flags exclude each other; ``flags``: field -> its flag names, where CliApp's do not fit.
    ``init`` values win over both; a ``cli_cmd`` method of the model runs, as with ``CliApp.run``.
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description if description is not None else inspect.cleandoc(settings_cls.__doc__ or ""),
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source: CliSettingsSource[Any] = CliSettingsSource(
        settings_cls,
        root_parser=parser,
        cli_prog_name=prog,
        case_sensitive=True,
        cli_kebab_case=True,
        cli_implicit_flags=True,
        cli_hide_none_type=True,
        cli_avoid_json=True,
        add_argument_method=_Arguments(settings_cls, exclusive, flags or {}),
    )
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return CliApp.run(settings_cls, cli_args=args, cli_settings_source=source, **init)
    except SettingsError as exc:  # e.g. unbalanced quotes in a list value
        parser.error(str(exc))


def problems(exc: ValidationError) -> list[str]:
    """``--flag: message`` per error (a model-level error: its message alone); no input values."""
    lines = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        if error["loc"]:
            lines.append(f"--{str(error['loc'][0]).replace('_', '-')}: {message}")
        else:
            lines.append(message)
    return lines


def invalid_settings(prog: str, exc: ValidationError) -> NoReturn:
    print(f"{prog}: invalid settings:", *(f"  {line}" for line in problems(exc)), sep="\n", file=sys.stderr)
    raise SystemExit(2)


def parse_or_exit(settings_cls: type[S], argv: Sequence[str] | None, *, prog: str, **kwargs: Any) -> S:
    """:func:`parse`, with invalid settings reported on stderr and exit status 2."""
    try:
        return parse(settings_cls, argv, prog=prog, **kwargs)
    except ValidationError as exc:
        invalid_settings(prog, exc)
