"""The AI's results as DICOM instances of the study: a TID 1500 SR and a key image.

See :mod:`triage.outputs.writer` for how the worker stores them, :mod:`triage.outputs.sr` and
:mod:`triage.outputs.keyimage` for what they hold.
"""

from __future__ import annotations
