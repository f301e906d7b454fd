"""``triage users``: create web users and API tokens from the command line."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from triage.cli.app import app, config_from
from worklist.db.engine import Database
from worklist.domain import Role
from worklist.users import add_user, create_token, list_users, set_active

__all__ = ["users_app"]

logger = logging.getLogger(__name__)

users_app = typer.Typer(help="Users of the web app and API tokens.", no_args_is_help=True)
app.add_typer(users_app, name="users")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users_app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Username.")],
    role: Annotated[Role, typer.Option("--role", help="What the user may do.")],
    site: Annotated[str, typer.Option("--site", help="Site (AE title) of a radiographer.")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Add a user; the password comes from a prompt or stdin (at least 8 characters)."""
    config = config_from(ctx)
    password = _read_password(password_stdin)
    db = Database(config.worklist.effective_database_url)
    try:
        with db.write() as session:
            user = add_user(session, name, password, role, site=site)
    finally:
        db.dispose()
    typer.echo(f"added {user.username} ({user.role}{', ' + user.site if user.site else ''})")


@users_app.command("token")
def token(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Username.")]) -> None:
    """Print a new API token for a user (shown once; only its hash is stored)."""
    config = config_from(ctx)
    db = Database(config.worklist.effective_database_url)
    try:
        with db.write() as session:
            value = create_token(session, name)
    finally:
        db.dispose()
    typer.echo(value)


@users_app.command("list")
def list_(ctx: typer.Context) -> None:
    """List the users."""
    config = config_from(ctx)
    db = Database(config.worklist.effective_database_url)
    try:
        with db.read() as session:
            rows = list_users(session)
    finally:
        db.dispose()
    for user in rows:
        state = "active" if user.active else "inactive"
        typer.echo(f"{user.username}\t{user.role}\t{user.site}\t{state}")


@users_app.command("deactivate")
def deactivate(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Username.")]) -> None:
    """Deactivate a user (no logins, no tokens)."""
    config = config_from(ctx)
    db = Database(config.worklist.effective_database_url)
    try:
        with db.write() as session:
            set_active(session, name, False)
    finally:
        db.dispose()
    typer.echo(f"deactivated {name}")
