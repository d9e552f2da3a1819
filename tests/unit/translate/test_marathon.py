"""The Marathon translator: ids, ports, resources, checks, placement, upgrades and the reverse view are
table-tested on the `Workload` and the rendered objects; every shipped example translates with exactly the
warnings listed here, and its objects are accepted by the API server and run on simulated nodes."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from skiff.agent.simulated import SimulatedNodes
from skiff.apiserver.local import LocalBackend
from skiff.client.events import EventBroadcaster
from skiff.client.factory import InformerFactory
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import DEPLOYMENTS, NAMESPACES, NODES, PODS, PVCS, SERVICES, Patch, Resource
from skiff.controllers.manager import controllers_for
from skiff.scheduler.scheduler import Scheduler
from skiff.testing import eventually, start_control_plane
from skiff.translate.marathon import (
    APP_DEFINITION_ANNOTATION,
    DEFAULT_IMAGE,
    MESOS_ROLE_LABEL,
    MarathonWorkload,
    app_to_workload,
    marathon_app_view,
    render_app,
    translate_marathon,
)
from skiff.translate.model import LABEL_MARATHON_APP, NodeRule, TranslateError, Translation

EXAMPLES = Path(__file__).resolve().parents[4] / "shared" / "examples" / "marathon"
Obj = dict[str, Any]


def tr(doc: Any, namespace: str = "marathon") -> Translation:
    return translate_marathon("app.json", json.dumps(doc), namespace)


def workload(app: Obj) -> MarathonWorkload:
    w, _, _ = app_to_workload(app, "app.json", "marathon")
    assert isinstance(w, MarathonWorkload)
    return w


def warnings_of(app: Obj) -> list[tuple[str, str]]:
    return [(w.key, w.why) for w in app_to_workload(app, "app.json", "marathon")[2]]


def kind(objs: list[Obj], k: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == k]


def pod_spec(objs: list[Obj]) -> Obj:
    return dict(kind(objs, "Deployment")[0]["spec"]["template"]["spec"])


def env_of(objs: list[Obj]) -> dict[str, Any]:
    c = pod_spec(objs)["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


IMG = {"type": "DOCKER", "docker": {"image": "busybox"}}  # a container, HOST networking
DOCKER = {"type": "DOCKER", "docker": {"image": "nginx:1.25", "network": "BRIDGE",
                                       "portMappings": [{"containerPort": 80, "hostPort": 0}]}}

# ---- the examples ------------------------------------------------------------------------------------------

NO_CONTAINER = ("container", "no container: Mesos runs the command on the agent host")
DEFAULT_PORT = ("portDefinitions", "not given: Marathon allocates one dynamic host port ($PORT0)")
EXPECTED_WARNINGS = {
    "000-high-priority-app.marathon.json": [
        NO_CONTAINER, DEFAULT_PORT,
        ("acceptedResourceRoles", f"here pods need nodes labelled {MESOS_ROLE_LABEL}=high-priority"),
    ],
    "000-isolated-app.marathon.json": [
        ("container.docker.parameters[0]", "docker parameter 'cpuset-cpus' is not applied"),
        ("container.docker.parameters[1]", "docker parameter 'memory' is not applied"),
    ],
    "000-user-service.marathon.json": [
        ("container.docker.portMappings[0].hostPort", "0 asks Marathon for a dynamic host port ($PORT0)"),
    ],
    "001-web-app.marathon.json": [NO_CONTAINER, DEFAULT_PORT],
}


def example_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.json")) if EXAMPLES.is_dir() else []


def test_every_example_is_listed() -> None:
    assert {p.name for p in example_files()} == set(EXPECTED_WARNINGS)


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.name)
def test_example_translates_with_exactly_the_expected_warnings(path: Path) -> None:
    t = translate_marathon(path.name, path.read_text())
    got = [(w.key, w.why) for w in t.warnings]
    expected = EXPECTED_WARNINGS[path.name]
    assert [k for k, _ in got] == [k for k, _ in expected]
    for (_, why), (_, fragment) in zip(got, expected, strict=True):
        assert fragment in why
    assert all(w.file == path.name for w in t.warnings)
    assert [o["kind"] for o in t.objects][:1] == ["Deployment"]


def test_user_service_example_in_detail() -> None:
    t = translate_marathon("u.json", (EXAMPLES / "000-user-service.marathon.json").read_text())
    d = kind(t.objects, "Deployment")[0]
    assert d["metadata"]["name"] == "user-service"
    assert d["spec"]["replicas"] == 3
    # mhc 0.5 → 50% (1 of 3); moc 0.2 → floor(3 * 1.2) - 3 = 0 extra instances.
    assert d["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": "50%"}
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "user-service:latest"
    assert c["command"] == ["/bin/sh", "-c", "java -jar user-service.jar"]
    assert c["resources"] == {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"memory": "512Mi"}}
    assert c["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8080, "scheme": "HTTP"}
    assert (c["livenessProbe"]["periodSeconds"], c["livenessProbe"]["timeoutSeconds"],
            c["livenessProbe"]["failureThreshold"]) == (10, 5, 3)
    assert c["startupProbe"]["failureThreshold"] == 3 + 3  # 30 s grace at 10 s intervals, then 3 failures
    anti = d["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert anti["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] == "kubernetes.io/hostname"
    env = env_of(t.objects)
    assert env["DATABASE_URL"] == "postgresql://user:pass@db:5432/users"
    assert (env["PORT0"], env["PORT"], env["PORTS"]) == ("8080", "8080", "8080")
    assert env["MARATHON_APP_ID"] == "/user-service"
    assert env["HOST"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
    lb = [s for s in kind(t.objects, "Service") if s["spec"].get("type") == "LoadBalancer"]
    assert lb[0]["spec"]["ports"] == [{"name": "tcp-10000", "protocol": "TCP", "port": 10000, "targetPort": 8080}]


# ---- ids and names -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("app_id", "name", "label"), [
    pytest.param("/prod/api/users", "prod-api-users", "prod.api.users", id="nested"),
    pytest.param("web-app", "web-app", "web-app", id="relative-to-root"),
    pytest.param("/a/./b/../c", "a-c", "a.c", id="dot-segments"),
    pytest.param("/svc.v2", "svc-v2", "svc.v2", id="dotted-segment"),
    pytest.param("/1st", "app-1st", "1st", id="digit-first"),
    pytest.param("//trailing//", "trailing", "trailing", id="extra-slashes"),
])
def test_app_id_to_name(app_id: str, name: str, label: str) -> None:
    w = workload({"id": app_id, "cmd": "x"})
    assert (w.name, w.labels[LABEL_MARATHON_APP]) == (name, label)


def test_long_ids_are_shortened_deterministically() -> None:
    long_id = "/" + "/".join(["segment-" + "x" * 20] * 5)
    a, b = workload({"id": long_id, "cmd": "x"}), workload({"id": long_id, "cmd": "x"})
    assert a.name == b.name and len(a.name) <= 63 and len(a.labels[LABEL_MARATHON_APP]) <= 63
    assert a.annotations["skiff.io/marathon-app-id"] == long_id


@pytest.mark.parametrize(("app_id", "message"), [
    pytest.param("/Upper", "must fully match regular expression", id="uppercase"),
    pytest.param("/a b", "must fully match regular expression", id="space"),
    pytest.param("/-dash", "must fully match regular expression", id="leading-dash"),
    pytest.param("/a/tasks", "must not end with any of the following reserved keywords", id="reserved"),
    pytest.param("/", "Path must contain at least one path element", id="root"),
    pytest.param(None, "error.path.missing", id="missing"),
])
def test_ids_marathon_refuses(app_id: str | None, message: str) -> None:
    with pytest.raises(TranslateError) as e:
        tr({"id": app_id, "cmd": "x"} if app_id is not None else {"cmd": "x"})
    assert e.value.key == "id" and message in e.value.why and e.value.file == "app.json"


def test_groups_resolve_ids_and_refuse_foreign_children() -> None:
    t = tr({"id": "/prod", "apps": [{"id": "web", "cmd": "x"}],
            "groups": [{"id": "api", "apps": [{"id": "/prod/api/users", "cmd": "y"}]}]})
    assert [d["metadata"]["name"] for d in kind(t.objects, "Deployment")] == ["prod-web", "prod-api-users"]
    with pytest.raises(TranslateError) as e:
        tr({"id": "/prod", "apps": [{"id": "/other/web", "cmd": "x"}]})
    assert (e.value.key, e.value.why) == ("apps[0].id", "Identifier is not child of '/prod'")


def test_list_of_apps_and_name_collisions() -> None:
    t = tr([{"id": "/a", "cmd": "x"}, {"id": "/b", "cmd": "y"}])
    assert [d["metadata"]["name"] for d in kind(t.objects, "Deployment")] == ["a", "b"]
    with pytest.raises(TranslateError) as e:
        tr([{"id": "/a/b-c", "cmd": "x"}, {"id": "/a-b/c", "cmd": "y"}])
    assert e.value.key == "[1].id" and "a-b-c" in e.value.why


# ---- command, resources, env -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("app", "command", "args", "image"), [
    pytest.param({"cmd": "sleep 1"}, ["/bin/sh", "-c", "sleep 1"], None, DEFAULT_IMAGE, id="cmd-on-host"),
    pytest.param({"args": ["--port", "80"], "container": DOCKER}, None, ["--port", "80"], "nginx:1.25",
                 id="args-keep-entrypoint"),
    pytest.param({"container": DOCKER}, None, None, "nginx:1.25", id="image-only"),
    pytest.param({"cmd": "run", "container": {"type": "MESOS", "docker": {"image": "busybox"}}},
                 ["/bin/sh", "-c", "run"], None, "busybox", id="mesos-containerizer-with-docker-image"),
])
def test_command(app: Obj, command: list[str] | None, args: list[str] | None, image: str) -> None:
    c = workload({"id": "/a", **app}).containers[0]
    assert (c.command, c.args, c.image) == (command, args, image)


@pytest.mark.parametrize(("app", "why"), [
    pytest.param({}, "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.",
                 id="nothing-to-run"),
    pytest.param({"cmd": "a", "args": ["b"]}, "not both", id="cmd-and-args"),
    pytest.param({"cmd": "a", "cpus": 0}, "got 0, expected 0.001 or more", id="no-cpu"),
    pytest.param({"cmd": "a", "instances": -1}, "got -1, expected 0 or more", id="negative-instances"),
    pytest.param({"cmd": "a", "instances": "3"}, "expected an integer, got string", id="string-instances"),
    pytest.param({"cmd": "a", "instances": 10**30}, "expected 2147483647 or less", id="huge-int"),
    pytest.param({"cmd": "a", "env": {"X": 1}}, "expected a string, got number", id="env-number"),
    pytest.param({"cmd": "a", "env": {"X": {"secret": "nope"}}}, "undefined secret", id="env-unknown-secret"),
    pytest.param({"cmd": "a", "constraints": [["hostname", "NEAR"]]}, "Constraint operator must be one of",
                 id="bad-operator"),
    pytest.param({"cmd": "a", "healthChecks": [{"protocol": "HTTP", "portIndex": 3}]},
                 "Health check port indices must address an element", id="bad-port-index"),
    pytest.param({"cmd": "a", "upgradeStrategy": {"minimumHealthCapacity": 1.5}}, "expected 1.0 or less",
                 id="capacity-above-one"),
    pytest.param({"cmd": "a", "portDefinitions": [{"port": 0}], "ports": [0]},
                 "You cannot specify both ports and port definitions", id="ports-twice"),
])
def test_apps_that_cannot_be_translated(app: Obj, why: str) -> None:
    with pytest.raises(TranslateError) as e:
        tr({"id": "/a", **app})
    assert why in e.value.why


@pytest.mark.parametrize(("text", "key", "why"), [
    pytest.param('{"id": "/a", "cmd": "x", "mem": 1e999}', "mem", "inf is not a finite number", id="overflowing-float"),
    pytest.param('{"id": "/a", "cmd": "x", "mem": NaN}', "", "invalid JSON: NaN is not a number", id="nan"),
    pytest.param('{"id": "/a", ', "", "invalid JSON: Expecting property name enclosed in double quotes", id="cut"),
    pytest.param("[" * 100000, "", "invalid JSON", id="deep"),
    pytest.param('"just a string"', "", "expected an object, got string", id="not-an-app"),
])
def test_malformed_text(text: str, key: str, why: str) -> None:
    with pytest.raises(TranslateError) as e:
        translate_marathon("f.json", text)
    assert e.value.key == key and e.value.why.startswith(why)


@pytest.mark.parametrize(("app", "requests", "limits"), [
    pytest.param({}, {"cpu": "1", "memory": "128Mi"}, {"memory": "128Mi"}, id="marathon-defaults"),
    pytest.param({"cpus": 0.25, "mem": 64, "disk": 100}, {"cpu": "250m", "memory": "64Mi",
                                                          "ephemeral-storage": "100Mi"}, {"memory": "64Mi"},
                 id="shares-are-requests-mem-is-a-limit"),
    pytest.param({"cpus": 0.0015, "mem": 0.5}, {"cpu": "2m", "memory": "524288"}, {"memory": "524288"},
                 id="fractions-round-up"),
])
def test_resources(app: Obj, requests: Obj, limits: Obj) -> None:
    objs = render_app(workload({"id": "/a", "cmd": "x", **app}))
    assert pod_spec(objs)["containers"][0]["resources"] == {"requests": requests, "limits": limits}


def test_secrets_env_labels_user_and_docker_parameters() -> None:
    app = {"id": "/a", "cmd": "x", "user": "1000:2000", "portDefinitions": [],
           "secrets": {"s0": {"source": "/prod/db-password"}},
           "env": {"PLAIN": "1", "PASS": {"secret": "s0"}},
           "labels": {"HAPROXY_GROUP": "external", "bad label": "x"},
           "container": {"type": "DOCKER", "docker": {"image": "img", "parameters": [
               {"key": "workdir", "value": "/srv"}, {"key": "read-only", "value": "true"},
               {"key": "cap-add", "value": "CAP_NET_ADMIN"}, {"key": "cap-drop", "value": "ALL"},
               {"key": "env", "value": "FROM_DOCKER=yes"}, {"key": "label", "value": "team=a"},
               {"key": "user", "value": "www-data"}]}}}
    w, _, warns = app_to_workload(app, "app.json", "marathon")
    assert [x.key for x in warns] == ["env.PASS", "labels.bad label", "container.docker.parameters[6]"]
    objs = render_app(w)
    c = pod_spec(objs)["containers"][0]
    env = env_of(objs)
    assert env["PLAIN"] == "1" and env["FROM_DOCKER"] == "yes"
    assert env["PASS"] == {"secretKeyRef": {"name": "prod-db-password", "key": "value"}}
    assert env["MARATHON_APP_LABEL_HAPROXY_GROUP"] == "external"
    assert c["workingDir"] == "/srv"
    assert c["securityContext"] == {"runAsUser": 1000, "runAsGroup": 2000, "readOnlyRootFilesystem": True,
                                    "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}
    d = kind(objs, "Deployment")[0]
    assert d["metadata"]["labels"]["HAPROXY_GROUP"] == "external"
    assert d["spec"]["template"]["metadata"]["labels"]["team"] == "a"


@pytest.mark.parametrize(("key", "value", "fragment"), [
    pytest.param("backoffSeconds", 5, "kubelet's restart back-off", id="backoff"),
    pytest.param("maxLaunchDelaySeconds", 60, "kubelet's restart back-off", id="launch-delay"),
    pytest.param("fetch", [{"uri": "http://x/a.tgz"}], "not downloaded", id="fetch"),
    pytest.param("dependencies", ["/db"], "no particular order", id="dependencies"),
    pytest.param("gpus", 1, "GPUs are not scheduled", id="gpus"),
    pytest.param("killSelection", "OLDEST_FIRST", "youngest", id="kill-oldest"),
    pytest.param("surprise", 1, "unknown key", id="unknown"),
])
def test_keys_that_only_warn(key: str, value: Any, fragment: str) -> None:
    warns = warnings_of({"id": "/a", "cmd": "x", "container": IMG, "portDefinitions": [], key: value})
    assert [k for k, _ in warns] == [key] and fragment in warns[0][1]


# ---- ports and checks --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("app", "ports", "warned"), [
    pytest.param({"portDefinitions": [{"port": 8080, "name": "http"}], "requirePorts": True},
                 [(8080, "TCP", 8080, 8080, "http")], [], id="required-host-port"),
    pytest.param({"portDefinitions": [{"port": 9000}, {"port": 0, "protocol": "udp,tcp"}]},
                 [(9000, "TCP", None, 9000, ""), (10000, "UDP", None, None, ""), (10000, "TCP", None, None, "")],
                 ["portDefinitions[0].port", "portDefinitions[1].port"], id="dynamic-host-ports"),
    pytest.param({"ports": [10000, 0]}, [(10000, "TCP", None, 10000, ""), (10001, "TCP", None, None, "")],
                 ["ports[0]", "ports[1]"], id="legacy-ports-skip-used-numbers"),
    pytest.param({"container": {"type": "DOCKER", "docker": {"image": "i", "network": "BRIDGE", "portMappings": [
        {"containerPort": 53, "hostPort": 5353, "servicePort": 31053, "protocol": "udp"}]}}},
                 [(53, "UDP", 5353, 31053, "")], [], id="bridge-fixed-host-port"),
    pytest.param({"networks": [{"mode": "container", "name": "dcos"}], "container": {
        "type": "DOCKER", "docker": {"image": "i"}, "portMappings": [{"containerPort": 80, "name": "web"}]}},
                 [(80, "TCP", None, None, "web")], [], id="container-network"),
])
def test_ports(app: Obj, ports: list[tuple[int, str, int | None, int | None, str]], warned: list[str]) -> None:
    base = {"id": "/a", "cmd": "x", "container": IMG, **app}
    got = [(p.container_port, p.protocol, p.host_port, p.published, p.name) for p in workload(base).containers[0].ports]
    assert got == ports
    assert [k for k, _ in warnings_of(base)] == warned


def test_port_environment_follows_marathon() -> None:
    objs = render_app(workload({"id": "/a", "cmd": "x", "portDefinitions": [{"port": 0, "name": "api"},
                                                                            {"port": 0}]}))
    env = env_of(objs)
    assert (env["PORT0"], env["PORT1"], env["PORT"], env["PORTS"], env["PORT_API"]) == \
        ("10000", "10001", "10000", "10000,10001", "10000")


@pytest.mark.parametrize(("check", "probe_kind", "handler", "liveness"), [
    pytest.param({"protocol": "HTTPS", "path": "/hc"}, "httpGet", {"path": "/hc", "port": 80, "scheme": "HTTPS"},
                 True, id="https"),
    pytest.param({"protocol": "MESOS_TCP", "port": 80}, "tcpSocket", {"port": 80}, True, id="mesos-tcp"),
    pytest.param({"protocol": "TCP", "port": 80, "maxConsecutiveFailures": 0}, "tcpSocket", {"port": 80}, False,
                 id="never-kill"),
    pytest.param({"protocol": "COMMAND", "command": {"value": "curl -f localhost"}}, "exec",
                 {"command": ["/bin/sh", "-c", "curl -f localhost"]}, True, id="command"),
])
def test_health_checks(check: Obj, probe_kind: str, handler: Obj, liveness: bool) -> None:
    objs = render_app(workload({"id": "/a", "container": DOCKER, "healthChecks": [check]}))
    c = pod_spec(objs)["containers"][0]
    assert c["readinessProbe"][probe_kind] == handler
    assert ("livenessProbe" in c) is liveness
    assert c["readinessProbe"]["periodSeconds"] == 60 and c["readinessProbe"]["timeoutSeconds"] == 20


def test_health_check_warnings_and_readiness_checks() -> None:
    app = {"id": "/a", "cmd": "x", "container": IMG, "portDefinitions": [{"port": 0, "name": "http-api"}],
           "healthChecks": [{"protocol": "HTTP", "ignoreHttp1xx": True, "delaySeconds": 5, "intervalSeconds": 0}],
           "readinessChecks": [{"name": "ready", "path": "/ready", "httpStatusCodesForReady": [200, 503]}]}
    assert [k for k, _ in warnings_of(app)] == [
        "portDefinitions[0].port", "readinessChecks[0].httpStatusCodesForReady[1]",
        "healthChecks[0].intervalSeconds", "healthChecks[0].delaySeconds", "healthChecks[0].ignoreHttp1xx"]
    c = pod_spec(render_app(workload(app)))["containers"][0]
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/" and c["livenessProbe"]["periodSeconds"] == 1


# ---- placement, upgrades, unreachable ----------------------------------------------------------------------------


@pytest.mark.parametrize(("constraints", "required", "one_per_node", "max_per_node", "spread", "anti", "warned"), [
    pytest.param([["hostname", "UNIQUE"]], [], True, None, [], [], 0, id="unique-hostname"),
    pytest.param([["rack", "UNIQUE"]], [], False, None, [], ["rack"], 0, id="unique-attribute"),
    pytest.param([["rack", "CLUSTER", "r1"]], [NodeRule("rack", "In", ["r1"])], False, None, [], [], 0,
                 id="cluster"),
    pytest.param([["@zone", "GROUP_BY", "3"]], [], False, None, ["topology.kubernetes.io/zone"], [], 0,
                 id="group-by-zone"),
    pytest.param([["hostname", "LIKE", "a1|a2"]], [NodeRule("kubernetes.io/hostname", "In", ["a1", "a2"])],
                 False, None, [], [], 0, id="like-alternation"),
    pytest.param([["os", "UNLIKE", "windows"]], [NodeRule("os", "NotIn", ["windows"])], False, None, [], [], 0,
                 id="unlike"),
    pytest.param([["hostname", "LIKE", "agent-[0-9]+"]], [], False, None, [], [], 1, id="real-regex-warns"),
    pytest.param([["hostname", "MAX_PER", "2"]], [], False, 2, [], [], 0, id="max-per-host"),
    pytest.param([["rack", "MAX_PER", "2"]], [], False, None, ["rack"], [], 1, id="max-per-attribute-warns"),
    pytest.param([["ssd", "IS", "true"]], [NodeRule("ssd", "In", ["true"])], False, None, [], [], 0, id="is"),
    pytest.param([["rack", "CLUSTER"]], [], False, None, [], [], 1, id="cluster-without-value-warns"),
])
def test_constraints(constraints: list[list[str]], required: list[NodeRule], one_per_node: bool,
                     max_per_node: int | None, spread: list[str], anti: list[str], warned: int) -> None:
    app = {"id": "/a", "cmd": "x", "container": IMG, "portDefinitions": [], "constraints": constraints}
    w = workload(app)
    p = w.placement
    assert (p.required, p.one_per_node, p.max_per_node, p.spread_by, w.anti_affinity_keys) == \
        (required, one_per_node, max_per_node, spread, anti)
    assert len(warnings_of(app)) == warned


@pytest.mark.parametrize(("roles", "rule"), [
    pytest.param(["*"], None, id="any"),
    pytest.param(["slave_public"], NodeRule(MESOS_ROLE_LABEL, "In", ["slave_public"]), id="public-agents"),
    pytest.param(["*", "slave_public"], None, id="unreserved-too"),
])
def test_accepted_resource_roles(roles: list[str], rule: NodeRule | None) -> None:
    w = workload({"id": "/a", "cmd": "x", "acceptedResourceRoles": roles})
    assert w.placement.required == ([rule] if rule else [])


@pytest.mark.parametrize(("instances", "mhc", "moc", "surge", "unavailable"), [
    pytest.param(3, None, None, "100%", "0%", id="marathon-defaults"),
    pytest.param(2, 1.0, 0.0, 1, "0%", id="both-bounds-meet-one-extra"),
    pytest.param(3, 0.5, 0.2, 0, "50%", id="surge-floors-like-marathon"),
    pytest.param(10, 0.75, 0.5, "50%", "25%", id="percentages"),
    pytest.param(3, 0.333, 0.0, 0, 2, id="not-a-whole-percent"),
    pytest.param(4, 0.0, 0.25, "25%", "100%", id="kill-all-first"),
])
def test_upgrade_strategy(instances: int, mhc: float | None, moc: float | None, surge: int | str,
                          unavailable: int | str) -> None:
    strategy = {k: v for k, v in (("minimumHealthCapacity", mhc), ("maximumOverCapacity", moc)) if v is not None}
    objs = render_app(workload({"id": "/a", "cmd": "x", "instances": instances, "upgradeStrategy": strategy}))
    assert kind(objs, "Deployment")[0]["spec"]["strategy"]["rollingUpdate"] == \
        {"maxSurge": surge, "maxUnavailable": unavailable}


@pytest.mark.parametrize(("strategy", "seconds"), [
    pytest.param({"inactiveAfterSeconds": 60, "expungeAfterSeconds": 120}, 60, id="seconds"),
    pytest.param({}, 300, id="defaults"),
    pytest.param("disabled", None, id="never-replace"),
])
def test_unreachable_strategy(strategy: Obj | str, seconds: int | None) -> None:
    tolerations = pod_spec(render_app(workload({"id": "/a", "cmd": "x", "unreachableStrategy": strategy})))[
        "tolerations"]
    assert [t["key"] for t in tolerations] == ["node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"]
    assert all(t.get("tolerationSeconds") == seconds and t["effect"] == "NoExecute" for t in tolerations)


def test_volumes() -> None:
    app = {"id": "/db", "cmd": "x", "portDefinitions": [], "secrets": {"tls": {"source": "db-tls"}},
           "container": {"type": "MESOS", "volumes": [
               {"containerPath": "/etc/conf", "hostPath": "/srv/conf", "mode": "RO"},
               {"containerPath": "data", "persistent": {"size": 512}, "mode": "RW"},
               {"containerPath": "/run/secrets/cert.pem", "secret": "tls"},
               {"containerPath": "/ext", "external": {"name": "vol"}}]}}
    t = tr(app)
    assert [w.key for w in t.warnings] == ["container", "container.volumes[1]", "container.volumes[3]"]
    pvc, d = t.objects[0], kind(t.objects, "Deployment")[0]
    assert pvc["kind"] == "PersistentVolumeClaim" and pvc["spec"]["resources"]["requests"]["storage"] == "512Mi"
    spec = d["spec"]["template"]["spec"]
    assert spec["volumes"] == [
        {"name": "vol-0", "hostPath": {"path": "/srv/conf"}},
        {"name": "vol-1", "persistentVolumeClaim": {"claimName": pvc["metadata"]["name"]}},
        {"name": "vol-2", "secret": {"secretName": "db-tls", "items": [{"key": "value", "path": "cert.pem"}]}}]
    assert spec["containers"][0]["volumeMounts"] == [
        {"name": "vol-0", "mountPath": "/etc/conf", "readOnly": True},
        {"name": "vol-1", "mountPath": "/mnt/mesos/sandbox/data"},
        {"name": "vol-2", "mountPath": "/run/secrets", "readOnly": True}]


# ---- the reverse view --------------------------------------------------------------------------------------------


def test_view_round_trips_the_definition_and_shows_live_state() -> None:
    app = json.loads((EXAMPLES / "000-user-service.marathon.json").read_text())
    objs = translate_marathon("u.json", json.dumps(app)).objects
    d = kind(objs, "Deployment")[0]
    d["metadata"]["creationTimestamp"] = "2024-05-01T10:00:00Z"
    d["spec"]["replicas"] = 5  # kubectl scale
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "user-service:2"  # kubectl set image
    d["status"] = {"replicas": 5, "readyReplicas": 4, "availableReplicas": 4}
    view = marathon_app_view(d, kind(objs, "Service")[0])
    assert view["id"] == "/user-service" and view["cmd"] == "java -jar user-service.jar" and view["args"] is None
    assert (view["cpus"], view["mem"], view["disk"], view["instances"]) == (0.5, 512, 0, 5)
    assert (view["tasksRunning"], view["tasksHealthy"], view["tasksStaged"], view["tasksUnhealthy"]) == (4, 4, 1, 0)
    assert view["container"]["docker"]["image"] == "user-service:2"
    assert view["container"]["docker"]["portMappings"] == app["container"]["docker"]["portMappings"]
    assert view["env"] == app["env"]
    assert view["healthChecks"] == app["healthChecks"] and view["constraints"] == [["hostname", "UNIQUE"]]
    assert view["upgradeStrategy"] == app["upgradeStrategy"]
    assert view["version"] == "2024-05-01T10:00:00.000Z"


def test_view_of_a_deployment_without_the_definition() -> None:
    d: Obj = {"metadata": {"name": "web", "labels": {"tier": "front"}, "creationTimestamp": "2024-01-01T00:00:00Z"},
              "spec": {"replicas": 4, "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}},
                       "template": {"spec": {"containers": [{
                           "name": "web", "image": "nginx", "args": ["-g", "daemon off;"],
                           "ports": [{"containerPort": 80, "protocol": "TCP"}],
                           "env": [{"name": "A", "value": "1"}, {"name": "PORT0", "value": "80"}],
                           "resources": {"requests": {"cpu": "250m"}, "limits": {"memory": "1Gi"}},
                           "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5}}]}}},
              "status": {"replicas": 4, "readyReplicas": 4}}
    svc = {"spec": {"ports": [{"port": 80, "targetPort": 80, "nodePort": 30080}]}}
    view = marathon_app_view(d, svc)
    assert (view["id"], view["args"], view["cpus"], view["mem"], view["env"], view["labels"]) == \
        ("/web", ["-g", "daemon off;"], 0.25, 1024, {"A": "1"}, {"tier": "front"})
    assert view["container"]["docker"]["portMappings"] == [
        {"containerPort": 80, "hostPort": 0, "protocol": "tcp", "servicePort": 30080}]
    assert view["healthChecks"][0]["protocol"] == "TCP" and view["healthChecks"][0]["portIndex"] == 0
    assert view["upgradeStrategy"] == {"minimumHealthCapacity": 0.75, "maximumOverCapacity": 0.25}


# ---- the API server accepts the objects; they schedule and run on simulated nodes --------------------------------


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[InProcessClient]:
    """A control plane with its controllers, scheduler and three simulated nodes (no leader election)."""
    plane = await start_control_plane(tmp_path)
    client = InProcessClient(LocalBackend(plane))
    informers = InformerFactory(client)
    events = EventBroadcaster(client)
    controllers = controllers_for(client, informers, events)
    for controller in controllers:
        controller.setup()
    sim = SimulatedNodes(client, 3, tick=0.05)
    tasks = [asyncio.create_task(c.run()) for c in controllers]
    tasks += [asyncio.create_task(events.run()), asyncio.create_task(sim.run()),
              asyncio.create_task(Scheduler(client, informers, events=events).run())]
    try:
        await asyncio.wait_for(sim.ready.wait(), 30)
        yield client
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        await informers.stop()
        await client.close()
        await plane.store.close()


RESOURCES = {"Deployment": DEPLOYMENTS, "Service": SERVICES, "PersistentVolumeClaim": PVCS}


async def test_examples_are_accepted_and_run_on_simulated_nodes(cluster: InProcessClient) -> None:
    client = cluster
    await client.create(NAMESPACES, "", {"metadata": {"name": "marathon"}})
    # The high-priority example asks for agents with attributes cpus:2.0 and mem:2048 and the role high-priority.
    await client.patch(NODES, "", "sim-node-1", Patch("merge", {"metadata": {"labels": {
        "cpus": "2.0", "mem": "2048", MESOS_ROLE_LABEL: "high-priority"}}}))
    expected: dict[str, int] = {}
    for path in example_files():
        for obj in translate_marathon(path.name, path.read_text()).objects:
            resource: Resource = RESOURCES[obj["kind"]]
            await client.create(resource, "marathon", obj)  # the registry strategies validate it
            if obj["kind"] == "Deployment":
                expected[obj["metadata"]["name"]] = obj["spec"]["replicas"]

    async def all_running() -> bool:
        pods = (await client.list(PODS, "marathon"))["items"]
        running: dict[str, int] = {}
        for p in pods:
            if (p.get("status") or {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp"):
                app = p["metadata"]["labels"]["skiff.io/workload"]
                running[app] = running.get(app, 0) + 1
        return running == expected

    await eventually(all_running, "every example app's instances running")
    pods = (await client.list(PODS, "marathon"))["items"]
    nodes = {p["spec"]["nodeName"] for p in pods if p["metadata"]["labels"]["skiff.io/workload"] == "user-service"}
    assert len(nodes) == 3  # UNIQUE hostname
    assert {p["spec"]["nodeName"] for p in pods
            if p["metadata"]["labels"]["skiff.io/workload"] == "high-priority-app"} == {"sim-node-1"}
    d = await client.get(DEPLOYMENTS, "marathon", "user-service")
    assert marathon_app_view(d, None)["instances"] == 3


def test_definition_annotation_is_the_submitted_app() -> None:
    app = {"id": "/a", "cmd": "x", "portDefinitions": [], "tasksRunning": 3}
    d = kind(tr(app).objects, "Deployment")[0]
    assert json.loads(d["metadata"]["annotations"][APP_DEFINITION_ANNOTATION]) == \
        {"id": "/a", "cmd": "x", "portDefinitions": []}


@pytest.mark.parametrize(("names", "kept", "warned"), [
    pytest.param(["http", "admin"], ["http", "admin"], [], id="valid"),
    pytest.param(["http", "http"], ["http", ""], ["portDefinitions[1].name"], id="duplicate"),
    pytest.param(["Very_Long_Port_Name"], [""], ["portDefinitions[0].name"], id="not-an-iana-name"),
])
def test_port_names(names: list[str], kept: list[str], warned: list[str]) -> None:
    app = {"id": "/a", "cmd": "x", "container": IMG, "requirePorts": True,
           "portDefinitions": [{"port": 8000 + i, "name": n} for i, n in enumerate(names)]}
    assert [p.name for p in workload(app).containers[0].ports] == kept
    assert [k for k, _ in warnings_of(app)] == warned


def test_group_keys_that_only_warn() -> None:
    t = tr({"id": "/g", "dependencies": ["/db"], "apps": [{"id": "a", "container": IMG, "portDefinitions": []}]})
    assert [(w.key, w.why) for w in t.warnings] == [
        ("dependencies", "apps start in no particular order; the app must wait for what it needs")]
