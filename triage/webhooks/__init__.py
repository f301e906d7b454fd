"""Notifications of urgent AI results: signed JSON webhooks, delivered through the job queue."""

from __future__ import annotations

# Only the light configuration here: the settings import it, and the command line's help must
# not load httpx or SQLAlchemy (the worker imports triage.webhooks.notifier).
from triage.webhooks.config import Webhook, WebhookSecretError, sign

__all__ = ["Webhook", "WebhookSecretError", "sign"]
