"""The Nomad translator: every example translates with exactly the expected warnings, each jobspec feature
maps as documented in `skiff/translate/nomad.py`, and the rendered objects are accepted by a real control
plane and run on simulated nodes."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from skiff.agent.simulated import SimulatedNodes
from skiff.apiserver.local import LocalBackend
from skiff.client.factory import InformerFactory
from skiff.client.inprocess import InProcessClient
from skiff.client.interface import (
    CRONJOBS,
    DAEMONSETS,
    DEPLOYMENTS,
    JOBS,
    NAMESPACES,
    PODS,
    SERVICES,
    Resource,
)
from skiff.controllers.base import ControllerContext
from skiff.controllers.daemonset import DaemonSetController
from skiff.controllers.deployment import DeploymentController
from skiff.controllers.replicaset import ReplicaSetController
from skiff.scheduler.plugins import default_framework
from skiff.scheduler.scheduler import Scheduler
from skiff.testing import eventually, start_control_plane
from skiff.translate.model import LABEL_NOMAD_JOB, TranslateError, Translation
from skiff.translate.nomad import (
    DYNAMIC_PORT_BASE,
    EXEC_IMAGE,
    HOST_VOLUME_ROOT,
    NODE_CLASS_LABEL,
    TAGS_ANNOTATION,
    NomadJob,
    parse_nomad,
    translate_nomad,
)

Obj = dict[str, Any]
CONFIGMAPS = Resource("", "v1", "configmaps")
EXAMPLES = Path("/work/shared/examples/nomad")
F = "job.nomad.hcl"

# Every example file → the exact (key, reason) of each warning it must produce, in order.
EXPECTED_WARNINGS: dict[str, list[tuple[str, str]]] = {
    "001-web-app.nomad.hcl": [
        ("job.web-app.datacenters", "skiff is one cluster: the job runs on its nodes, whatever the datacenter ['dc1']"),
        ("job.web-app.group.web.task.nginx.resources.network.mbits",
         "skiff does not reserve network bandwidth; ignored"),
    ],
}


def example_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.hcl"))


def job(task: str = "", group: str = "", top: str = "", *, driver: str = "docker",
        config: str = 'image = "nginx:1.25"', jtype: str = "service", outer: str = "") -> str:
    """A one-group, one-task job with extra HCL at the task, group and job level."""
    return f"""{outer}
