"""DICOMweb (PS3.18) without HTTP: QIDO-RS matching, WADO-RS retrieval, STOW-RS storage.

The web app's ``/dicom-web`` router (:mod:`worklist.web.routers.dicomweb`) parses requests and
writes responses; what is searched, read and stored is decided here, over the store
(:mod:`worklist.db.schema`), the archive and the ingest door (:mod:`worklist.ingest`).
"""
