"""batch/v1 Job: defaults, generated selector, validation, `status`, printer row, `status.successful`.

Mirrors `pkg/apis/batch/v1/defaults.go` (SetDefaults_Job), `pkg/registry/batch/job/strategy.go`
(generateSelector: both the legacy `controller-uid`/`job-name` and the `batch.kubernetes.io/` labels,
selector on `batch.kubernetes.io/controller-uid`), and `pkg/apis/batch/validation`
(ValidateGeneratedSelector, ValidateJobSpec, ValidateJobSpecUpdate).
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, age, human_duration, name_of, parse_time
from skiff.api.resources import ALL_VERBS, ResourceInfo, Subresource
from skiff.apiserver.registry.apps._workload import (
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    IMMUTABLE,
    SELECTOR_MISMATCH,
    as_int,
    containers_cells,
    default_template,
    doc,
    format_label_selector,
    invalid_labels,
    invalid_selector,
    selector_column,
    selector_matches,
    set_default,
    spec_of,
    template_labels,
    validate_label_selector,
    validate_restart_policy,
)
from skiff.apiserver.registry.core.podspec import validate_pod_template
from skiff.apiserver.registry.strategy import AGE_COLUMN, NAME_COLUMN, Column, Strategy

LEGACY_JOB_NAME_LABEL = "job-name"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
MAX_PARALLELISM_INDEXED = 100000


def generate_selector(job: Obj) -> None:
    """Upstream `generateSelector`: label the template with the job's name and uid (keeping labels the
    user set, which validation then checks) and select on `batch.kubernetes.io/controller-uid`."""
    md = job.get("metadata") or {}
    name, uid = str(md.get("name") or ""), str(md.get("uid") or "")
    spec = spec_of(job)
    template = spec.get("template")
    if not isinstance(template, dict):
        template = spec["template"] = {}
    tmd = template.get("metadata")
    if not isinstance(tmd, dict):
        tmd = template["metadata"] = {}
    labels = tmd.get("labels")
    if not isinstance(labels, dict):
        labels = tmd["labels"] = {}
    for key in (LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
        labels.setdefault(key, name)
    for key in (LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL):
        labels.setdefault(key, uid)
    sel = spec.get("selector")
    if not isinstance(sel, dict):
        sel = spec["selector"] = {}
    match = sel.get("matchLabels")
    if not isinstance(match, dict):
        match = sel["matchLabels"] = {}
    match.setdefault(CONTROLLER_UID_LABEL, uid)


def manual_selector(spec: Any) -> bool:
    return isinstance(spec, dict) and spec.get("manualSelector") is True


def default_job_spec(spec: dict[str, Any]) -> None:
    """The JobSpec part of SetDefaults_Job (also what a CronJob's jobTemplate does NOT get)."""
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    set_default(spec, "parallelism", 1)
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    set_default(spec, "completionMode", "NonIndexed")
    set_default(spec, "suspend", False)
    policy = spec.get("podFailurePolicy")
    if isinstance(policy, dict):
        for rule in policy.get("rules") or []:
            for pattern in (rule or {}).get("onPodConditions") or []:
                if isinstance(pattern, dict) and not pattern.get("status"):
                    pattern["status"] = "True"
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if policy is not None else "TerminatedOrFailed"


def validate_job_spec_fields(spec: dict[str, Any], path: str) -> list[v.FieldError]:
    """Upstream `validateJobSpec`: counts, completion mode, replacement policy, template, restartPolicy."""
    errs: list[v.FieldError] = []
    for key in (
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ):
        errs += v.non_negative(f"{path}.{key}", spec.get(key))
    indexed = spec.get("completionMode") == "Indexed"
    if spec.get("backoffLimitPerIndex") is not None:
        errs += v.non_negative(f"{path}.backoffLimitPerIndex", spec.get("backoffLimitPerIndex"))
        if not indexed:
            errs.append(v.forbidden(f"{path}.backoffLimitPerIndex", "requires indexed completion mode"))
    if spec.get("maxFailedIndexes") is not None:
        errs += v.non_negative(f"{path}.maxFailedIndexes", spec.get("maxFailedIndexes"))
        if spec.get("backoffLimitPerIndex") is None:
            errs.append(v.required(f"{path}.backoffLimitPerIndex", "when maxFailedIndexes is specified"))
    mode = spec.get("completionMode")
    if mode is not None:
        errs += v.one_of(f"{path}.completionMode", mode, ["NonIndexed", "Indexed"])
        if indexed:
            if spec.get("completions") is None:
                errs.append(v.required(f"{path}.completions", "when completion mode is Indexed"))
            par = spec.get("parallelism")
            if isinstance(par, int) and par > MAX_PARALLELISM_INDEXED:
                errs.append(
                    v.invalid(
                        f"{path}.parallelism",
                        par,
                        f"must be less than or equal to {MAX_PARALLELISM_INDEXED} when completion mode is Indexed",
                    )
                )
    replacement = spec.get("podReplacementPolicy")
    if replacement is not None:
        if spec.get("podFailurePolicy") is not None:
            if replacement != "Failed":
                errs.append(v.not_supported(f"{path}.podReplacementPolicy", replacement, ["Failed"]))
        else:
            errs += v.one_of(f"{path}.podReplacementPolicy", replacement, ["Failed", "TerminatedOrFailed"])
    template = spec.get("template")
    if not isinstance(template, dict):
        errs.append(v.required(f"{path}.template"))
        return errs
    errs += validate_pod_template(template, f"{path}.template")
    field = f"{path}.template.spec.restartPolicy"
    restart = (template.get("spec") or {}).get("restartPolicy")
    errs += validate_restart_policy(template, field, ("OnFailure", "Never"))
    if restart == "OnFailure" and spec.get("podFailurePolicy") is not None:
        errs.append(v.invalid(field, restart, 'only "Never" is supported when podFailurePolicy is specified'))
    return errs


def validate_job_spec(spec: dict[str, Any], path: str) -> list[v.FieldError]:
    """Upstream `ValidateJobSpec`: the fields plus a required selector that matches the template."""
    errs = validate_job_spec_fields(spec, path)
    sel = spec.get("selector")
    if sel is None:
        errs.append(v.required(f"{path}.selector"))
    else:
        errs += validate_label_selector(f"{path}.selector", sel)
    labels = template_labels(spec.get("template"))
    if sel is not None and selector_matches(sel, labels) is False:
        errs.append(invalid_labels(f"{path}.template.metadata.labels", labels, SELECTOR_MISMATCH))
    return errs


def _has_label(labels: Any, key: str, expected: str) -> list[v.FieldError]:
    """`ValidateHasLabel` at spec.template.metadata.labels[key]."""
    field = f"spec.template.metadata.labels[{key}]"
    labels = labels if isinstance(labels, dict) else {}
    if key not in labels:
        return [v.required(field, expected)]
    if labels[key] != expected:
        return [invalid_labels(field, labels, f"must be '{expected}'")]
    return []


def validate_generated_selector(job: Obj) -> list[v.FieldError]:
    """Upstream `ValidateGeneratedSelector` (with the batch.kubernetes.io labels)."""
    spec = job.get("spec") or {}
    if manual_selector(spec):
        return []
    md = job.get("metadata") or {}
    uid, name = str(md.get("uid") or ""), str(md.get("name") or "")
    errs: list[v.FieldError] = []
    if not uid:
        errs.append(v.required("metadata.uid"))
    labels = template_labels(spec.get("template"))
    errs += _has_label(labels, LEGACY_CONTROLLER_UID_LABEL, uid)
    errs += _has_label(labels, LEGACY_JOB_NAME_LABEL, name)
    errs += _has_label(labels, CONTROLLER_UID_LABEL, uid)
    errs += _has_label(labels, JOB_NAME_LABEL, name)
    sel = spec.get("selector")
    if selector_matches(sel, {CONTROLLER_UID_LABEL: uid}) is False:
        errs.append(invalid_selector("spec.selector", sel, "`selector` not auto-generated"))
    return errs


def _condition_true(status: dict[str, Any], kind: str) -> bool:
    """`hasJobCondition`: the first condition of that type decides."""
    for cond in status.get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond.get("status") == "True"
    return False


def job_status_cell(job: Obj) -> str:
    """The STATUS column of `printJob` (1.32)."""
    status = job.get("status") or {}
    if _condition_true(status, "Complete"):
        return "Complete"
    if _condition_true(status, "Failed"):
        return "Failed"
    if (job.get("metadata") or {}).get("deletionTimestamp"):
        return "Terminating"
    if _condition_true(status, "Suspended"):
        return "Suspended"
    if _condition_true(status, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def completions_cell(job: Obj) -> str:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    succeeded = as_int(status.get("succeeded"))
    if spec.get("completions") is not None:
        return f"{succeeded}/{as_int(spec.get('completions'))}"
    parallelism = as_int(spec.get("parallelism"))
    if parallelism > 1:
        return f"{succeeded}/1 of {parallelism}"
    return f"{succeeded}/1"


def duration_cell(job: Obj, now: dt.datetime) -> str:
    status = job.get("status") or {}
    start = parse_time(status.get("startTime"))
    if start is None:
        return ""
    end = parse_time(status.get("completionTime")) or now
    return human_duration((end - start).total_seconds())


class JobStrategy(Strategy):
    info = ResourceInfo(
        "batch",
        "v1",
        "Job",
        "jobs",
        "job",
        True,
        (),
        ("all",),
        ALL_VERBS,
        (Subresource("status", "batch", "v1", "Job"),),
    )
    status_subresource = True

    def prepare_for_create(self, obj: Obj) -> None:
        """Status reset and, unless `manualSelector: true`, the generated selector (uid already set)."""
        super().prepare_for_create(obj)
        if not manual_selector(obj.get("spec")):
            generate_selector(obj)

    def initial_status(self, obj: Obj) -> None:
        obj["status"] = {}

    def defaults(self, obj: Obj) -> None:
        spec = spec_of(obj)
        default_job_spec(spec)
        md = obj.get("metadata")
        labels = template_labels(spec.get("template"))
        # SetDefaults_Job copies the template labels to an unlabeled Job.
        if isinstance(md, dict) and isinstance(labels, dict) and not md.get("labels"):
            md["labels"] = dict(labels)
        default_template(spec.get("template"))

    def validate(self, obj: Obj) -> list[v.FieldError]:
        spec = obj.get("spec") or {}
        return validate_generated_selector(obj) + validate_job_spec(spec, "spec")

    def validate_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        errs = self.validate(new)
        spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
        errs += _validate_completions_update(spec, old_spec)
        if spec.get("selector") != old_spec.get("selector"):
            errs.append(invalid_selector("spec.selector", spec.get("selector"), IMMUTABLE))
        errs += _validate_template_update(spec, old_spec, old)
        for key in (
            "completionMode",
            "podFailurePolicy",
            "backoffLimitPerIndex",
            "managedBy",
            "successPolicy",
        ):
            if spec.get(key) != old_spec.get(key):
                errs.append(v.invalid(f"spec.{key}", spec.get(key), IMMUTABLE))
        return errs

    def validate_status_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        """The counter checks of upstream `validateJobStatus` (the condition-transition rules are not mirrored)."""
        status = new.get("status") or {}
        errs: list[v.FieldError] = []
        for key in ("active", "succeeded", "failed", "ready", "terminating"):
            errs += v.non_negative(f"status.{key}", status.get(key))
        return errs

    def columns(self) -> list[Column]:
        return [
            NAME_COLUMN,
            Column("Status", "string", "", "Status of the job."),
            Column("Completions", "string", "", doc("V1JobStatus", "succeeded")),
            Column("Duration", "string", "", "Time required to complete the job."),
            AGE_COLUMN,
            CONTAINERS_COLUMN,
            IMAGES_COLUMN,
            selector_column("V1JobSpec"),
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        spec = obj.get("spec") or {}
        names, images = containers_cells(spec.get("template"))
        return [
            name_of(obj),
            job_status_cell(obj),
            completions_cell(obj),
            duration_cell(obj, now),
            age(obj, now),
            names,
            images,
            format_label_selector(spec.get("selector")),
        ]

    def fields(self, obj: Obj) -> dict[str, str]:
        return {"status.successful": str(as_int((obj.get("status") or {}).get("succeeded")))}


def _validate_completions_update(spec: dict[str, Any], old_spec: dict[str, Any]) -> list[v.FieldError]:
    """Completions are immutable, except for Indexed Jobs scaled with parallelism in tandem
    (ElasticIndexedJob, on by default in 1.32)."""
    new_c, old_c = spec.get("completions"), old_spec.get("completions")
    if new_c == old_c:
        return []
    if spec.get("completionMode") != "Indexed":
        return [v.invalid("spec.completions", new_c, IMMUTABLE)]
    if new_c is None:
        return []
    if new_c != spec.get("parallelism"):
        return [v.invalid("spec.completions", new_c, "can only be modified in tandem with spec.parallelism")]
    return []


_SCHEDULING_DIRECTIVES = ("nodeSelector", "affinity", "tolerations", "schedulingGates")


def _validate_template_update(spec: dict[str, Any], old_spec: dict[str, Any], old: Obj) -> list[v.FieldError]:
    """The template is immutable; scheduling directives, labels and annotations may change while the old
    Job is suspended and has never started (JobMutableNodeSchedulingDirectives)."""
    template = spec.get("template")
    old_template = old_spec.get("template")
    suspended_unstarted = old_spec.get("suspend") is True and not (old.get("status") or {}).get("startTime")
    if suspended_unstarted and isinstance(template, dict) and isinstance(old_template, dict):
        old_template = copy.deepcopy(old_template)
        new_pod, old_pod = template.get("spec") or {}, old_template.setdefault("spec", {})
        for key in _SCHEDULING_DIRECTIVES:
            if key in new_pod:
                old_pod[key] = new_pod[key]
            else:
                old_pod.pop(key, None)
        new_meta, old_meta = template.get("metadata") or {}, old_template.setdefault("metadata", {})
        for key in ("labels", "annotations"):
            if key in new_meta:
                old_meta[key] = new_meta[key]
            else:
                old_meta.pop(key, None)
    if template != old_template:
        return [v.invalid("spec.template", template, IMMUTABLE)]
    return []
