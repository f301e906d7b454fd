"""The one door every arrival goes through, C-STORE or STOW-RS.

:mod:`~worklist.ingest.header` checks a received instance's header, :mod:`~worklist.ingest.recorder`
records studies, series and instances, :mod:`~worklist.ingest.group_commit` batches the archive
sync and the store transaction, and :mod:`~worklist.ingest.associations` records associations and
refusals.
"""
