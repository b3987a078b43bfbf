"""SQLite state of the ColdSend emulator: schema, queries and the business rules of sections 4-6.

One connection, shared by every request thread and job thread and guarded by a re-entrant
lock; each public method is one transaction. Rows are turned into response dicts here, so the
routes in `app.py` stay thin.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from pydantic import ValidationError

from sandbox.coldsend.models import (
    SETTINGS_FIELDS,
    ApiError,
    CampaignSettings,
    CampaignUpdate,
    LeadUpdate,
    ManualLead,
    ReplyRequest,
    SenderAccountCreate,
    format_ts,
    normalize_email,
    utc_now,
    validation_detail,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_hash TEXT PRIMARY KEY, name TEXT, scopes TEXT NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS inboxes (
    seq INTEGER PRIMARY KEY, inbox_id TEXT NOT NULL UNIQUE, email_norm TEXT NOT NULL UNIQUE,
    public TEXT NOT NULL, secret TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS campaigns (
    seq INTEGER PRIMARY KEY, campaign_id TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
    status TEXT NOT NULL, settings TEXT NOT NULL, inbox_ids TEXT NOT NULL DEFAULT '[]',
    variants TEXT NOT NULL DEFAULT '[]', sequences TEXT NOT NULL DEFAULT '[]',
    lead_mapping TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    launched_at TEXT
);
CREATE TABLE IF NOT EXISTS leads (
    seq INTEGER PRIMARY KEY, lead_id TEXT NOT NULL UNIQUE, campaign_id TEXT NOT NULL,
    batch_id TEXT, email TEXT NOT NULL, email_norm TEXT NOT NULL, first_name TEXT,
    last_name TEXT, company TEXT, status TEXT NOT NULL DEFAULT 'PENDING',
    custom_fields TEXT NOT NULL DEFAULT '{}', sequence_step INTEGER NOT NULL DEFAULT 0,
    email_opened INTEGER NOT NULL DEFAULT 0, email_replied INTEGER NOT NULL DEFAULT 0,
    unsubscribed INTEGER NOT NULL DEFAULT 0, last_contacted_at TEXT, opened_at TEXT,
    replied_at TEXT, created_at TEXT NOT NULL, sim_done INTEGER NOT NULL DEFAULT 0,
    interactions TEXT NOT NULL DEFAULT '[]', replies TEXT NOT NULL DEFAULT '[]',
    UNIQUE (campaign_id, email_norm)
);
CREATE INDEX IF NOT EXISTS leads_by_status ON leads (campaign_id, status);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY, job_id TEXT NOT NULL UNIQUE, campaign_id TEXT NOT NULL,
    status TEXT NOT NULL, total_count INTEGER NOT NULL, processed_count INTEGER NOT NULL DEFAULT 0,
    success_count INTEGER NOT NULL DEFAULT 0, duplicate_count INTEGER NOT NULL DEFAULT 0,
    error_count INTEGER NOT NULL DEFAULT 0, error_message TEXT, started_at TEXT,
    completed_at TEXT, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS job_errors (
    job_id TEXT NOT NULL, row INTEGER NOT NULL, email TEXT, error TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_errors_by_job ON job_errors (job_id);
"""

LEAD_COLUMNS = (
    "lead_id, batch_id, email, first_name, last_name, company, status, last_contacted_at, "
    "opened_at, replied_at, created_at, custom_fields, sequence_step, email_opened, "
    "email_replied, unsubscribed"
)
_CAMPAIGN_COLUMNS = (
    "campaign_id, name, status, settings, inbox_ids, variants, sequences, lead_mapping, "
    "created_at, updated_at, launched_at"
)
_EDITABLE = ("DRAFT", "PAUSED")
UPLOADABLE = ("DRAFT", "ACTIVE", "PAUSED")
# Statuses from which the send simulation never moves a lead again.
FINAL_LEAD_STATUSES = frozenset({"REPLIED", "BOUNCED", "UNSUBSCRIBED", "FAILED", "EXTERNAL"})


