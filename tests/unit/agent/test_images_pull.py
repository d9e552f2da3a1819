"""Image pulls: pull policy, pull secrets, ErrImagePull → ImagePullBackOff, and the kubelet's events."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from skiff.agent.images_pull import SECRETS, ImagePuller, ImagePullFailure, pull_policy, should_pull
from skiff.agent.runtime.fake import FakeRuntime
from skiff.api.meta import Obj
from skiff.apiserver.local import LocalBackend
from skiff.client.events import EventBroadcaster
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import EVENTS, ListOptions
from skiff.testing import start_control_plane

REGISTRY_IMAGE = "127.0.0.1:5000/private/app:1"


@pytest.mark.parametrize(
    ("container", "policy"),
    [
        pytest.param({"image": "nginx"}, "Always", id="untagged"),
        pytest.param({"image": "nginx:latest"}, "Always", id="latest"),
        pytest.param({"image": "nginx:1.27"}, "IfNotPresent", id="tagged"),
        pytest.param({"image": "127.0.0.1:5000/app"}, "Always", id="registry-port-is-not-a-tag"),
        pytest.param({"image": "app@sha256:" + "a" * 64}, "IfNotPresent", id="digest"),
        pytest.param({"image": "nginx", "imagePullPolicy": "Never"}, "Never", id="explicit"),
    ],
)
def test_pull_policy_defaults_as_the_api_server(container: Obj, policy: str) -> None:
    assert pull_policy(container) == policy


@pytest.mark.parametrize(
    ("policy", "present", "pull"),
    [
        pytest.param("Always", True, True, id="always-present"),
        pytest.param("IfNotPresent", True, False, id="if-not-present-present"),
        pytest.param("IfNotPresent", False, True, id="if-not-present-missing"),
        pytest.param("Never", False, False, id="never"),
    ],
)
def test_should_pull(policy: str, present: bool, pull: bool) -> None:
    assert should_pull(policy, present) is pull


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Env:
    client: InProcessClient
    runtime: FakeRuntime
    clock: Clock
    puller: ImagePuller

    async def events(self, reason: str) -> list[str]:
        items = (await self.client.list(EVENTS, "default", ListOptions()))["items"]
        return [str(e["message"]) for e in items if e.get("reason") == reason]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    plane = await start_control_plane(tmp_path)
    client = InProcessClient(LocalBackend(plane))
    clock = Clock()
    runtime = FakeRuntime(clock)
    try:
        yield Env(client, runtime, clock, ImagePuller(runtime, client, EventBroadcaster(client), clock=clock))
    finally:
        await plane.store.close()


def make_pod(secrets: tuple[str, ...] = ()) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
            "spec": {"imagePullSecrets": [{"name": s} for s in secrets], "containers": []}}


def pull_secret(name: str, registry: str, user: str, password: str) -> Obj:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = json.dumps({"auths": {registry: {"auth": auth}}}).encode()
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "default"},
            "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": base64.b64encode(config).decode()}}


async def test_a_present_image_is_not_pulled_with_if_not_present(env: Env) -> None:
    env.runtime.add_image("web:1")
    info = await env.puller.ensure_image(make_pod(), {"image": "web:1"}, None)
    assert info.repo_tags == ["web:1"]
    assert env.runtime.call_names("pull_image") == []
    assert await env.events("Pulled") == ['Container image "web:1" already present on machine']


async def test_always_pulls_and_reports_size_and_duration(env: Env) -> None:
    await env.puller.ensure_image(make_pod(), {"image": "web:latest"}, None)
    assert env.runtime.call_names("pull_image") == ["web:latest"]
    assert await env.events("Pulling") == ['Pulling image "web:latest"']
    [pulled] = await env.events("Pulled")
    assert re.fullmatch(r'Successfully pulled image "web:latest" in (\S+) \(\1 including waiting\)\. '
                        r"Image size: 1000 bytes\.", pulled), pulled


async def test_never_with_a_missing_image_is_err_image_never_pull(env: Env) -> None:
    with pytest.raises(ImagePullFailure) as e:
        await env.puller.ensure_image(make_pod(), {"image": "web:1", "imagePullPolicy": "Never"}, None)
    assert e.value.reason == "ErrImageNeverPull"
    assert e.value.message == 'Container image "web:1" is not present with pull policy of Never'
    assert await env.events("ErrImageNeverPull") == [e.value.message]


async def test_a_failed_pull_backs_off_then_retries(env: Env) -> None:
    env.runtime.pull_failures["web:1"] = "not found"
    with pytest.raises(ImagePullFailure) as first:
        await env.puller.ensure_image(make_pod(), {"image": "web:1"}, None)
    assert (first.value.reason, first.value.message) == ("ErrImagePull", 'Failed to pull image "web:1": not found')
    assert await env.events("Failed") == ['Failed to pull image "web:1": not found']
    with pytest.raises(ImagePullFailure) as second:
        await env.puller.ensure_image(make_pod(), {"image": "web:1"}, None)
    assert (second.value.reason, second.value.message) == ("ImagePullBackOff", 'Back-off pulling image "web:1"')
    assert await env.events("BackOff") == ['Back-off pulling image "web:1"']
    assert env.runtime.call_names("pull_image") == ["web:1"]
    del env.runtime.pull_failures["web:1"]
    env.clock.t += 10
    await env.puller.ensure_image(make_pod(), {"image": "web:1"}, None)
    assert env.runtime.call_names("pull_image") == ["web:1", "web:1"]


@pytest.mark.parametrize(
    ("password", "ok"),
    [pytest.param("s3cret", True, id="right-password"), pytest.param("wrong", False, id="wrong-password")],
)
async def test_credentials_come_from_the_pods_pull_secrets(env: Env, password: str, ok: bool) -> None:
    await env.client.create(SECRETS, "default", pull_secret("regcred", "127.0.0.1:5000", "alice", password))
    env.runtime.required_auth[REGISTRY_IMAGE] = ("alice", "s3cret")
    if ok:
        await env.puller.ensure_image(make_pod(("regcred",)), {"image": REGISTRY_IMAGE}, None)
    else:
        with pytest.raises(ImagePullFailure) as e:
            await env.puller.ensure_image(make_pod(("regcred",)), {"image": REGISTRY_IMAGE}, None)
        assert e.value.reason == "ErrImagePull" and "401 Unauthorized" in e.value.message
    auth = env.runtime.pulled_with[REGISTRY_IMAGE]
    assert auth is not None and (auth.username, auth.password) == ("alice", password)


async def test_a_missing_pull_secret_is_reported_and_the_pull_tried_anyway(env: Env) -> None:
    env.runtime.add_image("web:latest")
    await env.puller.ensure_image(make_pod(("nope",)), {"image": "web:latest"}, None)
    assert await env.events("FailedToRetrieveImagePullSecret") == [
        "Unable to retrieve some image pull secrets (nope); attempting to pull the image may not succeed."]
    assert env.runtime.pulled_with["web:latest"] is None