job "j" {{
  type = "{jtype}"
  {top}
  group "g" {{
    {group}
    task "t" {{
      driver = "{driver}"
      config {{
        {config}
      }}
      {task}
    }}
  }}
}}
"""


def parse(text: str, **variables: str) -> NomadJob:
    return parse_nomad(F, text, variables)


def warned(text: str, **variables: str) -> dict[str, str]:
    return {w.key: w.why for w in parse(text, **variables).warnings}


def kinds(t: Translation) -> list[tuple[str, str]]:
    return [(o["kind"], o["metadata"]["name"]) for o in t.objects]


def container(t: Translation, kind: str = "Deployment") -> Obj:
    obj = next(o for o in t.objects if o["kind"] == kind)
    spec = obj["spec"]["jobTemplate"]["spec"] if kind == "CronJob" else obj["spec"]
    c: Obj = spec["template"]["spec"]["containers"][0]
    return c


# --- the examples ------------------------------------------------------------------------------------


def test_every_example_has_expectations() -> None:
    assert sorted(p.name for p in example_files()) == sorted(EXPECTED_WARNINGS)


@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in example_files()])
def test_example_translates_with_exactly_the_expected_warnings(path: Path) -> None:
    t = translate_nomad(str(path), path.read_text())
    assert [(w.file, w.key, w.why) for w in t.warnings] == [
        (str(path), k, why) for k, why in EXPECTED_WARNINGS[path.name]]
    assert t.objects
    for o in t.objects:
        assert o["metadata"]["labels"][LABEL_NOMAD_JOB]


def test_web_app_example_maps_port_map_resources_and_check() -> None:
    path = EXAMPLES / "001-web-app.nomad.hcl"
    t = translate_nomad(str(path), path.read_text())
    assert kinds(t) == [("Deployment", "web-app-web"), ("Service", "web-app")]
    dep = t.objects[0]
    assert dep["spec"]["replicas"] == 3
    c = container(t)
    assert c["image"] == "nginx:latest"
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP", "name": "http"}]  # Nomad 0.x port_map
    assert c["resources"] == {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"memory": "256Mi"}}
    assert c["readinessProbe"] == {"httpGet": {"path": "/", "port": 80, "scheme": "HTTP"}, "initialDelaySeconds": 0,
                                   "periodSeconds": 10, "timeoutSeconds": 2, "successThreshold": 1,
                                   "failureThreshold": 1}
    assert "livenessProbe" not in c  # no check_restart: Nomad never restarts on a failing check
    assert {"name": "NOMAD_PORT_http", "value": "80"} in c["env"]
    svc = t.objects[1]
    assert svc["spec"]["ports"] == [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 80}]
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]


def test_api_json_form_gives_the_same_objects_as_hcl() -> None:
    path = EXAMPLES / "001-web-app.nomad.hcl"
    api = {"Job": {
        "ID": "web-app", "Name": "web-app", "Type": "service", "Datacenters": ["dc1"], "Region": "global",
        "Namespace": "default", "Priority": 50, "Status": "running", "CreateIndex": 10, "Periodic": None,
        "Update": {"Stagger": 30_000_000_000, "MaxParallel": 1, "HealthCheck": "", "MinHealthyTime": 0},
        "TaskGroups": [{
            "Name": "web", "Count": 3,
            "ReschedulePolicy": {"Attempts": 0, "Interval": 0, "Delay": 30_000_000_000,
                                 "DelayFunction": "exponential", "MaxDelay": 3_600_000_000_000, "Unlimited": True},
            "Migrate": {"MaxParallel": 1, "HealthCheck": "checks", "MinHealthyTime": 10_000_000_000,
                        "HealthyDeadline": 300_000_000_000},
            "EphemeralDisk": {"SizeMB": 300, "Sticky": False, "Migrate": False},
            "Tasks": [{
                "Name": "nginx", "Driver": "docker", "Leader": False, "KillSignal": "",
                "Config": {"image": "nginx:latest", "port_map": [{"http": 80}]},
                "LogConfig": {"MaxFiles": 10, "MaxFileSizeMB": 10, "Disabled": False},
                "Resources": {"CPU": 500, "MemoryMB": 256, "MemoryMaxMB": 0, "DiskMB": 0, "Networks": [
                    {"MBits": 10, "DynamicPorts": [{"Label": "http", "Value": 0, "To": 0, "HostNetwork": "default"}]}]},
                "Services": [{"Name": "web-app", "PortLabel": "http", "AddressMode": "auto", "Provider": "consul",
                              "OnUpdate": "require_healthy", "Checks": [{
                                  "Type": "http", "Path": "/", "Interval": 10_000_000_000, "Timeout": 2_000_000_000,
                                  "AddressMode": "host", "Method": "GET", "OnUpdate": "require_healthy"}]}],
            }],
        }],
    }}
    from_api = translate_nomad("job.json", json.dumps(api))
    from_hcl = translate_nomad(str(path), path.read_text())
    dep_api, dep_hcl = from_api.objects[0], from_hcl.objects[0]
    # The API spells out Nomad's update defaults, which the HCL leaves implicit.
    assert dep_api["spec"].pop("minReadySeconds", None) is None
    assert {k: v for k, v in dep_api.items()} == dep_hcl
    assert from_api.objects[1:] == from_hcl.objects[1:]
    assert [(w.key, w.why) for w in from_api.warnings] == [
        ("job.web-app.datacenters", "skiff is one cluster: the job runs on its nodes, whatever the datacenter ['dc1']"),
        ("job.web-app.group.web.task.nginx.resources.network.mbits", "skiff does not reserve network bandwidth; ignored"),
    ]


# --- job types, periodic, parameterized --------------------------------------------------------------


@pytest.mark.parametrize(("jtype", "kind", "restart"), [
    pytest.param("service", "Deployment", "Always", id="service"),
    pytest.param("system", "DaemonSet", "Always", id="system"),
    pytest.param("batch", "Job", "OnFailure", id="batch"),
    pytest.param("sysbatch", "Job", "OnFailure", id="sysbatch"),
])
def test_job_type_picks_the_controller(jtype: str, kind: str, restart: str) -> None:
    t = translate_nomad(F, job(jtype=jtype))
    obj = t.objects[0]
    assert obj["kind"] == kind
    assert obj["spec"]["template"]["spec"]["restartPolicy"] == restart


def test_batch_backoff_limit_is_nomads_default_attempts() -> None:
    t = translate_nomad(F, job(jtype="batch", group="count = 2"))
    assert t.objects[0]["spec"]["backoffLimit"] == 3
    assert t.objects[0]["spec"]["parallelism"] == t.objects[0]["spec"]["completions"] == 2


def test_sysbatch_runs_on_distinct_nodes_and_says_so() -> None:
    t = translate_nomad(F, job(jtype="sysbatch", group="count = 3"))
    assert t.objects[0]["spec"]["parallelism"] == t.objects[0]["spec"]["completions"] == 3
    spec = t.objects[0]["spec"]["template"]["spec"]
    assert spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0][
        "topologyKey"] == "kubernetes.io/hostname"
    assert "sysbatch" in {w.key: w.why for w in t.warnings}["job.j.group.g"]


def test_periodic_becomes_cronjobs() -> None:
    t = translate_nomad(F, job(jtype="batch", top="""
      periodic {
        crons = ["*/15 * * * *", "0 0 3 * * * *"]
        prohibit_overlap = true
        time_zone = "Europe/Berlin"
      }"""))
    assert kinds(t) == [("CronJob", "j-g-0"), ("CronJob", "j-g-1")]
    a, b = t.objects
    assert (a["spec"]["schedule"], b["spec"]["schedule"]) == ("*/15 * * * *", "0 3 * * *")
    assert a["spec"]["concurrencyPolicy"] == "Forbid"
    assert a["spec"]["timeZone"] == "Europe/Berlin"
    assert a["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    assert "suspend" not in a["spec"]
    assert not t.warnings


def test_disabled_periodic_is_suspended() -> None:
    t = translate_nomad(F, job(jtype="batch", top='periodic {\n cron = "@daily"\n enabled = false\n}'))
    assert t.objects[0]["spec"]["suspend"] is True
    assert t.objects[0]["spec"]["concurrencyPolicy"] == "Allow"


@pytest.mark.parametrize(("top", "jtype", "why"), [
    pytest.param('periodic {\n cron = "@daily"\n}', "service", "only batch and sysbatch jobs can be periodic",
                 id="periodic-service"),
    pytest.param('periodic {\n cron = "*/5 * * * * * *"\n}', "batch", "five-field", id="cron-seconds"),
    pytest.param('periodic {\n cron = "@reboot"\n}', "batch", "not a supported cron descriptor", id="descriptor"),
    pytest.param("periodic {\n}", "batch", "needs cron or crons", id="no-spec"),
    pytest.param('periodic {\n cron = "0 0 L * *"\n}', "batch", "not a Kubernetes schedule", id="cronexpr-last-day"),
])
def test_periodic_errors(top: str, jtype: str, why: str) -> None:
    with pytest.raises(TranslateError, match=why) as e:
        parse(job(jtype=jtype, top=top))
    assert e.value.key.startswith("job.j.periodic")


def test_parameterized_job_is_created_suspended() -> None:
    t = translate_nomad(F, job(jtype="batch", top='parameterized {\n meta_required = ["x"]\n}'))
    assert t.objects[0]["spec"]["suspend"] is True
    assert set({w.key for w in t.warnings}) == {"job.j.parameterized", "job.j.parameterized.meta_required"}


# --- job-level keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("top", "key"), [
    pytest.param('region = "eu"', "job.j.region", id="region"),
    pytest.param("priority = 80", "job.j.priority", id="priority"),
    pytest.param('datacenters = ["a", "b"]', "job.j.datacenters", id="datacenters"),
    pytest.param("all_at_once = true", "job.j.all_at_once", id="all-at-once"),
    pytest.param('vault {\n policies = ["x"]\n}', "job.j.vault", id="vault"),
    pytest.param("frobnicate = 1", "job.j.frobnicate", id="unknown-key"),
])
def test_job_keys_that_are_reported(top: str, key: str) -> None:
    assert key in warned(job(top=top))


@pytest.mark.parametrize(("top", "quiet"), [
    pytest.param('region = "global"', True, id="default-region"),
    pytest.param("priority = 50", True, id="default-priority"),
    pytest.param('datacenters = ["*"]', True, id="any-datacenter"),
    pytest.param("all_at_once = false", True, id="all-at-once-false"),
])
def test_job_keys_at_their_defaults_are_quiet(top: str, quiet: bool) -> None:
    assert (warned(job(top=top)) == {}) is quiet


def test_namespace_meta_and_labels() -> None:
    t = translate_nomad(F, job(top='namespace = "team-a"\nmeta {\n owner = "ops"\n}',
                               group='meta = { tier = "web" }'))
    dep = t.objects[0]
    assert dep["metadata"]["namespace"] == "team-a"
    assert dep["metadata"]["annotations"] == {"owner": "ops", "tier": "web"}
    assert dep["spec"]["template"]["metadata"]["annotations"] == {"owner": "ops", "tier": "web"}
    assert {"name": "NOMAD_META_owner", "value": "ops"} in container(t)["env"]
    assert list(warned(job(top='meta = {\n "bad key!" = "x"\n}'))) == ["job.j.group.g.meta.bad key!"]


# --- resources -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("resources", "want"), [
    pytest.param("", {"requests": {"cpu": "100m", "memory": "300Mi"}, "limits": {"memory": "300Mi"}},
                 id="nomad-defaults"),
    pytest.param("cpu = 2500\nmemory = 512", {"requests": {"cpu": "2500m", "memory": "512Mi"},
                                               "limits": {"memory": "512Mi"}}, id="mhz-as-millicores"),
    pytest.param("cores = 2\nmemory = 128\nmemory_max = 1024",
                 {"requests": {"cpu": "2", "memory": "128Mi"}, "limits": {"cpu": "2", "memory": "1024Mi"}},
                 id="cores-and-memory-max"),
])
def test_resources(resources: str, want: Obj) -> None:
    t = translate_nomad(F, job(task=f"resources {{\n{resources}\n}}"))
    assert container(t)["resources"] == want


@pytest.mark.parametrize(("resources", "key"), [
    pytest.param("cpu = 100\ncores = 1", "job.j.group.g.task.t.resources", id="cpu-and-cores"),
    pytest.param("memory = 512\nmemory_max = 256", "job.j.group.g.task.t.resources.memory_max", id="max-below"),
    pytest.param('cpu = "lots"', "job.j.group.g.task.t.resources.cpu", id="not-a-number"),
    pytest.param("memory = 99999999999999999999", "job.j.group.g.task.t.resources.memory", id="huge"),
])
def test_resource_errors(resources: str, key: str) -> None:
    with pytest.raises(TranslateError) as e:
        parse(job(task=f"resources {{\n{resources}\n}}"))
    assert (e.value.file, e.value.key) == (F, key)


def test_ephemeral_disk_is_an_ephemeral_storage_request() -> None:
    t = translate_nomad(F, job(group="ephemeral_disk {\n size = 2048\n sticky = true\n}"))
    assert container(t)["resources"]["requests"]["ephemeral-storage"] == "2048Mi"
    assert list(w.key for w in t.warnings) == ["job.j.group.g.ephemeral_disk.sticky"]


# --- ports and services ------------------------------------------------------------------------------


@pytest.mark.parametrize(("network", "config", "want", "warn"), [
    pytest.param('port "http" {\n static = 8080\n to = 80\n}', 'ports = ["http"]',
                 {"containerPort": 80, "protocol": "TCP", "name": "http", "hostPort": 8080}, False, id="static-to"),
    pytest.param('port "http" {\n static = 8080\n}', 'ports = ["http"]',
                 {"containerPort": 8080, "protocol": "TCP", "name": "http", "hostPort": 8080}, False, id="static"),
    pytest.param('port "db_port" {\n to = 5432\n}', 'ports = ["db_port"]',
                 {"containerPort": 5432, "protocol": "TCP", "name": "db-port"}, False, id="dynamic-to"),
    pytest.param('port "http" {}', 'ports = ["http"]',
                 {"containerPort": DYNAMIC_PORT_BASE, "protocol": "TCP", "name": "http"}, True, id="dynamic"),
])
def test_group_ports(network: str, config: str, want: Obj, warn: bool) -> None:
    text = job(group=f'network {{\n mode = "bridge"\n{network}\n}}', config=f'image = "x"\n{config}')
    t = translate_nomad(F, text)
    assert container(t)["ports"] == [want]
    assert (next(iter(warned(text)), "").endswith(".port.http")) is warn


def test_service_stanzas_become_one_service_per_name_with_tags() -> None:
    text = job(config='image = "x"\nports = ["http", "admin"]', group="""
      network {
        port "http" { to = 8080 }
        port "admin" { static = 9000 }
      }
      service {
        name = "web"
        port = "http"
        tags = ["public", "v1"]
        check {
          type = "http"
          path = "health"
          interval = "5s"
          timeout = "1s"
          check_restart {
            limit = 3
            grace = "30s"
          }
        }
      }
      service {
        name = "${NOMAD_JOB_NAME}-admin"
        port = "admin"
        check {
          type = "tcp"
          interval = "1500ms"
          timeout = "1s"
        }
      }""")
    t = translate_nomad(F, text)
    assert kinds(t) == [("Deployment", "j-g"), ("Service", "web"), ("Service", "j-admin")]
    web, admin = t.objects[1], t.objects[2]
    assert web["metadata"]["annotations"] == {TAGS_ANNOTATION: "public,v1"}
    assert web["spec"]["ports"] == [{"name": "http", "protocol": "TCP", "port": 8080, "targetPort": 8080}]
    assert admin["spec"]["ports"] == [{"name": "admin", "protocol": "TCP", "port": 9000, "targetPort": 9000}]
    c = container(t)
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8080, "scheme": "HTTP"}
    assert c["livenessProbe"] == {"httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"},
                                  "initialDelaySeconds": 30, "periodSeconds": 5, "timeoutSeconds": 1,
                                  "successThreshold": 1, "failureThreshold": 3}
    assert [(w.key, w.why) for w in t.warnings] == [
        ("job.j.group.g.service[1].check.interval", "Kubernetes counts whole seconds: 1.5s becomes 2s"),
        ("job.j.group.g.service[1].check",
         "Kubernetes runs one readiness probe per container: only the task's first check is its probe"),
    ]


def test_task_service_defaults_its_name_and_a_service_without_port_is_headless() -> None:
    t = translate_nomad(F, job(task='service {\n tags = ["x"]\n}'))
    svc = t.objects[1]
    assert svc["metadata"]["name"] == "j-g-t"
    assert svc["spec"]["clusterIP"] == "None"


@pytest.mark.parametrize(("check", "probe"), [
    pytest.param('type = "script"\ncommand = "/bin/check"\nargs = ["-q"]',
                 {"exec": {"command": ["/bin/check", "-q"]}}, id="script"),
    pytest.param('type = "grpc"\nport = 9090', {"grpc": {"port": 9090}}, id="grpc-number"),
    pytest.param('type = "http"\nprotocol = "https"', {"httpGet": {"path": "/", "port": 80, "scheme": "HTTPS"}},
                 id="https"),
])
def test_check_kinds(check: str, probe: Obj) -> None:
    t = translate_nomad(F, job(config='image = "x"\nports = ["http"]', group='network {\n port "http" { to = 80 }\n}',
                               task=f'service {{\n port = "http"\n check {{\n{check}\n interval = "10s"\n'
                                    ' timeout = "3s"\n}\n}'))
    got = container(t)["readinessProbe"]
    assert {k: v for k, v in got.items() if k in probe} == probe


@pytest.mark.parametrize(("check", "key", "why"), [
    pytest.param('type = "http"\ntimeout = "1s"', "check.interval", "required", id="no-interval"),
    pytest.param('type = "udp"\ninterval = "1s"\ntimeout = "1s"', "check.type", "not one of", id="bad-type"),
    pytest.param('type = "http"\ninterval = "soon"\ntimeout = "1s"', "check.interval", "not a duration",
                 id="bad-duration"),
    pytest.param('type = "http"\nport = "nope"\ninterval = "1s"\ntimeout = "1s"', "check.port", "neither",
                 id="unknown-label"),
])
def test_check_errors(check: str, key: str, why: str) -> None:
    with pytest.raises(TranslateError, match=why) as e:
        parse(job(task=f"service {{\n port = 80\n check {{\n{check}\n}}\n}}"))
    assert e.value.key == f"job.j.group.g.task.t.service.{key}"


def test_undefined_port_label_is_an_error() -> None:
    with pytest.raises(TranslateError, match="not defined") as e:
        parse(job(config='image = "x"\nports = ["web"]'))
    assert e.value.key == "job.j.group.g.task.t.config.ports"


# --- runtime interpolation, env, user, drivers --------------------------------------------------------


def test_runtime_interpolation_uses_kubernetes_env_expansion() -> None:
    text = job(config='image = "x"\nports = ["http"]\nargs = ["--port", "${NOMAD_PORT_http}", "--id", '
                      '"${NOMAD_ALLOC_ID}", "--conf", "${NOMAD_TASK_DIR}/app.conf"]',
               group='network {\n port "http" { to = 8080 }\n}',
               task='env {\n LISTEN = "0.0.0.0:${NOMAD_PORT_http}"\n COUNT = 3\n}\nuser = "1000:2000"')
    t = translate_nomad(F, text)
    c = container(t)
    assert c["args"] == ["--port", "$(NOMAD_PORT_http)", "--id", "${NOMAD_ALLOC_ID}", "--conf", "/local/app.conf"]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["LISTEN"] == "0.0.0.0:$(NOMAD_PORT_http)" and env["COUNT"] == "3" and env["NOMAD_PORT_http"] == "8080"
    names = [e["name"] for e in c["env"]]
    assert names.index("NOMAD_PORT_http") < names.index("LISTEN")  # defined before use, as $(...) needs
    assert c["securityContext"] == {"runAsUser": 1000, "runAsGroup": 2000}
    assert [(w.key, w.why) for w in t.warnings] == [
        ("job.j.group.g.task.t.config.args",
         "Nomad runtime interpolation ${NOMAD_ALLOC_ID} has no value in skiff; left as written")]


@pytest.mark.parametrize(("config", "command", "args"), [
    pytest.param('image = "x"\ncommand = "serve"\nargs = ["-v"]', None, ["serve", "-v"], id="command-args"),
    pytest.param('image = "x"\nargs = ["-v"]', None, ["-v"], id="args-only"),
    pytest.param('image = "x"\nentrypoint = ["/init"]\ncommand = "run"', ["/init"], ["run"], id="entrypoint"),
])
def test_docker_command_mapping(config: str, command: list[str] | None, args: list[str] | None) -> None:
    c = container(translate_nomad(F, job(config=config)))
    assert (c.get("command"), c.get("args")) == (command, args)


@pytest.mark.parametrize("driver", ["exec", "raw_exec"])
def test_exec_drivers_run_in_the_default_image(driver: str) -> None:
    t = translate_nomad(F, job(driver=driver, config='command = "/bin/sh"\nargs = ["-c", "sleep 1"]'))
    c = container(t)
    assert (c["image"], c["command"], c["args"]) == (EXEC_IMAGE, ["/bin/sh"], ["-c", "sleep 1"])
    assert [w.key for w in t.warnings] == ["job.j.group.g.task.t.config"]


@pytest.mark.parametrize("driver", ["java", "qemu"])
def test_unsupported_drivers_are_errors_naming_the_driver(driver: str) -> None:
    with pytest.raises(TranslateError, match=f"driver '{driver}'") as e:
        parse(job(driver=driver, config='jar_path = "x.jar"'))
    assert e.value.key == "job.j.group.g.task.t.driver"


def test_docker_options_without_equivalent_are_reported() -> None:
    assert warned(job(config='image = "x"\ndns_servers = ["1.1.1.1"]\nwork_dir = "/srv"')) == {
        "job.j.group.g.task.t.config.dns_servers": "docker option dns_servers: pods use the cluster DNS"}


def test_kill_timeout_lifecycle_and_reported_task_keys() -> None:
    text = """
