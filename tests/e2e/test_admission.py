"""Admission plugins and the quota controller, driven by the real kubectl: LimitRanger defaults and bounds,
ResourceQuota refusals with upstream's messages and used/hard after the controller syncs, Priority."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import pytest

from skiff.testing import ServerProcess, have_kubectl, start_server, yaml_docs

pytestmark = pytest.mark.e2e

NS = "team-a"


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    if not have_kubectl():
        pytest.skip("kubectl is not installed (the README's test command installs it)")
    srv = start_server(tmp_path_factory.mktemp("admission"))
    try:
        srv.kubectl("create", "namespace", NS)
        srv.kubectl(
            "apply",
            "-f",
            "-",
            input=yaml_docs(
                {
                    "apiVersion": "v1",
                    "kind": "LimitRange",
                    "metadata": {"name": "defaults", "namespace": NS},
                    "spec": {
                        "limits": [
                            {
                                "type": "Container",
                                "default": {"cpu": "200m", "memory": "128Mi"},
                                "defaultRequest": {"cpu": "100m", "memory": "64Mi"},
                                "max": {"cpu": "1"},
                            }
                        ]
                    },
                },
                {
                    "apiVersion": "v1",
                    "kind": "ResourceQuota",
                    "metadata": {"name": "compute", "namespace": NS},
                    "spec": {"hard": {"pods": "2", "requests.cpu": "1", "limits.memory": "1Gi"}},
                },
            ),
        )
        yield srv
    finally:
        srv.stop()


def wait_for(cond: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def quota_used(kube: ServerProcess) -> dict[str, str]:
    out = kube.kubectl("-n", NS, "get", "resourcequota", "compute", "-o", "json").stdout
    return dict((json.loads(out).get("status") or {}).get("used") or {})


def test_quota_status_is_synced_by_the_controller(kube: ServerProcess) -> None:
    wait_for(
        lambda: quota_used(kube) == {"pods": "0", "requests.cpu": "0", "limits.memory": "0"}, "quota sync"
    )
    out = kube.kubectl("-n", NS, "get", "quota").stdout
    assert (
        "compute" in out
        and "pods: 0/2" in out
        and "requests.cpu: 0/1" in out
        and "limits.memory: 0/1Gi" in out
    )


def test_kubectl_run_gets_limit_range_defaults(kube: ServerProcess) -> None:
    kube.kubectl("-n", NS, "run", "web", "--image=nginx")
    pod = kube.kubectl_json("-n", NS, "get", "pod", "web")
    assert pod["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "200m", "memory": "128Mi"},
        "requests": {"cpu": "100m", "memory": "64Mi"},
    }
    assert pod["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu, memory request for container web; cpu, memory limit for container web"
    )
    assert pod["status"]["qosClass"] == "Burstable"
    assert (pod["spec"]["priority"], pod["spec"]["preemptionPolicy"]) == (0, "PreemptLowerPriority")


def test_limit_range_max_is_enforced(kube: ServerProcess) -> None:
    big = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "big", "namespace": NS},
        "spec": {"containers": [{"name": "app", "image": "nginx", "resources": {"limits": {"cpu": "2"}}}]},
    }
    res = kube.kubectl("apply", "-f", "-", input=yaml_docs(big), check=False)
    assert res.returncode != 0
    assert 'pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2' in res.stderr


def test_exceeding_the_quota_is_refused_and_describe_shows_usage(kube: ServerProcess) -> None:
    kube.kubectl("-n", NS, "run", "worker", "--image=nginx")
    res = kube.kubectl("-n", NS, "run", "third", "--image=nginx", check=False)
    assert res.returncode != 0
    assert (
        'Error from server (Forbidden): pods "third" is forbidden: exceeded quota: compute, requested: pods=1, '
        "used: pods=2, limited: pods=2"
    ) in res.stderr
    wait_for(
        lambda: quota_used(kube) == {"pods": "2", "requests.cpu": "200m", "limits.memory": "256Mi"},
        "usage of two pods",
    )
    described = kube.kubectl("-n", NS, "describe", "quota", "compute").stdout
    rows = {line.split()[0]: line.split()[1:] for line in described.splitlines() if line.strip()}
    assert rows["pods"] == ["2", "2"]
    assert rows["requests.cpu"] == ["200m", "1"]
    assert rows["limits.memory"] == ["256Mi", "1Gi"]
    got = kube.kubectl("-n", NS, "get", "quota", "compute").stdout
    assert "pods: 2/2" in got and "limits.memory: 256Mi/1Gi" in got

    kube.kubectl("-n", NS, "delete", "pod", "worker", "--wait=false")
    wait_for(lambda: quota_used(kube).get("pods") == "1", "usage released after delete")


def test_pod_naming_a_missing_priority_class_is_refused(kube: ServerProcess) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "urgent", "namespace": "default"},
        "spec": {"priorityClassName": "nope", "containers": [{"name": "app", "image": "nginx"}]},
    }
    res = kube.kubectl("apply", "-f", "-", input=yaml_docs(pod), check=False)
    assert res.returncode != 0
    assert 'pods "urgent" is forbidden: no PriorityClass with name nope was found' in res.stderr


def test_system_priority_classes_are_listed(kube: ServerProcess) -> None:
    names = kube.kubectl("get", "priorityclass", "-o", "name").stdout.split()
    assert {
        "priorityclass.scheduling.k8s.io/system-cluster-critical",
        "priorityclass.scheduling.k8s.io/system-node-critical",
    } <= set(names)


def test_global_default_priority_class_applies(kube: ServerProcess) -> None:
    kube.kubectl("create", "priorityclass", "standard", "--value=1000", "--global-default=true")
    res = kube.kubectl("create", "priorityclass", "other", "--value=5", "--global-default=true", check=False)
    assert res.returncode != 0
    assert (
        'priorityclasses.scheduling.k8s.io "other" is forbidden: PriorityClass standard is already marked as '
        "default. Only one default can exist"
    ) in res.stderr
    kube.kubectl("run", "plain", "--image=nginx")
    spec = kube.kubectl_json("get", "pod", "plain")["spec"]
    assert (spec["priorityClassName"], spec["priority"]) == ("standard", 1000)
