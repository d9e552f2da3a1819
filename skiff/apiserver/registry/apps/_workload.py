"""Helpers shared by the workload strategies (apps/v1 and batch/v1): selectors vs. template labels,
int-or-percent fields, pod template defaulting and the printer cells of `printers.go`.

Messages mirror `pkg/apis/apps/validation/validation.go` and
`apimachinery/pkg/apis/meta/v1/validation` (ValidateLabelSelector).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from skiff.api import validation as v
from skiff.api.meta import Obj
from skiff.api.schema import model_fields
from skiff.api.selectors import SelectorError, label_selector_matcher, selector_to_string
from skiff.apiserver.registry.core.podspec import default_pod_spec, validate_pod_template
from skiff.apiserver.registry.strategy import Column, Strategy

PERCENT_RE = re.compile(r"^[0-9]+%$")
PERCENT_MSG = (
    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', "
    "regex used for validation is '[0-9]+%')"
)
SELECTOR_MISMATCH = "`selector` does not match template `labels`"
IMMUTABLE = "field is immutable"


def _go_quote(s: str) -> str:
    return orjson.dumps(s).decode()


def go_string_map(value: Any) -> str:
    """Go's `%#v` of a `map[string]string` (keys sorted), as upstream field errors print label maps."""
    if value is None:
        return "map[string]string(nil)"
    if not isinstance(value, dict):
        return orjson.dumps(value, default=str).decode()
    inner = ", ".join(f"{_go_quote(str(k))}:{_go_quote(str(val))}" for k, val in sorted(value.items()))
    return "map[string]string{" + inner + "}"


@dataclass(frozen=True)
class GoValueError(v.FieldError):
    """An Invalid error whose value is pre-rendered the way Go prints it (e.g. a label map)."""

    rendered: str = ""

    def body(self) -> str:
        return (
            f"Invalid value: {self.rendered}: {self.detail}"
            if self.detail
            else f"Invalid value: {self.rendered}"
        )


def invalid_labels(field: str, labels: Any, detail: str) -> v.FieldError:
    return GoValueError(v.INVALID, field, detail, labels, go_string_map(labels))


def _go_string_slice(values: Any) -> str:
    if values is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(_go_quote(str(x)) for x in values) + "}"


def go_label_selector(sel: Any) -> str:
    """Go's `%#v` of a `metav1.LabelSelector`, as upstream prints it in field errors
    (`v1.LabelSelector{MatchLabels:map[string]string{"app":"x"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}`)."""
    if sel is None:
        return "null"
    if not isinstance(sel, dict):
        return orjson.dumps(sel, default=str).decode()
    exprs = sel.get("matchExpressions")
    if exprs is None:
        rendered = "[]v1.LabelSelectorRequirement(nil)"
    else:
        items = [
            f"v1.LabelSelectorRequirement{{Key:{_go_quote(str(e.get('key', '')))}, "
            f"Operator:{_go_quote(str(e.get('operator', '')))}, Values:{_go_string_slice(e.get('values'))}}}"
            for e in exprs
            if isinstance(e, dict)
        ]
        rendered = "[]v1.LabelSelectorRequirement{" + ", ".join(items) + "}"
    return f"v1.LabelSelector{{MatchLabels:{go_string_map(sel.get('matchLabels'))}, MatchExpressions:{rendered}}}"


def invalid_selector(field: str, sel: Any, detail: str) -> v.FieldError:
    return GoValueError(v.INVALID, field, detail, sel, go_label_selector(sel))


def doc(model: str, field: str) -> str:
    """The upstream SwaggerDoc of a field, as used for Table column descriptions ('' when unknown)."""
    f = model_fields(model).get(field)
    return f.description if f else ""


# --- label selectors ---------------------------------------------------------------------------------


validate_label_selector = v.label_selector  # one implementation, in skiff.api.validation


def selector_is_empty(sel: Any) -> bool:
    return not isinstance(sel, dict) or not (sel.get("matchLabels") or sel.get("matchExpressions"))


