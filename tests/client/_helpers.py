"""Shared helpers of the ColdSend client tests (constants, a request recorder, responses)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

API_KEY = "cs_live_TESTSECRET0123456789abcdef"
BASE_URL = "https://api.coldsend.test/api/public/v1"


@dataclass
class Recorder:
    """What a mock server saw, and a clock/sleep pair the client uses instead of real time."""

    requests: list[httpx.Request] = field(default_factory=list)
    keys_seen: list[str | None] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    now: float = 1_800_000_000.0

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


Handler = Callable[[httpx.Request], httpx.Response]


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)