def dumps(value: Any) -> str:
    """Compact JSON as stored in the database and written in the export."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def lead_dict(row: Sequence[Any]) -> dict[str, Any]:
    """A Lead object from a row selected with `LEAD_COLUMNS`."""
    return {
        "lead_id": row[0],
        "batch_id": row[1],
        "email": row[2],
        "first_name": row[3],
        "last_name": row[4],
        "company": row[5],
        "status": row[6],
        "last_contacted_at": row[7],
        "opened_at": row[8],
        "replied_at": row[9],
        "created_at": row[10],
        "custom_fields": json.loads(row[11]),
        "sequence_step": row[12],
        "email_opened": bool(row[13]),
        "email_replied": bool(row[14]),
        "unsubscribed": bool(row[15]),
    }


def _pagination(page: int, limit: int, total: int) -> dict[str, Any]:
    pages = -(-total // limit)
    return {
        "page": page,
        "limit": limit,
        "total": total,
        "pages": pages,
        "has_next": page < pages,
        "has_prev": page > 1,
    }


def _state_error(what: str, status: str, allowed: Iterable[str]) -> ApiError:
    return ApiError(
        400, f"Cannot {what}: campaign is {status}; allowed only when {' or '.join(allowed)}"
    )


class Store:
    """The emulator's database. Thread-safe; every method runs as one transaction."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path or ":memory:"
        self.lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        # Durability is not a goal of an emulator; speed of bulk imports is.
        self._conn.execute("PRAGMA synchronous=OFF")
        if self.path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.create_function("casefold", 1, _casefold, deterministic=True)
        self._conn.executescript(_SCHEMA)

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and run one transaction (nested calls join the outer one)."""
        with self.lock:
            if self._conn.in_transaction:
                yield self._conn
                return
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self._conn.close()

    # -- keys and reset ----------------------------------------------------------------------

    def add_key(self, key_hash: str, name: str | None, scopes: list[str], *, admin: bool) -> None:
        """Store an API key by its hash."""
        with self.tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO api_keys VALUES (?, ?, ?, ?, ?)",
                (key_hash, name, dumps(scopes), int(admin), utc_now()),
            )

    def keys(self) -> dict[str, frozenset[str]]:
        """Every key hash with its scopes."""
        with self.tx() as c:
            rows = c.execute("SELECT key_hash, scopes FROM api_keys").fetchall()
        return {h: frozenset(json.loads(s)) for h, s in rows}

    def wipe(self) -> None:
        """Delete everything but the admin key."""
        with self.tx() as c:
            for table in ("inboxes", "campaigns", "leads", "jobs", "job_errors"):
                c.execute(f"DELETE FROM {table}")
            c.execute("DELETE FROM api_keys WHERE is_admin = 0")

    # -- campaigns ---------------------------------------------------------------------------

    def _campaign_row(self, c: sqlite3.Connection, campaign_id: str) -> tuple[Any, ...]:
        row = c.execute(
            f"SELECT {_CAMPAIGN_COLUMNS} FROM campaigns WHERE campaign_id = ?", (campaign_id,)
        ).fetchone()
        if row is None:
            raise ApiError(404, "Campaign not found")
        return tuple(row)

    def campaign_status(self, campaign_id: str) -> str:
        """The status of a campaign (404 if missing)."""
        with self.tx() as c:
            return str(self._campaign_row(c, campaign_id)[2])

    def _counts(self, c: sqlite3.Connection, ids: list[str]) -> dict[str, dict[str, int]]:
        out = {
            i: {
                "total_leads": 0,
                "sent_count": 0,
                "open_count": 0,
                "reply_count": 0,
                "bounce_count": 0,
                "unsubscribe_count": 0,
            }
            for i in ids
        }
        if not ids:
            return out
        marks = ",".join("?" * len(ids))
        for row in c.execute(
            "SELECT campaign_id, count(*), count(last_contacted_at), sum(email_opened), "
            "sum(email_replied), sum(status = 'BOUNCED'), sum(unsubscribed) FROM leads "
            f"WHERE campaign_id IN ({marks}) GROUP BY campaign_id",
            ids,
        ):
            out[row[0]] = {
                "total_leads": row[1],
                "sent_count": row[2],
                "open_count": row[3],
                "reply_count": row[4],
                "bounce_count": row[5],
                "unsubscribe_count": row[6],
            }
        return out

    def create_campaign(self, body: CampaignSettings) -> dict[str, Any]:
        """POST /campaigns."""
        now = utc_now()
        campaign_id = str(uuid.uuid4())
        with self.tx() as c:
            c.execute(
                "INSERT INTO campaigns (campaign_id, name, status, settings, created_at, "
                "updated_at) VALUES (?, ?, 'DRAFT', ?, ?, ?)",
                (campaign_id, body.name, dumps(body.stored()), now, now),
            )
        return {
            "success": True,
            "message": "Campaign created",
            "campaign_id": campaign_id,
            "name": body.name,
            "status": "DRAFT",
            "created_at": now,
        }

    def list_campaigns(
        self, *, page: int, limit: int, status: str | None, search: str | None
    ) -> dict[str, Any]:
        """GET /campaigns."""
        where, args = ["1"], []
        if status:
            where.append("status = ?")
            args.append(status)
        if search:
            where.append("instr(casefold(name), ?) > 0")
            args.append(search.casefold())
        cond = " AND ".join(where)
        with self.tx() as c:
            total = c.execute(f"SELECT count(*) FROM campaigns WHERE {cond}", args).fetchone()[0]
            offset = (page - 1) * limit
            rows = (
                c.execute(
                    "SELECT campaign_id, name, status, created_at, launched_at FROM campaigns "
                    f"WHERE {cond} ORDER BY seq DESC LIMIT ? OFFSET ?",
                    [*args, limit, offset],
                ).fetchall()
                if offset < total
                else []
            )
            counts = self._counts(c, [r[0] for r in rows])
        items = [
            {
                "campaign_id": r[0],
                "name": r[1],
                "status": r[2],
                "created_at": r[3],
                "launched_at": r[4],
                **counts[r[0]],
            }
            for r in rows
        ]
        return {
            "success": True,
            "message": "Campaigns retrieved",
            "campaigns": items,
            "pagination": _pagination(page, limit, total),
        }

    def get_campaign(self, campaign_id: str) -> dict[str, Any]:
        """GET /campaigns/{id}: the campaign, unwrapped."""
        with self.tx() as c:
            row = self._campaign_row(c, campaign_id)
            counts = self._counts(c, [campaign_id])[campaign_id]
        return {
            **json.loads(row[3]),
            "campaign_id": row[0],
            "name": row[1],
            "status": row[2],
            "created_at": row[8],
            "updated_at": row[9],
            "launched_at": row[10],
            "inbox_ids": json.loads(row[4]),
            "variants": json.loads(row[5]),
            "sequences": json.loads(row[6]),
            "lead_mapping": json.loads(row[7]),
            **counts,
        }

    def update_campaign(self, campaign_id: str, body: CampaignUpdate) -> dict[str, Any]:
        """PUT /campaigns/{id}: partial update, optionally launching."""
        sent = body.model_fields_set
        with self.tx() as c:
            row = self._campaign_row(c, campaign_id)
            status = row[2]
            if status not in _EDITABLE:
                raise _state_error("update campaign", status, _EDITABLE)
            if body.launch and status != "DRAFT":
                raise ApiError(
                    400,
                    f"Cannot launch: campaign is {status}; only a DRAFT campaign can be "
                    "launched (use /activate to resume a PAUSED one)",
                )
            settings = json.loads(row[3])
            changed = {k: getattr(body, k) for k in SETTINGS_FIELDS if k in sent}
            if changed:
                try:
                    merged = CampaignSettings.model_validate({**settings, **changed})
                except ValidationError as exc:
                    raise ApiError(422, validation_detail(exc)) from None
                settings = merged.stored()
            inbox_ids: list[str] = json.loads(row[4])
            if "inbox_ids" in sent and body.inbox_ids is not None:
                wanted = list(dict.fromkeys(i.lower() for i in body.inbox_ids))
                marks = ",".join("?" * len(wanted))
                known = {
                    r[0]
                    for r in c.execute(
                        f"SELECT inbox_id FROM inboxes WHERE inbox_id IN ({marks})", wanted
                    )
                }
                missing = [i for i in wanted if i not in known]
                if missing:
                    raise ApiError(400, f"Sender account not found: {', '.join(missing)}")
                inbox_ids = wanted
            variants = json.loads(row[5])
            if "variants" in sent and body.variants is not None:
                variants = [v.model_dump() for v in body.variants]
            sequences = json.loads(row[6])
            if "sequences" in sent and body.sequences is not None:
                sequences = [s.model_dump() for s in body.sequences]
            mapping = json.loads(row[7])
            if "lead_mapping" in sent and body.lead_mapping is not None:
                mapping = body.lead_mapping
            has_lead = c.execute(
                "SELECT 1 FROM leads WHERE campaign_id = ? LIMIT 1", (campaign_id,)
            ).fetchone()
            missing_req = [
                name
                for name, ok in (
                    ("leads", has_lead),
                    ("inboxes", inbox_ids),
                    ("variants", variants),
                )
                if not ok
            ]
            now = utc_now()
            new_status, launched_at = status, row[10]
            if body.launch and not missing_req:
                new_status, launched_at = "ACTIVE", now
            c.execute(
                "UPDATE campaigns SET name = ?, status = ?, settings = ?, inbox_ids = ?, "
                "variants = ?, sequences = ?, lead_mapping = ?, updated_at = ?, launched_at = ? "
                "WHERE campaign_id = ?",
                (
                    settings["name"],
                    new_status,
                    dumps(settings),
                    dumps(inbox_ids),
                    dumps(variants),
                    dumps(sequences),
                    dumps(mapping),
                    now,
                    launched_at,
                    campaign_id,
                ),
            )
        if body.launch:
            message = (
                "Campaign launched"
                if new_status == "ACTIVE"
                else f"Campaign not launched: missing {', '.join(missing_req)}"
            )
        else:
            message = "Campaign updated"
        return {
            "success": True,
            "message": message,
            "campaign_id": campaign_id,
            "name": settings["name"],
            "status": new_status,
            "is_launch_ready": not missing_req,
            "missing_requirements": missing_req,
            "updated_at": now,
        }

    def transition(self, campaign_id: str, action: str) -> dict[str, Any]:
        """POST pause / activate, DELETE campaign."""
        rules = {
            "pause": (("ACTIVE",), "PAUSED", "Campaign paused"),
            "activate": (("PAUSED",), "ACTIVE", "Campaign activated"),
            "delete": (_EDITABLE, "DELETED", "Campaign deleted"),
        }
        allowed, target, message = rules[action]
        with self.tx() as c:
            status = self._campaign_row(c, campaign_id)[2]
            if status not in allowed:
                raise _state_error(f"{action} campaign", status, allowed)
            if action == "delete":
                c.execute("DELETE FROM leads WHERE campaign_id = ?", (campaign_id,))
                c.execute(
                    "DELETE FROM job_errors WHERE job_id IN "
                    "(SELECT job_id FROM jobs WHERE campaign_id = ?)",
                    (campaign_id,),
                )
                c.execute("DELETE FROM campaigns WHERE campaign_id = ?", (campaign_id,))
            else:
                c.execute(
                    "UPDATE campaigns SET status = ?, updated_at = ? WHERE campaign_id = ?",
                    (target, utc_now(), campaign_id),
                )
        return {"success": True, "message": message, "campaign_id": campaign_id, "status": target}

    # -- leads -------------------------------------------------------------------------------

    def add_manual_lead(self, campaign_id: str, body: ManualLead) -> dict[str, Any]:
        """POST /campaigns/{id}/leads/manual."""
        norm = normalize_email(body.email)
        lead_id, now = str(uuid.uuid4()), utc_now()
        with self.tx() as c:
            status = self._campaign_row(c, campaign_id)[2]
            if status not in UPLOADABLE:
                raise _state_error("add leads", status, UPLOADABLE)
            if c.execute(
                "SELECT 1 FROM leads WHERE campaign_id = ? AND email_norm = ?", (campaign_id, norm)
            ).fetchone():
                raise ApiError(409, f"Lead with email {body.email} already exists in this campaign")
            c.execute(
                "INSERT INTO leads (lead_id, campaign_id, email, email_norm, first_name, "
                "last_name, company, custom_fields, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    lead_id,
                    campaign_id,
                    body.email,
                    norm,
                    body.first_name,
                    body.last_name,
                    body.company,
                    dumps(body.custom_fields or {}),
                    now,
                ),
            )
            row = c.execute(f"SELECT {LEAD_COLUMNS} FROM leads WHERE lead_id = ?", (lead_id,))
            return lead_dict(row.fetchone())

    def list_leads(
        self, campaign_id: str, *, page: int, limit: int, status: str | None, search: str | None
    ) -> dict[str, Any]:
        """GET /campaigns/{id}/leads."""
        where, args = ["campaign_id = ?"], [campaign_id]
        if status:
            where.append("status = ?")
            args.append(status)
        if search:
            where.append(
                "(instr(email_norm, ?) > 0 OR instr(casefold(coalesce(first_name, '') || ' ' || "
                "coalesce(last_name, '')), ?) > 0)"
            )
            args += [search.casefold()] * 2
        cond = " AND ".join(where)
        with self.tx() as c:
            self._campaign_row(c, campaign_id)
            total = c.execute(f"SELECT count(*) FROM leads WHERE {cond}", args).fetchone()[0]
            offset = (page - 1) * limit
            rows = (
                c.execute(
                    f"SELECT {LEAD_COLUMNS} FROM leads WHERE {cond} ORDER BY seq LIMIT ? OFFSET ?",
                    [*args, limit, offset],
                ).fetchall()
                if offset < total
                else []
            )
        return {
            "success": True,
            "message": "Leads retrieved",
            "leads": [lead_dict(r) for r in rows],
            "pagination": _pagination(page, limit, total),
        }

    def get_lead(self, campaign_id: str, lead_id: str) -> dict[str, Any]:
        """GET /campaigns/{id}/leads/{lead_id}: the lead with its sending history."""
        with self.tx() as c:
            self._campaign_row(c, campaign_id)
            row = c.execute(
                f"SELECT {LEAD_COLUMNS}, interactions, replies FROM leads "
                "WHERE campaign_id = ? AND lead_id = ?",
                (campaign_id, lead_id),
            ).fetchone()
        if row is None:
            raise ApiError(404, "Lead not found")
        lead = lead_dict(row)
        lead["delivery_status"] = _DELIVERY.get(lead["status"], lead["status"])
        lead["email_interactions"] = json.loads(row[16])
        lead["replies"] = json.loads(row[17])
        return lead

    def update_lead(self, campaign_id: str, lead_id: str, body: LeadUpdate) -> dict[str, Any]:
        """PUT /campaigns/{id}/leads/{lead_id}."""
        sent = body.model_fields_set
        with self.tx() as c:
            self._campaign_row(c, campaign_id)
            row = c.execute(
                "SELECT email_norm, custom_fields FROM leads WHERE campaign_id = ? AND lead_id = ?",
                (campaign_id, lead_id),
            ).fetchone()
            if row is None:
                raise ApiError(404, "Lead not found")
            if "email" in sent and (body.email is None or normalize_email(body.email) != row[0]):
                raise ApiError(400, "The email of a lead cannot be changed")
            sets, args = [], []
            for name in ("first_name", "last_name", "company"):
                if name in sent:
                    sets.append(f"{name} = ?")
                    args.append(getattr(body, name))
            if "custom_fields" in sent and body.custom_fields is not None:
                custom = json.loads(row[1])
                for key, value in body.custom_fields.items():
                    if value is None:
                        custom.pop(key, None)
                    else:
                        custom[key] = value
                sets.append("custom_fields = ?")
                args.append(dumps(custom))
            if sets:
                c.execute(f"UPDATE leads SET {', '.join(sets)} WHERE lead_id = ?", [*args, lead_id])
            out = c.execute(f"SELECT {LEAD_COLUMNS} FROM leads WHERE lead_id = ?", (lead_id,))
            return lead_dict(out.fetchone())

    def delete_leads(self, campaign_id: str, lead_ids: list[str]) -> dict[str, Any]:
        """DELETE /campaigns/{id}/leads: only PENDING leads go; the rest are listed."""
        wanted = list(dict.fromkeys(lead_ids))
        skipped: list[dict[str, str]] = []
        deleted = 0
        with self.tx() as c:
            self._campaign_row(c, campaign_id)
            found: dict[str, str] = {}
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                marks = ",".join("?" * len(part))
                found.update(
                    c.execute(
                        f"SELECT lead_id, status FROM leads WHERE campaign_id = ? "
                        f"AND lead_id IN ({marks})",
                        [campaign_id, *part],
                    ).fetchall()
                )
            doomed = []
            for lead_id in wanted:
                status = found.get(lead_id)
                if status is None:
                    skipped.append({"lead_id": lead_id, "reason": "Lead not found"})
                elif status != "PENDING":
                    skipped.append({"lead_id": lead_id, "reason": f"Lead is {status}"})
                else:
                    doomed.append((lead_id,))
            c.executemany("DELETE FROM leads WHERE lead_id = ?", doomed)
            deleted = len(doomed)
        return {
            "success": True,
            "message": f"Deleted {deleted} lead(s)",
            "deleted_count": deleted,
            "skipped": skipped,
        }

    def export_batches(self, campaign_id: str, batch: int = 5000) -> Iterator[list[Any]]:
        """Rows for the CSV export, read in keyset batches so the lock is held only briefly."""
        last = 0
        while True:
            with self.tx() as c:
                rows = c.execute(
                    "SELECT seq, email, first_name, last_name, company, status, custom_fields, "
                    "created_at FROM leads WHERE campaign_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                    (campaign_id, last, batch),
                ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield rows
            if len(rows) < batch:
                return

    def set_lead_status(self, campaign_id: str, email: str, status: str) -> dict[str, Any]:
        """Control surface: force one lead's status, with the flags that go with it."""
        norm = normalize_email(email)
        now = utc_now()
        contacted = status in {"SENT", "OPENED", "REPLIED", "BOUNCED", "UNSUBSCRIBED"}
        with self.tx() as c:
            self._campaign_row(c, campaign_id)
            row = c.execute(
                "SELECT lead_id FROM leads WHERE campaign_id = ? AND email_norm = ?",
                (campaign_id, norm),
            ).fetchone()
            if row is None:
                raise ApiError(404, "Lead not found")
            c.execute(
                "UPDATE leads SET status = ?, sim_done = ?, "
                "last_contacted_at = CASE WHEN ? THEN coalesce(last_contacted_at, ?) "
                "ELSE last_contacted_at END, "
                "email_opened = max(email_opened, ?), opened_at = CASE WHEN ? THEN "
                "coalesce(opened_at, ?) ELSE opened_at END, "
                "email_replied = max(email_replied, ?), replied_at = CASE WHEN ? THEN "
                "coalesce(replied_at, ?) ELSE replied_at END, "
                "unsubscribed = max(unsubscribed, ?), "
                "sequence_step = CASE WHEN ? THEN max(sequence_step, 1) ELSE sequence_step END "
                "WHERE lead_id = ?",
                (
                    status,
                    int(status in FINAL_LEAD_STATUSES),
                    contacted,
                    now,
                    int(status in {"OPENED", "REPLIED"}),
                    status in {"OPENED", "REPLIED"},
                    now,
                    int(status == "REPLIED"),
                    status == "REPLIED",
                    now,
                    int(status == "UNSUBSCRIBED"),
                    contacted,
                    row[0],
                ),
            )
            out = c.execute(f"SELECT {LEAD_COLUMNS} FROM leads WHERE lead_id = ?", (row[0],))
            return lead_dict(out.fetchone())

    def add_reply(self, body: ReplyRequest) -> dict[str, Any]:
        """Control surface: a reply from a lead arrives; returns the lead with its replies.

        The lead becomes REPLIED (a final status stays), ``replied_at`` moves to the newest
        reply and the reply is attached to the last email sent, as a real reply would be.
        """
        norm = normalize_email(body.email)
        received = format_ts(body.received_at) if body.received_at else utc_now()
        with self.tx() as c:
            self._campaign_row(c, body.campaign_id)
            row = c.execute(
                "SELECT lead_id, status, interactions, replies FROM leads "
                "WHERE campaign_id = ? AND email_norm = ?",
                (body.campaign_id, norm),
            ).fetchone()
            if row is None:
                raise ApiError(404, "Lead not found")
            lead_id, status, interactions_json, replies_json = row
            interactions: list[dict[str, Any]] = json.loads(interactions_json)
            replies: list[dict[str, Any]] = json.loads(replies_json)
            subject = body.subject
            if subject is None:
                last = interactions[-1]["subject"] if interactions else ""
                subject = f"Re: {last}" if last else "Re:"
            replies.append(
                {
                    "reply_id": str(uuid.uuid4()),
                    "subject": subject,
                    "received_at": received,
                    "body_preview": body.body,
                    "is_auto_reply": body.is_auto_reply,
                    "is_unsubscribe": False,
                }
            )
            for item in interactions[-1:]:
                item["replied_at"] = received
            if status not in FINAL_LEAD_STATUSES:
                status = "REPLIED"
            c.execute(
                "UPDATE leads SET status = ?, sim_done = 1, email_replied = 1, "
                "email_opened = CASE WHEN ? = 'REPLIED' THEN 1 ELSE email_opened END, "
                "replied_at = CASE WHEN replied_at IS NULL OR replied_at < ? THEN ? "
                "ELSE replied_at END, "
                "last_contacted_at = coalesce(last_contacted_at, ?), "
                "interactions = ?, replies = ? WHERE lead_id = ?",
                (
                    status,
                    status,
                    received,
                    received,
                    received,
                    dumps(interactions),
                    dumps(replies),
                    lead_id,
                ),
            )
        return self.get_lead(body.campaign_id, lead_id)

    # -- sender accounts ---------------------------------------------------------------------

    def create_inbox(self, body: SenderAccountCreate) -> dict[str, Any]:
        """POST /sender-accounts/smtp; credentials are stored apart and never returned."""
        inbox_id = str(uuid.uuid4())
        public = {
            "inbox_id": inbox_id,
            "email_address": body.email_address,
            "display_name": body.display_name,
            "inbox_type": body.inbox_type,
            "daily_limit": body.daily_limit,
            "overall_status": "ACTIVE",
            "smtp_host": body.smtp_host,
            "smtp_port": body.smtp_port,
            "imap_host": body.imap_host,
            "imap_port": body.imap_port,
            "created_at": utc_now(),
        }
        secret = {
            "smtp_username": body.smtp_username,
            "smtp_password": body.smtp_password.get_secret_value(),
            "imap_username": body.imap_username,
            "imap_password": body.imap_password.get_secret_value() if body.imap_password else None,
        }
        norm = normalize_email(body.email_address)
        with self.tx() as c:
            if c.execute("SELECT 1 FROM inboxes WHERE email_norm = ?", (norm,)).fetchone():
                raise ApiError(409, f"Sender account {body.email_address} already exists")
            c.execute(
                "INSERT INTO inboxes (inbox_id, email_norm, public, secret) VALUES (?,?,?,?)",
                (inbox_id, norm, dumps(public), dumps(secret)),
            )
        return {"success": True, "message": "Sender account created", **public}

    def list_inboxes(self, *, page: int, limit: int) -> dict[str, Any]:
        """GET /sender-accounts."""
        with self.tx() as c:
            total = c.execute("SELECT count(*) FROM inboxes").fetchone()[0]
            offset = (page - 1) * limit
            rows = (
                c.execute(
                    "SELECT public FROM inboxes ORDER BY seq LIMIT ? OFFSET ?", (limit, offset)
                ).fetchall()
                if offset < total
                else []
            )
        return {
            "success": True,
            "message": "Sender accounts retrieved",
            "sender_accounts": [json.loads(r[0]) for r in rows],
            "pagination": _pagination(page, limit, total),
        }

    def get_inbox(self, inbox_id: str) -> dict[str, Any]:
        """GET /sender-accounts/{inbox_id}."""
        with self.tx() as c:
            row = c.execute("SELECT public FROM inboxes WHERE inbox_id = ?", (inbox_id,)).fetchone()
        if row is None:
            raise ApiError(404, "Sender account not found")
        result: dict[str, Any] = json.loads(row[0])
        return result

    def delete_inbox(self, inbox_id: str) -> dict[str, Any]:
        """DELETE /sender-accounts/{inbox_id}: refused while an ACTIVE campaign uses it."""
        with self.tx() as c:
            if not c.execute("SELECT 1 FROM inboxes WHERE inbox_id = ?", (inbox_id,)).fetchone():
                raise ApiError(404, "Sender account not found")
            users = c.execute(
                "SELECT campaign_id, status, inbox_ids FROM campaigns WHERE instr(inbox_ids, ?) > 0",
                (inbox_id,),
            ).fetchall()
            active = [cid for cid, status, _ in users if status == "ACTIVE"]
            if active:
                raise ApiError(
                    400, f"Sender account is used by ACTIVE campaign(s): {', '.join(active)}"
                )
            for cid, _, ids in users:
                kept = [i for i in json.loads(ids) if i != inbox_id]
                c.execute(
                    "UPDATE campaigns SET inbox_ids = ? WHERE campaign_id = ?", (dumps(kept), cid)
                )
            c.execute("DELETE FROM inboxes WHERE inbox_id = ?", (inbox_id,))
        return {"success": True, "message": "Sender account deleted", "inbox_id": inbox_id}

    # -- upload jobs -------------------------------------------------------------------------

    def create_job(self, campaign_id: str, total: int) -> tuple[str, str]:
        """Register an upload job after checking the campaign accepts uploads."""
        job_id = str(uuid.uuid4())
        with self.tx() as c:
            status = self._campaign_row(c, campaign_id)[2]
            if status not in UPLOADABLE:
                raise _state_error("upload leads", status, UPLOADABLE)
            c.execute(
                "INSERT INTO jobs (job_id, campaign_id, status, total_count, created_at) "
                "VALUES (?, ?, 'PENDING', ?, ?)",
                (job_id, campaign_id, total, utc_now()),
            )
        return job_id, "PENDING"

    def get_job(self, campaign_id: str, job_id: str) -> dict[str, Any]:
        """GET /campaigns/{id}/leads/upload/{job_id}."""
        with self.tx() as c:
            self._campaign_row(c, campaign_id)
            row = c.execute(
                "SELECT job_id, campaign_id, status, total_count, processed_count, success_count, "
                "duplicate_count, error_count, started_at, completed_at, error_message FROM jobs "
                "WHERE job_id = ? AND campaign_id = ?",
                (job_id, campaign_id),
            ).fetchone()
            if row is None:
                raise ApiError(404, "Upload job not found")
            errors = c.execute(
                "SELECT row, email, error FROM job_errors WHERE job_id = ? ORDER BY rowid",
                (job_id,),
            ).fetchall()
        total, processed = row[3], row[4]
        return {
            "job_id": row[0],
            "campaign_id": row[1],
            "status": row[2],
            "progress_percentage": 100 if total == 0 else processed * 100 // total,
            "total_count": total,
            "processed_count": processed,
            "success_count": row[5],
            "duplicate_count": row[6],
            "error_count": row[7],
            "errors": [{"row": r, "email": e, "error": m} for r, e, m in errors],
            "started_at": row[8],
            "completed_at": row[9],
            "error_message": row[10],
        }


_DELIVERY = {
    "PENDING": "NOT_SENT",
    "QUEUED": "QUEUED",
    "SENT": "DELIVERED",
    "OPENED": "DELIVERED",
    "REPLIED": "DELIVERED",
    "UNSUBSCRIBED": "DELIVERED",
    "BOUNCED": "BOUNCED",
    "FAILED": "FAILED",
    "EXTERNAL": "EXTERNAL",
}


def _casefold(value: str | None) -> str | None:
    return None if value is None else value.casefold()
