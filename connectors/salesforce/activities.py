"""ColdSend replies (and optionally sends) logged as Salesforce Tasks on the Lead/Contact, once each.

Why a Task and not an EmailMessage: a Task is one record per reply that every org has, that
shows in the Lead's and Contact's activity timeline (``TaskSubtype = 'Email'`` gives it the
email icon), and that carries what a rep needs: ``OwnerId`` (the record's owner, so it lands
in their activity list), ``Status = 'Completed'``, ``WhoId``, subject and text. An incoming
EmailMessage needs Enhanced Email switched on, a second record (EmailMessageRelation) to tie
it to a Lead, and has no owner; it would double the writes and fail in orgs without it.

Exactly once: each Task carries the activity's idempotency key in a custom text field on
Activity (default ``ColdSend_Reply_Id__c``). Before writing, the keys of the batch are looked
up (``SELECT ... FROM Task WHERE ColdSend_Reply_Id__c IN (...)``); only the missing ones are
created, 200 per composite request. A create whose answer is lost is not retried blindly:
the keys are looked up again and only those still missing are sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, Literal

from connectors.activities import Activity, ActivityResult, LoggedActivity
from connectors.leads import MappingError, WriteFailure, normalize_email
from connectors.salesforce.budget import ApiBudget
from connectors.salesforce.connection import SalesforceConnection
from connectors.salesforce.errors import SalesforceApiError, SalesforceConnectionError
from connectors.salesforce.sink import _chunks_by_chars
from connectors.salesforce.soql import ObjectInfo, literal

__all__ = ["DEFAULT_KEY_FIELD", "SalesforceActivitySink"]

DEFAULT_KEY_FIELD = "ColdSend_Reply_Id__c"
_COMPOSITE_MAX = 200
_IN_CHARS = 8_000  # IN-list text per REST query: the whole URL must stay under 16 KB
_SUBJECT_MAX = 255
_DESCRIPTION_MAX = 32_000
_USER_PREFIX = "005"  # a user id; a queue (00G) cannot own a Task
_KEY_PREFIXES = {"Lead": "00Q", "Contact": "003"}  # the same in every org
# Record-level errors meaning the Lead/Contact is gone (deleted or merged since it was read).
_GONE = frozenset({"INVALID_CROSS_REFERENCE_KEY", "ENTITY_IS_DELETED", "INVALID_ID_FIELD"})


def _composite_create(sf: Any, *, payload: dict[str, Any]) -> Any:
    return sf.restful("composite/sobjects", method="POST", json=payload)


class SalesforceActivitySink:
    """Logs activities as Tasks on the Lead or Contact each lead came from (implements
    `ActivitySink`).

    Requests per batch of N new activities: one key lookup per ~300 keys, one record lookup
    per ~400 records, and ceil(N / 200) composite creates; a batch already logged costs only
    the key lookups.

    Args:
        conn: The connection to write through.
        object_name: "Lead" or "Contact", the lead store's object.
        match_by: "id" finds the record by the id the sync stored with the lead;
            "email" by the Email field (the first record by Id when several share it).
        key_field: The custom text field on Activity holding the idempotency key.
        task_subtype: ``TaskSubtype`` of the Tasks ("Email" shows them as emails).
        budget: Refuses batches needing too much of the daily allocation.

    Example:
        ```python
        sink = SalesforceActivitySink(conn, object_name="Lead")
        result = sink.write_activities(batch.activities)
        print(len(result.created), "replies logged")
        ```
    """

    def __init__(
        self,
        conn: SalesforceConnection,
        *,
        object_name: Literal["Lead", "Contact"] = "Lead",
        match_by: Literal["id", "email"] = "id",
        key_field: str = DEFAULT_KEY_FIELD,
        task_subtype: str | None = "Email",
        budget: ApiBudget | None = None,
        create_attempts: int = 3,
    ) -> None:
        if object_name not in ("Lead", "Contact"):
            raise ValueError(f"object_name must be 'Lead' or 'Contact', got {object_name!r}")
        if match_by not in ("id", "email"):
            raise ValueError(f"match_by must be 'id' or 'email', got {match_by!r}")
        self.conn = conn
        self.object_name = object_name
        self.match_by = match_by
        self.key_field = key_field
        self.task_subtype = task_subtype
        self.budget = budget if budget is not None else ApiBudget()
        self.create_attempts = max(1, create_attempts)
        self._task: ObjectInfo | None = None

    def __repr__(self) -> str:
        return (
            f"SalesforceActivitySink(object_name={self.object_name!r}, "
            f"key_field={self.key_field!r})"
        )

    def _check(self) -> tuple[ObjectInfo, ObjectInfo]:
        task = self.conn.describe("Task")
        names = {n.lower(): n for n in task.field_names}
        field = names.get(self.key_field.lower())
        if field is None:
            raise MappingError(
                f"Task has no field {self.key_field!r} to keep ColdSend's reply ids in. Create "
                "a Text(255) custom field on Activity (Setup > Object Manager > Activity > "
                f"Fields & Relationships) named {self.key_field.removesuffix('__c')}, or set "
                "the sink's key_field to an existing one."
            )
        self.key_field = field
        self._task = task
        return task, self.conn.describe(self.object_name)

    def write_activities(self, activities: Sequence[Activity]) -> ActivityResult:
        """Create a Task for each activity the org does not hold yet.

        Raises:
            MappingError: the key field does not exist on Task.
            SalesforceBudgetExceeded: the batch needs too much of today's allocation.
            SalesforceError: Salesforce refused a lookup or a whole request.
        """
        start = self.conn.request_count
        result = ActivityResult(received=len(activities))
        try:
            self._write(activities, result)
        finally:
            result.requests = self.conn.request_count - start
        return result

    def _write(self, activities: Sequence[Activity], result: ActivityResult) -> None:
        if not activities:
            return
        _task, record_info = self._check()
        # The same key twice in one batch is one activity.
        unique: dict[str, Activity] = {}
        for activity in activities:
            if activity.key in unique:
                result.already_logged.append(
                    LoggedActivity(activity.key, activity.source_id or activity.email)
                )
            else:
                unique[activity.key] = activity
        n = len(unique)
        self.budget.check(
            self.conn,
            -(-n // 300) + -(-n // 400) + -(-n // _COMPOSITE_MAX),
            what=f"logging {len(unique)} ColdSend activities as Tasks",
        )
        existing = self._logged(list(unique))
        todo: list[Activity] = []
        for key, activity in unique.items():
            who = existing.get(key)
            if who is not None:
                result.already_logged.append(LoggedActivity(key, who[0], who[1]))
            else:
                todo.append(activity)
        if not todo:
            return
        records = self._records(todo, record_info)
        ready: list[tuple[Activity, str, str | None]] = []
        prefix = _KEY_PREFIXES.get(record_info.name)
        for activity in todo:
            match = self._match_key(activity)
            found = records.get(match) if match else None
            if found is not None:
                ready.append((activity, found[0], found[1]))
            elif self.match_by == "id" and match and prefix and not match.startswith(prefix):
                # Another store's record id (a HubSpot contact, a sheet key): that store's own
                # write-back logs this reply.
                result.skipped.append(LoggedActivity(activity.key, match))
            else:
                result.no_record.append(activity)
        for attempt in range(self.create_attempts):
            if not ready:
                return
            try:
                self._create(ready, result)
                return
            except (SalesforceConnectionError, SalesforceApiError) as exc:
                retryable = isinstance(exc, SalesforceConnectionError) or (exc.status or 0) >= 500
                if not retryable or attempt + 1 >= self.create_attempts:
                    for activity, _who, _owner in ready:
                        result.failures.append(
                            WriteFailure(activity.key, f"Task not created: {exc}")
                        )
                    return
                # The answer was lost, not necessarily the write: look the keys up again.
                again = self._logged([a.key for a, _, _ in ready])
                still: list[tuple[Activity, str, str | None]] = []
                for item in ready:
                    who = again.get(item[0].key)
                    if who is not None:
                        result.created.append(LoggedActivity(item[0].key, who[0], who[1]))
                    else:
                        still.append(item)
                ready = still

    # -- lookups -------------------------------------------------------------------------------

    def _logged(self, keys: list[str]) -> dict[str, tuple[str, str]]:
        """Key -> (WhoId, Task Id) for the keys the org already holds."""
        out: dict[str, tuple[str, str]] = {}
        literals = [literal(k) for k in keys]
        for chunk in _chunks_by_chars(literals, _IN_CHARS, 1_000):
            soql = (
                f"SELECT Id, WhoId, {self.key_field} FROM Task "
                f"WHERE {self.key_field} IN ({', '.join(chunk)})"
            )
            for row in self.conn.query_records(soql):
                key = row.get(self.key_field)
                if isinstance(key, str):
                    out[key] = (str(row.get("WhoId") or ""), str(row.get("Id") or ""))
        return out

    def _match_key(self, activity: Activity) -> str | None:
        if self.match_by == "id":
            return (activity.source_id or "").strip() or None
        return normalize_email(activity.email)[0]

    def _records(self, todo: list[Activity], info: ObjectInfo) -> dict[str, tuple[str, str | None]]:
        """Match key -> (record Id, owner to give the Task) for the records that exist."""
        keys = sorted({k for a in todo if (k := self._match_key(a))})
        has_owner = "ownerid" in {n.lower() for n in info.field_names}
        select = "Id, Email" + (", OwnerId" if has_owner else "")
        field = "Id" if self.match_by == "id" else "Email"
        out: dict[str, tuple[str, str | None]] = {}
        valid = [k for k in keys if self.match_by == "email" or _looks_like_id(k)]
        for chunk in _chunks_by_chars([literal(k) for k in valid], _IN_CHARS, 1_000):
            soql = (
                f"SELECT {select} FROM {info.name} WHERE {field} IN ({', '.join(chunk)}) "
                "ORDER BY Id"
            )
            for row in self.conn.query_records(soql):
                rid = str(row["Id"])
                owner = row.get("OwnerId") if has_owner else None
                owner = owner if isinstance(owner, str) and owner.startswith(_USER_PREFIX) else None
                if self.match_by == "id":
                    # An 18-character Id answers a 15-character one too.
                    key = next((k for k in (rid, rid[:15]) if k in keys), rid)
                    out[key] = (rid, owner)
                else:
                    email = normalize_email(row.get("Email"))[0]
                    if email and email not in out:
                        out[email] = (rid, owner)
        return out

    # -- writes --------------------------------------------------------------------------------

    def _task_values(self, activity: Activity, who: str, owner: str | None) -> dict[str, Any]:
        subject = activity.subject or "(no subject)"
        status, subtype = "Completed", self.task_subtype
        if activity.kind == "reply":
            label = "Auto-reply" if activity.is_auto_reply else "Reply"
            title = f"{label}: {subject}"
            notes = [f"Received {activity.at.isoformat()} from {activity.email}"]
        elif activity.kind == "sent":
            title = f"Email: {subject}"
            notes = [f"Sent {activity.at.isoformat()} to {activity.email}"]
        else:  # follow_up: an open to-do for the owner, due on `at`
            title, status, subtype = subject, "Not Started", None
            notes = [f"Follow-up for {activity.email}"]
        notes.append(f"ColdSend campaign {activity.campaign_id}, lead {activity.lead_id}")
        if activity.is_unsubscribe:
            notes.append("ColdSend read this reply as a request to unsubscribe.")
        footer = "\n\n-- " + "\n".join(notes)
        body = activity.text[: _DESCRIPTION_MAX - len(footer)] + footer
        values: dict[str, Any] = {
            "attributes": {"type": "Task"},
            "WhoId": who,
            "Subject": title[:_SUBJECT_MAX],
            "Description": body,
            "Status": status,
            "Priority": "Normal",
            "ActivityDate": activity.at.date().isoformat(),
            self.key_field: activity.key,
        }
        if subtype:
            values["TaskSubtype"] = subtype
        if owner:
            values["OwnerId"] = owner
        return values

    def _create(
        self, pending: list[tuple[Activity, str, str | None]], result: ActivityResult
    ) -> None:
        """Create the Tasks, 200 a request, removing each answered request's items from
        `pending`: when a request fails, `pending` holds it and those after it."""
        while pending:
            batch = pending[:_COMPOSITE_MAX]
            payload = {
                "allOrNone": False,
                "records": [self._task_values(a, who, owner) for a, who, owner in batch],
            }
            # Not retried here: a lost answer may hide a done write; the caller reconciles.
            answers: list[dict[str, Any]] = self.conn.call(
                partial(_composite_create, payload=payload), replay_safe=False
            )
            del pending[: len(batch)]
            for (activity, who, _owner), answer in zip(batch, answers or [], strict=False):
                if answer.get("success"):
                    result.created.append(
                        LoggedActivity(activity.key, who, str(answer.get("id") or "") or None)
                    )
                    continue
                errors = answer.get("errors") or [{}]
                codes = {str(e.get("statusCode", "")) for e in errors}
                if codes and codes <= _GONE:
                    # The record was deleted or merged after it was looked up.
                    result.no_record.append(activity)
                else:
                    reason = "; ".join(
                        f"{e.get('statusCode', 'ERROR')}: {e.get('message', '')}" for e in errors
                    )
                    result.failures.append(
                        WriteFailure(activity.key, f"Task not created: {reason}")
                    )
            for activity, _who, _owner in batch[len(answers or []) :]:
                result.failures.append(
                    WriteFailure(activity.key, "Task not created: no result returned for it")
                )


def _looks_like_id(value: str) -> bool:
    return len(value) in (15, 18) and value.isalnum()
