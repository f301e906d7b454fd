"""Model cards, registry, ONNX Runtime sessions, preprocessing, export, phantoms, demo model.

This package imports nothing else of ours (see ``../shared/DESIGN.md``).
"""
