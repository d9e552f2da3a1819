"""HorizontalPodAutoscaler: stored as autoscaling/v2, also served as autoscaling/v1.

Mirrors `pkg/apis/autoscaling/v2/defaults.go` (minReplicas 1, a cpu 80% Utilization metric when none,
behavior rules filled in when behavior is set), `pkg/apis/autoscaling/validation`, `printers.go`
(formatHPAMetrics) and `pkg/apis/autoscaling/v1/conversion.go`: v1 carries the cpu utilization
target in `targetCPUUtilizationPercentage` and everything v1 cannot express in the
`autoscaling.alpha.kubernetes.io/{metrics,current-metrics,conditions,behavior}` annotations, in the
v1 (v2beta1-shaped) metric format, so objects round-trip v2 -> v1 -> v2 without loss.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import orjson

from skiff.api import validation as v
from skiff.api.meta import Obj, age, name_of
from skiff.api.quantity import QuantityError, parse_quantity
from skiff.api.resources import ALL_VERBS, ResourceInfo, Subresource
from skiff.apiserver.registry.apps._workload import as_int, doc, set_default, spec_of
from skiff.apiserver.registry.strategy import AGE_COLUMN, NAME_COLUMN, Column, Strategy

METRIC_SPECS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
METRIC_STATUSES_ANNOTATION = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
BEHAVIOR_ANNOTATION = "autoscaling.alpha.kubernetes.io/behavior"
ROUND_TRIP_ANNOTATIONS = (
    METRIC_SPECS_ANNOTATION,
    METRIC_STATUSES_ANNOTATION,
    CONDITIONS_ANNOTATION,
    BEHAVIOR_ANNOTATION,
)
DEFAULT_CPU_UTILIZATION = 80

METRIC_TYPES = (
    "ContainerResource",
    "External",
    "Object",
    "Pods",
    "Resource",
)  # sorted, as upstream lists them
_SOURCE_FIELD = {
    "Object": "object",
    "Pods": "pods",
    "Resource": "resource",
    "External": "external",
    "ContainerResource": "containerResource",
}

V2_INFO = ResourceInfo(
    "autoscaling",
    "v2",
    "HorizontalPodAutoscaler",
    "horizontalpodautoscalers",
    "horizontalpodautoscaler",
    True,
    ("hpa",),
    ("all",),
    ALL_VERBS,
    (Subresource("status", "autoscaling", "v2", "HorizontalPodAutoscaler"),),
)
V1_INFO = ResourceInfo(
    "autoscaling",
    "v1",
    "HorizontalPodAutoscaler",
    "horizontalpodautoscalers",
    "horizontalpodautoscaler",
    True,
    ("hpa",),
    ("all",),
    ALL_VERBS,
    (Subresource("status", "autoscaling", "v1", "HorizontalPodAutoscaler"),),
)


def cpu_utilization_metric(percent: int) -> dict[str, Any]:
    return {
        "type": "Resource",
        "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": percent}},
    }


# --- defaults ---------------------------------------------------------------------------------------------

_SCALE_UP_DEFAULT = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
_SCALE_DOWN_DEFAULT = {
    "stabilizationWindowSeconds": 300,
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}


def _default_rules(rules: Any, default: dict[str, Any]) -> dict[str, Any]:
    """`GenerateHPAScaleUpRules`/`GenerateHPAScaleDownRules`: fill each unset field."""
    if not isinstance(rules, dict):
        return copy.deepcopy(default)
    for key in ("stabilizationWindowSeconds", "selectPolicy", "policies"):
        if rules.get(key) is None:
            rules[key] = copy.deepcopy(default[key])
    return rules


# --- validation -------------------------------------------------------------------------------------------


def _path_segment(field: str, value: str) -> list[v.FieldError]:
    return v.check(field, value, v.path_segment_name(value))


def validate_object_reference(ref: Any, path: str) -> list[v.FieldError]:
    """`ValidateCrossVersionObjectReference`: kind and name required, valid path segments."""
    ref = ref if isinstance(ref, dict) else {}
    errs: list[v.FieldError] = []
    for key in ("kind", "name"):
        val = ref.get(key)
        if not val:
            errs.append(v.required(f"{path}.{key}"))
        else:
            errs += _path_segment(f"{path}.{key}", str(val))
    return errs


def _positive_quantity(field: str, value: Any) -> list[v.FieldError]:
    if value is None:
        return []
    try:
        q = parse_quantity(value)
    except (QuantityError, TypeError, AttributeError):
        return [v.invalid(field, value, "must be a quantity")]
    return [] if q > 0 else [v.invalid(field, value, "must be positive")]


def validate_metric_target(target: Any, path: str) -> list[v.FieldError]:
    target = target if isinstance(target, dict) else {}
    errs: list[v.FieldError] = []
    kind = target.get("type")
    if not kind:
        errs.append(v.required(f"{path}.type", "must specify a metric target type"))
    if kind not in ("Utilization", "Value", "AverageValue"):
        errs.append(
            v.invalid(f"{path}.type", kind or "", "must be either Utilization, Value, or AverageValue")
        )
    errs += _positive_quantity(f"{path}.value", target.get("value"))
    errs += _positive_quantity(f"{path}.averageValue", target.get("averageValue"))
    util = target.get("averageUtilization")
    if isinstance(util, int) and util < 1:
        errs.append(v.invalid(f"{path}.averageUtilization", util, "must be greater than 0"))
    return errs


def _validate_metric_identifier(metric: Any, path: str) -> list[v.FieldError]:
    metric = metric if isinstance(metric, dict) else {}
    name = metric.get("name")
    if not name:
        return [v.required(f"{path}.name", "must specify a metric name")]
    return _path_segment(f"{path}.name", str(name))


def _validate_source(kind: str, src: dict[str, Any], path: str) -> list[v.FieldError]:
    raw = src.get("target")
    target: dict[str, Any] = raw if isinstance(raw, dict) else {}
    errs: list[v.FieldError] = []
    if kind in ("Resource", "ContainerResource"):
        if not src.get("name"):
            errs.append(v.required(f"{path}.name", "must specify a resource name"))
        if kind == "ContainerResource" and not src.get("container"):
            errs.append(v.required(f"{path}.container", "must specify a container"))
        errs += validate_metric_target(target, f"{path}.target")
        if target.get("averageUtilization") is None and target.get("averageValue") is None:
            errs.append(
                v.required(
                    f"{path}.target.averageUtilization",
                    "must set either a target raw value or a target utilization",
                )
            )
        if target.get("averageUtilization") is not None and target.get("averageValue") is not None:
            errs.append(
                v.forbidden(
                    f"{path}.target.averageValue",
                    "may not set both a target raw value and a target utilization",
                )
            )
    elif kind == "Pods":
        errs += _validate_metric_identifier(src.get("metric"), f"{path}.metric")
        errs += validate_metric_target(target, f"{path}.target")
        if target.get("averageValue") is None:
            errs.append(
                v.required(f"{path}.target.averageValue", "must specify a positive target averageValue")
            )
    elif kind == "Object":
        errs += validate_object_reference(src.get("describedObject"), f"{path}.describedObject")
        errs += _validate_metric_identifier(src.get("metric"), f"{path}.metric")
        errs += validate_metric_target(target, f"{path}.target")
        if target.get("value") is None and target.get("averageValue") is None:
            errs.append(
                v.required(f"{path}.target.averageValue", "must set either a target value or averageValue")
            )
    elif kind == "External":
        errs += _validate_metric_identifier(src.get("metric"), f"{path}.metric")
        errs += validate_metric_target(target, f"{path}.target")
        if target.get("value") is None and target.get("averageValue") is None:
            errs.append(
                v.required(
                    f"{path}.target.averageValue",
                    "must set either a target value for metric or a per-pod target",
                )
            )
        if target.get("value") is not None and target.get("averageValue") is not None:
            errs.append(
                v.forbidden(
                    f"{path}.target.value", "may not set both a target value for metric and a per-pod target"
                )
            )
    return errs


def validate_metric_spec(metric: Any, path: str) -> list[v.FieldError]:
    """`validateMetricSpec`: a supported type whose (only) source member is populated and valid."""
    metric = metric if isinstance(metric, dict) else {}
    kind = metric.get("type")
    errs: list[v.FieldError] = []
    if not kind:
        errs.append(v.required(f"{path}.type", "must specify a metric source type"))
    if kind not in METRIC_TYPES:
        errs.append(v.not_supported(f"{path}.type", kind or "", METRIC_TYPES))
    present = [f for f in _SOURCE_FIELD.values() if metric.get(f) is not None]
    if len(present) == 1:
        owner = next(k for k, f in _SOURCE_FIELD.items() if f == present[0])
        errs += _validate_source(
            owner, metric[present[0]] if isinstance(metric[present[0]], dict) else {}, f"{path}.{present[0]}"
        )
    expected = _SOURCE_FIELD.get(str(kind))
    if expected is not None and metric.get(expected) is None:
        errs.append(v.required(f"{path}.{expected}", "must populate information for the given metric source"))
    if len(present) != 1:
        errs += [
            v.forbidden(f"{path}.{f}", "must populate the given metric source only")
            for f in present
            if f != expected
        ]
    return errs


def _validate_rules(rules: Any, path: str) -> list[v.FieldError]:
    if not isinstance(rules, dict):
        return []
    errs: list[v.FieldError] = []
    window = rules.get("stabilizationWindowSeconds")
    if isinstance(window, int) and not 0 <= window <= 3600:
        errs.append(
            v.invalid(
                f"{path}.stabilizationWindowSeconds",
                window,
                "must be less than or equal to 3600"
                if window > 0
                else "must be greater than or equal to zero",
            )
        )
    errs += v.one_of(f"{path}.selectPolicy", rules.get("selectPolicy"), ["Disabled", "Max", "Min"])
    policies = rules.get("policies")
    if isinstance(policies, list) and not policies:
        errs.append(v.required(f"{path}.policies", "must specify at least one Policy"))
    for i, pol in enumerate(policies or []):
        p = f"{path}.policies[{i}]"
        pol = pol if isinstance(pol, dict) else {}
        errs += v.one_of(f"{p}.type", pol.get("type"), ["Percent", "Pods"])
        value, period = pol.get("value"), pol.get("periodSeconds")
        if not isinstance(value, int) or value <= 0:
            errs.append(v.invalid(f"{p}.value", value, "must be greater than zero"))
        if not isinstance(period, int) or period <= 0:
            errs.append(v.invalid(f"{p}.periodSeconds", period, "must be greater than zero"))
        elif period > 1800:
            errs.append(v.invalid(f"{p}.periodSeconds", period, "must be less than or equal to 1800"))
    return errs


# --- printer -----------------------------------------------------------------------------------------------


def format_hpa_metrics(specs: list[Any], statuses: list[Any]) -> str:
    """`formatHPAMetrics`: `cpu: 40%/80%`, `<unknown>/…` without status, at most two then `+ N more...`."""
    if not specs:
        return "<none>"
    out: list[str] = []
    for i, spec in enumerate(specs):
        spec = spec if isinstance(spec, dict) else {}
        kind = spec.get("type")
        st = statuses[i] if i < len(statuses) and isinstance(statuses[i], dict) else {}
        field = _SOURCE_FIELD.get(str(kind), "")
        raw_src, raw_cur = spec.get(field), st.get(field)
        src: dict[str, Any] = raw_src if isinstance(raw_src, dict) else {}
        cur_src: dict[str, Any] | None = raw_cur if isinstance(raw_cur, dict) else None
        target = src.get("target") or {}
        current = (cur_src or {}).get("current") or {}
        if kind in ("External", "Object"):
            if target.get("averageValue") is not None:
                cur = (
                    current.get("averageValue")
                    if cur_src is not None and current.get("averageValue") is not None
                    else "<unknown>"
                )
                out.append(f"{cur}/{target['averageValue']} (avg)")
            else:
                cur = current.get("value", "0") if cur_src is not None else "<unknown>"
                out.append(f"{cur}/{target.get('value', '0')}")
        elif kind == "Pods":
            cur = current.get("averageValue", "0") if cur_src is not None else "<unknown>"
            out.append(f"{cur}/{target.get('averageValue', '0')}")
        elif kind in ("Resource", "ContainerResource"):
            name = src.get("name", "")
            if target.get("averageValue") is not None:
                cur = current.get("averageValue", "0") if cur_src is not None else "<unknown>"
                out.append(f"{name}: {cur}/{target['averageValue']}")
            else:
                util = current.get("averageUtilization")
                cur = f"{util}%" if cur_src is not None and util is not None else "<unknown>"
                tgt = (
                    f"{target['averageUtilization']}%"
                    if target.get("averageUtilization") is not None
                    else "<auto>"
                )
                out.append(f"{name}: {cur}/{tgt}")
        else:
            out.append("<unknown type>")
    if len(out) > 2:
        return f"{', '.join(out[:2])} + {len(out) - 2} more..."
    return ", ".join(out)


# --- v2 <-> v1 metric formats --------------------------------------------------------------------------------


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: val for k, val in d.items() if val is not None}


def metric_spec_to_v1(m: dict[str, Any]) -> dict[str, Any]:
    """A v2 MetricSpec in autoscaling/v1's annotation format (v2beta1 field names)."""
    kind = m.get("type")
    out: dict[str, Any] = {"type": kind}
    src = m.get(_SOURCE_FIELD.get(str(kind), "")) or {}
    target = src.get("target") or {}
    metric = src.get("metric") or {}
    if kind == "Object":
        out["object"] = _drop_none(
            {
                "target": src.get("describedObject") or {},
                "metricName": metric.get("name", ""),
                "targetValue": target.get("value", "0"),
                "selector": metric.get("selector"),
                "averageValue": target.get("averageValue"),
            }
        )
    elif kind == "Pods":
        out["pods"] = _drop_none(
            {
                "metricName": metric.get("name", ""),
                "targetAverageValue": target.get("averageValue", "0"),
                "selector": metric.get("selector"),
            }
        )
    elif kind == "Resource":
        out["resource"] = _drop_none(
            {
                "name": src.get("name", ""),
                "targetAverageUtilization": target.get("averageUtilization"),
                "targetAverageValue": target.get("averageValue"),
            }
        )
    elif kind == "ContainerResource":
        out["containerResource"] = _drop_none(
            {
                "name": src.get("name", ""),
                "targetAverageUtilization": target.get("averageUtilization"),
                "targetAverageValue": target.get("averageValue"),
                "container": src.get("container", ""),
            }
        )
    elif kind == "External":
        out["external"] = _drop_none(
            {
                "metricName": metric.get("name", ""),
                "metricSelector": metric.get("selector"),
                "targetValue": target.get("value"),
                "targetAverageValue": target.get("averageValue"),
            }
        )
    return out


