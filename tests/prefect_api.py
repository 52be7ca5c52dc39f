"""Reads from the test Prefect backend shared by several test modules."""

from __future__ import annotations


def read_artifacts(artifacts_filter: dict, limit: int = 20) -> list:
    """Artifacts matching a REST filter (the sync client sends None for unset filters, so the route is used)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import Artifact

    body = {"artifacts": artifacts_filter, "limit": limit, "offset": 0, "sort": "CREATED_DESC"}
    with get_client(sync_client=True) as client:
        return Artifact.model_validate_list(client.request("POST", "/artifacts/filter", json=body).json())
