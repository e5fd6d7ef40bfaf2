"""The provider's API key, read from its Secrets Manager secret through Powertools Parameters and cached per
container for five minutes; read afresh after the provider refused the account (a rotated key)."""

from __future__ import annotations

from typing import Final

from aws_lambda_powertools.utilities.parameters import SecretsProvider

__all__ = ["ApiKey"]

MAX_AGE_S: Final = 300


class ApiKey:
    def __init__(self, secrets: SecretsProvider, secret: str, *, max_age_s: int = MAX_AGE_S) -> None:
        self._secrets = secrets
        self.secret = secret  # the secret's name or ARN, never the key
        self._max_age_s = max_age_s
        self._force_fetch = False

    def __call__(self) -> str:
        """The key: the cached copy, or the secret's value when the copy is old or was forgotten."""
        key = self._secrets.get(self.secret, max_age=self._max_age_s, force_fetch=self._force_fetch)
        self._force_fetch = False
        return str(key)

    def forget(self) -> None:
        """The next read goes to the secret, whatever the age of the cached copy."""
        self._force_fetch = True