def metric_spec_from_v1(m: dict[str, Any]) -> dict[str, Any]:
    kind = m.get("type")
    out: dict[str, Any] = {"type": kind}
    if kind == "Object":
        s = m.get("object") or {}
        out["object"] = {
            "describedObject": s.get("target") or {},
            "metric": _drop_none({"name": s.get("metricName", ""), "selector": s.get("selector")}),
            "target": _drop_none(
                {
                    "type": "Value" if s.get("averageValue") is None else "AverageValue",
                    "value": s.get("targetValue", "0"),
                    "averageValue": s.get("averageValue"),
                }
            ),
        }
    elif kind == "Pods":
        s = m.get("pods") or {}
        out["pods"] = {
            "metric": _drop_none({"name": s.get("metricName", ""), "selector": s.get("selector")}),
            "target": {"type": "AverageValue", "averageValue": s.get("targetAverageValue", "0")},
        }
    elif kind in ("Resource", "ContainerResource"):
        field = _SOURCE_FIELD[str(kind)]
        s = m.get(field) or {}
        util = s.get("targetAverageUtilization")
        src: dict[str, Any] = {"name": s.get("name", "")}
        src["target"] = _drop_none(
            {
                "type": "AverageValue" if util is None else "Utilization",
                "averageUtilization": util,
                "averageValue": s.get("targetAverageValue"),
            }
        )
        if kind == "ContainerResource":
            src["container"] = s.get("container", "")
        out[field] = src
    elif kind == "External":
        s = m.get("external") or {}
        out["external"] = {
            "metric": _drop_none({"name": s.get("metricName", ""), "selector": s.get("metricSelector")}),
            "target": _drop_none(
                {
                    "type": "AverageValue" if s.get("targetValue") is None else "Value",
                    "value": s.get("targetValue"),
                    "averageValue": s.get("targetAverageValue"),
                }
            ),
        }
    return out


