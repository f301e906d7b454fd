"""DICOMweb (PS3.18) without HTTP: QIDO-RS search, WADO-RS retrieval, STOW-RS storage.

The web app's ``/dicom-web`` router (:mod:`worklist.web.routers.dicomweb`) parses requests and
writes responses; what is searched, read and stored is decided here, over the store
(:mod:`worklist.db.schema`), the archive and the ingest door (:mod:`worklist.ingest`). QIDO-RS
matches with the C-FIND SCP's matcher, :mod:`worklist.query.matching`.
"""
