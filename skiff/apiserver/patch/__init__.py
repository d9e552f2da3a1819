"""Patch semantics: JSON merge patch, JSON Patch, strategic merge patch and server-side apply.

Pure functions over plain dicts; no I/O. The HTTP layer picks one by Content-Type and stores the result.
"""

from skiff.apiserver.patch.apply import default_field_manager, server_side_apply, update_managed_fields
from skiff.apiserver.patch.jsonpatch import apply_json_patch
from skiff.apiserver.patch.merge import apply_merge_patch
from skiff.apiserver.patch.smp import apply_strategic_merge_patch

__all__ = [
    "apply_json_patch",
    "apply_merge_patch",
    "apply_strategic_merge_patch",
    "default_field_manager",
    "server_side_apply",
    "update_managed_fields",
]
