"""Regexes a user wrote (target_modules, exclude_modules, layers_pattern, modules_to_save, rank/alpha patterns),
matched as PEFT matches them but in bounded time.

PEFT runs them with ``re``, which backtracks without limit: a 482-byte adapter_config.json whose rank_pattern key
is ``(a|a)+`` takes seconds per module name, and ``re`` holds the interpreter lock all that time, so in the app every
other session freezes and Ctrl-C cannot stop the CLI. The ``regex`` package matches the same syntax (its version-0
mode is ``re``'s) and takes a timeout, so a pattern that slow is refused in one line naming the field instead.
Validity is still judged by ``re`` (``peft_config``), so what PEFT refuses is refused with its message.
"""

from __future__ import annotations

from functools import lru_cache

import regex

from loralens.errors import InvalidParameterError

#: seconds one match may take: ordinary patterns take microseconds on module names of a few hundred characters
MATCH_SECONDS = 0.2


class UserPattern:
    """A compiled user regex whose ``match`` and ``fullmatch`` give up after MATCH_SECONDS, naming ``where``."""

    def __init__(self, pattern: str, where: str, shown: str | None = None) -> None:
        self.pattern, self.where, self.shown = pattern, where, shown if shown is not None else pattern
        try:
            self._compiled = _compile(pattern)
        except (regex.error, RecursionError, OverflowError, ValueError) as error:
            raise InvalidParameterError(f"{self.shown!r} is not a valid regex ({error})", where=where) from None

    def match(self, text: str) -> regex.Match[str] | None:
        return self._run(self._compiled.match, text)

    def fullmatch(self, text: str) -> regex.Match[str] | None:
        return self._run(self._compiled.fullmatch, text)

    def _run(self, method, text: str):  # type: ignore[no-untyped-def]
        try:
            return method(text, timeout=MATCH_SECONDS)
        except TimeoutError:
            raise InvalidParameterError(
                f"{self.shown!r} takes over {MATCH_SECONDS} s to match {text!r} (nested repeats such as (a|a)+ "
                "backtrack without end); write it without them", where=self.where) from None


@lru_cache(maxsize=4096)
def _compile(pattern: str) -> regex.Pattern[str]:
    return regex.compile(pattern, flags=regex.VERSION0)


@lru_cache(maxsize=4096)
def user_pattern(pattern: str, where: str, shown: str | None = None) -> UserPattern:
    """The bounded matcher of ``pattern`` (``shown``: the part the user wrote, when ``pattern`` wraps it)."""
    return UserPattern(pattern, where, shown)


__all__ = ["MATCH_SECONDS", "UserPattern", "user_pattern"]
