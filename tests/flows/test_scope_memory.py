"""Scopes seen by one flow run spare the probes of the others (no Prefect server needed)."""

from __future__ import annotations

from flows.scope_memory import SharedScopeMemory, scopes_variable_name


class Shared:
    """The Variables of a Prefect server, as a dict; counts reads and writes."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}
        self.reads = 0
        self.writes = 0
        self.broken = False

    def read(self, name: str) -> object:
        self.reads += 1
        if self.broken:
            raise RuntimeError("Prefect API unreachable")
        return self.values.get(name)

    def write(self, name: str, value: dict[str, float]) -> None:
        self.writes += 1
        if self.broken:
            raise RuntimeError("Prefect API unreachable")
        self.values[name] = dict(value)


class Clocks:
    def __init__(self) -> None:
        self.mono = 100.0
        self.wall = 1_800_000_000.0

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds


def process(shared: Shared, clocks: Clocks) -> SharedScopeMemory:
    """One flow-run process: its own monotonic clock and local memory, the shared Variables."""
    return SharedScopeMemory(
        seconds=600,
        clock=lambda: clocks.mono,
        wall=lambda: clocks.wall,
        read=shared.read,
        write=shared.write,
    )


def test_a_scope_one_run_saw_is_known_to_the_next_run_for_the_rest_of_ten_minutes() -> None:
    shared, clocks = Shared(), Clocks()
    first = process(shared, clocks)
    assert not first.known("key", "leads:read")
    first.remember("key", "leads:read")
    assert shared.values[scopes_variable_name("key")] == {"leads:read": clocks.wall}

    clocks.advance(400)
    second = process(shared, clocks)
    assert second.known("key", "leads:read")
    assert not second.known("other-key", "leads:read")
    # Trusted for what is left of the ten minutes since it was seen, not ten more.
    clocks.advance(199)
    assert second.known("key", "leads:read")
    clocks.advance(2)
    assert not second.known("key", "leads:read")
    assert not process(shared, clocks).known("key", "leads:read")


def test_the_variable_is_read_once_per_few_seconds_and_keeps_every_scope() -> None:
    shared, clocks = Shared(), Clocks()
    first = process(shared, clocks)
    first.remember("key", "leads:update")
    clocks.advance(30)
    first.remember("key", "leads:delete")
    assert set(shared.values[scopes_variable_name("key")]) == {"leads:update", "leads:delete"}

    second = process(shared, clocks)
    reads = shared.reads
    assert second.known("key", "leads:delete") and second.known("key", "leads:update")
    assert not second.known("key", "leads:read") and not second.known("key", "campaigns:read")
    assert shared.reads == reads + 1  # one read served all four questions
    clocks.advance(6)
    assert not second.known("key", "leads:read")
    assert shared.reads == reads + 2  # another run may have probed it meanwhile


def test_stale_odd_or_unreadable_values_only_mean_probing_again() -> None:
    shared, clocks = Shared(), Clocks()
    name = scopes_variable_name("key")
    shared.values[name] = {
        "leads:read": clocks.wall - 601,  # too old
        "leads:create": "yesterday",  # not a time
        "campaigns:read": clocks.wall + 30,  # another machine's clock runs ahead
        "leads:update": clocks.wall + 3600,  # far in the future: not trusted
    }
    memory = process(shared, clocks)
    assert memory.known("key", "campaigns:read")
    for scope in ("leads:read", "leads:create", "leads:update"):
        assert not memory.known("key", scope)
    shared.values[name] = ["leads:read"]
    assert not process(shared, clocks).known("key", "leads:read")

    shared.broken = True
    broken = process(shared, clocks)
    assert not broken.known("key", "leads:read")
    broken.remember("key", "leads:read")  # the write fails quietly; this process still knows
    assert broken.known("key", "leads:read")


def test_clear_forgets_this_process_only() -> None:
    shared, clocks = Shared(), Clocks()
    memory = process(shared, clocks)
    memory.remember("key", "leads:read")
    memory.clear()
    shared.values.clear()
    assert not memory.known("key", "leads:read")
