"""Deployment steps for deployments/prefect.yaml (run by `prefect deploy`)."""

from __future__ import annotations

__all__ = ["require_values"]


def require_values(**values: str) -> dict[str, str]:
    """Fail `prefect deploy` when a required value is empty, before any deployment is made.

    prefect.yaml fills ``{{ $NAME }}`` from the environment and turns an unset variable into
    an empty string: without this step the deploy would succeed and schedule runs that can
    only fail. Used as a build step::

        build:
          - app.steps.require_values:
              COLDSEND_CAMPAIGN_ID: "{{ $COLDSEND_CAMPAIGN_ID }}"

    Returns:
        The values, for later steps to reference.

    Raises:
        ValueError: naming every empty value and how to set it.
    """
    empty = [name for name, value in values.items() if not str(value or "").strip()]
    if empty:
        raise ValueError(
            f"{', '.join(empty)} {'is' if len(empty) == 1 else 'are'} empty: set "
            + " ".join(f"{name}=..." for name in empty)
            + " in the environment before `prefect deploy` (see the top of "
            "deployments/prefect.yaml), or use `prefect-coldsend deploy` with a sync "
            "definitions file"
        )
    return dict(values)
