"""batch/v1 CronJob: defaults, schedule/timeZone/jobTemplate validation, `status`, printer row.

Mirrors SetDefaults_CronJob (the jobTemplate gets pod defaults only, not Job defaults, as upstream),
`ValidateCronJobCreate`/`ValidateCronJobUpdate` (`validateScheduleFormat` with robfig/cron's
messages, `validateTimeZone`, `ValidateJobTemplateSpec`) and `printCronJob`.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Any

from skiff.api import validation as v
from skiff.api.meta import Obj, age, human_duration, name_of, parse_time
from skiff.api.resources import ALL_VERBS, ResourceInfo, Subresource
from skiff.apiserver.registry.apps._workload import (
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
    containers_cells,
    default_template,
    doc,
    format_label_selector,
    invalid_selector,
    set_default,
    spec_of,
)
from skiff.apiserver.registry.batch.cron import CronError, parse_standard
from skiff.apiserver.registry.batch.jobs import validate_job_spec_fields
from skiff.apiserver.registry.strategy import AGE_COLUMN, NAME_COLUMN, Column, Strategy

_TZ_PART = re.compile(r"^[A-Za-z\.\-_0-9+]{1,14}$")
MAX_NAME_LENGTH = 52  # 63 (DNS-1035 label) - 11: the controller appends `-<timestamp>` to Job names


def validate_schedule(schedule: str, allow_tz: bool, time_zone: Any, field: str) -> list[v.FieldError]:
    """`validateScheduleFormat`: robfig ParseStandard + the TZ-in-schedule rules."""
    errs: list[v.FieldError] = []
    try:
        parse_standard(schedule)
    except CronError as e:
        errs.append(v.invalid(field, schedule, str(e)))
    if allow_tz and "TZ" in schedule and time_zone is not None:
        errs.append(
            v.invalid(field, schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule")
        )
    elif not allow_tz and "TZ" in schedule:
        errs.append(
            v.invalid(field, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
        )
    return errs


def validate_time_zone(tz: Any, field: str) -> list[v.FieldError]:
    """`validateTimeZone`: an explicit IANA zone name known to the tz database."""
    if tz is None:
        return []
    if not isinstance(tz, str) or not tz:
        return [v.invalid(field, tz, "timeZone must be nil or non-empty string")]
    for part in tz.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TZ_PART.match(part):
            return [v.invalid(field, tz, f"unknown time zone {tz}")]
    errs: list[v.FieldError] = []
    if tz.lower() == "local":
        errs.append(
            v.invalid(
                field,
                tz,
                "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
            )
        )
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        errs.append(v.invalid(field, tz, f"unknown time zone {tz}"))
    return errs


def validate_job_template(template: Any, path: str) -> list[v.FieldError]:
    """`ValidateJobTemplateSpec`: a Job spec whose selector the controller will generate."""
    if not isinstance(template, dict):
        return [v.required(path)]
    spec = template.get("spec")
    if not isinstance(spec, dict):
        spec = {}
    errs = validate_job_spec_fields(spec, f"{path}.spec")
    if spec.get("selector") is not None:
        errs.append(
            invalid_selector(
                f"{path}.spec.selector", spec.get("selector"), "`selector` will be auto-generated"
            )
        )
    if spec.get("manualSelector") is True:
        errs.append(v.not_supported(f"{path}.spec.manualSelector", True, ["nil", "false"]))
    return errs


def validate_cronjob_spec(spec: dict[str, Any], old_spec: dict[str, Any] | None) -> list[v.FieldError]:
    errs: list[v.FieldError] = []
    schedule = spec.get("schedule")
    if not schedule:
        errs.append(v.required("spec.schedule"))
    elif not isinstance(schedule, str):
        errs.append(v.type_invalid("spec.schedule", schedule, "must be a string"))
    else:
        allow_tz = old_spec is not None and "TZ" in str(old_spec.get("schedule") or "")
        errs += validate_schedule(schedule, allow_tz, spec.get("timeZone"), "spec.schedule")
    errs += v.non_negative("spec.startingDeadlineSeconds", spec.get("startingDeadlineSeconds"))
    if old_spec is None or old_spec.get("timeZone") != spec.get("timeZone"):
        errs += validate_time_zone(spec.get("timeZone"), "spec.timeZone")
    policy = spec.get("concurrencyPolicy")
    if not policy:
        errs.append(v.required("spec.concurrencyPolicy"))
    else:
        errs += v.one_of("spec.concurrencyPolicy", policy, ["Allow", "Forbid", "Replace"])
    errs += validate_job_template(spec.get("jobTemplate"), "spec.jobTemplate")
    errs += v.non_negative("spec.successfulJobsHistoryLimit", spec.get("successfulJobsHistoryLimit"))
    errs += v.non_negative("spec.failedJobsHistoryLimit", spec.get("failedJobsHistoryLimit"))
    return errs


def _bool_cell(value: Any) -> str:
    """`printBoolPtr`."""
    if value is None:
        return "<unset>"
    return "True" if value else "False"


class CronJobStrategy(Strategy):
    info = ResourceInfo(
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        "cronjob",
        True,
        ("cj",),
        ("all",),
        ALL_VERBS,
        (Subresource("status", "batch", "v1", "CronJob"),),
    )
    status_subresource = True

    def defaults(self, obj: Obj) -> None:
        spec = spec_of(obj)
        if not spec.get("concurrencyPolicy"):
            spec["concurrencyPolicy"] = "Allow"
        set_default(spec, "suspend", False)
        set_default(spec, "successfulJobsHistoryLimit", 3)
        set_default(spec, "failedJobsHistoryLimit", 1)
        job_template = spec.get("jobTemplate")
        if isinstance(job_template, dict) and isinstance(job_template.get("spec"), dict):
            default_template(job_template["spec"].get("template"))

    def initial_status(self, obj: Obj) -> None:
        obj["status"] = {}

    def validate(self, obj: Obj) -> list[v.FieldError]:
        errs = validate_cronjob_spec(obj.get("spec") or {}, None)
        name = name_of(obj)
        if len(name) > MAX_NAME_LENGTH:
            errs.append(
                v.invalid("metadata.name", name, f"must be no more than {MAX_NAME_LENGTH} characters")
            )
        return errs

    def validate_update(self, new: Obj, old: Obj) -> list[v.FieldError]:
        """No name-length check on update, so older long-named CronJobs stay editable (as upstream)."""
        return validate_cronjob_spec(new.get("spec") or {}, old.get("spec") or {})

    def columns(self) -> list[Column]:
        return [
            NAME_COLUMN,
            Column("Schedule", "string", "", doc("V1CronJobSpec", "schedule")),
            Column("Timezone", "string", "", doc("V1CronJobSpec", "timeZone")),
            Column("Suspend", "boolean", "", doc("V1CronJobSpec", "suspend")),
            Column("Active", "integer", "", doc("V1CronJobStatus", "active")),
            Column("Last Schedule", "string", "", doc("V1CronJobStatus", "lastScheduleTime")),
            AGE_COLUMN,
            CONTAINERS_COLUMN,
            IMAGES_COLUMN,
            Column("Selector", "string", "", doc("V1JobSpec", "selector"), 1),
        ]

    def row(self, obj: Obj, now: dt.datetime) -> list[Any]:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
        names, images = containers_cells(job_spec.get("template"))
        last = parse_time(status.get("lastScheduleTime"))
        last_cell = human_duration((now - last).total_seconds()) if last else "<none>"
        tz = spec.get("timeZone")
        return [
            name_of(obj),
            spec.get("schedule") or "",
            tz if tz is not None else "<none>",
            _bool_cell(spec.get("suspend")),
            len(status.get("active") or []),
            last_cell,
            age(obj, now),
            names,
            images,
            format_label_selector(job_spec.get("selector")),
        ]
