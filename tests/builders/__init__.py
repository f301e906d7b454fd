"""What the tests build, one module per kind; every test takes its data and peers from here.

- :mod:`~tests.builders.dicom`: synthetic DICOM pixels, instances, files and studies.
- :mod:`~tests.builders.images`: DICOM images of chosen pixels (a mean intensity, a disc).
- :mod:`~tests.builders.cards`: model cards, as parsed YAML and as ModelCard objects.
- :mod:`~tests.builders.onnx`: tiny ONNX models and model directories laid out with their cards.
- :mod:`~tests.builders.store`: store rows (studies for the worker and the web app, users,
  instances stored through the ingestor) and the archive files behind them; reading a study.
- :mod:`~tests.builders.rows`: what a worklist row shows on seeded studies: more findings (above
  and below threshold, other models) and DICOM Study Date/Time values.
- :mod:`~tests.builders.audit`: reading audit events back.
- :mod:`~tests.builders.peers`: free ports, DCMTK's echoscu/storescu, a throwaway PostgreSQL.
- :mod:`~tests.builders.postgres`: a throwaway PostgreSQL server a test can crash and restart.
- :mod:`~tests.builders.chaos`: the scale-out as processes killed and restarted, storescu
  senders that re-send what was not acknowledged, the driver that kills.
- :mod:`~tests.builders.gateway`: in-process gateways on free ports.
- :mod:`~tests.builders.tls`: a test PKI (CA, server and client certificates, an expired one,
  one from another CA) for the DICOM TLS tests.
- :mod:`~tests.builders.orthanc`: receiving PACS peers of the export tests: Orthanc on loopback
  ports (its own config and storage, stopped by pid) and a Storage SCP that refuses everything.
- :mod:`~tests.builders.qr`: DCMTK's findscu, movescu, getscu and a storescp move destination.
- :mod:`~tests.builders.query`: store rows (no files) for the Query/Retrieve matching tests.
- :mod:`~tests.builders.pdus`: raw upper-layer PDUs (struct) for hostile and faulty peers.
- :mod:`~tests.builders.hostile`: hostile DICOM instances (sequences nested thousands deep,
  deflate bombs, huge headers), stored in place of a study's instance.
- :mod:`~tests.builders.worker`: triage workers on real models loaded from disk.
- :mod:`~tests.builders.web`: the web app in a test client or served live, logging in.
- :mod:`~tests.builders.dicomweb`: dicomweb-client on a live server, multipart bodies.
- :mod:`~tests.builders.orthanc_dicomweb`: Orthanc with its DICOMweb plugin on a loopback port.
- :mod:`~tests.builders.cohorts`: per-image scores, truths and subgroups for model evaluation.
- :mod:`~tests.builders.datasets`: the dataset-layout copies the reader tests draw; their truth.
- :mod:`~tests.builders.benchmark`: dataset copies whose pixels encode their labels, for the
  benchmark command (a perfect, a random and a constant tiny model on them).
- :mod:`~tests.builders.simulation`: small waiting-list scenarios (queues from queueing theory).
- :mod:`~tests.builders.monitoring`: score samples, shifted or not, and reference score files
  beside model cards (production monitoring).
- :mod:`~tests.builders.fhir`: studies with series, instances and a card's findings (and a
  shadow model's) for the FHIR tests; their findings read back.
- :mod:`~tests.builders.outputs`: the AI's DICOM outputs read back (dciodvfy, dsrdump, srread),
  and phantom studies recorded as the gateway records them.
- :mod:`~tests.builders.webhooks`: a webhook receiver (``http.server`` on a loopback port) that
  records the requests and can answer the first ones with failures.

Test modules import builders only from here, never from another test module or a conftest;
``conftest.py`` files hold only fixtures, made of these builders.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
"""The repository's root folder."""
