"""StatefulSet strategy: SetDefaults_StatefulSet, claim template defaults, validation, immutability, row."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from skiff.apiserver.registry.apps.statefulsets import StatefulSetStrategy

S = StatefulSetStrategy()
NOW = dt.datetime(2026, 1, 1, 1, 0, tzinfo=dt.UTC)


def sts(**spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {"name": "db", "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {
                    "containers": [
                        {
                            "name": "pg",
                            "image": "postgres:16",
                            "volumeMounts": [{"name": "data", "mountPath": "/var/lib/pg"}],
                        }
                    ]
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                }
            ],
        },
    }
    obj["spec"].update(spec)
    S.prepare_for_create(obj)
    S.defaults(obj)
    return obj


def test_defaults() -> None:
    obj = sts()
    spec = obj["spec"]
    assert spec["replicas"] == 1
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    claim = spec["volumeClaimTemplates"][0]
    assert claim["apiVersion"] == "v1" and claim["kind"] == "PersistentVolumeClaim"
    assert claim["spec"]["volumeMode"] == "Filesystem"
    assert claim["status"] == {"phase": "Pending"}
    assert obj["status"] == {"replicas": 0, "availableReplicas": 0}


def test_on_delete_gets_no_partition() -> None:
    assert sts(updateStrategy={"type": "OnDelete"})["spec"]["updateStrategy"] == {"type": "OnDelete"}


def test_valid_with_claim_mounts() -> None:
    assert S.validate(sts()) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda o: o["spec"].update(podManagementPolicy="Random"),
            "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
            id="pod-management",
        ),
        pytest.param(
            lambda o: o["spec"].update(
                updateStrategy={"type": "OnDelete", "rollingUpdate": {"partition": 1}}
            ),
            "spec.updateStrategy.rollingUpdate: Invalid value: {\"partition\":1}: only allowed for updateStrategy 'RollingUpdate'",
            id="on-delete-rolling",
        ),
        pytest.param(
            lambda o: o["spec"]["updateStrategy"]["rollingUpdate"].update(partition=-1),
            "spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or equal to 0",
            id="partition",
        ),
        pytest.param(
            lambda o: o["spec"]["persistentVolumeClaimRetentionPolicy"].update(whenScaled="Keep"),
            'spec.persistentVolumeClaimRetentionPolicy.whenScaled: Unsupported value: "Keep": supported values: "Retain", "Delete"',
            id="retention",
        ),
        pytest.param(
            lambda o: o["spec"].update(selector={}),
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for statefulset",
            id="empty-selector",
        ),
        pytest.param(
            lambda o: o["spec"]["template"]["metadata"].update(labels={"app": "web"}),
            'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`',
            id="mismatch",
        ),
        pytest.param(
            lambda o: o["spec"].update(ordinals={"start": -2}),
            "spec.ordinals.start: Invalid value: -2: must be greater than or equal to 0",
            id="ordinals",
        ),
        pytest.param(
            lambda o: o["spec"]["template"]["spec"].update(restartPolicy="OnFailure"),
            'spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: "Always"',
            id="restart",
        ),
    ],
)
def test_validation(mutate: Any, expected: str) -> None:
    obj = sts()
    mutate(obj)
    assert expected in [e.text() for e in S.validate(obj)]


FORBIDDEN = (
    "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
    "'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)


@pytest.mark.parametrize(
    ("mutate", "forbidden"),
    [
        pytest.param(lambda s: s.update(replicas=5), False, id="replicas"),
        pytest.param(
            lambda s: s["template"]["spec"]["containers"][0].update(image="postgres:17"), False, id="template"
        ),
        pytest.param(lambda s: s.update(updateStrategy={"type": "OnDelete"}), False, id="update-strategy"),
        pytest.param(lambda s: s.update(minReadySeconds=10), False, id="min-ready"),
        pytest.param(lambda s: s.update(serviceName="other"), True, id="service-name"),
        pytest.param(
            lambda s: s["volumeClaimTemplates"][0]["spec"]["resources"]["requests"].update(storage="2Gi"),
            True,
            id="claim-templates",
        ),
        pytest.param(lambda s: s.update(podManagementPolicy="Parallel"), True, id="pod-management"),
    ],
)
def test_spec_immutability(mutate: Any, forbidden: bool) -> None:
    old = sts()
    new = copy.deepcopy(old)
    mutate(new["spec"])
    assert (FORBIDDEN in [e.text() for e in S.validate_update(new, old)]) is forbidden


def test_row_and_scale() -> None:
    obj = sts(replicas=3)
    obj["status"] = {"replicas": 3, "readyReplicas": 1}
    assert [c.name for c in S.columns()] == ["Name", "Ready", "Age", "Containers", "Images"]
    assert S.row(obj, NOW) == ["db", "1/3", "60m", "pg", "postgres:16"]
    assert S.scale_of(obj) == (3, 3, "app=db")
    S.set_replicas(obj, 0)
    assert obj["spec"]["replicas"] == 0
    assert S.info.short_names == ("sts",) and S.info.categories == ("all",)


@pytest.mark.parametrize(
    ("name", "ok"),
    [pytest.param("db-0", True, id="label"), pytest.param("db.example", False, id="dots-rejected")],
)
def test_names_are_dns_labels(name: str, ok: bool) -> None:
    assert (S.name_rule(name) == []) is ok
