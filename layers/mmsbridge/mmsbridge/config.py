"""Settings from the environment, read one way: each function has one frozen settings dataclass, built once at
its cold start by `from_env(env)` from the variables the template gives it, through `Env`.

A missing or malformed value stops the cold start with an error that names the variable, rather than failing
every invocation later. Pure: it reads the mapping it is given, never `os.environ` itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

__all__ = ["Env", "SettingError"]

_FLAGS = {"true": True, "false": False}


class SettingError(ValueError):
    """An environment variable is missing or holds a value its setting cannot take."""


class Env:
    """Typed reads of environment variables; every error names the variable."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str, default: str | None = None) -> str:
        """The value as it is; required (non-empty) unless a `default` is given."""
        value = self._env.get(name)
        if value is None or (default is None and not value.strip()):
            if default is None:
                raise SettingError(f"{name} is not set")
            return default
        return value

    def optional(self, name: str) -> str | None:
        """The value, or None when it is unset or empty."""
        return self._env.get(name) or None

    def integer(self, name: str, default: int | None = None, *, minimum: int | None = None) -> int:
        """The value as an integer; required unless a `default` is given."""
        return _at_least(name, self._parsed(name, default, int, "an integer"), minimum)

    def number(self, name: str, default: float | None = None, *, minimum: float | None = None) -> float:
        """The value as a float; required unless a `default` is given."""
        return _at_least(name, self._parsed(name, default, float, "a number"), minimum)

    def flag(self, name: str, default: bool = False) -> bool:
        """The value "true" or "false" (any case); unset or empty is the default."""
        raw = self._env.get(name) or ""
        if not raw:
            return default
        try:
            return _FLAGS[raw.lower()]
        except KeyError:
            raise SettingError(f'{name} must be "true" or "false", got {raw!r}') from None

    def items(self, name: str) -> tuple[str, ...]:
        """A comma-separated list, each item stripped, empty items dropped."""
        return tuple(item.strip() for item in (self._env.get(name) or "").split(",") if item.strip())

    def _parsed[N: (int, float)](
        self, name: str, default: N | None, kind: Callable[[str], N], what: str
    ) -> N:
        raw = self._env.get(name)
        if raw is None and default is not None:
            return default
        if raw is None or (default is None and not raw.strip()):
            raise SettingError(f"{name} is not set")
        try:
            return kind(raw)
        except ValueError:
            raise SettingError(f"{name} must be {what}, got {raw!r}") from None


def _at_least[N: (int, float)](name: str, value: N, minimum: N | None) -> N:
    if minimum is not None and value < minimum:
        raise SettingError(f"{name} must be at least {minimum}, got {value}")
    return value
