"""PyTorch/MONAI networks to ONNX, with a parity check, and the card written beside them.

:mod:`models.export.onnx` exports; :mod:`models.export.card` writes the card skeleton. torch is
imported lazily.
"""
