"""Export of a triaged study's AI results (and its images) to PACS destinations, with retry."""

from __future__ import annotations

from triage.exports.destinations import ExportDestination, matching
from triage.exports.exporter import Exporter

__all__ = ["ExportDestination", "Exporter", "matching"]
