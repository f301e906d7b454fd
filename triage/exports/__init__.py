"""Export of a triaged study's AI results (and its images) to PACS destinations, with retry."""

from __future__ import annotations

# Only the light destinations here: the settings import them, and the command line's help must
# not load pydicom, pynetdicom or SQLAlchemy (the worker imports triage.exports.exporter).
from triage.exports.destinations import ExportDestination, matching

__all__ = ["ExportDestination", "matching"]