def selector_matches(sel: Any, labels: Any) -> bool | None:
    """Whether a LabelSelector selects `labels`; None when the selector cannot be compiled.

    A null selector matches nothing (upstream `LabelSelectorAsSelector(nil)` is `labels.Nothing()`).
    """
    try:
        return label_selector_matcher(sel if isinstance(sel, dict) or sel is None else {})(
            labels if isinstance(labels, dict) else {}
        )
    except (SelectorError, KeyError, TypeError):
        return None


def format_label_selector(sel: Any) -> str:
    """`metav1.FormatLabelSelector`: the selector string, `<none>` when empty or null."""
    try:
        s = selector_to_string(sel if isinstance(sel, dict) else None)
    except (SelectorError, KeyError, TypeError):
        return "<error>"
    return s or "<none>"


def selector_string(sel: Any) -> str:
    """`LabelSelectorAsSelector(sel).String()`: '' for empty/null, `<invalid>` when malformed."""
    try:
        return selector_to_string(sel if isinstance(sel, dict) else None)
    except (SelectorError, KeyError, TypeError):
        return "<invalid>"


def format_labels(labels: Any) -> str:
    """`labels.FormatLabels`: `k=v,...` sorted by key, `<none>` when empty."""
    if not isinstance(labels, dict) or not labels:
        return "<none>"
    return ",".join(f"{k}={val}" for k, val in sorted(labels.items()))


# --- int or percent ------------------------------------------------------------------------------------


def validate_int_or_percent(field: str, value: Any) -> list[v.FieldError]:
    """`ValidatePositiveIntOrPercent`: a non-negative integer or a `N%` string."""
    if value is None:
        return []
    if isinstance(value, str):
        return [] if PERCENT_RE.match(value) else [v.invalid(field, value, PERCENT_MSG)]
    if isinstance(value, int) and not isinstance(value, bool):
        return v.non_negative(field, value)
    return [v.invalid(field, value, "must be an integer or percentage (e.g '5%')")]


def not_more_than_100_percent(field: str, value: Any) -> list[v.FieldError]:
    if isinstance(value, str) and PERCENT_RE.match(value) and int(value[:-1]) > 100:
        return [v.invalid(field, value, "must not be greater than 100%")]
    return []


def int_or_percent_value(value: Any) -> int:
    """`getIntOrPercentValue`: the number of a percent string, the int itself, else 0."""
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value[:-1] if PERCENT_RE.match(value) else value
        try:
            return int(text)
        except ValueError:
            return 0
    return 0


# --- templates -----------------------------------------------------------------------------------------


def spec_of(obj: Obj) -> dict[str, Any]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    return spec


def default_template(template: Any) -> None:
    """Pod template defaulting (`SetDefaults_PodSpec` on template.spec), in place."""
    if isinstance(template, dict):
        spec = template.get("spec")
        if not isinstance(spec, dict):
            spec = template["spec"] = {}
        default_pod_spec(spec)


def template_labels(template: Any) -> Any:
    if not isinstance(template, dict):
        return None
    return (template.get("metadata") or {}).get("labels")


def validate_selector_and_template(
    spec: dict[str, Any], path: str, kind: str, restart_policies: tuple[str, ...] = ("Always",)
) -> list[v.FieldError]:
    """Selector required, non-empty and matching the template labels; template valid; restartPolicy.

    Mirrors `ValidateReplicaSetSpec`/`ValidateDeploymentSpec` + `ValidatePodTemplateSpecForReplicaSet`.
    `kind` names the kind in "empty selector is invalid for <kind>" (upstream says "deployment" for
    ReplicaSets too).
    """
    errs: list[v.FieldError] = []
    sel = spec.get("selector")
    if sel is None:
        errs.append(v.required(f"{path}.selector"))
    else:
        errs += validate_label_selector(f"{path}.selector", sel)
        if selector_is_empty(sel):
            errs.append(invalid_selector(f"{path}.selector", sel, f"empty selector is invalid for {kind}"))
    template = spec.get("template")
    if not isinstance(template, dict):
        errs.append(v.required(f"{path}.template"))
        return errs
    matched = selector_matches(sel, template_labels(template))
    if matched is None:
        errs.append(invalid_selector(f"{path}.selector", sel, "invalid label selector"))
    elif not selector_is_empty(sel) and not matched:
        errs.append(
            invalid_labels(f"{path}.template.metadata.labels", template_labels(template), SELECTOR_MISMATCH)
        )
    errs += validate_pod_template(template, f"{path}.template")
    errs += validate_restart_policy(template, f"{path}.template.spec.restartPolicy", restart_policies)
    return errs


