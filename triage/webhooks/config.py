"""Webhooks as data (``[[triage.webhooks]]``), their secret, and the signature scheme.

The signature is ``X-Triage-Signature: sha256=<hex>``, the HMAC-SHA256 with the webhook's
secret of the bytes ``<X-Triage-Timestamp> "." <body>`` (see ``docs/notifications.md``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from models.errors import Invalid

__all__ = [
    "EVENT_ID_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Webhook",
    "WebhookEvent",
    "WebhookSecretError",
    "sign",
]

SIGNATURE_HEADER = "X-Triage-Signature"
TIMESTAMP_HEADER = "X-Triage-Timestamp"
EVENT_ID_HEADER = "X-Triage-Event-Id"

WebhookEvent = Literal["ai_p1"]
"""``ai_p1``: the AI's findings raised the study to P1 above its clinical priority."""


_DEFAULT_EVENTS: list[WebhookEvent] = ["ai_p1"]


class WebhookSecretError(Invalid):
    """A webhook's secret cannot be read (its variable is unset, its file missing or empty)."""


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """Return the signature header's value: ``sha256=`` and the hex HMAC of ``ts.body``.

    Parameters
    ----------
    secret
        The webhook's shared secret.
    timestamp
        The ``X-Triage-Timestamp`` header's value (Unix seconds, as sent).
    body
        The request body, byte for byte.

    Returns
    -------
    str
        ``sha256=`` followed by 64 lowercase hex digits.
    """
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class Webhook(BaseModel):
    """One HTTP endpoint notified of urgent AI results (a reporting system, a pager gateway).

    Exactly one of ``secret``, ``secret_env`` and ``secret_file`` gives the shared secret.
    The secret is never logged nor recorded in events (``repr`` hides it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, description="Unique name, kept per delivery.")
    url: str = Field(pattern=r"^https?://", description="Where the JSON is POSTed.")
    secret: SecretStr | None = Field(default=None, description="The shared secret itself.")
    secret_env: str | None = Field(default=None, description="An environment variable's name.")
    secret_file: Path | None = Field(default=None, description="A file holding the secret.")
    events: list[WebhookEvent] = Field(default_factory=lambda: _DEFAULT_EVENTS.copy(), min_length=1)
    attempts: int = Field(default=5, ge=1, le=100, description="Attempts before exhausted.")
    first_delay_s: float = Field(default=10.0, ge=0, description="Wait after the first failure.")
    backoff: float = Field(
        default=2.0, ge=1.0, description="Each further wait is this times longer."
    )
    max_delay_s: float = Field(default=600.0, ge=0, description="The longest wait.")
    timeout_s: float = Field(default=10.0, gt=0, description="The HTTP request's timeout.")

    @model_validator(mode="after")
    def _one_secret(self) -> Self:
        given = [x for x in (self.secret, self.secret_env, self.secret_file) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of secret, secret_env and secret_file")
        return self

    def delay_after(self, attempt: int) -> float:
        """Return the wait after failed attempt ``attempt`` (1-based): exponential, capped."""
        return float(
            min(self.first_delay_s * self.backoff ** max(attempt - 1, 0), self.max_delay_s)
        )

    def secret_bytes(self) -> bytes:
        """Read the secret now (a variable or file is read at each delivery, so it can rotate).

        Raises
        ------
        WebhookSecretError
            The variable is unset or the file unreadable, or the secret is empty.
        """
        if self.secret is not None:
            value = self.secret.get_secret_value()
        elif self.secret_env is not None:
            value = os.environ.get(self.secret_env, "")
            if not value:
                raise WebhookSecretError(f"webhook {self.name}: ${self.secret_env} is not set")
        else:
            try:
                value = Path(str(self.secret_file)).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise WebhookSecretError(
                    f"webhook {self.name}: secret file unreadable ({exc.strerror})"
                ) from None
        if not value:
            raise WebhookSecretError(f"webhook {self.name}: the secret is empty")
        return value.encode("utf-8")