def metric_status_to_v1(m: dict[str, Any]) -> dict[str, Any]:
    kind = m.get("type")
    out: dict[str, Any] = {"type": kind}
    src = m.get(_SOURCE_FIELD.get(str(kind), "")) or {}
    cur = src.get("current") or {}
    metric = src.get("metric") or {}
    if kind == "Object":
        out["object"] = _drop_none(
            {
                "target": src.get("describedObject") or {},
                "metricName": metric.get("name", ""),
                "currentValue": cur.get("value", "0"),
                "selector": metric.get("selector"),
                "averageValue": cur.get("averageValue"),
            }
        )
    elif kind == "Pods":
        out["pods"] = _drop_none(
            {
                "metricName": metric.get("name", ""),
                "currentAverageValue": cur.get("averageValue", "0"),
                "selector": metric.get("selector"),
            }
        )
    elif kind in ("Resource", "ContainerResource"):
        field = _SOURCE_FIELD[str(kind)]
        st = _drop_none(
            {
                "name": src.get("name", ""),
                "currentAverageUtilization": cur.get("averageUtilization"),
                "currentAverageValue": cur.get("averageValue", "0"),
            }
        )
        if kind == "ContainerResource":
            st["container"] = src.get("container", "")
        out[field] = st
    elif kind == "External":
        out["external"] = _drop_none(
            {
                "metricName": metric.get("name", ""),
                "metricSelector": metric.get("selector"),
                "currentValue": cur.get("value", "0"),
                "currentAverageValue": cur.get("averageValue"),
            }
        )
    return out