def validate_restart_policy(template: Any, field: str, allowed: tuple[str, ...]) -> list[v.FieldError]:
    policy = ((template or {}).get("spec") or {}).get("restartPolicy") if isinstance(template, dict) else None
    if policy not in allowed:
        return [v.not_supported(field, policy if policy is not None else "", allowed)]
    return []


def containers_cells(template: Any) -> tuple[str, str]:
    """`layoutContainerCells`: container names and images, comma-joined."""
    spec = (template or {}).get("spec") if isinstance(template, dict) else None
    containers = (spec or {}).get("containers") or []
    names = ",".join(str(c.get("name", "")) for c in containers if isinstance(c, dict))
    images = ",".join(str(c.get("image", "")) for c in containers if isinstance(c, dict))
    return names, images


def as_int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


# --- shared columns -------------------------------------------------------------------------------------

CONTAINERS_COLUMN = Column("Containers", "string", "", "Names of each container in the template.", 1)
IMAGES_COLUMN = Column("Images", "string", "", "Images referenced by each container in the template.", 1)


def selector_column(model: str) -> Column:
    return Column("Selector", "string", "", doc(model, "selector"), 1)


def set_default(d: dict[str, Any], key: str, value: Any) -> None:
    """Upstream `if x == nil { x = default }`: JSON null counts as unset."""
    if d.get(key) is None:
        d[key] = value


def selector_immutable(new: Obj, old: Obj) -> list[v.FieldError]:
    """apps/v1 forbids changing spec.selector (upstream strategy ValidateUpdate, non-beta versions)."""
    new_sel = (new.get("spec") or {}).get("selector")
    if new_sel != (old.get("spec") or {}).get("selector"):
        return [invalid_selector("spec.selector", new_sel, IMMUTABLE)]
    return []


class ReplicatedStrategy(Strategy):
    """A kind with spec.replicas, spec.selector and the `scale` subresource (Deployment, ReplicaSet,
    StatefulSet); Scale.status.selector is the selector's string form, as upstream."""

    status_subresource = True
    scale_subresource = True

    def scale_of(self, obj: Obj) -> tuple[int, int, str]:
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        return (
            as_int(spec.get("replicas")),
            as_int(status.get("replicas")),
            selector_string(spec.get("selector")),
        )

    def set_replicas(self, obj: Obj, replicas: int) -> None:
        spec_of(obj)["replicas"] = replicas


def validate_replica_status(
    status: Any,
    counters: tuple[str, ...],
    not_above_replicas: tuple[str, ...],
    available_vs_ready: str | None,
) -> list[v.FieldError]:
    """Status checks of `ValidateDeploymentStatus` / `ValidateReplicaSetStatus` / `ValidateStatefulSetStatus`
    / `ValidateDaemonSetStatus`: non-negative counters, none above status.replicas, and (with a message)
    availableReplicas not above readyReplicas."""
    status = status if isinstance(status, dict) else {}
    errs: list[v.FieldError] = []
    for key in ("observedGeneration", *counters, "collisionCount"):
        errs += v.non_negative(f"status.{key}", status.get(key))
    replicas = as_int(status.get("replicas"))
    for key in not_above_replicas:
        value = status.get(key)
        if isinstance(value, int) and value > replicas:
            errs.append(v.invalid(f"status.{key}", value, "cannot be greater than status.replicas"))
    available = status.get("availableReplicas")
    if available_vs_ready and isinstance(available, int) and available > as_int(status.get("readyReplicas")):
        errs.append(v.invalid("status.availableReplicas", available, available_vs_ready))
    return errs
