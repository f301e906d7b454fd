"""Bundled rule files (package data): ``routing.yaml`` and ``policy.yaml``."""
