"""The vocabularies of `dispatchyard/state/models.py` as types for the request and answer models.

pydantic reads `Literal[<tuple>]` at run time, which keeps each vocabulary in one place (the
tuple), but a static checker cannot evaluate a Literal built from a run-time value: it sees
these as the type their values have (`str`), which is true of every member.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from dispatchyard.state.models import (
    HOST_REPORTED_STATUSES,
    MODEL_ACCESS_WORKLOADS,
    MUTATION_STATUSES,
    ROLES,
    SCOPES,
    SESSION_STATUSES,
    WORK_TYPES,
)

# What a runner may report (queued and claimed are the queue's own moves).
REPORTABLE = tuple(s for s in SESSION_STATUSES if s not in ("queued", "claimed"))

if TYPE_CHECKING:
    WorkType = str
    Role = str
    Scope = str
    ReportableStatus = str
    HostReportedStatus = str
    MutationStatus = str
    Workload = str
else:
    WorkType = Literal[WORK_TYPES]
    Role = Literal[ROLES]
    Scope = Literal[SCOPES]
    ReportableStatus = Literal[REPORTABLE]
    HostReportedStatus = Literal[HOST_REPORTED_STATUSES]
    MutationStatus = Literal[MUTATION_STATUSES]
    Workload = Literal[MODEL_ACCESS_WORKLOADS]