job "j" {
  group "g" {
    task "init" {
      driver = "docker"
      config { image = "busybox" }
      lifecycle {
        hook = "prestart"
        sidecar = false
      }
    }
    task "side" {
      driver = "docker"
      config { image = "envoy" }
      lifecycle {
        hook = "prestart"
        sidecar = true
      }
    }
    task "main" {
      driver = "docker"
      config { image = "app" }
      kill_timeout = "45s"
      kill_signal = "SIGINT"
      leader = true
      artifact { source = "https://example.invalid/x.tgz" }
    }
    task "cleanup" {
      driver = "docker"
      config { image = "busybox" }
      lifecycle { hook = "poststop" }
    }
  }
}"""
    t = translate_nomad(F, text)
    spec = t.objects[0]["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["init"]
    assert [c["name"] for c in spec["containers"]] == ["side", "main"]
    assert spec["terminationGracePeriodSeconds"] == 45
    assert {w.key for w in t.warnings} == {
        "job.j.group.g.task.side.lifecycle", "job.j.group.g.task.main.kill_signal", "job.j.group.g.task.main.leader",
        "job.j.group.g.task.main.artifact", "job.j.group.g.task.cleanup.lifecycle"}


# --- templates and volumes ---------------------------------------------------------------------------


def test_static_template_is_a_configmap_named_by_content() -> None:
    tpl = 'template {\n data = "listen 80;\\n"\n destination = "local/nginx.conf"\n perms = "600"\n}'
    t = translate_nomad(F, job(task=tpl))
    cm = t.objects[0]
    assert cm["kind"] == "ConfigMap" and cm["data"] == {"nginx.conf": "listen 80;\n"}
    c = container(t)
    assert c["volumeMounts"] == [{"name": "tpl-t-0", "mountPath": "/local/nginx.conf", "readOnly": True,
                                  "subPath": "nginx.conf"}]
    vols = t.objects[1]["spec"]["template"]["spec"]["volumes"]
    assert vols == [{"name": "tpl-t-0", "configMap": {"name": cm["metadata"]["name"],
                                                      "items": [{"key": "nginx.conf", "path": "nginx.conf",
                                                                 "mode": 0o600}]}}]
    assert not t.warnings
    changed = translate_nomad(F, job(task=tpl.replace("80", "81")))
    assert changed.objects[0]["metadata"]["name"] != cm["metadata"]["name"]  # a changed template rolls the pods


def test_dynamic_template_is_mounted_as_written_with_a_warning() -> None:
    text = job(task='template {\n data = <<EOF\nhost={{ key "db/host" }}\nEOF\n destination = "local/app.env"\n'
                    ' change_mode = "signal"\n change_signal = "SIGHUP"\n}')
    t = translate_nomad(F, text)
    assert t.objects[0]["data"] == {"app.env": 'host={{ key "db/host" }}'}
    assert [(w.key, w.why) for w in t.warnings] == [
        ("job.j.group.g.task.t.template.change_signal", "a changed template restarts the pod; no signal is sent"),
        ("job.j.group.g.task.t.template.data",
         "Consul template actions are not evaluated: the file holds the template text as written"),
        ("job.j.group.g.task.t.template.change_mode",
         "a changed template restarts the pod (the ConfigMap is named after its content); change_mode 'signal' is "
         "not applied"),
    ]


def test_env_template_sets_environment_variables() -> None:
    t = translate_nomad(F, job(task='template {\n data = "A=1\\nB=two\\n"\n destination = "secrets/x.env"\n'
                                    ' env = true\n}'))
    env = {e["name"]: e["value"] for e in container(t)["env"]}
    assert (env["A"], env["B"]) == ("1", "two")
    assert [o["kind"] for o in t.objects] == ["Deployment"]


def test_host_and_csi_volumes() -> None:
    text = job(group='volume "data" {\n type = "host"\n source = "pg-data"\n}\n'
                     'volume "shared" {\n type = "csi"\n source = "nfs-1"\n read_only = true\n}',
               task='volume_mount {\n volume = "data"\n destination = "/var/lib/pg"\n}\n'
                    'volume_mount {\n volume = "shared"\n destination = "/shared"\n read_only = true\n}')
    t = translate_nomad(F, text)
    vols = t.objects[0]["spec"]["template"]["spec"]["volumes"]
    assert vols == [{"name": "vol-data", "hostPath": {"path": f"{HOST_VOLUME_ROOT}/pg-data"}},
                    {"name": "vol-shared", "persistentVolumeClaim": {"claimName": "nfs-1"}}]
    assert container(t)["volumeMounts"] == [{"name": "vol-data", "mountPath": "/var/lib/pg"},
                                            {"name": "vol-shared", "mountPath": "/shared", "readOnly": True}]
    assert [w.key for w in t.warnings] == ["job.j.group.g.volume.data.source", "job.j.group.g.volume.shared.source"]


def test_docker_volumes_and_mounts() -> None:
    t = translate_nomad(F, job(config='image = "x"\nvolumes = ["/etc/ssl:/etc/ssl:ro", "local/cache:/cache"]\n'
                                      'mount {\n type = "tmpfs"\n target = "/tmp"\n tmpfs_options { size = 1000000 }\n}'))
    c = container(t)
    assert [(m["mountPath"], m.get("readOnly", False)) for m in c["volumeMounts"]] == [
        ("/etc/ssl", True), ("/cache", False), ("/tmp", False)]
    vols = t.objects[0]["spec"]["template"]["spec"]["volumes"]
    assert [sorted(set(v) - {"name"}) for v in vols] == [["hostPath"], ["emptyDir"], ["emptyDir"]]
    assert vols[2]["emptyDir"] == {"medium": "Memory", "sizeLimit": "1000000"}
    assert [w.key for w in t.warnings] == ["job.j.group.g.task.t.config.volumes[1]"]


# --- restart, update ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("jtype", "restart", "backoff", "warned_keys"), [
    pytest.param("batch", "attempts = 5\ndelay = \"15s\"", 5, [], id="batch-attempts"),
    pytest.param("batch", "attempts = 1\ndelay = \"1m\"\nmode = \"delay\"", 1,
                 ["job.j.group.g.restart.delay", "job.j.group.g.restart.mode"], id="batch-delay-mode"),
    pytest.param("service", "attempts = 2\ninterval = \"30m\"", None, [], id="service-defaults"),
    pytest.param("service", "attempts = 10", None, ["job.j.group.g.restart.attempts"], id="service-attempts"),
])
def test_restart(jtype: str, restart: str, backoff: int | None, warned_keys: list[str]) -> None:
    t = translate_nomad(F, job(jtype=jtype, group=f"restart {{\n{restart}\n}}"))
    assert t.objects[0]["spec"].get("backoffLimit") == backoff
    assert [w.key for w in t.warnings] == warned_keys


def test_update_block() -> None:
    text = job(top='update {\n max_parallel = 2\n stagger = "30s"\n}', group="""
      update {
        min_healthy_time = "20s"
        progress_deadline = "15m"
        healthy_deadline = "3m"
        auto_revert = true
        canary = 1
      }""")
    t = translate_nomad(F, text)
    spec = t.objects[0]["spec"]
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 2}
    assert (spec["minReadySeconds"], spec["progressDeadlineSeconds"]) == (20, 900)
    assert {w.key: w.why for w in t.warnings} == {
        "job.j.group.g.update.healthy_deadline": "skiff has no per-pod health deadline; the rollout's deadline is "
                                                 "progress_deadline (progressDeadlineSeconds)",
        "job.j.group.g.update.auto_revert": "skiff does not roll back automatically; a stuck rollout is marked "
                                            "ProgressDeadlineExceeded: undo it with `kubectl rollout undo`",
        "job.j.group.g.update.canary": "skiff has no canary deployments: a normal rolling update replaces the pods",
    }


@pytest.mark.parametrize(("update", "keys"), [
    pytest.param('max_parallel = 1\nstagger = "30s"', [], id="defaults-quiet"),
    pytest.param("canary = 1", ["job.j.update.canary"], id="non-default"),
])
def test_update_on_a_batch_job(update: str, keys: list[str]) -> None:
    assert list(warned(job(jtype="batch", top=f"update {{\n{update}\n}}"))) == keys


def test_checks_of_a_prestart_task_are_not_probes() -> None:
    text = job(task='lifecycle {\n hook = "prestart"\n}\nservice {\n port = 80\n check {\n type = "tcp"\n'
                    ' interval = "5s"\n timeout = "1s"\n}\n}')
    text = text.replace('group "g" {', 'group "g" {\ntask "main" {\ndriver = "docker"\nconfig { image = "x" }\n}')
    t = translate_nomad(F, text)
    init = t.objects[0]["spec"]["template"]["spec"]["initContainers"][0]
    assert "readinessProbe" not in init
    assert [w.key for w in t.warnings] == ["job.j.group.g.task.t.service.check"]


# --- placement -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("constraint", "expr"), [
    pytest.param('attribute = "${attr.kernel.name}"\nvalue = "linux"',
                 {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}, id="kernel"),
    pytest.param('attribute = "${node.unique.name}"\noperator = "!="\nvalue = "n1"',
                 {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["n1"]}, id="hostname-not"),
    pytest.param('attribute = "${node.class}"\nvalue = "gpu"',
                 {"key": NODE_CLASS_LABEL, "operator": "In", "values": ["gpu"]}, id="node-class"),
    pytest.param('attribute = "${meta.rack}"\noperator = "regexp"\nvalue = "^(r1|r2)$"',
                 {"key": "rack", "operator": "In", "values": ["r1", "r2"]}, id="regexp-alternation"),
    pytest.param('attribute = "${meta.features}"\noperator = "set_contains"\nvalue = "ssd"',
                 {"key": "features", "operator": "In", "values": ["ssd"]}, id="set-contains-one"),
    pytest.param('attribute = "${meta.ssd}"\noperator = "is_set"', {"key": "ssd", "operator": "Exists"},
                 id="is-set"),
])
def test_constraints_become_required_node_rules(constraint: str, expr: Obj) -> None:
    t = translate_nomad(F, job(task=f"constraint {{\n{constraint}\n}}"))
    aff = t.objects[0]["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    assert aff["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] == [
        {"matchExpressions": [expr]}]
    assert not t.warnings


@pytest.mark.parametrize("constraint", [
    pytest.param('attribute = "${meta.rack}"\noperator = "regexp"\nvalue = "r[0-9]+"', id="real-regexp"),
    pytest.param('attribute = "${attr.os.version}"\nvalue = "22.04"', id="unmapped-attribute"),
    pytest.param('attribute = "${meta.x}"\noperator = "version"\nvalue = ">= 1.2"', id="version"),
    pytest.param('attribute = "${meta.x}"\noperator = "set_contains"\nvalue = "a,b"', id="set-contains-many"),
])
def test_constraints_that_cannot_be_honoured_are_reported(constraint: str) -> None:
    t = translate_nomad(F, job(group=f"constraint {{\n{constraint}\n}}"))
    assert "affinity" not in t.objects[0]["spec"]["template"]["spec"]
    assert len(t.warnings) == 1 and t.warnings[0].key.startswith("job.j.group.g.constraint")


@pytest.mark.parametrize(("constraint", "anti", "spread"), [
    pytest.param('operator = "distinct_hosts"\nvalue = "true"', True, None, id="distinct-hosts"),
    pytest.param('operator = "distinct_property"\nattribute = "${node.unique.name}"', True, None,
                 id="distinct-property-host"),
    pytest.param('operator = "distinct_property"\nattribute = "${node.unique.name}"\nvalue = "2"', False, 2,
                 id="distinct-property-two"),
])
def test_distinct_constraints(constraint: str, anti: bool, spread: int | None) -> None:
    spec = translate_nomad(F, job(top=f"constraint {{\n{constraint}\n}}")).objects[0]["spec"]["template"]["spec"]
    assert ("podAntiAffinity" in spec.get("affinity", {})) is anti
    assert [s["maxSkew"] for s in spec.get("topologySpreadConstraints", [])] == ([spread] if spread else [])


def test_affinity_and_spread() -> None:
    text = job(group='affinity {\n attribute = "${node.datacenter}"\n value = "zone-1"\n weight = 70\n}\n'
                     'affinity {\n attribute = "${meta.spot}"\n value = "true"\n weight = -40\n}\n'
                     'spread {\n attribute = "${node.datacenter}"\n target "zone-0" { percent = 50 }\n}')
    t = translate_nomad(F, text)
    spec = t.objects[0]["spec"]["template"]["spec"]
    assert spec["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] == [
        {"weight": 70, "preference": {"matchExpressions": [
            {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["zone-1"]}]}},
        {"weight": 40, "preference": {"matchExpressions": [
            {"key": "spot", "operator": "NotIn", "values": ["true"]}]}},
    ]
    assert spec["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    assert [w.key for w in t.warnings] == ["job.j.group.g.spread.target"]


# --- variables and HCL expressions ---------------------------------------------------------------------

VARS = 'variable "image" {\n default = "nginx:1.25"\n}\nvariable "replicas" {\n type = number\n default = 2\n}\n'


@pytest.mark.parametrize(("given", "image", "replicas"), [
    pytest.param({}, "nginx:1.25", 2, id="defaults"),
    pytest.param({"image": "nginx:1.27", "replicas": "5"}, "nginx:1.27", 5, id="given"),
])
def test_variables(given: dict[str, str], image: str, replicas: int) -> None:
    text = job(outer=VARS + 'locals {\n tag = "${var.image}"\n}', config='image = local.tag', group="count = var.replicas")
    t = translate_nomad(F, text, given)
    assert container(t)["image"] == image
    assert t.objects[0]["spec"]["replicas"] == replicas


@pytest.mark.parametrize(("outer", "config", "given", "key", "why"), [
    pytest.param('variable "x" {}', 'image = var.x', {}, "variable.x", "no value given", id="missing-value"),
    pytest.param("", 'image = var.nope', {}, "job.j.group.g.task.t.config.image", "undeclared variable",
                 id="undeclared-reference"),
    pytest.param("", 'image = upper("x")', {}, "job.j.group.g.task.t.config.image", "not supported",
                 id="function-call"),
    pytest.param('variable "n" {\n type = number\n}', 'image = "x"', {"n": "many"}, "variable.n", "not a number",
                 id="bad-number"),
    pytest.param('locals {\n a = local.b\n b = local.a\n}', 'image = local.a', {}, "locals[0].b",
                 "refers to itself", id="local-cycle"),
])
def test_variable_errors(outer: str, config: str, given: dict[str, str], key: str, why: str) -> None:
    with pytest.raises(TranslateError, match=why) as e:
        parse_nomad(F, job(outer=outer, config=config), given)
    assert e.value.key == key


def test_value_for_an_undeclared_variable_is_reported() -> None:
    assert warned(job(), extra="1") == {
        "variable.extra": "a value was given for a variable the job does not declare; ignored"}


# --- malformed input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "key"), [
    pytest.param('job "j" {', "line 1", id="unterminated"),
    pytest.param("", "job", id="empty"),
    pytest.param('job "a" {}\njob "b" {}', "job", id="two-jobs"),
    pytest.param('job "j" {}', "job.j.group", id="no-groups"),
    pytest.param('job "j" {\n type = "cron"\n group "g" {}\n}', "job.j.type", id="bad-type"),
    pytest.param('job "j" {\n group "g" {}\n}', "job.j.group.g.task", id="no-tasks"),
    pytest.param('job "j" {\n group "g" {\n task "t" {\n config { image = "x" }\n}\n}\n}',
                 "job.j.group.g.task.t.driver", id="no-driver"),
    pytest.param('job "j" {\n group "g" {\n count = "x"\n}\n}', "job.j.group.g.count", id="count-type"),
    pytest.param('job "j" {\n group "g" {\n count = -1\n}\n}', "job.j.group.g.count", id="count-negative"),
    pytest.param('{"Job": {"ID": "j", "TaskGroups": {"x": 1}}}', "Job.TaskGroups", id="api-groups-not-list"),
    pytest.param('{"Job": {"TaskGroups": []}}', "Job.ID", id="api-no-id"),
    pytest.param("[1, 2]", "<document>", id="json-not-object"),
])
def test_malformed_input_names_the_key(text: str, key: str) -> None:
    with pytest.raises(TranslateError) as e:
        translate_nomad(F, text)
    assert (e.value.file, e.value.key) == (F, key)


# --- the control plane accepts the objects, and they run ---------------------------------------------

RICH_JOB = """
variable "image" {
  default = "nginx:1.25"
}

