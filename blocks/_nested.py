"""Saving a block that holds other blocks: the inner ones become saved blocks it references.

Prefect stores an unsaved inner block (a lead store's credentials) as data inside the outer
block's document. The UI then shows "SalesforceCredentials None" on the outer block's page
and its edit form cannot be saved ("SalesforceCredentials is required"). A saved inner block
is stored as a reference instead, which the UI shows, links and lets the user swap. So
saving an outer block first saves each unsaved inner block under the outer block's name
(``SalesforceLeads(credentials=SalesforceCredentials(...)).save("acme")`` also saves
``salesforce-credentials/acme``); an inner block loaded or saved before is referenced as is.
"""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

from prefect._internal.compatibility.async_dispatch import async_dispatch
from prefect.blocks.core import Block

__all__ = ["SavesInnerBlocks"]


class SavesInnerBlocks(Block):
    """A block whose inner blocks are saved as their own blocks and referenced (see module)."""

    def _unsaved_inner_blocks(self) -> list[Block]:
        inner = (getattr(self, field) for field in type(self).model_fields)
        return [b for b in inner if isinstance(b, Block) and b._block_document_id is None]

    def _inner_name(self, name: str | None) -> str:
        outer = name or self._block_document_name
        if not outer:
            raise ValueError(
                "You're attempting to save a block document without a name. Please call "
                "`save` with a `name`."
            )
        return outer

    @staticmethod
    def _explain(inner: Block, name: str, exc: ValueError) -> ValueError:
        kind = type(inner).__name__
        return ValueError(
            f"{exc} The {inner.get_block_type_name()} inside it is saved as its own block named "
            f"{name!r} (so the UI can show and edit it), and one with that name exists: pass "
            f"overwrite=True to replace it, or use the saved one: {kind}.load({name!r})."
        )

    async def asave(
        self, name: str | None = None, overwrite: bool = False, client: Any = None
    ) -> UUID:
        for inner in self._unsaved_inner_blocks():
            inner_name = self._inner_name(name)
            try:
                await inner.asave(inner_name, overwrite=overwrite, client=client)
            except ValueError as exc:
                raise self._explain(inner, inner_name, exc) from exc
        return await super().asave(name, overwrite=overwrite, client=client)

    @async_dispatch(asave)
    def save(self, name: str | None = None, overwrite: bool = False, client: Any = None) -> UUID:
        for inner in self._unsaved_inner_blocks():
            inner_name = self._inner_name(name)
            try:
                cast(Any, inner).save(inner_name, overwrite=overwrite, _sync=True)
            except ValueError as exc:
                raise self._explain(inner, inner_name, exc) from exc
        saved: UUID = cast(Any, super()).save(name, overwrite=overwrite, _sync=True)
        return saved
