"""The official `kubernetes` Python client works unchanged: list, watch with resume, create, patch, delete."""

from __future__ import annotations

import threading

import pytest
from kubernetes import client, config, watch

from skiff.testing import ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(server.kubeconfig))


def test_crud_through_python_client(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    apps = client.AppsV1Api(api)
    core.create_namespaced_config_map("default", {"metadata": {"name": "py"}, "data": {"a": "1"}})
    assert core.read_namespaced_config_map("py", "default").data == {"a": "1"}
    core.patch_namespaced_config_map("py", "default", {"data": {"b": "2"}})
    assert core.read_namespaced_config_map("py", "default").data == {"a": "1", "b": "2"}
    names = [cm.metadata.name for cm in core.list_namespaced_config_map("default").items]
    assert "py" in names
    dep = {
        "metadata": {"name": "pyd"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "pyd"}},
                 "template": {"metadata": {"labels": {"app": "pyd"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    }
    apps.create_namespaced_deployment("default", dep)
    apps.patch_namespaced_deployment_scale("pyd", "default", {"spec": {"replicas": 4}})
    assert apps.read_namespaced_deployment("pyd", "default").spec.replicas == 4
    core.delete_namespaced_config_map("py", "default")
    with pytest.raises(client.ApiException) as e:
        core.read_namespaced_config_map("py", "default")
    assert e.value.status == 404


def test_watch_resumes_from_last_resource_version(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    start = core.list_namespaced_config_map("default").metadata.resource_version
    for i in range(3):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"wr{i}"}})
    seen: list[tuple[str, str]] = []
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_config_map, "default", resource_version=start, timeout_seconds=5):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) == 3:
            w.stop()
    assert seen == [("ADDED", "wr0"), ("ADDED", "wr1"), ("ADDED", "wr2")]
    last = core.read_namespaced_config_map("wr2", "default").metadata.resource_version
    # Resume after a disconnect from the last seen revision: only later changes arrive.
    core.patch_namespaced_config_map("wr1", "default", {"data": {"x": "y"}})
    core.delete_namespaced_config_map("wr0", "default")
    resumed: list[tuple[str, str]] = []
    w2 = watch.Watch()
    for ev in w2.stream(core.list_namespaced_config_map, "default", resource_version=last, timeout_seconds=5):
        resumed.append((ev["type"], ev["object"].metadata.name))
        if len(resumed) == 2:
            w2.stop()
    assert resumed == [("MODIFIED", "wr1"), ("DELETED", "wr0")]


def test_concurrent_read_modify_write_loses_no_update(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map("default", {"metadata": {"name": "counter"}, "data": {"n": "0"}})
    writers, per_writer = 6, 10
    conflicts = [0]
    lock = threading.Lock()

    def work() -> None:
        local = client.CoreV1Api(api)
        done = 0
        while done < per_writer:
            cm = local.read_namespaced_config_map("counter", "default")
            cm.data["n"] = str(int(cm.data["n"]) + 1)
            try:
                local.replace_namespaced_config_map("counter", "default", cm)
                done += 1
            except client.ApiException as e:
                assert e.status == 409, e
                with lock:
                    conflicts[0] += 1

    threads = [threading.Thread(target=work) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert core.read_namespaced_config_map("counter", "default").data["n"] == str(writers * per_writer)