job "shop" {
  namespace = "shop"
  datacenters = ["*"]
  meta {
    team = "payments"
  }
  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }

  group "api" {
    count = 2
    network {
      mode = "bridge"
      port "http" { to = 8080 }
      port "metrics" {}
    }
    service {
      name = "shop-api"
      port = "http"
      tags = ["v1"]
      check {
        type     = "http"
        path     = "/healthz"
        interval = "10s"
        timeout  = "2s"
        check_restart {
          limit = 3
        }
      }
    }
    update {
      max_parallel     = 1
      min_healthy_time = "5s"
    }
    affinity {
      attribute = "${node.datacenter}"
      value     = "zone-0"
      weight    = 50
    }
    spread {
      attribute = "${node.datacenter}"
    }
    ephemeral_disk {
      size = 500
    }
    task "migrate" {
      driver = "docker"
      lifecycle {
        hook = "prestart"
      }
      config {
        image = "busybox:1.36"
        command = "true"
      }
      resources {
        cpu    = 50
        memory = 32
      }
    }
    task "api" {
      driver = "docker"
      config {
        image = var.image
        ports = ["http", "metrics"]
      }
      env {
        PORT = "${NOMAD_PORT_http}"
      }
      template {
        data        = "worker_processes 1;\\n"
        destination = "local/nginx.conf"
      }
      resources {
        cpu    = 250
        memory = 128
      }
    }
  }

  group "agent" {
    task "collector" {
      driver = "exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "sleep 3600"]
      }
    }
  }
}
"""
RICH_WARNINGS = [
    "job.shop.group.api.network.port.metrics",
    "job.shop.group.agent.task.collector.config",
]
PERIODIC_JOB = job(jtype="batch", top='periodic {\n crons = ["@hourly"]\n time_zone = "UTC"\n}',
                   task="resources {\n cpu = 100\n memory = 64\n}")
SYSTEM_JOB = job(jtype="system", task="resources {\n cpu = 100\n memory = 64\n}")
PARAMETERIZED_JOB = job(jtype="batch", top="parameterized {}")

RESOURCES: dict[str, Resource] = {
    "ConfigMap": CONFIGMAPS, "Service": SERVICES, "Deployment": DEPLOYMENTS, "DaemonSet": DAEMONSETS,
    "Job": JOBS, "CronJob": CRONJOBS,
}


def test_rich_job_warnings() -> None:
    t = translate_nomad(F, RICH_JOB)
    assert [w.key for w in t.warnings] == RICH_WARNINGS
    assert kinds(t)[0][0] == "ConfigMap"
    assert [k for k in kinds(t)[1:]] == [("Deployment", "shop-api"), ("Service", "shop-api"),
                                         ("Deployment", "shop-agent")]


@dataclass
class Plane:
    client: InProcessClient


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[Plane]:
    cp = await start_control_plane(tmp_path)
    client = InProcessClient(LocalBackend(cp))
    try:
        yield Plane(client)
    finally:
        await client.close()
        await cp.store.close()


async def create_all(client: InProcessClient, t: Translation) -> list[Obj]:
    created = []
    for ns in {o["metadata"]["namespace"] for o in t.objects}:
        with contextlib.suppress(Exception):
            await client.create(NAMESPACES, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for o in t.objects:
        created.append(await client.create(RESOURCES[o["kind"]], o["metadata"]["namespace"], o))
    return created


@pytest.mark.parametrize("text", [
    pytest.param((EXAMPLES / "001-web-app.nomad.hcl").read_text(), id="example-web-app"),
    pytest.param(RICH_JOB, id="rich"),
    pytest.param(PERIODIC_JOB, id="periodic"),
    pytest.param(SYSTEM_JOB, id="system"),
    pytest.param(PARAMETERIZED_JOB, id="parameterized"),
])
async def test_control_plane_accepts_the_rendered_objects(plane: Plane, text: str) -> None:
    t = translate_nomad(F, text)
    created = await create_all(plane.client, t)
    assert [(o["kind"], o["metadata"]["name"]) for o in created] == kinds(t)


async def test_rendered_jobs_schedule_and_run_on_simulated_nodes(tmp_path: Path) -> None:
    cp = await start_control_plane(tmp_path)
    client = InProcessClient(LocalBackend(cp))
    factory = InformerFactory(client)
    ctx = ControllerContext(client=client, informers=factory, new_queue=factory.new_queue)
    controllers = [ReplicaSetController(ctx), DeploymentController(ctx), DaemonSetController(ctx)]
    for c in controllers:
        c.setup()
    sched = Scheduler(client, factory, default_framework(seed=0))
    sim = SimulatedNodes(client, 3, tick=0.05)
    tasks = [asyncio.create_task(c.run()) for c in controllers]
    tasks += [asyncio.create_task(sched.run()), asyncio.create_task(sim.run())]
    try:
        await asyncio.wait_for(sim.ready.wait(), 30)
        example = EXAMPLES / "001-web-app.nomad.hcl"
        for text in (example.read_text(), RICH_JOB, SYSTEM_JOB):
            await create_all(client, translate_nomad(F, text))

        async def running(ns: str, workload: str, want: int) -> list[Obj] | None:
            pods = (await client.list(PODS, ns))["items"]
            mine = [p for p in pods if p["metadata"]["labels"].get("skiff.io/workload") == workload
                    and (p.get("status") or {}).get("phase") == "Running"]
            return mine if len(mine) == want else None

        web = await eventually(lambda: running("default", "web-app-web", 3), "3 web-app pods running")
        assert all(p["spec"]["nodeName"] for p in web)
        api = await eventually(lambda: running("shop", "shop-api", 2), "2 shop api pods running")
        # The spread over zones put the two replicas in different zones (nodes sim-node-0/1/2 are zones 0/1/2).
        assert len({p["spec"]["nodeName"] for p in api}) == 2
        await eventually(lambda: running("shop", "shop-agent", 1), "the exec task's pod running")
        await eventually(lambda: running("default", "j-g", 3), "one system pod per node")
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        sched.close()
        await factory.stop()
        await client.close()
        await cp.store.close()
