"""Compose/Swarm stacks → Kubernetes objects: the value languages, the mapping, the examples users bring,
and that skiff's own API accepts (and runs) what comes out."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import textwrap
from pathlib import Path
from typing import Any

import pytest

from skiff.apiserver.local import LocalBackend
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import PODS, Resource
from skiff.testing import start_control_plane
from skiff.translate.compose import translate_compose
from skiff.translate.compose import values as val
from skiff.translate.compose.loader import Ctx, interpolate, parse_dotenv, parse_env_file
from skiff.translate.model import LABEL_STACK, TranslateError, Translation
from skiff.translate.render import dns_label

Obj = dict[str, Any]
EXAMPLES = Path("/work/shared/examples/compose")


def tr(text: str, *more: str, env: dict[str, str] | None = None, dotenv: str | None = None,
       sources: dict[str, str] | None = None, stack: str = "shop") -> Translation:
    files = [("stack.yml", textwrap.dedent(text))] + [(f"over{i}.yml", textwrap.dedent(t)) for i, t in enumerate(more)]
    return translate_compose(files, stack, env or {}, dotenv, sources)


def find(t: Translation, kind: str, name: str) -> Obj:
    for o in t.objects:
        if o["kind"] == kind and o["metadata"]["name"] == name:
            return o
    raise AssertionError(f"no {kind} {name} in {[(o['kind'], o['metadata']['name']) for o in t.objects]}")


def pod(t: Translation, name: str) -> Obj:
    for kind in ("Deployment", "DaemonSet", "Job"):
        with contextlib.suppress(AssertionError):
            return find(t, kind, name)["spec"]["template"]["spec"]
    raise AssertionError(f"no workload {name}")


def ctr(t: Translation, name: str) -> Obj:
    return pod(t, name)["containers"][0]


def keys(t: Translation) -> list[str]:
    return [w.key for w in t.warnings]


# --- value languages ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "want"), [
    pytest.param("10s", 10.0, id="seconds"), pytest.param("1m30s", 90.0, id="compound"),
    pytest.param("500ms", 0.5, id="millis"), pytest.param("1.5h", 5400.0, id="fraction"),
    pytest.param("0", 0.0, id="zero"), pytest.param(15, 15.0, id="bare-number"),
    pytest.param("2h45m10s", 9910.0, id="hours"), pytest.param("100us", 0.0001, id="micros"),
])
def test_parse_duration(text: Any, want: float) -> None:
    assert val.parse_duration(text) == pytest.approx(want)


@pytest.mark.parametrize("text", [
    pytest.param("10", id="no-unit"), pytest.param("1d", id="days"), pytest.param("s", id="no-number"),
    pytest.param("-5s", id="negative"), pytest.param(True, id="bool"), pytest.param("", id="empty"),
    pytest.param("99999999999h", id="huge"),
])
def test_parse_duration_rejects(text: Any) -> None:
    with pytest.raises(ValueError):
        val.parse_duration(text)


@pytest.mark.parametrize(("text", "want"), [
    pytest.param("256M", "256Mi", id="M-is-MiB"), pytest.param("1G", "1Gi", id="G"),
    pytest.param("512k", "512Ki", id="k"), pytest.param("100b", "100", id="b"),
    pytest.param("1.5G", "1536Mi", id="fraction"), pytest.param(1048576, "1Mi", id="int-bytes"),
    pytest.param("2gb", "2Gi", id="gb"), pytest.param("64MiB", "64Mi", id="MiB"),
])
def test_memory_units(text: Any, want: str) -> None:
    assert val.bytes_quantity(val.parse_bytes(text)) == want


@pytest.mark.parametrize(("text", "want"), [
    pytest.param("0.5", "500m", id="half"), pytest.param(2, "2", id="int"), pytest.param("0.25", "250m", id="quarter"),
    pytest.param("0", "", id="zero-unlimited"), pytest.param(1.5, "1500m", id="float"),
    pytest.param("0.0001", "1m", id="rounds-up"),
])
def test_cpus(text: Any, want: str) -> None:
    assert val.parse_cpus(text) == want


@pytest.mark.parametrize(("spec", "want"), [
    pytest.param("8080:80", [(80, 8080, "TCP", "")], id="published"),
    pytest.param("80", [(80, None, "TCP", "")], id="target-only"),
    pytest.param(80, [(80, None, "TCP", "")], id="int"),
    pytest.param("53:53/udp", [(53, 53, "UDP", "")], id="udp"),
    pytest.param("8000-8001:9000-9001", [(9000, 8000, "TCP", ""), (9001, 8001, "TCP", "")], id="ranges"),
    pytest.param("127.0.0.1:80:80", [(80, 80, "TCP", "127.0.0.1")], id="host-ip"),
    pytest.param("[::1]:80:80", [(80, 80, "TCP", "::1")], id="ipv6-host-ip"),
    pytest.param("127.0.0.1::80", [(80, None, "TCP", "127.0.0.1")], id="ip-random-port"),
])
def test_port_short_syntax(spec: Any, want: list[tuple[int, int | None, str, str]]) -> None:
    assert [(p.target, p.published, p.protocol, p.host_ip) for p in val.parse_port_short(spec)] == want


@pytest.mark.parametrize("spec", [
    pytest.param("80/icmp", id="protocol"), pytest.param("0", id="zero"), pytest.param("70000", id="too-big"),
    pytest.param("1-3:1-2", id="range-mismatch"), pytest.param("a:b", id="letters"),
    pytest.param("1:2:3:4", id="too-many-parts"),
])
def test_port_short_syntax_rejects(spec: str) -> None:
    with pytest.raises(ValueError):
        val.parse_port_short(spec)


@pytest.mark.parametrize(("spec", "want"), [
    pytest.param("/data", ("volume", "", "/data", False), id="anonymous"),
    pytest.param("db:/var/lib/db", ("volume", "db", "/var/lib/db", False), id="named"),
    pytest.param("./conf:/etc/conf:ro", ("bind", "./conf", "/etc/conf", True), id="relative-bind-ro"),
    pytest.param("/srv:/srv:rw", ("bind", "/srv", "/srv", False), id="absolute-bind"),
])
def test_volume_short_syntax(spec: str, want: tuple[str, str, str, bool]) -> None:
    s = val.parse_volume_short(spec)
    assert (s.type, s.source, s.target, s.read_only) == want


@pytest.mark.parametrize(("text", "want"), [
    pytest.param("node.role == manager", ("node.role", "==", "manager"), id="spaces"),
    pytest.param("node.labels.zone!=east", ("node.labels.zone", "!=", "east"), id="no-spaces"),
])
def test_constraint_syntax(text: str, want: tuple[str, str, str]) -> None:
    assert val.parse_constraint(text) == want


# --- interpolation and env files ------------------------------------------------------------------------------

ENV = {"TAG": "1.25", "EMPTY": ""}


@pytest.mark.parametrize(("text", "want"), [
    pytest.param("nginx:${TAG}", "nginx:1.25", id="braced"), pytest.param("nginx:$TAG", "nginx:1.25", id="bare"),
    pytest.param("${MISSING:-x}", "x", id="default-unset"), pytest.param("${EMPTY:-x}", "x", id="default-empty"),
    pytest.param("${EMPTY-x}", "", id="dash-only-unset"), pytest.param("${MISSING-x}", "x", id="dash-unset"),
    pytest.param("$$HOME", "$HOME", id="escaped"), pytest.param("${MISSING:-${TAG}}", "1.25", id="nested-default"),
    pytest.param("${TAG:+set}", "set", id="alt-set"), pytest.param("${EMPTY:+set}", "", id="alt-empty"),
    pytest.param("${FROM_DOTENV}", "dot", id="dotenv"), pytest.param("${TAG:?needed}", "1.25", id="required-ok"),
])
def test_interpolation(text: str, want: str) -> None:
    ctx = Ctx(["f.yml"])
    dot = parse_dotenv("FROM_DOTENV=dot\nTAG=ignored", ".env", ENV.get)

    def lookup(name: str) -> str | None:
        return ENV.get(name, dot.get(name))

    assert interpolate({"k": text}, "f.yml", lookup, ctx) == {"k": want}
    assert ctx.warnings == []


@pytest.mark.parametrize(("text", "why"), [
    pytest.param("${MISSING:?tell me}", "required variable MISSING is missing a value: tell me", id="required"),
    pytest.param("${EMPTY:?}", "required variable EMPTY is missing a value", id="required-empty"),
    pytest.param("cost $5", "invalid interpolation format", id="bad-dollar"),
    pytest.param("${", "invalid interpolation format", id="unterminated"),
    pytest.param("${A B}", "invalid interpolation format", id="space"),
])
def test_interpolation_errors(text: str, why: str) -> None:
    with pytest.raises(TranslateError) as e:
        interpolate({"services": {"web": {"image": text}}}, "f.yml", ENV.get, Ctx(["f.yml"]))
    assert (e.value.file, e.value.key) == ("f.yml", "services.web.image")
    assert why in e.value.why


def test_unset_variable_warns_like_compose() -> None:
    t = tr("services: {web: {image: 'nginx:${NOPE}'}}")
    assert t.warnings[0].key == "services.web.image"
    assert t.warnings[0].why == 'The "NOPE" variable is not set. Defaulting to a blank string.'


def test_env_wins_over_dotenv() -> None:
    t = tr("services: {web: {image: 'nginx:${TAG}'}}", env={"TAG": "env"}, dotenv="TAG=dot")
    assert ctr(t, "web")["image"] == "nginx:env"
    t = tr("services: {web: {image: 'nginx:${TAG}'}}", dotenv="# comment\nexport TAG='quoted # not comment'")
    assert ctr(t, "web")["image"] == "nginx:quoted # not comment"


@pytest.mark.parametrize(("text", "want"), [
    pytest.param("A=1\nB= 2 ", {"A": "1", "B": " 2 "}, id="literal-docker"),
    pytest.param('Q="x"', {"Q": '"x"'}, id="quotes-kept"),
    pytest.param("# c\n\n  C=3", {"C": "3"}, id="comments-blank-indent"),
    pytest.param("FROM_ENV\nNOT_SET", {"FROM_ENV": "e"}, id="bare-name-from-env"),
])
def test_env_file_is_read_like_swarm(text: str, want: dict[str, str]) -> None:
    assert parse_env_file(text, "app.env", {"FROM_ENV": "e"}.get) == want


def test_env_file_key_with_space_is_an_error() -> None:
    with pytest.raises(TranslateError, match="contains whitespaces") as e:
        parse_env_file("A=1\nB = 2", "app.env", {}.get)
    assert (e.value.file, e.value.key) == ("app.env", "line 2")


# --- the mapping ----------------------------------------------------------------------------------------------


def test_stack_is_a_namespace_and_everything_is_labelled() -> None:
    t = tr("services: {web: {image: nginx}}")
    assert t.objects[0] == {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "shop", "labels": {LABEL_STACK: "shop", "com.docker.stack.namespace": "shop"}}}
    for o in t.objects:
        assert o["metadata"]["labels"][LABEL_STACK] == "shop"
        assert o["metadata"]["labels"]["com.docker.stack.namespace"] == "shop"
        assert o["metadata"].get("namespace", "shop") == "shop"
    assert t.warnings == []


def test_command_entrypoint_environment() -> None:
    t = tr("""
        services:
          app:
            image: app
            entrypoint: /entry --flag
            command: ["run", "--price=$$(cost)"]
            environment: [A=1, B, "C=x=y"]
            env_file: app.env
    """, env={"B": "from-env"}, sources={"app.env": "A=0\nD=4\n"})
    c = ctr(t, "app")
    assert c["command"] == ["/entry", "--flag"]
    assert c["args"] == ["run", "--price=$$(cost)"]  # "$(cost)" literally, not a Kubernetes env reference
    assert c["env"] == [{"name": "A", "value": "1"}, {"name": "D", "value": "4"},
                        {"name": "B", "value": "from-env"}, {"name": "C", "value": "x=y"}]


def test_ports() -> None:
    t = tr("""
        services:
          web:
            image: nginx
            ports:
              - "80:8080"
              - "30080:8081"
              - "9000"
              - {target: 53, published: 5353, protocol: udp}
              - {target: 22, published: 2222, mode: host}
            expose: ["9100"]
    """)
    assert find(t, "Service", "web")["spec"]["ports"] == [
        {"name": f"{p}-{n}", "protocol": p.upper(), "port": n, "targetPort": n}
        for p, n in (("tcp", 8080), ("tcp", 8081), ("tcp", 9000), ("udp", 53), ("tcp", 9100))]
    assert find(t, "Service", "web-nodeport")["spec"]["ports"] == [
        {"name": "tcp-30080", "protocol": "TCP", "port": 30080, "targetPort": 8081, "nodePort": 30080},
        {"name": "tcp-9000", "protocol": "TCP", "port": 9000, "targetPort": 9000}]  # Swarm picks the port
    assert find(t, "Service", "web-lb")["spec"]["ports"] == [
        {"name": "tcp-80", "protocol": "TCP", "port": 80, "targetPort": 8080},
        {"name": "udp-5353", "protocol": "UDP", "port": 5353, "targetPort": 53}]
    assert {"containerPort": 22, "protocol": "TCP", "hostPort": 2222} in ctr(t, "web")["ports"]
    policy = find(t, "NetworkPolicy", "web-published")["spec"]
    assert policy["ingress"] == [{"ports": [{"protocol": p, "port": n} for n, p in (
        (22, "TCP"), (53, "UDP"), (8080, "TCP"), (8081, "TCP"), (9000, "TCP"))]}]
    assert t.warnings == []


def test_networks_isolate_and_external_networks_are_shared() -> None:
    t = tr("""
        services:
          a: {image: a, networks: [front, back]}
          b: {image: b, networks: {back: {aliases: [bee]}}}
          c: {image: c}
          d: {image: d, networks: [shared]}
        networks:
          front: {}
          back: {driver: overlay}
          shared: {external: true, name: corp-net}
    """)
    assert pod(t, "a") and find(t, "Deployment", "a")["spec"]["template"]["metadata"]["labels"][
        "network.skiff.io/front"] == "true"
    back = find(t, "NetworkPolicy", "network-back")["spec"]
    assert back == {"podSelector": {"matchLabels": {"network.skiff.io/back": "true"}}, "policyTypes": ["Ingress"],
                    "ingress": [{"from": [{"podSelector": {"matchLabels": {"network.skiff.io/back": "true"}}}]}]}
    assert find(t, "NetworkPolicy", "network-default")  # c joins the stack's default network
    shared = find(t, "NetworkPolicy", "network-shared")["spec"]
    assert shared["ingress"] == [{"from": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {
        "external-network.skiff.io/corp-net": "true"}}}]}]
    assert keys(t) == ["services.b.networks.back.aliases"]


def test_host_network() -> None:
    t = tr("""
        services: {agent: {image: a, ports: ["9100:9100"], networks: [hostnet]}}
        networks: {hostnet: {external: true, name: host}}
    """)
    spec = pod(t, "agent")
    assert spec["hostNetwork"] is True
    assert spec["containers"][0]["ports"] == [{"containerPort": 9100, "protocol": "TCP", "hostPort": 9100}]
    assert not [o for o in t.objects if o["kind"] == "NetworkPolicy"]


def test_volumes_binds_tmpfs() -> None:
    t = tr("""
        services:
          db:
            image: postgres
            volumes:
              - data:/var/lib/postgresql/data
              - /var/run/docker.sock:/var/run/docker.sock:ro
              - ./conf:/etc/conf
              - /scratch
              - {type: tmpfs, target: /cache, tmpfs: {size: 64M}}
              - {type: volume, source: data, target: /backup, volume: {subpath: backup}}
            tmpfs: /run
        volumes:
          data: {}
    """)
    spec = pod(t, "db")
    mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
    vols = {v["name"]: v for v in spec["volumes"]}
    data = vols[mounts["/var/lib/postgresql/data"]["name"]]
    assert data["hostPath"] == {"path": "/var/lib/skiff/volumes/shop_data", "type": "DirectoryOrCreate"}
    assert mounts["/backup"]["name"] == data["name"] and mounts["/backup"]["subPath"] == "backup"
    assert vols[mounts["/var/run/docker.sock"]["name"]]["hostPath"] == {"path": "/var/run/docker.sock"}
    assert mounts["/var/run/docker.sock"]["readOnly"] is True
    assert vols[mounts["/etc/conf"]["name"]]["hostPath"] == {"path": "conf"}
    assert vols[mounts["/scratch"]["name"]]["emptyDir"] == {}
    assert vols[mounts["/cache"]["name"]]["emptyDir"] == {"medium": "Memory", "sizeLimit": "64Mi"}
    assert vols[mounts["/run"]["name"]]["emptyDir"] == {"medium": "Memory"}
    assert keys(t) == ["volumes.data", "services.db.volumes"]
    assert "relative bind source './conf'" in t.warnings[1].why


def test_configs_and_secrets() -> None:
    t = tr("""
        services:
          web:
            image: nginx
            configs: [site, {source: tls, target: /etc/nginx/tls.conf, mode: 0440, uid: "101"}]
            secrets: [db_password, {source: api_key, target: key.txt}]
        configs:
          site: {file: ./site.conf}
          tls: {content: "ssl on;"}
        secrets:
          db_password: {environment: DB_PASSWORD}
          api_key: {external: true}
    """, env={"DB_PASSWORD": "hunter2"}, sources={"site.conf": "server {}"})
    assert find(t, "ConfigMap", "site")["data"] == {"site": "server {}"}
    assert find(t, "ConfigMap", "tls")["data"] == {"tls": "ssl on;"}
    secret = find(t, "Secret", dns_label("db_password"))
    assert secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["db_password"]).decode() == "hunter2"
    spec = pod(t, "web")
    mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
    vols = {v["name"]: v for v in spec["volumes"]}
    assert set(mounts) == {"/site", "/etc/nginx/tls.conf", "/run/secrets/db_password", "/run/secrets/key.txt"}
    tls = mounts["/etc/nginx/tls.conf"]
    assert tls == {"name": tls["name"], "mountPath": "/etc/nginx/tls.conf", "readOnly": True, "subPath": "tls.conf"}
    assert vols[tls["name"]]["configMap"] == {"name": "tls", "items": [{"key": "tls", "path": "tls.conf", "mode": 0o440}]}
    assert vols[mounts["/run/secrets/key.txt"]["name"]]["secret"] == {
        "secretName": dns_label("api_key"), "items": [{"key": "api_key", "path": "key.txt", "mode": 0o444}]}
    assert not [o for o in t.objects if o["metadata"]["name"] == dns_label("api_key")]  # external: not created
    assert keys(t) == ["secrets.api_key", "services.web.configs.uid"]


def test_healthcheck() -> None:
    t = tr("""
        services:
          web:
            image: nginx
            healthcheck:
              test: ["CMD", "curl", "-f", "http://localhost"]
              interval: 1m30s
              timeout: 10s
              retries: 5
              start_period: 40s
          shell: {image: x, healthcheck: {test: "pg_isready || exit 1"}}
          off: {image: x, healthcheck: {test: ["NONE"]}}
    """)
    c = ctr(t, "web")
    probe = {"exec": {"command": ["curl", "-f", "http://localhost"]}, "initialDelaySeconds": 0, "periodSeconds": 90,
             "timeoutSeconds": 10, "successThreshold": 1}
    assert c["livenessProbe"] == c["readinessProbe"] == {**probe, "failureThreshold": 5}
    assert c["startupProbe"] == {**probe, "failureThreshold": 1 + 5}
    assert ctr(t, "shell")["readinessProbe"]["exec"]["command"] == ["/bin/sh", "-c", "pg_isready || exit 1"]
    assert ctr(t, "shell")["readinessProbe"]["periodSeconds"] == 30
    assert "readinessProbe" not in ctr(t, "off")
    assert t.warnings == []


@pytest.mark.parametrize(("service", "want_ctx", "warned"), [
    pytest.param({"user": "1000:2000"}, {"runAsUser": 1000, "runAsGroup": 2000}, [], id="uid-gid"),
    pytest.param({"user": "postgres"}, None, ["services.s.user"], id="user-name-warns"),
    pytest.param({"read_only": True, "cap_add": ["CAP_NET_ADMIN"], "cap_drop": ["all"],
                  "security_opt": ["no-new-privileges:true"]},
                 {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                  "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}, [], id="hardening"),
    pytest.param({"security_opt": ["seccomp=unconfined"]}, None, ["services.s.security_opt"], id="other-opt-warns"),
    pytest.param({"privileged": True}, None, ["services.s.privileged"], id="privileged-swarm-ignores"),
])
def test_security(service: Obj, want_ctx: Obj | None, warned: list[str]) -> None:
    import json

    t = tr(json.dumps({"services": {"s": {"image": "x", **service}}}))
    assert ctr(t, "s").get("securityContext") == want_ctx
    assert keys(t) == warned


def test_labels() -> None:
    t = tr("""
        services:
          web:
            image: nginx
            labels: {tier: front, com.example.description: "Accounting webapp"}
            deploy:
              labels: [traefik.enable=true, "traefik.http.routers.web.rule=Host(`x`)"]
    """)
    dep = find(t, "Deployment", "web")
    assert dep["metadata"]["labels"]["traefik.enable"] == "true"
    assert dep["metadata"]["annotations"] == {"traefik.http.routers.web.rule": "Host(`x`)"}
    tpl = dep["spec"]["template"]["metadata"]
    assert tpl["labels"]["tier"] == "front" and "traefik.enable" not in tpl["labels"]
    assert tpl["annotations"] == {"com.example.description": "Accounting webapp"}
    assert "tier" not in find(t, "Service", "web")["metadata"]["labels"]


@pytest.mark.parametrize(("constraint", "want"), [
    pytest.param("node.role == manager", {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"},
                 id="manager"),
    pytest.param("node.role==worker", {"key": "node-role.kubernetes.io/control-plane", "operator": "DoesNotExist"},
                 id="worker"),
    pytest.param("node.role != manager", {"key": "node-role.kubernetes.io/control-plane", "operator": "DoesNotExist"},
                 id="not-manager"),
    pytest.param("node.labels.disk == ssd", {"key": "disk", "operator": "In", "values": ["ssd"]}, id="label"),
    pytest.param("node.labels.zone != east", {"key": "zone", "operator": "NotIn", "values": ["east"]}, id="not-label"),
    pytest.param("node.hostname == n1", {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]},
                 id="hostname"),
    pytest.param("node.platform.os == linux", {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                 id="os"),
    pytest.param("node.platform.arch == x86_64", {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                 id="arch-alias"),
])
def test_placement_constraints(constraint: str, want: Obj) -> None:
    t = tr(f"services: {{s: {{image: x, deploy: {{placement: {{constraints: ['{constraint}']}}}}}}}}")
    terms = pod(t, "s")["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms == {"nodeSelectorTerms": [{"matchExpressions": [want]}]}
    assert ("tolerations" in pod(t, "s")) == (want["operator"] == "Exists")
    assert t.warnings == []


def test_engine_labels_warn_and_preferences_spread() -> None:
    t = tr("""
        services:
          s:
            image: x
            deploy:
              placement:
                constraints: [engine.labels.os == linux]
                preferences: [{spread: node.labels.zone}]
                max_replicas_per_node: 2
    """)
    spec = pod(t, "s")
    assert "affinity" not in spec
    assert [(c["topologyKey"], c["whenUnsatisfiable"], c["maxSkew"]) for c in spec["topologySpreadConstraints"]] == [
        ("kubernetes.io/hostname", "DoNotSchedule", 2), ("zone", "ScheduleAnyway", 1)]
    assert keys(t) == ["services.s.deploy.placement.constraints"]


@pytest.mark.parametrize(("deploy", "kind", "check"), [
    pytest.param({"mode": "global"}, "DaemonSet", {}, id="global"),
    pytest.param({"mode": "replicated-job", "replicas": 4, "restart_policy": {"max_attempts": 2, "condition": "on-failure"}},
                 "Job", {"completions": 4, "parallelism": 4, "backoffLimit": 2}, id="replicated-job"),
    pytest.param({"replicas": 2, "update_config": {"parallelism": 2, "order": "start-first", "monitor": "30s"}},
                 "Deployment", {"replicas": 2, "minReadySeconds": 30,
                                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": 0}}},
                 id="update-start-first"),
    pytest.param({"update_config": {"parallelism": 0}}, "Deployment",
                 {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "100%"}}},
                 id="update-all-at-once"),
])
def test_deploy_modes(deploy: Obj, kind: str, check: Obj) -> None:
    import json

    t = tr(json.dumps({"services": {"s": {"image": "x", "deploy": deploy}}}))
    spec = find(t, kind, "s")["spec"]
    assert {k: spec.get(k) for k in check} == check


def test_resources() -> None:
    t = tr("""
        services:
          s:
            image: x
            deploy:
              resources:
                limits: {cpus: '0.5', memory: 512M, pids: 100}
                reservations: {cpus: 1, memory: 256M}
    """)
    assert ctr(t, "s")["resources"] == {"limits": {"cpu": "500m", "memory": "512Mi"},
                                        "requests": {"cpu": "500m", "memory": "256Mi"}}
    assert keys(t) == ["services.s.deploy.resources.limits.pids", "services.s.deploy.resources.reservations.cpus"]


def test_dnsrr_is_headless() -> None:
    t = tr("services: {s: {image: x, expose: [80], deploy: {endpoint_mode: dnsrr}}}")
    assert find(t, "Service", "s")["spec"]["clusterIP"] == "None"
    with pytest.raises(TranslateError, match="dnsrr"):
        tr("services: {s: {image: x, ports: ['80:80'], deploy: {endpoint_mode: dnsrr}}}")


@pytest.mark.parametrize(("service", "why"), [
    pytest.param({"build": "."}, "Swarm ignores it too", id="build"),
    pytest.param({"container_name": "x"}, "Swarm ignores it too", id="container-name"),
    pytest.param({"depends_on": ["db"]}, "Swarm ignores it too", id="depends-on"),
    pytest.param({"restart": "always"}, "Swarm ignores it too", id="restart"),
    pytest.param({"mem_limit": "1g"}, "docker stack deploy rejects it", id="forbidden"),
    pytest.param({"hostname": "h"}, "not supported", id="unsupported"),
    pytest.param({"imagee": "typo"}, "unknown key", id="unknown"),
])
def test_keys_that_are_not_honoured_warn(service: Obj, why: str) -> None:
    import json

    t = tr(json.dumps({"services": {"s": {"image": "x", **service}}}))
    [w] = t.warnings
    assert (w.file, w.key) == ("stack.yml", f"services.s.{next(iter(service))}")
    assert why in w.why


def test_extension_keys_are_silent() -> None:
    t = tr("""
        x-common: &common {image: x}
        services:
          s: {<<: *common, x-note: hi}
    """)
    assert t.warnings == [] and ctr(t, "s")["image"] == "x"


@pytest.mark.parametrize(("text", "key"), [
    pytest.param("services: [a]", "services", id="services-list"),
    pytest.param("services: {s: {image: [x]}}", "services.s.image", id="image-list"),
    pytest.param("services: {s: {image: x, deploy: {replicas: many}}}", "services.s.deploy.replicas", id="replicas"),
    pytest.param("services: {s: {image: x, deploy: {replicas: 99999999999}}}", "services.s.deploy.replicas",
                 id="replicas-huge"),
    pytest.param("services: {s: {image: x, ports: {a: 1}}}", "services.s.ports", id="ports-map"),
    pytest.param("services: {s: {image: x, ports: ['99999:80']}}", "services.s.ports", id="port-range"),
    pytest.param("services: {s: {image: x, healthcheck: {test: [CMD, 'true'], interval: soon}}}",
                 "services.s.healthcheck.interval", id="duration"),
    pytest.param("services: {s: {image: x, volumes: ['missing:/data']}}", "services.s.volumes", id="undefined-volume"),
    pytest.param("services: {s: {image: x, secrets: [nope]}}", "services.s.secrets", id="undefined-secret"),
    pytest.param("services: {s: {image: x}}\nconfigs: {c: {file: ./c.txt}}", "configs.c.file", id="file-not-supplied"),
    pytest.param("services: {s: {image: x, deploy: {placement: {constraints: [node.rank == 1]}}}}",
                 "services.s.deploy.placement.constraints", id="bad-constraint"),
    pytest.param("services: {s: {deploy: {replicas: 1}}}", "services.s.image", id="no-image"),
    pytest.param("services: {s: {image: x, environment: 5}}", "services.s.environment", id="environment-number"),
    pytest.param("- just a list", "(document)", id="top-level-list"),
    pytest.param("services: {s: {image: 'x\n  bad: [", "line 2", id="bad-yaml"),
])
def test_wrong_input_is_a_translate_error(text: str, key: str) -> None:
    with pytest.raises(TranslateError) as e:
        translate_compose([("bad.yml", text)], "shop", {}, None)
    assert (e.value.file, e.value.key) == ("bad.yml", key)


def test_yaml_is_read_like_compose() -> None:
    t = tr("""
        services:
          s:
            image: x
            environment: {ENABLED: yes, PORTS: 22:22, DATE: 2024-01-01, ON: true}
            configs: [{source: c, mode: 0440}]
        configs: {c: {content: hi}}
    """)
    assert {e["name"]: e["value"] for e in ctr(t, "s")["env"]} == {
        "ENABLED": "yes", "PORTS": "22:22", "DATE": "2024-01-01", "ON": "true"}
    assert pod(t, "s")["volumes"][0]["configMap"]["items"][0]["mode"] == 0o440


def test_files_merge_in_order() -> None:
    t = tr("""
        services:
          web:
            image: nginx:1
            command: [a, b]
            environment: {A: "1", B: "1"}
            ports: ["80:80"]
            deploy: {replicas: 2, labels: {x: "1"}}
    """, """
        services:
          web:
            image: nginx:2
            command: [c]
            environment: [B=2, C=3]
            ports: ["443:443"]
            deploy: {replicas: 5}
            build: .
    """)
    c = ctr(t, "web")
    assert c["image"] == "nginx:2" and c["args"] == ["c"]
    assert c["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}]
    assert [p["containerPort"] for p in c["ports"]] == [80, 443]
    dep = find(t, "Deployment", "web")
    assert dep["spec"]["replicas"] == 5 and dep["metadata"]["labels"]["x"] == "1"
    assert [(w.file, w.key) for w in t.warnings] == [("over0.yml", "services.web.build")]


def test_errors_name_the_file_that_set_the_key() -> None:
    with pytest.raises(TranslateError) as e:
        tr("services: {web: {image: x, deploy: {replicas: 2}}}", "services: {web: {deploy: {replicas: lots}}}")
    assert (e.value.file, e.value.key) == ("over0.yml", "services.web.deploy.replicas")


def test_invalid_names_are_renamed_with_a_warning() -> None:
    t = tr("services: {Web_App: {image: x}}", stack="My_Stack")
    ns = t.objects[0]["metadata"]["name"]
    assert ns.startswith("my-stack-")
    svc = next(o for o in t.objects if o["kind"] == "Service")
    assert svc["metadata"]["name"].startswith("web-app-")
    assert keys(t) == ["(stack)", "services.Web_App"]


def test_deterministic() -> None:
    text = (EXAMPLES / "000-swarm-microservices-stack.compose.yml").read_text()
    assert translate_compose([("a", text)], "s", {}, None) == translate_compose([("a", text)], "s", {}, None)


# --- the examples users bring ------------------------------------------------------------------------------------

UPDATE_DELAY = "not supported: Kubernetes does not pause between update batches"
ROLLBACK = "rollback: a failing rollout stops progressing"
RESTART = [
    ("deploy.restart_policy.condition", "on-failure: a Deployment/DaemonSet restarts containers"),
    ("deploy.restart_policy.max_attempts", "not supported for services"),
    ("deploy.restart_policy.delay", "not supported: containers are restarted with exponential back-off"),
]
DEPENDS = "Swarm ignores it too: services start in any order"
UNDECLARED = "undefined network: docker stack deploy rejects the file"
LOCAL_VOLUME = "a Swarm local volume lives on one node"

# Every warning each example produces, and why it is right (see the messages).
EXPECTED_WARNINGS: dict[str, list[tuple[str, str]]] = {
    # delay 30s / rollback / max_failure_ratio 0.1 have no Deployment equivalent.
    "000-swarm-canary-update-config.compose.yml": [
        ("services.user-service.deploy.update_config.delay", UPDATE_DELAY),
        ("services.user-service.deploy.update_config.failure_action", ROLLBACK),
        ("services.user-service.deploy.update_config.max_failure_ratio", "not supported: any failing new pod"),
    ],
    # The file joins `app-network` without declaring it (Swarm itself refuses that).
    "000-swarm-dnsrr-service-discovery.compose.yml": [
        ("services.user-service.networks.app-network", UNDECLARED),
    ],
    "000-swarm-microservices-stack.compose.yml": [
        ("networks.app-network.attachable", "not supported: only pods of stacks"),
        ("volumes.postgres_data", LOCAL_VOLUME),
        ("volumes.redis_data", LOCAL_VOLUME),
        ("services.api-gateway.depends_on", DEPENDS),
        *[(f"services.api-gateway.{k}", why) for k, why in RESTART],
        ("services.api-gateway.deploy.update_config.delay", UPDATE_DELAY),
        ("services.api-gateway.deploy.update_config.failure_action", ROLLBACK),
        ("services.user-service.depends_on", DEPENDS),
        ("services.user-service.deploy.update_config.delay", UPDATE_DELAY),
        ("services.order-service.depends_on", DEPENDS),
    ],
    "000-swarm-vip-load-balancing.compose.yml": [
        ("services.user-service.networks.app-network", UNDECLARED),
        ("services.user-service.deploy.update_config.delay", UPDATE_DELAY),
    ],
    "001-swarm-web-redis.compose.yml": [
        *[(f"services.web.{k}", why) for k, why in RESTART],
        ("services.web.deploy.update_config.delay", UPDATE_DELAY),
    ],
}


def example(name: str) -> Translation:
    return translate_compose([(name, (EXAMPLES / name).read_text(encoding="utf-8"))], "demo", {}, None)


def test_every_example_is_covered() -> None:
    assert sorted(p.name for p in EXAMPLES.iterdir()) == sorted(EXPECTED_WARNINGS)


@pytest.mark.parametrize("name", sorted(EXPECTED_WARNINGS))
def test_example_warnings(name: str) -> None:
    t = example(name)
    assert [w.file for w in t.warnings] == [name] * len(t.warnings)
    got = [(w.key, w.why) for w in t.warnings]
    assert [k for k, _ in got] == [k for k, _ in EXPECTED_WARNINGS[name]]
    for (_, why), (_, want) in zip(got, EXPECTED_WARNINGS[name], strict=True):
        assert why.startswith(want), why


def test_microservices_example_mapping() -> None:
    t = example("000-swarm-microservices-stack.compose.yml")
    gw = find(t, "Deployment", "api-gateway")["spec"]
    assert gw["replicas"] == 3
    assert gw["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    assert gw["template"]["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "250m", "memory": "256Mi"}}
    assert find(t, "Service", "api-gateway-lb")["spec"]["ports"] == [
        {"name": "tcp-80", "protocol": "TCP", "port": 80, "targetPort": 8080}]
    db = pod(t, "database")
    assert db["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] == [
        {"matchExpressions": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}]
    assert db["volumes"][0]["hostPath"] == {"path": "/var/lib/skiff/volumes/demo_postgres_data",
                                            "type": "DirectoryOrCreate"}
    us = pod(t, "user-service")
    assert us["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] == [
        {"matchExpressions": [{"key": "node-role.kubernetes.io/control-plane", "operator": "DoesNotExist"}]}]
    assert find(t, "Deployment", "user-service")["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 2


def test_dnsrr_example_mapping() -> None:
    t = example("000-swarm-dnsrr-service-discovery.compose.yml")
    assert find(t, "Service", "user-service")["spec"]["clusterIP"] == "None"
    assert ctr(t, "api-gateway")["args"] == ["--user-service-url=user-service:8080"]


def test_canary_example_mapping() -> None:
    spec = find(example("000-swarm-canary-update-config.compose.yml"), "Deployment", "user-service")["spec"]
    assert spec["replicas"] == 10 and spec["minReadySeconds"] == 60
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


# --- accepted by skiff's API, and the pods run -----------------------------------------------------------------

RESOURCES = {
    "Namespace": Resource("", "v1", "namespaces"),
    "Service": Resource("", "v1", "services"),
    "ConfigMap": Resource("", "v1", "configmaps"),
    "Secret": Resource("", "v1", "secrets"),
    "Deployment": Resource("apps", "v1", "deployments"),
    "DaemonSet": Resource("apps", "v1", "daemonsets"),
    "Job": Resource("batch", "v1", "jobs"),
    "NetworkPolicy": Resource("networking.k8s.io", "v1", "networkpolicies"),
}


async def create_all(client: InProcessClient, objs: list[Obj]) -> None:
    for o in objs:
        await client.create(RESOURCES[o["kind"]], o["metadata"].get("namespace", ""), o)


async def test_examples_and_a_rich_stack_are_accepted_by_the_api(tmp_path: Path) -> None:
    plane = await start_control_plane(tmp_path)
    client = InProcessClient(LocalBackend(plane))
    try:
        for i, name in enumerate(sorted(EXPECTED_WARNINGS)):
            text = (EXAMPLES / name).read_text(encoding="utf-8")
            await create_all(client, translate_compose([(name, text)], f"ex{i}", {}, None).objects)
        rich = tr("""
            services:
              web:
                image: nginx
                ports: ["80:80", "30443:443", "9000", {target: 22, published: 2222, mode: host}]
                configs: [site]
                secrets: [{source: key, target: /etc/key, mode: 0400}]
                volumes: [data:/data, /tmp/x:/x:ro, /anon, {type: tmpfs, target: /t, tmpfs: {size: 1M}}]
                tmpfs: [/run]
                healthcheck: {test: "true", interval: 5s, start_period: 20s}
                user: "1000"
                read_only: true
                cap_drop: [ALL]
                labels: {a: "with space"}
                stop_grace_period: 1m
                deploy:
                  labels: {team: x}
                  placement: {constraints: [node.role == manager], preferences: [{spread: node.labels.zone}],
                              max_replicas_per_node: 1}
                  resources: {limits: {cpus: '1', memory: 1G}, reservations: {cpus: '0.1', memory: 10M}}
                  update_config: {order: start-first, monitor: 10s}
              agent: {image: a, deploy: {mode: global}}
              once: {image: b, deploy: {mode: replicated-job, replicas: 2}}
              db: {image: c, deploy: {endpoint_mode: dnsrr}}
            configs: {site: {content: x}}
            secrets: {key: {content: y}}
            volumes: {data: {}}
        """, stack="rich")
        await create_all(client, rich.objects)
    finally:
        await client.close()
        await plane.store.close()


async def test_example_pods_run_on_simulated_nodes(tmp_path: Path) -> None:
    from skiff.cli.components import start_components

    plane = await start_control_plane(tmp_path)
    client = InProcessClient(LocalBackend(plane))
    start_components(plane, sim_nodes=2)
    try:
        await create_all(client, example("001-swarm-web-redis.compose.yml").objects)

        async def running() -> dict[str, int]:
            pods = (await client.list(PODS, "demo"))["items"]
            counts: dict[str, int] = {}
            for p in pods:
                if (p.get("status") or {}).get("phase") == "Running":
                    w = p["metadata"]["labels"]["skiff.io/workload"]
                    counts[w] = counts.get(w, 0) + 1
            return counts

        loop = asyncio.get_running_loop()
        give_up = loop.time() + 60
        counts = await running()
        while counts != {"web": 3, "redis": 1}:
            assert loop.time() < give_up, f"pods never ran: {counts}"
            await asyncio.sleep(0.05)
            counts = await running()
    finally:
        with contextlib.suppress(Exception):
            await plane.stop_background()
        await client.close()
        await plane.store.close()
