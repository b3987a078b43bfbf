"""Seeded, deterministic send simulation: moves leads of ACTIVE campaigns through their statuses.

Each step moves every lead that is not done one stage. The outcome of a stage depends only on
the app seed, the lead's normalised email and the stage, never on timing or on how many steps
were taken before, so the same leads always end the same way.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from sandbox.coldsend.db import Store, dumps
from sandbox.coldsend.models import LEAD_STATUSES, utc_now

BOUNCE_RATE = 0.05
OPEN_RATE = 0.40
UNSUBSCRIBE_RATE = 0.02
REPLY_RATE = 0.25

# What simulated leads answer (picked per lead by the seed): the reply text reps read in the CRM.
REPLY_TEXTS = (
    "Thanks for reaching out, happy to talk next week.",
    "Interesting. Can you send pricing for a team of 20?",
    "Not the right time for us, try again next quarter.",
    "I'm not the right person; please contact our head of operations.",
    "Sounds good. Tuesday 10am works, send an invite.",
)


def draw(seed: int, email: str, stage: str) -> float:
    """A uniform number in [0, 1) fixed by (seed, email, stage)."""
    digest = hashlib.blake2b(f"{seed}:{email}:{stage}".encode(), digest_size=8).digest()
    return int.from_bytes(digest) / 2**64


def _stable_uuid(seed: int, email: str, stage: str) -> str:
    digest = hashlib.blake2b(f"{seed}:{email}:{stage}".encode(), digest_size=16).digest()
    return str(uuid.UUID(bytes=digest, version=4))


def _pick_variant(seed: int, email: str, variants: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not variants:
        return None
    point = draw(seed, email, "variant") * 100
    acc = 0.0
    for variant in variants:
        acc += variant.get("distribution_percent", 0)
        if point < acc:
            return variant
    return variants[-1]


def advance(store: Store, seed: int, steps: int = 1) -> dict[str, Any]:
    """Run `steps` simulation steps; return per-campaign lead counts by status.

    Returns:
        ``{"steps": n, "campaigns": {campaign_id: {"status": str, "leads": {STATUS: count}}}}``
        for every campaign that was ACTIVE during one of the steps.
    """
    touched: dict[str, None] = {}
    for _ in range(steps):
        with store.tx() as c:
            campaigns = c.execute(
                "SELECT campaign_id, variants, inbox_ids FROM campaigns WHERE status = 'ACTIVE' "
                "ORDER BY seq"
            ).fetchall()
            inbox_email = dict(
                c.execute("SELECT inbox_id, json_extract(public, '$.email_address') FROM inboxes")
            )
            now = utc_now()
            for campaign_id, variants_json, inbox_json in campaigns:
                touched[campaign_id] = None
                variants = json.loads(variants_json)
                inboxes = [inbox_email[i] for i in json.loads(inbox_json) if i in inbox_email]
                rows = c.execute(
                    "SELECT seq, email_norm, status, last_contacted_at, opened_at, replied_at, "
                    "email_opened, email_replied, unsubscribed, sequence_step, interactions, "
                    "replies FROM leads WHERE campaign_id = ? AND sim_done = 0",
                    (campaign_id,),
                ).fetchall()
                updates = [_step(seed, list(row), now, variants, inboxes) for row in rows]
                c.executemany(
                    "UPDATE leads SET status = ?, sim_done = ?, last_contacted_at = ?, "
                    "opened_at = ?, replied_at = ?, email_opened = ?, email_replied = ?, "
                    "unsubscribed = ?, sequence_step = ?, interactions = ?, replies = ? "
                    "WHERE seq = ?",
                    updates,
                )
                left = c.execute(
                    "SELECT count(*), sum(sim_done = 0) FROM leads WHERE campaign_id = ?",
                    (campaign_id,),
                ).fetchone()
                if left[0] and not left[1]:
                    c.execute(
                        "UPDATE campaigns SET status = 'COMPLETED', updated_at = ? "
                        "WHERE campaign_id = ?",
                        (now, campaign_id),
                    )
    result: dict[str, Any] = {}
    with store.tx() as c:
        for campaign_id in touched:
            row = c.execute(
                "SELECT status FROM campaigns WHERE campaign_id = ?", (campaign_id,)
            ).fetchone()
            if row is None:
                continue
            counts = dict.fromkeys(LEAD_STATUSES, 0)
            counts.update(
                c.execute(
                    "SELECT status, count(*) FROM leads WHERE campaign_id = ? GROUP BY status",
                    (campaign_id,),
                ).fetchall()
            )
            result[campaign_id] = {"status": row[0], "leads": counts}
    return {"steps": steps, "campaigns": result}


def _step(
    seed: int, row: list[Any], now: str, variants: list[dict[str, Any]], inboxes: list[str]
) -> tuple[Any, ...]:
    """Move one lead a stage; returns the UPDATE parameters."""
    (seq, email, status, contacted, opened_at, replied_at, opened, replied, unsub, step) = row[:10]
    interactions: list[dict[str, Any]] = json.loads(row[10])
    replies: list[dict[str, Any]] = json.loads(row[11])
    done = False
    if status == "PENDING":
        status = "QUEUED"
    elif status == "QUEUED":
        bounced = draw(seed, email, "send") < BOUNCE_RATE
        status, done = ("BOUNCED", True) if bounced else ("SENT", False)
        contacted, step = now, max(step, 1)
        variant = _pick_variant(seed, email, variants)
        interactions.append(
            {
                "email_id": _stable_uuid(seed, email, "email_id"),
                "sequence_step": 1,
                "subject": variant.get("subject_template", "") if variant else "",
                "sent_at": now,
                "opened_at": None,
                "replied_at": None,
                "inbox_email": (
                    inboxes[int(draw(seed, email, "inbox") * len(inboxes))] if inboxes else None
                ),
                "sent": not bounced,
                "opened": False,
                "bounced": bounced,
            }
        )
    elif status == "SENT":
        point = draw(seed, email, "open")
        if point < OPEN_RATE:
            status, opened, opened_at = "OPENED", 1, now
            for item in interactions[-1:]:
                item["opened"], item["opened_at"] = True, now
        elif point < OPEN_RATE + UNSUBSCRIBE_RATE:
            status, unsub, done = "UNSUBSCRIBED", 1, True
            replies.append(_reply(seed, email, now, interactions, unsubscribe=True))
        else:
            done = True
    elif status == "OPENED":
        done = True
        if draw(seed, email, "reply") < REPLY_RATE:
            status, replied, replied_at = "REPLIED", 1, now
            for item in interactions[-1:]:
                item["replied_at"] = now
            replies.append(_reply(seed, email, now, interactions, unsubscribe=False))
    else:
        done = True
    return (
        status,
        int(done),
        contacted,
        opened_at,
        replied_at,
        opened,
        replied,
        unsub,
        step,
        dumps(interactions),
        dumps(replies),
        seq,
    )


def _reply(
    seed: int, email: str, now: str, interactions: list[dict[str, Any]], *, unsubscribe: bool
) -> dict[str, Any]:
    subject = interactions[-1]["subject"] if interactions else ""
    return {
        "reply_id": _stable_uuid(seed, email, "reply_id"),
        "subject": f"Re: {subject}" if subject else "Re:",
        "received_at": now,
        "body_preview": "Please remove me from your list."
        if unsubscribe
        else REPLY_TEXTS[int(draw(seed, email, "reply_text") * len(REPLY_TEXTS))],
        "is_auto_reply": False,
        "is_unsubscribe": unsubscribe,
    }
