"""The everyday kubectl commands against a fresh skiff server behave as against Kubernetes 1.32."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from skiff.testing import ServerProcess

pytestmark = pytest.mark.e2e

DEPLOY = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports:
        - containerPort: 80
        env:
        - {name: A, value: "1"}
"""


def write(tmp: Path, name: str, text: str) -> str:
    p = tmp / name
    p.write_text(text)
    return str(p)


def test_version_reports_server(kube: ServerProcess) -> None:
    out = json.loads(kube.kubectl("version", "-o", "json").stdout)
    assert out["serverVersion"]["major"] == "1"
    assert out["serverVersion"]["minor"] == "32"


def test_api_resources_lists_builtin_kinds(kube: ServerProcess) -> None:
    out = kube.kubectl("api-resources").stdout
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "deploy" in lines["deployments"] and "apps/v1" in lines["deployments"]
    assert "po" in lines["pods"] and "true" in lines["pods"]
    for name in ("namespaces", "cronjobs", "horizontalpodautoscalers", "customresourcedefinitions",
                 "leases", "priorityclasses", "endpointslices", "networkpolicies", "poddisruptionbudgets"):
        assert name in lines, name
    wide = kube.kubectl("api-resources", "-o", "wide").stdout
    assert "all" in next(line for line in wide.splitlines() if line.startswith("pods "))


def test_default_namespaces_exist(kube: ServerProcess) -> None:
    names = kube.kubectl("get", "namespaces", "-o", "name").stdout.split()
    for ns in ("namespace/default", "namespace/kube-system", "namespace/kube-public", "namespace/kube-node-lease"):
        assert ns in names


