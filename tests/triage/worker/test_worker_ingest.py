"""The worker on studies as the gateway records them: phantoms through the Ingestor and the
assembler, then routing, the runtime's preprocessing of real phantom pixels, and the policy."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from dicom_gateway.assembler import Assembler
from dicom_gateway.settings import GatewaySettings
from models.card import ModelStatus
from models.phantoms import generate_phantom
from tests.builders.onnx import write_worker_model
from tests.builders.store import store_instance
from tests.builders.worker import WorkerFactory, drain, load
from worklist.archive import Archive
from worklist.db.engine import Database
from worklist.db.schema import Finding, Study
from worklist.db.types import utcnow
from worklist.ingest.recorder import Ingestor


def _send(ingestor: Ingestor, seed: int, priority: str, site: str, modality: str) -> str:
    phantom = generate_phantom(seed, [], priority=priority, size=256, modality=modality)
    store_instance(ingestor, phantom.dataset, calling_aet=site)
    return str(phantom.dataset.StudyInstanceUID)


def test_worker_triages_studies_recorded_by_the_gateway(
    db: Database, archive: Path, models_dir: Path, make_worker: WorkerFactory
) -> None:
    model = load(write_worker_model(models_dir, "chest", n_labels=2, modalities=("DX",)))
    ingestor = Ingestor(db, Archive(archive))
    stat = _send(ingestor, 11, "STAT", "CDC_A", modality="DX")
    routine = _send(ingestor, 12, "ROUTINE", "CDC_B", modality="DX")
    cr = _send(ingestor, 13, "HIGH", "CDC_B", modality="CR")  # the model applies to DX only
    assert len(Assembler(db, GatewaySettings()).run_once(utcnow() + timedelta(hours=1))) == 3
    assert drain(make_worker(db, [(model, ModelStatus.ENABLED)])) == 3

    with db.read() as s:
        rows = {st.study_instance_uid: st for st in s.scalars(select(Study))}
        by_study = {
            uid: s.scalars(select(Finding).where(Finding.study_id == st.id)).all()
            for uid, st in rows.items()
        }
        assert rows[stat].clinical_priority == "P1" and rows[stat].priority == "P1"
        assert rows[stat].priority_explanation[0]["rule"] == "referral"
        assert rows[stat].priority_explanation[0]["value"] == "STAT"
        assert rows[routine].clinical_priority == "P3"
        for uid in (stat, routine):
            assert rows[uid].ai_status == "done" and rows[uid].state == "triaged"
            labels = sorted(f.label for f in by_study[uid])
            assert labels == ["nodule", "pneumothorax"]
            probs = {f.label: f.probability for f in by_study[uid]}
            assert abs(probs["pneumothorax"] + probs["nodule"] - 1.0) < 1e-5
        assert rows[cr].priority == "P2" and rows[cr].ai_status == "not_available"
        assert "no applicable model" in rows[cr].ai_reason
        assert by_study[cr] == []
