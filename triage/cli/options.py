"""Options shared by the subcommands: which settings file, and where the data and models live.

Each is declared here once, with its help text, and reused by every command that opens the
store, the archive or the model registry, so that they are spelt, defaulted and documented the
same way everywhere. A command honours one by declaring a parameter of that name and type::

    def list_(
        ctx: typer.Context, config_file: ConfigOption = None, data_dir: DataDirOption = None
    ) -> None: ...

:func:`triage.cli.app.config_from` reads the declared values from the command's context
(:data:`CONFIG_PARAM` and :data:`SETTING_PARAMS` name them), so an option a command declares
always takes effect, also in helpers that only see the context.

Precedence, for every setting: command-line option > ``TRIAGE_*`` environment variable >
settings file > default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = [
    "CONFIG_PARAM",
    "PRECEDENCE",
    "SETTING_PARAMS",
    "ConfigOption",
    "DataDirOption",
    "DatabaseUrlOption",
    "ModelsDirOption",
    "WebTlsCaOption",
    "WebTlsCertificateOption",
    "WebTlsKeyOption",
    "WebTlsRequireClientOption",
    "web_tls_overrides",
]

PRECEDENCE = "command-line option > TRIAGE_* environment variable > settings file > default"
"""The order in which a setting's sources win, as the help texts state it."""

CONFIG_PARAM = "config_file"
"""Name of the parameter that carries ``--config``."""

SETTING_PARAMS: dict[str, tuple[str, str]] = {
    "data_dir": ("worklist", "data_dir"),
    "database_url": ("worklist", "database_url"),
    "models_dir": ("models", "models_dir"),
}
"""Parameter name -> (settings section, field) that the option overrides."""

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        metavar="FILE",
        show_default=False,
        help="TOML settings file, one table per package (worklist, models, gateway, triage). "
        "Default: $TRIAGE_CONFIG, else ./triage.toml when it exists, else none. "
        f"Precedence of every setting: {PRECEDENCE}.",
    ),
]
"""``--config FILE``: the settings file (also accepted before the subcommand)."""

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        metavar="DIR",
        show_default=False,
        help="Root of the deployment's data: the embedded store (DIR/triage.db), the archive "
        "(DIR/archive) and the model statuses (DIR/model-state.json); overrides "
        "$TRIAGE_WORKLIST_DATA_DIR and worklist.data_dir of the settings file. "
        "Default: ./var. A database_url or archive_dir that is set still wins for the store "
        "or the archive.",
    ),
]
"""``--data-dir DIR``: the worklist's ``data_dir``."""

DatabaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        metavar="URL",
        show_default=False,
        help="SQLAlchemy URL of the store, e.g. postgresql+psycopg://triage@db/triage; "
        "overrides $TRIAGE_WORKLIST_DATABASE_URL and worklist.database_url of the settings file. "
        "Default: SQLite DATA_DIR/triage.db. A password here shows in the process list: "
        "prefer the variable or the settings file.",
    ),
]
"""``--database-url URL``: the worklist's ``database_url`` (the scaled mode's PostgreSQL)."""

ModelsDirOption = Annotated[
    Path | None,
    typer.Option(
        "--models-dir",
        metavar="DIR",
        show_default=False,
        help="Directory of models (NAME/VERSION/card.yaml + model.onnx); "
        "overrides $TRIAGE_MODELS_MODELS_DIR and models.models_dir of the settings file. "
        "Default: the bundled demo models.",
    ),
]
"""``--models-dir DIR``: the model registry's ``models_dir``."""

WebTlsCertificateOption = Annotated[
    Path | None,
    typer.Option(
        "--tls-cert",
        metavar="FILE",
        show_default=False,
        help="Serve the web app over HTTPS with this PEM certificate (chain); overrides "
        "worklist.web_tls_certificate. Responses then carry Strict-Transport-Security and "
        "cookies are Secure.",
    ),
]
"""``--tls-cert FILE``: the worklist's ``web_tls_certificate`` (``triage web``, ``serve``)."""

WebTlsKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--tls-key",
        metavar="FILE",
        show_default=False,
        help="PEM private key of --tls-cert (default: in the certificate file); an encrypted "
        "key's password: $TRIAGE_WORKLIST_WEB_TLS_PRIVATE_KEY_PASSWORD.",
    ),
]
"""``--tls-key FILE``: the worklist's ``web_tls_private_key``."""

WebTlsCaOption = Annotated[
    Path | None,
    typer.Option(
        "--tls-ca",
        metavar="FILE",
        show_default=False,
        help="PEM CA certificates that sign clients' certificates (checked when offered).",
    ),
]
"""``--tls-ca FILE``: the worklist's ``web_tls_ca_bundle``."""

WebTlsRequireClientOption = Annotated[
    bool | None,
    typer.Option(
        "--tls-require-client-cert/--no-tls-require-client-cert",
        show_default=False,
        help="Refuse HTTPS clients without a certificate signed by --tls-ca.",
    ),
]
"""``--tls-require-client-cert``: the worklist's ``web_tls_require_client_certificate``."""


def web_tls_overrides(
    certificate: Path | None, key: Path | None, ca: Path | None, require_client: bool | None
) -> dict[str, object]:
    """Return the ``worklist`` overrides of the web TLS options (``None``: not given).

    Parameters
    ----------
    certificate, key, ca, require_client
        The values of ``--tls-cert``, ``--tls-key``, ``--tls-ca``, ``--tls-require-client-cert``.

    Returns
    -------
    dict
        For :func:`triage.cli.app.config_from`'s ``worklist=``.
    """
    return {
        "web_tls_certificate": certificate,
        "web_tls_private_key": key,
        "web_tls_ca_bundle": ca,
        "web_tls_require_client_certificate": require_client,
    }
