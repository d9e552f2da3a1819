"""Making a container's image present before it starts: pull policy, pull secrets, back-off and events.

Mirrors the kubelet's `pkg/kubelet/images/image_manager.go` (`EnsureImageExists`): the pull policy decides
whether to pull (Always; IfNotPresent; Never → `ErrImageNeverPull`), a failed pull is `ErrImagePull` and starts
a per (pod, image) back-off during which the kubelet reports `ImagePullBackOff` without pulling; events are
`Pulling`, `Pulled`, `Failed`, `BackOff` and `ErrImageNeverPull` with upstream's wording. Credentials come from
the pod's `imagePullSecrets` (`kubernetes.io/dockerconfigjson` or `dockercfg`), matched to the image's
registry by `skiff.agent.runtime.credentials.image_credentials`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from skiff.agent.backoff import Backoff, go_duration, image_backoff_message, image_key
from skiff.agent.runtime.credentials import image_credentials
from skiff.agent.runtime.interface import ImageInfo, ImagePullError, Runtime, SandboxConfig
from skiff.api.errors import ApiError
from skiff.api.meta import Obj
from skiff.client.events import EventBroadcaster
from skiff.client.interface import Client, Resource

SECRETS = Resource("", "v1", "secrets")
COMPONENT = "kubelet"

ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACK_OFF = "ImagePullBackOff"
ERR_IMAGE_NEVER_PULL = "ErrImageNeverPull"


class ImagePullFailure(Exception):
    """The image is not available; `reason` is the container's waiting reason (`ErrImagePull`,
    `ImagePullBackOff`, `ErrImageNeverPull`) and `message` its text."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def _has_tag_or_digest(image: str) -> tuple[bool, str]:
    """(tagged or digested, tag) of an image reference."""
    if "@" in image:
        return True, ""
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        return True, last.rsplit(":", 1)[1]
    return False, ""


def pull_policy(container: Obj) -> str:
    """The container's imagePullPolicy, defaulted as the API server does: Always for `:latest` or untagged
    images, IfNotPresent otherwise."""
    policy = container.get("imagePullPolicy")
    if policy in ("Always", "IfNotPresent", "Never"):
        return str(policy)
    tagged, tag = _has_tag_or_digest(str(container.get("image") or ""))
    return "Always" if not tagged or tag == "latest" else "IfNotPresent"


def should_pull(policy: str, present: bool) -> bool:
    """`shouldPullImage`: Never never pulls; IfNotPresent pulls only a missing image; Always always pulls."""
    if policy == "Never":
        return False
    return policy == "Always" or not present


class ImagePuller:
    """Ensures images for one kubelet. `backoff` is shared with nothing else (keys are per pod and image)."""

    def __init__(self, runtime: Runtime, client: Client, events: EventBroadcaster, *,
                 backoff: Backoff | None = None, clock: Callable[[], float] = time.time,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self.runtime = runtime
        self.client = client
        self.events = events
        self.backoff = backoff or Backoff()
        self.clock = clock  # the back-off's clock (virtual in tests)
        self.timer = timer  # measures pull durations for the `Pulled` event

    async def _event(self, pod: Obj, type_: str, reason: str, message: str) -> None:
        await self.events.record(pod, type_, reason, message, COMPONENT)

    async def pull_secrets(self, pod: Obj) -> list[Obj]:
        """The pod's image pull secrets that exist; a missing one is reported as upstream does and skipped."""
        ns = str((pod.get("metadata") or {}).get("namespace") or "")
        found: list[Obj] = []
        missing: list[str] = []
        for ref in (pod.get("spec") or {}).get("imagePullSecrets") or []:
            name = str((ref or {}).get("name") or "")
            if not name:
                continue
            try:
                found.append(await self.client.get(SECRETS, ns, name))
            except ApiError as e:
                if e.code != 404:
                    raise
                missing.append(name)
        if missing:
            await self._event(pod, "Warning", "FailedToRetrieveImagePullSecret",
                              f"Unable to retrieve some image pull secrets ({', '.join(missing)}); attempting "
                              "to pull the image may not succeed.")
        return found

    async def ensure_image(self, pod: Obj, container: Obj, sandbox: SandboxConfig | None) -> ImageInfo:
        """The image of `container`, pulled if the policy says so; raises `ImagePullFailure`."""
        image = str(container.get("image") or "")
        policy = pull_policy(container)
        present = await self.runtime.image_status(image)
        if not should_pull(policy, present is not None):
            if present is not None:
                await self._event(pod, "Normal", "Pulled", f'Container image "{image}" already present on machine')
                return present
            message = f'Container image "{image}" is not present with pull policy of Never'
            await self._event(pod, "Warning", ERR_IMAGE_NEVER_PULL, message)
            raise ImagePullFailure(ERR_IMAGE_NEVER_PULL, message)
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        key = image_key(uid, image)
        if self.backoff.in_backoff_since_update(key, self.clock()):
            message = image_backoff_message(image)
            await self._event(pod, "Normal", "BackOff", message)
            raise ImagePullFailure(IMAGE_PULL_BACK_OFF, message)
        await self._event(pod, "Normal", "Pulling", f'Pulling image "{image}"')
        began = self.timer()
        try:
            auth = await image_credentials(await self.pull_secrets(pod), image)
            await self.runtime.pull_image(image, auth, sandbox)
            info = await self.runtime.image_status(image)
        except ImagePullError as e:
            message = f'Failed to pull image "{image}": {e.message}'
            await self._event(pod, "Warning", "Failed", message)
            self.backoff.next(key, self.clock())
            raise ImagePullFailure(ERR_IMAGE_PULL, message) from e
        if info is None:
            message = f'Failed to pull image "{image}": image not found after pull'
            self.backoff.next(key, self.clock())
            raise ImagePullFailure(ERR_IMAGE_PULL, message)
        took = go_duration(int((self.timer() - began) * 1000) / 1000)
        self.backoff.reset(key)
        await self._event(pod, "Normal", "Pulled", f'Successfully pulled image "{image}" in {took} ({took} including '
                                                   f"waiting). Image size: {info.size} bytes.")
        return info