def metric_status_from_v1(m: dict[str, Any]) -> dict[str, Any]:
    kind = m.get("type")
    out: dict[str, Any] = {"type": kind}
    if kind == "Object":
        s = m.get("object") or {}
        out["object"] = {
            "metric": _drop_none({"name": s.get("metricName", ""), "selector": s.get("selector")}),
            "current": _drop_none(
                {"value": s.get("currentValue", "0"), "averageValue": s.get("averageValue")}
            ),
            "describedObject": s.get("target") or {},
        }
    elif kind == "Pods":
        s = m.get("pods") or {}
        out["pods"] = {
            "metric": _drop_none({"name": s.get("metricName", ""), "selector": s.get("selector")}),
            "current": {"averageValue": s.get("currentAverageValue", "0")},
        }
    elif kind in ("Resource", "ContainerResource"):
        field = _SOURCE_FIELD[str(kind)]
        s = m.get(field) or {}
        st: dict[str, Any] = {
            "name": s.get("name", ""),
            "current": _drop_none(
                {
                    "averageValue": s.get("currentAverageValue", "0"),
                    "averageUtilization": s.get("currentAverageUtilization"),
                }
            ),
        }
        if kind == "ContainerResource":
            st["container"] = s.get("container", "")
        out[field] = st
    elif kind == "External":
        s = m.get("external") or {}
        out["external"] = {
            "metric": _drop_none({"name": s.get("metricName", ""), "selector": s.get("metricSelector")}),
            "current": _drop_none(
                {"value": s.get("currentValue", "0"), "averageValue": s.get("currentAverageValue")}
            ),
        }
    return out


