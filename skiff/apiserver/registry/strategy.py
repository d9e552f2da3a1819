"""The per-kind strategy: everything particular to one kind, and nothing else.

Modelled on upstream's `registry/<group>/<kind>/strategy.go`: the generic store (`generic.py`) owns
storage, metadata, resourceVersion, generation, finalizers and dry-run; a strategy only says how objects
of its kind are defaulted, validated, split into spec/status, printed as table rows and selected by
fields. Strategies are stateless and never mutate an object they did not receive as `new`/`obj`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, age, name_of
from skiff.api.resources import ResourceInfo


@dataclass(frozen=True)
class Column:
    """A Table column definition (`metav1.TableColumnDefinition`); priority 1 = `-o wide` only."""

    name: str
    type: str = "string"  # string | integer | number | boolean | date
    format: str = ""
    description: str = ""
    priority: int = 0

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


NAME_COLUMN = Column("Name", "string", "name", "Name must be unique within a namespace.")
AGE_COLUMN = Column("Age", "string", "", "CreationTimestamp is a timestamp representing the server time when this object was created.")


class Strategy:
    """Base strategy: a kind with no spec/status split, default validation and Name/Age columns.

    Subclasses set `info` (the storage version, also the preferred served version) and override hooks.
    """

    info: ResourceInfo
    # Other versions served from the same storage (e.g. autoscaling/v1 for a v2-stored HPA).
    other_versions: tuple[ResourceInfo, ...] = ()
    # Name rule for metadata.name: dns1123_subdomain (most kinds), dns1123_label, dns1035_label (Services),
    # path_segment_name (RBAC).
    name_rule: Callable[[str], list[str]] = staticmethod(v.dns1123_subdomain)
    # True when the kind has a `status` subresource: updates of the main resource keep the stored
    # status; updates through /status change only status (and metadata labels/annotations untouched).
    status_subresource: bool = False
    # True when the kind has a `scale` subresource (see `scale_of` / `set_replicas`).
    scale_subresource: bool = False
    # Kinds whose updates may create the object (upstream AllowCreateOnUpdate: e.g. Endpoints, Leases).
    allow_create_on_update: bool = False
    # True when metadata.generation tracks spec changes (kinds with a spec).
    tracks_generation: bool = True
    # Deployments also bump generation on annotation changes (upstream deploymentStrategy.PrepareForUpdate).
    annotations_bump_generation: bool = False

    # --- lifecycle hooks (mutate `obj`/`new` in place) -------------------------------------------

    def defaults(self, obj: Obj) -> None:
        """Fill defaulted fields (upstream `SetDefaults_*`). Runs on create, update and patch results."""

    def prepare_for_create(self, obj: Obj) -> None:
        """Reset what a client may not set on create (e.g. status for kinds with a status subresource)."""
        if self.status_subresource:
            obj.pop("status", None)
            self.initial_status(obj)

    def initial_status(self, obj: Obj) -> None:
        """Status a new object starts with (e.g. Pod phase Pending, Namespace phase Active)."""

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        """Main-resource update: with a status subresource the stored status wins."""
        if self.status_subresource:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        """`/status` update: only status changes; everything but status is taken from `old`."""
        status = new.get("status")
        new.clear()
        new.update({k: val for k, val in old.items() if k != "status"})
        if status is not None:
            new["status"] = status

    def blocks_deletion(self, obj: Obj) -> bool:
        """Kind-specific finalization beyond metadata.finalizers (Namespace: spec.finalizers)."""
        return False

    def prepare_for_delete(self, obj: Obj) -> None:
        """Mark an object whose deletion is pending (Namespace: status.phase Terminating)."""

    # --- validation ---------------------------------------------------------------------------------

    def validate(self, obj: Obj) -> list[v.FieldError]:
        """Kind-specific validation of a whole object on create (metadata is validated generically)."""
        return []

    def validate_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        """Validation on update: by default the create rules; override to add immutable fields."""
        return self.validate(new)

    def validate_status_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        return []

    # --- reading --------------------------------------------------------------------------------------

    def columns(self) -> list[Column]:
        """Table columns, Name first; rows from `row()` must have one cell per column."""
        return [NAME_COLUMN, AGE_COLUMN]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        return [name_of(obj), age(obj, now)]

    def fields(self, obj: Obj) -> dict[str, str]:
        """Selectable fields beyond metadata.name/namespace (e.g. pods: spec.nodeName, status.phase)."""
        return {}

    # --- versions -------------------------------------------------------------------------------------

    def to_version(self, obj: Obj, info: ResourceInfo) -> Obj:
        """Convert a stored object to another served version (`info` is one of `other_versions`)."""
        return obj

    def from_version(self, obj: Obj, info: ResourceInfo) -> Obj:
        """Convert an object of a served version to the storage version."""
        return obj

    # --- scale subresource ------------------------------------------------------------------------

    def scale_of(self, obj: Obj) -> tuple[int, int, str]:
        """(spec.replicas, status.replicas, status.selector as a string) for the `scale` subresource."""
        raise NotImplementedError

    def set_replicas(self, obj: Obj, replicas: int) -> None:
        raise NotImplementedError
