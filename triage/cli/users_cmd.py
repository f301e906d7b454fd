"""``triage users``: web users and the API tokens of machine clients (create, list, revoke)."""

from __future__ import annotations

import getpass
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from triage.cli.app import app, config_from
from triage.cli.options import ConfigOption, DataDirOption
from worklist.domain import Role

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# The store (SQLAlchemy, Alembic) is imported inside the commands, so that ``triage --help`` and
# the other subcommands do not pay for it.

__all__ = ["users_app"]

logger = logging.getLogger(__name__)

users_app = typer.Typer(help="Users of the web app and API tokens.", no_args_is_help=True)
app.add_typer(users_app, name="users")

# Every command takes --config and --data-dir (triage.cli.options); config_from reads them from
# the command's context, also inside _store.


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def _os_user() -> str:
    """Return the login name of whoever runs the command, for the audit log ("" if unknown)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no $USER (containers)
        return ""


@contextmanager
def _store(ctx: typer.Context, *, write: bool) -> Iterator[Session]:
    """Open the store of the effective settings for one transaction, then close it."""
    from worklist.db.engine import Database

    db = Database(config_from(ctx).worklist.effective_database_url)
    try:
        with db.write() if write else db.read() as session:
            yield session
    finally:
        db.dispose()


@users_app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Username.")],
    role: Annotated[Role, typer.Option("--role", help="What the user may do.")],
    site: Annotated[str, typer.Option("--site", help="Site (AE title) of a radiographer.")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    config_file: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Add a user (audited); the password comes from a prompt or stdin (at least 8 characters)."""
    from worklist.accounts.users import add_user

    config_from(ctx)  # bad settings fail before the password is asked for
    password = _read_password(password_stdin)
    with _store(ctx, write=True) as session:
        user = add_user(session, name, password, role, site=site, actor=_os_user(), source="cli")
    typer.echo(f"added {user.username} ({user.role}{', ' + user.site if user.site else ''})")


@users_app.command("token")
def token(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Username.")],
    config_file: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Print a new API token for a user (shown once; only its hash is stored; audited).

    The token alone goes to stdout (``TOKEN=$(triage users token NAME)``); its id and the first
    characters of its sha256, which ``triage users tokens`` shows too, go to stderr.
    """
    from worklist.accounts.tokens import issue_token

    with _store(ctx, write=True) as session:
        new = issue_token(session, name, actor=_os_user(), source="cli")
    typer.echo(new.secret)
    typer.echo(f"token id {new.view.id}, sha256 {new.view.hash_prefix}", err=True)


@users_app.command("tokens")
def tokens(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this user's tokens.")] = None,
    config_file: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """List API tokens: id, sha256 prefix, user, created, last used, state (never the token)."""
    from worklist.accounts.tokens import list_tokens

    with _store(ctx, write=False) as session:
        rows = list_tokens(session, name)
    if not rows:
        typer.echo(f"no API tokens{' for ' + name if name else ''}")
        return
    typer.echo("id\tsha256\tuser\tcreated\tlast used\tstate")
    for tok in rows:
        created = tok.created_at.isoformat(timespec="seconds")
        used = tok.last_used_at.isoformat(timespec="seconds") if tok.last_used_at else "never"
        typer.echo(f"{tok.id}\t{tok.hash_prefix}\t{tok.username}\t{created}\t{used}\t{tok.state}")


@users_app.command("revoke-token")
def revoke(
    ctx: typer.Context,
    token_id: Annotated[int, typer.Argument(help="Id from `users tokens`.")],
    config_file: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Revoke an API token (audited; revoking a revoked token changes nothing)."""
    from worklist.accounts.tokens import revoke_token
    from worklist.web.authcache import AUTH_CACHE_S

    with _store(ctx, write=True) as session:
        done = revoke_token(session, token_id, actor=_os_user(), source="cli")
    tok = done.token
    what = f"token {tok.id} (sha256 {tok.hash_prefix}) of {tok.username}"
    if done.changed:
        typer.echo(f"revoked {what}; web processes refuse it within {AUTH_CACHE_S:g} s")
    else:
        typer.echo(f"{what} was already revoked")


@users_app.command("list")
def list_(
    ctx: typer.Context, config_file: ConfigOption = None, data_dir: DataDirOption = None
) -> None:
    """List the users."""
    from worklist.accounts.users import list_users

    with _store(ctx, write=False) as session:
        rows = list_users(session)
    for user in rows:
        state = "active" if user.active else "inactive"
        typer.echo(f"{user.username}\t{user.role}\t{user.site}\t{state}")


def _set_active(ctx: typer.Context, name: str, active: bool) -> None:
    """Set a user's state, audited, and say whether it changed."""
    from sqlalchemy import select

    from worklist.accounts.users import UserNotFoundError, set_active
    from worklist.db.schema import User

    with _store(ctx, write=True) as session:
        before = session.scalar(select(User.active).where(User.username == name))
        if before is None:
            raise UserNotFoundError(f"no user {name!r}")
        set_active(session, name, active, actor=_os_user(), source="cli")
    word = "activated" if active else "deactivated"
    if before == active:
        typer.echo(f"{name} was already {'active' if active else 'inactive'}: nothing changed")
    else:
        typer.echo(f"{word} {name}")


@users_app.command("deactivate")
def deactivate(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Username.")],
    config_file: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Deactivate a user (no logins, no tokens; audited)."""
    _set_active(ctx, name, False)


@users_app.command("activate")
def activate(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Username.")],
    config_file: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Activate a deactivated user again (logins and tokens work again; audited)."""
    _set_active(ctx, name, True)