def _go_keys(value: Any) -> Any:
    """JSON of upstream's internal Behavior type, which has no json tags: Go field names (`ScaleUp`)."""
    if isinstance(value, dict):
        return {k[:1].upper() + k[1:]: _go_keys(val) for k, val in value.items()}
    if isinstance(value, list):
        return [_go_keys(x) for x in value]
    return value


def _json_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: _json_keys(val) for k, val in value.items()}
    if isinstance(value, list):
        return [_json_keys(x) for x in value]
    return value


def _is_cpu_utilization(m: Any) -> bool:
    res = m.get("resource") if isinstance(m, dict) else None
    return (
        m.get("type") == "Resource"
        and isinstance(res, dict)
        and res.get("name") == "cpu"
        and (res.get("target") or {}).get("averageUtilization") is not None
    )


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _loads_list(text: Any) -> list[Any] | None:
    try:
        out = orjson.loads(text) if isinstance(text, str) else None
    except orjson.JSONDecodeError:
        return None
    return out if isinstance(out, list) else None


def hpa_v2_to_v1(obj: Obj) -> Obj:
    """Upstream Convert_autoscaling_HorizontalPodAutoscaler_To_v1_HorizontalPodAutoscaler (never mutates obj)."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    out: Obj = {k: copy.deepcopy(val) for k, val in obj.items() if k not in ("spec", "status")}
    out["apiVersion"] = "autoscaling/v1"
    md = out.setdefault("metadata", {})
    annotations = {
        k: val for k, val in (md.get("annotations") or {}).items() if k not in ROUND_TRIP_ANNOTATIONS
    }

    v1_spec: dict[str, Any] = {"scaleTargetRef": copy.deepcopy(spec.get("scaleTargetRef") or {})}
    if spec.get("minReplicas") is not None:
        v1_spec["minReplicas"] = spec["minReplicas"]
    v1_spec["maxReplicas"] = spec.get("maxReplicas", 0)
    metrics = [m for m in spec.get("metrics") or [] if isinstance(m, dict)]
    for m in metrics:
        if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu":
            util = ((m.get("resource") or {}).get("target") or {}).get("averageUtilization")
            if util is not None:
                v1_spec["targetCPUUtilizationPercentage"] = util
                break
    other = [metric_spec_to_v1(m) for m in metrics if not _is_cpu_utilization(m)]
    if other:
        annotations[METRIC_SPECS_ANNOTATION] = _dumps(other)
    current = [m for m in status.get("currentMetrics") or [] if isinstance(m, dict)]
    if current:
        annotations[METRIC_STATUSES_ANNOTATION] = _dumps([metric_status_to_v1(m) for m in current])
    if spec.get("behavior") is not None:
        annotations[BEHAVIOR_ANNOTATION] = _dumps(_go_keys(spec["behavior"]))
    if status.get("conditions"):
        annotations[CONDITIONS_ANNOTATION] = _dumps(status["conditions"])
    if annotations:
        md["annotations"] = annotations
    else:
        md.pop("annotations", None)

    out["spec"] = v1_spec
    if "status" in obj:
        v1_status: dict[str, Any] = {}
        for key in ("observedGeneration", "lastScaleTime"):
            if status.get(key) is not None:
                v1_status[key] = status[key]
        v1_status["currentReplicas"] = status.get("currentReplicas", 0)
        v1_status["desiredReplicas"] = status.get("desiredReplicas", 0)
        for m in current:
            res = m.get("resource") or {}
            if m.get("type") == "Resource" and res.get("name") == "cpu":
                util = (res.get("current") or {}).get("averageUtilization")
                if util is not None:
                    v1_status["currentCPUUtilizationPercentage"] = util
        out["status"] = v1_status
    return out


def hpa_v1_to_v2(obj: Obj) -> Obj:
    """Upstream Convert_v1_HorizontalPodAutoscaler_To_autoscaling_HorizontalPodAutoscaler: the cpu target
    plus the annotated metrics, the implicit 80% cpu default, annotations dropped (never mutates obj)."""
    spec, status = obj.get("spec") or {}, obj.get("status")
    out: Obj = {k: copy.deepcopy(val) for k, val in obj.items() if k not in ("spec", "status")}
    out["apiVersion"] = "autoscaling/v2"
    md = out.setdefault("metadata", {})
    annotations = dict(md.get("annotations") or {})

    v2_spec: dict[str, Any] = {
        k: copy.deepcopy(spec[k]) for k in ("scaleTargetRef", "minReplicas", "maxReplicas") if k in spec
    }
    metrics: list[Any] = []
    if spec.get("targetCPUUtilizationPercentage") is not None:
        metrics = [cpu_utilization_metric(spec["targetCPUUtilizationPercentage"])]
    other = _loads_list(annotations.get(METRIC_SPECS_ANNOTATION))
    if other is not None:
        metrics = [metric_spec_from_v1(m) for m in other if isinstance(m, dict)] + metrics
    if not metrics:
        metrics = [cpu_utilization_metric(DEFAULT_CPU_UTILIZATION)]
    v2_spec["metrics"] = metrics
    behavior_text = annotations.get(BEHAVIOR_ANNOTATION)
    if isinstance(behavior_text, str):
        try:
            behavior = orjson.loads(behavior_text)
        except orjson.JSONDecodeError:
            behavior = None
        if isinstance(behavior, dict):
            v2_spec["behavior"] = _json_keys(behavior)
    out["spec"] = v2_spec

    if isinstance(status, dict):
        v2_status: dict[str, Any] = {
            k: status[k] for k in ("observedGeneration", "lastScaleTime") if status.get(k) is not None
        }
        if status.get("currentReplicas"):
            v2_status["currentReplicas"] = status["currentReplicas"]
        v2_status["desiredReplicas"] = status.get("desiredReplicas", 0)
        current: list[Any] = []
        if status.get("currentCPUUtilizationPercentage") is not None:
            current = [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "current": {"averageUtilization": status["currentCPUUtilizationPercentage"]},
                    },
                }
            ]
        annotated = _loads_list(annotations.get(METRIC_STATUSES_ANNOTATION))
        if annotated is not None:
            current = [metric_status_from_v1(m) for m in annotated if isinstance(m, dict)]
        if current:
            v2_status["currentMetrics"] = current
        conditions = _loads_list(annotations.get(CONDITIONS_ANNOTATION))
        if conditions:
            v2_status["conditions"] = conditions
        out["status"] = v2_status

    kept = {k: val for k, val in annotations.items() if k not in ROUND_TRIP_ANNOTATIONS}
    if kept:
        md["annotations"] = kept
    else:
        md.pop("annotations", None)
    return out


class HorizontalPodAutoscalerStrategy(Strategy):
    info = V2_INFO
    other_versions = (V1_INFO,)
    status_subresource = True

    def defaults(self, obj: Obj) -> None:
        spec = spec_of(obj)
        set_default(spec, "minReplicas", 1)
        if not spec.get("metrics"):
            spec["metrics"] = [cpu_utilization_metric(DEFAULT_CPU_UTILIZATION)]
        behavior = spec.get("behavior")
        if isinstance(behavior, dict):
            behavior["scaleUp"] = _default_rules(behavior.get("scaleUp"), _SCALE_UP_DEFAULT)
            behavior["scaleDown"] = _default_rules(behavior.get("scaleDown"), _SCALE_DOWN_DEFAULT)

    def initial_status(self, obj: Obj) -> None:
        obj["status"] = {"desiredReplicas": 0}

    def validate(self, obj: Obj) -> list[v.FieldError]:
        """`validateHorizontalPodAutoscalerSpec` (HPAScaleToZero off: minReplicas >= 1)."""
        spec = obj.get("spec") or {}
        errs: list[v.FieldError] = []
        lo, hi = spec.get("minReplicas"), spec.get("maxReplicas")
        if isinstance(lo, int) and lo < 1:
            errs.append(v.invalid("spec.minReplicas", lo, "must be greater than or equal to 1"))
        if not isinstance(hi, int) or hi < 1:
            errs.append(v.invalid("spec.maxReplicas", hi if hi is not None else 0, "must be greater than 0"))
        if isinstance(lo, int) and isinstance(hi, int) and hi < lo:
            errs.append(v.invalid("spec.maxReplicas", hi, "must be greater than or equal to `minReplicas`"))
        ref_errs = validate_object_reference(spec.get("scaleTargetRef"), "spec.scaleTargetRef")
        if ref_errs:
            return errs + ref_errs
        metric_errs: list[v.FieldError] = []
        for i, m in enumerate(spec.get("metrics") or []):
            metric_errs += validate_metric_spec(m, f"spec.metrics[{i}]")
        if metric_errs:
            return errs + metric_errs
        behavior = spec.get("behavior")
        if isinstance(behavior, dict):
            errs += _validate_rules(behavior.get("scaleUp"), "spec.behavior.scaleUp")
            errs += _validate_rules(behavior.get("scaleDown"), "spec.behavior.scaleDown")
        return errs

    def to_version(self, obj: Obj, info: ResourceInfo) -> Obj:
        return hpa_v2_to_v1(obj) if info.version == "v1" else obj

    def from_version(self, obj: Obj, info: ResourceInfo) -> Obj:
        return hpa_v1_to_v2(obj) if info.version == "v1" else obj

    def columns(self) -> list[Column]:
        return [
            NAME_COLUMN,
            Column("Reference", "string", "", doc("V2HorizontalPodAutoscalerSpec", "scaleTargetRef")),
            Column("Targets", "string", "", doc("V2HorizontalPodAutoscalerSpec", "metrics")),
            Column("MinPods", "string", "", doc("V2HorizontalPodAutoscalerSpec", "minReplicas")),
            Column("MaxPods", "string", "", doc("V2HorizontalPodAutoscalerSpec", "maxReplicas")),
            Column("Replicas", "string", "", doc("V2HorizontalPodAutoscalerStatus", "currentReplicas")),
            AGE_COLUMN,
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        ref = spec.get("scaleTargetRef") or {}
        lo = spec.get("minReplicas")
        return [
            name_of(obj),
            f"{ref.get('kind', '')}/{ref.get('name', '')}",
            format_hpa_metrics(spec.get("metrics") or [], status.get("currentMetrics") or []),
            str(lo) if lo is not None else "<unset>",
            as_int(spec.get("maxReplicas")),
            as_int(status.get("currentReplicas")),
            age(obj, now),
        ]
