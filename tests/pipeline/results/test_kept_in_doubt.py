"""In-doubt adoption looks at kept results: a daemon killed between the webhook and the POST's
answer leaves a batch in doubt, and the next run writes its paid result from what was kept.

Real processes and sockets: `crm-sync run` with a failpoint (SIGKILL right after the POST's
answer), then `crm-sync --once` on the same store.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from crm_sync.sandbox.world import SandboxWorld
from crm_sync.store.store import Store
from tests.pipeline.results.conftest import REFUSED
from tests.pipeline.results.test_webhook_edges import daemon_config
from tests.support.processes import ROOT, assert_every_found_value_written, run_once, write_config


def test_a_kept_result_is_adopted_by_its_in_doubt_batch(
    world: SandboxWorld, tmp_path: Path
) -> None:
    """The killed daemon's first batch goes in_doubt; the kept webhook result is written."""
    world.enrichment.styles.slow_post_answer = True
    raw = daemon_config(world, tmp_path, poll_after=600)
    config_path = write_config(tmp_path / "config.yaml", raw)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CRM_SYNC_FAILPOINT": "after_submit"}
    daemon = subprocess.run(
        [sys.executable, "-m", "crm_sync.cli", "run", "--config", str(config_path)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert daemon.returncode == -9, daemon.stderr[-2000:]
    [lost_job] = world.enrichment.job_ids()  # the API made (and charged) one job
    assert [a.status for a in world.enrichment.webhook_attempts] == [200]

    world.enrichment.styles.slow_post_answer = False
    rerun = run_once(config_path, tmp_path)

    store = Store.open(raw["state"]["url"])
    try:
        adopted = store.batch_by_enrichment_id(lost_job)
        assert adopted is not None, rerun.stderr[-3000:]
        assert (adopted.state, adopted.result_source) == ("written", "webhook")
        assert set(store.batches_by_state()) <= {"written", REFUSED}
        assert store.early_results() == []
    finally:
        store.close()
    assert max(world.enrichment.submissions_per_contact().values()) == 1
    assert assert_every_found_value_written(world) > 10
