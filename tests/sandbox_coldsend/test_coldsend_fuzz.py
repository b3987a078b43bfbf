"""Schema-driven fuzzing of the emulator with schemathesis: no input may cause a 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from sandbox.coldsend import create_app
from sandbox.coldsend.models import CampaignSettings, ManualLead

# In-process (ASGI) so hundreds of cases cost little; faults are off by default and stay off.
APP = create_app(per_minute=10**9, per_hour=10**9, seed=3)
HEADERS = {"X-API-Key": APP.sandbox.admin_key}
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


def _live_campaign() -> str:
    """A fresh DRAFT campaign with one lead, so generated cases also reach the deep paths."""
    store = APP.sandbox.store
    campaign_id: str = store.create_campaign(CampaignSettings(name="Fuzzing target"))["campaign_id"]
    store.add_manual_lead(campaign_id, ManualLead(email="fuzz@example.com"))
    return campaign_id


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: schemathesis.Case) -> None:
    assert APP.sandbox.faults.config.error_rate == 0 and APP.sandbox.faults.config.drop_rate == 0
    params = case.path_parameters or {}
    # Half of the cases (by a stable choice) address a campaign that exists.
    if "campaign_id" in params and len(str(params["campaign_id"])) % 2 == 0:
        params["campaign_id"] = _live_campaign()
    case.call_and_validate(headers=HEADERS, checks=[not_a_server_error])
