"""Local ColdSend emulator: the public API v1 on loopback, plus a /_sandbox/ control surface."""

from sandbox.coldsend.app import ColdSendApp, ColdSendSandbox, create_app, has_scope
from sandbox.coldsend.models import API_PREFIX, CONTROL_PREFIX

__all__ = [
    "API_PREFIX",
    "CONTROL_PREFIX",
    "ColdSendApp",
    "ColdSendSandbox",
    "create_app",
    "has_scope",
]
