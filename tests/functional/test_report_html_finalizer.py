"""The finalizer writes report.html next to report.json (moto S3): one lane per worker, a row per failed object
and per failed payload, served as HTML."""

from __future__ import annotations

import pytest

from lambdas import manifest
from lambdas.finalizer import finalize
from lambdas.models import CopyOptions, PayloadTask
from lambdas.reporting.page import REPORT_HTML
from lambdas.worker import record_failure
from tests.functional.run_builder import MANIFESTS, SETTINGS, SOURCE, RunBuilder, moto_gateway
from tests.unit.test_report_html import parse


@pytest.fixture
def s3(monkeypatch):
    yield from moto_gateway(monkeypatch)


def test_the_finalizer_writes_the_html_report_beside_report_json(s3):
    # GIVEN payload 0 on worker 0 that copied one object, and payload 1 on worker 1 that failed for good
    run = RunBuilder(s3, options=CopyOptions(max_failed_objects=10))
    run.whole("done.txt", b"x", payload=0)
    run.whole("<never>.txt", b"z", payload=1, outcome="none")
    pointer = run.write(ran={0})
    record_failure(PayloadTask(run_id="r1", manifest=run.loc, worker=1, payload=1),
                   {"Error": "Sandbox.Timedout", "Cause": "Task timed out after 900 s"}, s3)

    # WHEN the finalizer runs
    finalize(pointer, SETTINGS, s3)

    # THEN report.json names report.html, stored as HTML in the run's folder
    report = s3.get_json(MANIFESTS, manifest.key(run.loc, manifest.REPORT_JSON))
    assert report["report_html"] == run.loc.uri(REPORT_HTML)
    obj = s3.client.get_object(Bucket=MANIFESTS, Key=manifest.key(run.loc, REPORT_HTML))
    assert obj["ContentType"] == "text/html; charset=utf-8"
    page = obj["Body"].read().decode()
    # AND it has a lane per worker, the failed object (escaped) with its fix, and the failed payload in lane 1
    elements = parse(page)
    assert sorted(attrs["data-worker"] for _, attrs, _ in elements.having("lane")) == ["0", "1"]
    assert len(elements.having("failure")) == 1 and f"s3://{SOURCE}/&lt;never&gt;.txt" in page
    assert "raise the worker timeout" in page
    assert len(elements.having("failed-payload")) == 1
    assert [lane for _, _, lane in elements.having("marker-failed")] == [1]
    # AND without a recorded memory (these checkpoints were written by hand) the page says why no estimate is shown
    assert "No invocation recorded its memory" in page
