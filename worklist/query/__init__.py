"""Query/Retrieve over the store: the Study Root information model as SQL.

:mod:`~worklist.query.matching` turns one key's value into a condition per PS3.4 C.2.2
(single value, wildcard, range, UID list, universal matching); :mod:`~worklist.query.keys`
says which keys exist at which level and where each is kept; :mod:`~worklist.query.find`
runs a query at STUDY, SERIES or IMAGE level and lists the instances a retrieve sends. The
DIMSE side (identifiers, statuses, sub-operations) is :mod:`dicom_gateway.qr`.
"""