def test_apply_create_unchanged_configured(kube: ServerProcess, tmp_path: Path) -> None:
    f = write(tmp_path, "d.yaml", DEPLOY)
    assert "deployment.apps/web created" in kube.kubectl("apply", "-f", f).stdout
    assert "deployment.apps/web unchanged" in kube.kubectl("apply", "-f", f).stdout
    f2 = write(tmp_path, "d2.yaml", DEPLOY.replace("nginx:1.25", "nginx:1.26").replace('value: "1"', 'value: "2"'))
    assert "deployment.apps/web configured" in kube.kubectl("apply", "-f", f2).stdout
    d = kube.kubectl_json("get", "deployment", "web")
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "nginx:1.26"
    assert c["env"] == [{"name": "A", "value": "2"}]
    assert d["metadata"]["generation"] == 2
    assert d["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == "25%"  # defaulted


def test_get_output_formats(kube: ServerProcess, tmp_path: Path) -> None:
    kube.kubectl("apply", "-f", write(tmp_path, "d.yaml", DEPLOY.replace("name: web\n", "name: fmt\n", 1)))
    table = kube.kubectl("get", "deployments").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    wide = kube.kubectl("get", "deploy", "fmt", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[:8] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert "app=web" in wide[1]
    assert yaml.safe_load(kube.kubectl("get", "deploy", "fmt", "-o", "yaml").stdout)["kind"] == "Deployment"
    assert kube.kubectl("get", "deploy", "fmt", "-o", "jsonpath={.spec.replicas}").stdout == "2"
    assert kube.kubectl("get", "deploy", "fmt", "-o", "name").stdout.strip() == "deployment.apps/fmt"


def test_invalid_manifest_is_refused_with_field_errors(kube: ServerProcess, tmp_path: Path) -> None:
    bad = DEPLOY.replace("name: web\n", "name: Bad_Name\n", 1).replace("replicas: 2", "replicas: -1")
    res = kube.kubectl("apply", "-f", write(tmp_path, "bad.yaml", bad), check=False)
    assert res.returncode != 0
    assert 'The Deployment "Bad_Name" is invalid' in res.stderr
    assert "metadata.name: Invalid value" in res.stderr
    assert "spec.replicas: Invalid value: -1" in res.stderr
    assert kube.kubectl("get", "deploy", "Bad_Name", check=False).returncode != 0


def test_unknown_field_rejected_by_strict_validation(kube: ServerProcess, tmp_path: Path) -> None:
    bad = DEPLOY.replace("name: web\n", "name: strict\n", 1).replace("replicas: 2", "replicas: 2\n  replicaz: 3")
    res = kube.kubectl("apply", "-f", write(tmp_path, "strict.yaml", bad), check=False)
    assert res.returncode != 0
    assert 'unknown field "spec.replicaz"' in res.stderr


def test_server_side_apply_and_conflict(kube: ServerProcess, tmp_path: Path) -> None:
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: '1'\n"
    f = write(tmp_path, "cm.yaml", cm)
    assert "serverside-applied" in kube.kubectl("apply", "--server-side", "-f", f).stdout
    obj = kube.kubectl_json("get", "cm", "ssa", "--show-managed-fields")
    managers = {m["manager"]: m for m in obj["metadata"]["managedFields"]}
    assert managers["kubectl"]["operation"] == "Apply"
    assert "f:a" in managers["kubectl"]["fieldsV1"]["f:data"]
    other = write(tmp_path, "cm2.yaml", cm.replace("'1'", "'2'"))
    res = kube.kubectl("apply", "--server-side", "--field-manager", "other", "-f", other, check=False)
    assert res.returncode != 0 and "conflict" in res.stderr.lower()
    kube.kubectl("apply", "--server-side", "--field-manager", "other", "--force-conflicts", "-f", other)
    assert kube.kubectl_json("get", "cm", "ssa")["data"]["a"] == "2"


def test_diff_shows_change_without_writing(kube: ServerProcess, tmp_path: Path) -> None:
    kube.kubectl("apply", "-f", write(tmp_path, "d.yaml", DEPLOY.replace("name: web\n", "name: diff\n", 1)))
    changed = write(tmp_path, "d2.yaml", DEPLOY.replace("name: web\n", "name: diff\n", 1).replace("replicas: 2", "replicas: 5"))
    res = kube.kubectl("diff", "-f", changed, check=False)
    assert res.returncode == 1, res.stderr
    assert "+  replicas: 5" in res.stdout
    assert kube.kubectl_json("get", "deploy", "diff")["spec"]["replicas"] == 2


def test_create_label_annotate_scale_patch(kube: ServerProcess) -> None:
    kube.kubectl("create", "deployment", "ops", "--image=busybox", "--replicas=1")
    kube.kubectl("label", "deployment", "ops", "tier=backend")
    kube.kubectl("annotate", "deployment", "ops", "note=hello")
    assert "scaled" in kube.kubectl("scale", "deployment", "ops", "--replicas=3").stdout
    kube.kubectl("patch", "deployment", "ops", "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"busybox","image":"busybox:2"}]}}}}')
    kube.kubectl("patch", "deployment", "ops", "--type=merge", "-p", '{"metadata":{"labels":{"merged":"yes"}}}')
    kube.kubectl("patch", "deployment", "ops", "--type=json", "-p", '[{"op":"add","path":"/spec/minReadySeconds","value":5}]')
    d = kube.kubectl_json("get", "deployment", "ops")
    assert d["metadata"]["labels"]["tier"] == "backend"
    assert d["metadata"]["labels"]["merged"] == "yes"
    assert d["metadata"]["annotations"]["note"] == "hello"
    assert d["spec"]["replicas"] == 3
    assert d["spec"]["minReadySeconds"] == 5
    assert [c["image"] for c in d["spec"]["template"]["spec"]["containers"]] == ["busybox:2"]
    scale = kube.request("GET", "/apis/apps/v1/namespaces/default/deployments/ops/scale")[1]
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 3


def test_describe_and_edit(kube: ServerProcess, tmp_path: Path) -> None:
    kube.kubectl("create", "configmap", "ed", "--from-literal=k=v1")
    assert "k:" in kube.kubectl("describe", "configmap", "ed").stdout
    editor = tmp_path / "editor.py"
    editor.write_text("import sys\np=sys.argv[1]\ns=open(p).read().replace('k: v1','k: v2')\nopen(p,'w').write(s)\n")
    kube.kubectl("edit", "configmap", "ed", env={"EDITOR": f"{sys.executable} {editor}", "KUBE_EDITOR": f"{sys.executable} {editor}"})
    assert kube.kubectl_json("get", "configmap", "ed")["data"]["k"] == "v2"


def test_get_watch_streams_changes(kube: ServerProcess) -> None:
    kube.kubectl("create", "configmap", "w1", "--from-literal=a=b")
    env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig), "HOME": str(kube.data_dir.parent / "home")}
    proc = subprocess.Popen(["kubectl", "get", "configmap", "w1", "-w", "-o", "name"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first == "configmap/w1"
        kube.kubectl("label", "configmap", "w1", "x=y")
        assert proc.stdout.readline().strip() == "configmap/w1"
    finally:
        proc.terminate()
        proc.wait(10)


def test_delete_waits_and_wait_for_delete(kube: ServerProcess, tmp_path: Path) -> None:
    f = write(tmp_path, "d.yaml", DEPLOY.replace("name: web\n", "name: gone\n", 1))
    kube.kubectl("apply", "-f", f)
    assert 'deployment.apps "gone" deleted' in kube.kubectl("delete", "-f", f).stdout
    assert kube.kubectl("get", "deploy", "gone", check=False).returncode != 0
    kube.kubectl("create", "configmap", "wd")
    waiter = subprocess.Popen(["kubectl", "wait", "--for=delete", "configmap/wd", "--timeout=30s"],
                              env={**os.environ, "KUBECONFIG": str(kube.kubeconfig), "HOME": str(kube.data_dir.parent / "home")},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    kube.kubectl("delete", "configmap", "wd")
    out, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, err
    assert "configmap/wd condition met" in out


def test_explain_uses_openapi(kube: ServerProcess) -> None:
    out = kube.kubectl("explain", "deployment.spec.strategy").stdout
    assert "FIELD: strategy" in out
    assert "rollingUpdate" in out and "type" in out


def test_namespaces_and_get_all(kube: ServerProcess) -> None:
    assert "namespace/team-a created" in kube.kubectl("create", "namespace", "team-a").stdout
    kube.kubectl("-n", "team-a", "create", "deployment", "api", "--image=busybox")
    out = kube.kubectl("get", "all", "-A").stdout
    assert "deployment.apps/api" in out
    res = kube.kubectl("-n", "missing", "create", "configmap", "x", check=False)
    assert res.returncode != 0 and 'namespaces "missing" not found' in res.stderr


def test_custom_resource_definition_and_object(kube: ServerProcess, tmp_path: Path) -> None:
    crd = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wg]}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
"""
    kube.kubectl("apply", "-f", write(tmp_path, "crd.yaml", crd))
    kube.kubectl("wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=30s")
    cr = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n"
    deadline = time.monotonic() + 20
    while True:
        res = kube.kubectl("apply", "-f", write(tmp_path, "cr.yaml", cr), check=False)
        if res.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert res.returncode == 0, res.stderr
    out = kube.kubectl("get", "wg").stdout.splitlines()
    assert out[0].split() == ["NAME", "SIZE"]  # declared columns replace the default Age
    assert out[1].split()[:2] == ["w1", "3"]



def test_auth_whoami_and_can_i(kube: ServerProcess) -> None:
    out = kube.kubectl("auth", "whoami").stdout
    assert "admin" in out and "system:masters" in out
    assert kube.kubectl("auth", "can-i", "create", "pods").stdout.strip() == "yes"
    listed = kube.kubectl("auth", "can-i", "--list").stdout
    assert "*.*" in listed


def test_generators_send_protobuf_and_are_stored(kube: ServerProcess) -> None:
    kube.kubectl("create", "namespace", "gen")
    kube.kubectl("-n", "gen", "create", "secret", "generic", "s", "--from-literal=k=v")
    kube.kubectl("-n", "gen", "create", "service", "clusterip", "svc", "--tcp=80:8080")
    kube.kubectl("-n", "gen", "create", "job", "j", "--image=busybox")
    kube.kubectl("-n", "gen", "create", "cronjob", "cj", "--image=busybox", "--schedule=*/5 * * * *")
    kube.kubectl("-n", "gen", "create", "role", "r", "--verb=get", "--resource=pods")
    kube.kubectl("-n", "gen", "create", "rolebinding", "rb", "--role=r", "--user=u")
    assert kube.kubectl_json("-n", "gen", "get", "secret", "s")["data"] == {"k": "dg=="}
    svc = kube.kubectl_json("-n", "gen", "get", "service", "svc")
    assert svc["spec"]["ports"][0]["targetPort"] == 8080
    job = kube.kubectl_json("-n", "gen", "get", "job", "j")
    assert job["spec"]["template"]["metadata"]["labels"]["job-name"] == "j"
    header = kube.kubectl("-n", "gen", "get", "cronjobs").stdout.splitlines()[0].split()
    assert header[:3] == ["NAME", "SCHEDULE", "TIMEZONE"]


def test_server_dry_run_stores_nothing(kube: ServerProcess, tmp_path: Path) -> None:
    f = write(tmp_path, "d.yaml", DEPLOY.replace("name: web\n", "name: dry\n", 1))
    assert "(server dry run)" in kube.kubectl("apply", "--dry-run=server", "-f", f).stdout
    assert kube.kubectl("get", "deploy", "dry", check=False).returncode != 0


def test_multi_document_apply_and_describe(kube: ServerProcess, tmp_path: Path) -> None:
    docs = DEPLOY.replace("name: web\n", "name: multi\n", 1) + "---\n" + (
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: multi\nspec:\n  selector: {app: web}\n"
        "  ports:\n  - port: 80\n    targetPort: 80\n")
    out = kube.kubectl("apply", "-f", write(tmp_path, "m.yaml", docs)).stdout
    assert "deployment.apps/multi created" in out and "service/multi created" in out
    desc = kube.kubectl("describe", "deployment", "multi").stdout
    assert "Replicas:" in desc and "nginx:1.25" in desc
    header = kube.kubectl("get", "svc", "multi").stdout.splitlines()[0].split()
    assert header == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
