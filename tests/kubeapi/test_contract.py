# The generated client models type every field as Optional (and Watch is untyped); these tests
# assert on the shapes the server returns, so those checks are relaxed for this file only.
# mypy: disable-error-code="union-attr,index,arg-type,operator,attr-defined,no-untyped-call"
"""Contract tests for the fake kube-apiserver, through the official ``kubernetes`` client.

Unmarked tests also run against a real cluster (``HEMOSTAT_E2E_KUBECONFIG``); ``fake_only``
tests use hooks only the fake has. ``eventually`` checks first and only polls on a real cluster,
where controllers and garbage collection are asynchronous.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.kubeapi.fixtures import KubeApi
from tests.kubeapi.server import FakeApiServer

T = TypeVar("T")
REVISION = "deployment.kubernetes.io/revision"
ROOT_CA = "kube-root-ca.crt"  # published into every namespace by the controller-manager (and the fake)
CR_GROUP, CR_VERSION, CR_PLURAL, CR_KIND = "hemostat.test", "v1", "widgets", "Widget"
fake_only = pytest.mark.fake_only


# -- helpers ------------------------------------------------------------------------------------

def eventually(check: Callable[[], T | None], timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)


def status_of(call: Callable[[], object]) -> tuple[int, dict[str, Any]]:
    with pytest.raises(ApiException) as caught:
        call()
    body: dict[str, Any] = json.loads(caught.value.body)
    return int(caught.value.status), body


def raw(api: client.ApiClient, method: str, path: str, body: Any = None,
        content_type: str = "application/json") -> tuple[int, Any]:
    """A request the typed models would refuse to build, still sent by the official client."""
    params = api.param_serialize(method, path, header_params={
        "Accept": "application/json", "Content-Type": content_type},
        body=body, auth_settings=["BearerToken"])
    response = api.call_api(*params)
    response.read()
    return response.status, json.loads(response.data or b"null")


def cm(name: str, labels: dict[str, str] | None = None, **data: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels),
                              data=data or None)


def deployment(name: str, image: str = "registry.k8s.io/pause:3.9", replicas: int = 1,
               paused: bool | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "paused": paused,
                 "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": image}]}}},
    }


def pod(name: str, *containers: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"containers": [{"name": c, "image": "registry.k8s.io/pause:3.9"}
                                    for c in containers or ("app",)]}}


def names(items: list[Any]) -> list[str]:
    return sorted(str(item.metadata.name) for item in items)


def revision(obj: Any) -> str | None:
    return (obj.metadata.annotations or {}).get(REVISION)


def owned_replica_sets(apps: client.AppsV1Api, ns: str, deploy: str) -> list[Any]:
    return [rs for rs in apps.list_namespaced_replica_set(ns).items
            if any(ref.name == deploy and ref.controller
                   for ref in rs.metadata.owner_references or [])]


@pytest.fixture
def core(kube_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube_client)


@pytest.fixture
def apps(kube_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(kube_client)


@pytest.fixture
def custom(kube_api: KubeApi, kube_client: client.ApiClient) -> client.CustomObjectsApi:
    kube_api.register_custom_resource(CR_GROUP, CR_VERSION, CR_PLURAL, CR_KIND)
    return client.CustomObjectsApi(kube_client)


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{CR_GROUP}/{CR_VERSION}", "kind": CR_KIND,
            "metadata": {"name": name}, "spec": spec}


# -- discovery and routing ----------------------------------------------------------------------

def test_discovery_lists_core_version_groups_and_resources(kube_client: client.ApiClient) -> None:
    assert "v1" in (client.CoreApi(kube_client).get_api_versions().versions or [])
    groups = {g.name for g in client.ApisApi(kube_client).get_api_versions().groups}
    assert {"apps", "autoscaling", "coordination.k8s.io", "events.k8s.io"} <= groups
    resources = client.AppsV1Api(kube_client).get_api_resources().resources
    by_name = {r.name: r for r in resources}
    assert by_name["deployments"].namespaced and by_name["deployments"].kind == "Deployment"
    assert by_name["deployments/scale"].kind == "Scale"


def test_unknown_resource_path_returns_404_status(kube_client: client.ApiClient) -> None:
    code, body = raw(kube_client, "GET", "/api/v1/namespaces/default/nosuchthings")
    assert code == 404
    assert (body["kind"], body["status"], body["reason"]) == ("Status", "Failure", "NotFound")


def test_cluster_scoped_and_all_namespace_lists(core: client.CoreV1Api,
                                                kube_namespace: str) -> None:
    assert kube_namespace in names(core.list_namespace().items)
    core.create_namespaced_config_map(kube_namespace, cm("everywhere"))
    everywhere = core.list_config_map_for_all_namespaces(
        field_selector=f"metadata.namespace={kube_namespace}")
    assert names(everywhere.items) == ["everywhere", ROOT_CA]


# -- server-set metadata ------------------------------------------------------------------------

def test_create_returns_201_with_uid_resource_version_and_timestamp(
        core: client.CoreV1Api, kube_namespace: str) -> None:
    data, code, _ = core.create_namespaced_config_map_with_http_info(kube_namespace,
                                                                     cm("a", k="v"))
    assert code == 201
    meta = data.metadata
    assert meta.uid and meta.resource_version and meta.resource_version.isdigit()
    assert meta.creation_timestamp is not None and meta.namespace == kube_namespace
    assert core.read_namespaced_config_map("a", kube_namespace).data == {"k": "v"}


def test_resource_version_increases_with_every_write(core: client.CoreV1Api,
                                                     kube_namespace: str) -> None:
    first = core.create_namespaced_config_map(kube_namespace, cm("rv"))
    second = core.patch_namespaced_config_map("rv", kube_namespace, {"data": {"a": "1"}})
    other = core.create_namespaced_config_map(kube_namespace, cm("rv2"))
    versions = [int(o.metadata.resource_version) for o in (first, second, other)]
    assert versions == sorted(versions) and len(set(versions)) == 3
    listed = core.list_namespaced_config_map(kube_namespace)
    assert int(listed.metadata.resource_version) >= versions[-1]


def test_noop_update_keeps_resource_version(core: client.CoreV1Api, kube_namespace: str) -> None:
    created = core.create_namespaced_config_map(kube_namespace, cm("same", k="v"))
    again = core.patch_namespaced_config_map("same", kube_namespace, {"data": {"k": "v"}})
    assert again.metadata.resource_version == created.metadata.resource_version


def test_generate_name_appends_random_suffix(core: client.CoreV1Api, kube_namespace: str) -> None:
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="gen-"))
    one = core.create_namespaced_config_map(kube_namespace, body)
    two = core.create_namespaced_config_map(kube_namespace, body)
    assert one.metadata.name.startswith("gen-") and len(one.metadata.name) == len("gen-") + 5
    assert one.metadata.name != two.metadata.name


def test_namespace_in_body_must_match_url(core: client.CoreV1Api, kube_namespace: str) -> None:
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x", namespace="kube-public"))
    code, status = status_of(lambda: core.create_namespaced_config_map(kube_namespace, body))
    assert code == 400 and status["reason"] == "BadRequest"
    assert "does not match the namespace" in status["message"]


def test_create_in_missing_namespace_returns_404(core: client.CoreV1Api) -> None:
    missing = f"absent-{uuid.uuid4().hex[:6]}"
    code, status = status_of(lambda: core.create_namespaced_config_map(missing, cm("x")))
    assert code == 404
    assert status["details"] == {"name": missing, "kind": "namespaces"}


def test_generation_bumps_on_spec_change_only(apps: client.AppsV1Api, kube_namespace: str) -> None:
    created = apps.create_namespaced_deployment(kube_namespace, deployment("gen"))
    assert created.metadata.generation == 1
    labelled = apps.patch_namespaced_deployment(
        "gen", kube_namespace, {"metadata": {"labels": {"team": "a"}}})
    assert labelled.metadata.generation == 1
    scaled = apps.patch_namespaced_deployment("gen", kube_namespace, {"spec": {"replicas": 2}})
    assert scaled.metadata.generation == 2
    status = apps.patch_namespaced_deployment_status(
        "gen", kube_namespace, {"status": {"collisionCount": 1}})
    assert status.metadata.generation == 2 and status.status.collision_count == 1


# -- errors -------------------------------------------------------------------------------------

def test_get_missing_object_returns_404_not_found_status(core: client.CoreV1Api,
                                                         kube_namespace: str) -> None:
    code, body = status_of(lambda: core.read_namespaced_config_map("nope", kube_namespace))
    assert code == 404
    assert body["kind"] == "Status" and body["apiVersion"] == "v1"
    assert (body["status"], body["reason"], body["code"]) == ("Failure", "NotFound", 404)
    assert body["message"] == 'configmaps "nope" not found'
    assert body["details"] == {"name": "nope", "kind": "configmaps"}


def test_group_resource_errors_name_the_group(apps: client.AppsV1Api, kube_namespace: str) -> None:
    code, body = status_of(lambda: apps.read_namespaced_deployment("nope", kube_namespace))
    assert code == 404 and body["message"] == 'deployments.apps "nope" not found'
    assert body["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}


def test_create_existing_name_returns_409_already_exists(core: client.CoreV1Api,
                                                         kube_namespace: str) -> None:
    core.create_namespaced_config_map(kube_namespace, cm("dup"))
    code, body = status_of(lambda: core.create_namespaced_config_map(kube_namespace, cm("dup")))
    assert code == 409 and body["reason"] == "AlreadyExists"
    assert body["message"] == 'configmaps "dup" already exists'


def test_put_with_stale_resource_version_returns_409_conflict(core: client.CoreV1Api,
                                                              kube_namespace: str) -> None:
    stale = core.create_namespaced_config_map(kube_namespace, cm("c", v="1"))
    core.patch_namespaced_config_map("c", kube_namespace, {"data": {"v": "2"}})
    stale.data = {"v": "3"}
    code, body = status_of(lambda: core.replace_namespaced_config_map("c", kube_namespace, stale))
    assert code == 409 and body["reason"] == "Conflict"
    assert body["message"].startswith('Operation cannot be fulfilled on configmaps "c"')
    assert core.read_namespaced_config_map("c", kube_namespace).data == {"v": "2"}


def test_put_without_resource_version_is_unconditional_for_builtins(
        core: client.CoreV1Api, kube_namespace: str) -> None:
    core.create_namespaced_config_map(kube_namespace, cm("u", v="1"))
    replaced = core.replace_namespaced_config_map("u", kube_namespace, cm("u", v="9"))
    assert replaced.data == {"v": "9"}


def test_patch_carrying_stale_resource_version_returns_409_conflict(
        core: client.CoreV1Api, kube_namespace: str) -> None:
    old = core.create_namespaced_config_map(kube_namespace, cm("p", v="1"))
    core.patch_namespaced_config_map("p", kube_namespace, {"data": {"v": "2"}})
    stale_patch = {"metadata": {"resourceVersion": old.metadata.resource_version},
                   "data": {"v": "3"}}
    code, body = status_of(
        lambda: core.patch_namespaced_config_map("p", kube_namespace, stale_patch))
    assert code == 409 and body["reason"] == "Conflict"


def test_invalid_object_returns_422_with_causes(core: client.CoreV1Api,
                                                kube_namespace: str) -> None:
    body = pod("bad")
    del body["spec"]["containers"][0]["image"]
    code, status = status_of(lambda: core.create_namespaced_pod(kube_namespace, body))
    assert code == 422 and status["reason"] == "Invalid"
    assert status["details"]["kind"] == "Pod" and status["details"]["name"] == "bad"
    causes = status["details"]["causes"]
    assert {"reason": "FieldValueRequired", "message": "Required value",
            "field": "spec.containers[0].image"} in causes
    assert status["message"].startswith('Pod "bad" is invalid: ')


def test_schema_required_field_missing_returns_422(kube_client: client.ApiClient,
                                                   kube_namespace: str) -> None:
    body = deployment("nosel")
    del body["spec"]["selector"]
    code, status = raw(kube_client, "POST",
                       f"/apis/apps/v1/namespaces/{kube_namespace}/deployments", body)
    assert code == 422 and status["reason"] == "Invalid"
    fields = {(c["reason"], c["field"]) for c in status["details"]["causes"]}
    assert ("FieldValueRequired", "spec.selector") in fields


def test_invalid_name_returns_422(core: client.CoreV1Api, kube_namespace: str) -> None:
    code, status = status_of(
        lambda: core.create_namespaced_config_map(kube_namespace, cm("Not_A_Name")))
    assert code == 422
    assert status["details"]["causes"][0]["field"] == "metadata.name"


# -- lists and selectors ------------------------------------------------------------------------

def test_list_has_list_kind_resource_version_and_untyped_items(
        kube_client: client.ApiClient, core: client.CoreV1Api, kube_namespace: str) -> None:
    core.create_namespaced_config_map(kube_namespace, cm("one"))
    code, body = raw(kube_client, "GET", f"/api/v1/namespaces/{kube_namespace}/configmaps")
    assert code == 200
    assert (body["kind"], body["apiVersion"]) == ("ConfigMapList", "v1")
    assert body["metadata"]["resourceVersion"].isdigit()
    assert [i["metadata"]["name"] for i in body["items"]] == [ROOT_CA, "one"]


def test_list_pagination_with_limit_and_continue(core: client.CoreV1Api,
                                                 kube_namespace: str) -> None:
    for name in ("p1", "p2", "p3"):
        core.create_namespaced_config_map(kube_namespace, cm(name))
    first = core.list_namespaced_config_map(kube_namespace, limit=2)
    assert len(first.items) == 2 and first.metadata._continue
    rest = core.list_namespaced_config_map(kube_namespace, limit=2,
                                           _continue=first.metadata._continue)
    assert names(first.items + rest.items) == [ROOT_CA, "p1", "p2", "p3"]
    assert not rest.metadata._continue


@pytest.fixture
def labelled(core: client.CoreV1Api, kube_namespace: str) -> str:
    for name, labels in (("a", {"tier": "web", "env": "prod"}), ("b", {"tier": "db"}),
                         ("c", {"env": "dev"})):
        core.create_namespaced_config_map(kube_namespace, cm(name, labels))
    return kube_namespace


@pytest.mark.parametrize(("selector", "expected"), [
    ("tier=web", ["a"]), ("tier==db", ["b"]), ("tier!=web", ["b", "c", ROOT_CA]),
    ("tier in (web,db)", ["a", "b"]), ("tier notin (web)", ["b", "c", ROOT_CA]),
    ("env", ["a", "c"]), ("!env", ["b", ROOT_CA]), ("tier=web,env=prod", ["a"]),
])
def test_label_selectors_equality_and_set_based(core: client.CoreV1Api, labelled: str,
                                                selector: str, expected: list[str]) -> None:
    found = core.list_namespaced_config_map(labelled, label_selector=selector)
    assert names(found.items) == expected


def test_malformed_label_selector_returns_400(core: client.CoreV1Api, labelled: str) -> None:
    code, body = status_of(
        lambda: core.list_namespaced_config_map(labelled, label_selector="tier in web)"))
    assert code == 400 and body["reason"] == "BadRequest"


def test_field_selector_on_metadata_name(core: client.CoreV1Api, labelled: str) -> None:
    found = core.list_namespaced_config_map(labelled, field_selector="metadata.name=b")
    assert names(found.items) == ["b"]
    found = core.list_namespaced_config_map(labelled, field_selector="metadata.name!=b")
    assert names(found.items) == ["a", "c", ROOT_CA]


def test_unsupported_field_selector_returns_400(core: client.CoreV1Api, labelled: str) -> None:
    code, body = status_of(
        lambda: core.list_namespaced_config_map(labelled, field_selector="data.x=1"))
    assert code == 400
    assert body["message"] == '"data.x" is not a known field selector: only "metadata.name", "metadata.namespace"'


def test_pod_field_selector_on_status_phase(core: client.CoreV1Api, kube_namespace: str) -> None:
    core.create_namespaced_pod(kube_namespace, pod("phase"))
    assert core.list_namespaced_pod(kube_namespace,
                                    field_selector="status.phase=Succeeded").items == []
    found = core.list_namespaced_pod(kube_namespace, field_selector="status.phase!=Succeeded")
    assert names(found.items) == ["phase"]


@fake_only
def test_seeded_pod_phases_are_selectable(fake_api: FakeApiServer, core: client.CoreV1Api,
                                          kube_namespace: str) -> None:
    for name, phase in (("run", "Running"), ("fail", "Failed")):
        fake_api.seed({**pod(name), "metadata": {"name": name, "namespace": kube_namespace},
                       "status": {"phase": phase}})
    found = core.list_namespaced_pod(kube_namespace, field_selector="status.phase=Failed")
    assert names(found.items) == ["fail"]


def test_deletecollection_with_label_selector(core: client.CoreV1Api, labelled: str) -> None:
    core.delete_collection_namespaced_config_map(labelled, label_selector="env")
    assert names(core.list_namespaced_config_map(labelled).items) == ["b", ROOT_CA]


# -- patches ------------------------------------------------------------------------------------

def test_json_patch_add_remove_replace_move_copy_test(core: client.CoreV1Api,
                                                      kube_namespace: str) -> None:
    core.create_namespaced_config_map(kube_namespace, cm("jp", a="1", b="2", c="3"))
    ops = [{"op": "test", "path": "/data/a", "value": "1"},
           {"op": "add", "path": "/data/d", "value": "4"},
           {"op": "remove", "path": "/data/b"},
           {"op": "replace", "path": "/data/a", "value": "one"},
           {"op": "move", "from": "/data/c", "path": "/data/moved"},
           {"op": "copy", "from": "/data/d", "path": "/data/copied"},
           {"op": "add", "path": "/metadata/labels", "value": {"example.com/z": "1"}}]
    patched = core.patch_namespaced_config_map("jp", kube_namespace, ops)
    assert patched.data == {"a": "one", "d": "4", "moved": "3", "copied": "4"}
    assert patched.metadata.labels == {"example.com/z": "1"}


def test_json_patch_failed_test_op_returns_422(core: client.CoreV1Api,
                                               kube_namespace: str) -> None:
    core.create_namespaced_config_map(kube_namespace, cm("jt", a="1"))
    ops = [{"op": "test", "path": "/data/a", "value": "2"},
           {"op": "replace", "path": "/data/a", "value": "3"}]
    code, body = status_of(lambda: core.patch_namespaced_config_map("jt", kube_namespace, ops))
    assert code == 422 and body["reason"] == "Invalid"
    assert core.read_namespaced_config_map("jt", kube_namespace).data == {"a": "1"}


def test_merge_patch_merges_maps_and_null_deletes(core: client.CoreV1Api,
                                                  kube_namespace: str) -> None:
    core.create_namespaced_config_map(kube_namespace, cm("mp", {"keep": "1", "drop": "2"}, a="1"))
    patched = core.patch_namespaced_config_map(
        "mp", kube_namespace, {"metadata": {"labels": {"drop": None, "new": "3"}},
                               "data": {"b": "2"}},
        _content_type="application/merge-patch+json")
    assert patched.metadata.labels == {"keep": "1", "new": "3"}
    assert patched.data == {"a": "1", "b": "2"}


def test_merge_patch_replaces_lists_wholesale(apps: client.AppsV1Api,
                                              kube_namespace: str) -> None:
    body = deployment("mpl")
    body["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox"})
    apps.create_namespaced_deployment(kube_namespace, body)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "only", "image": "nginx"}]}}}}
    patched = apps.patch_namespaced_deployment("mpl", kube_namespace, patch,
                                               _content_type="application/merge-patch+json")
    assert [c.name for c in patched.spec.template.spec.containers] == ["only"]


def test_strategic_merge_patch_merges_containers_and_env_by_name(
        apps: client.AppsV1Api, kube_namespace: str) -> None:
    body = deployment("smp")
    body["spec"]["template"]["spec"]["containers"] = [
        {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}],
         "ports": [{"containerPort": 80}]},
        {"name": "side", "image": "side:1"}]
    apps.create_namespaced_deployment(kube_namespace, body)
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "2"}],
         "ports": [{"containerPort": 80, "name": "http"}]}]}}}}
    patched = apps.patch_namespaced_deployment("smp", kube_namespace, patch)
    containers = {c.name: c for c in patched.spec.template.spec.containers}
    assert set(containers) == {"app", "side"}
    assert containers["app"].image == "app:2" and containers["side"].image == "side:1"
    # the patch's new item first, then the server-only one (apimachinery's mergeSortedSlice)
    assert [(e.name, e.value) for e in containers["app"].env] == [("B", "2"), ("A", "1")]
    assert [(p.container_port, p.name) for p in containers["app"].ports] == [(80, "http")]


def test_strategic_merge_patch_delete_directive_removes_list_item(
        apps: client.AppsV1Api, kube_namespace: str) -> None:
    body = deployment("smd")
    body["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox"})
    apps.create_namespaced_deployment(kube_namespace, body)
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "side", "$patch": "delete"}]}}}}
    patched = apps.patch_namespaced_deployment("smd", kube_namespace, patch)
    assert [c.name for c in patched.spec.template.spec.containers] == ["app"]


def test_strategic_merge_patch_replace_directive_replaces_list(
        apps: client.AppsV1Api, kube_namespace: str) -> None:
    body = deployment("smr")
    body["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    apps.create_namespaced_deployment(kube_namespace, body)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "env": [
        {"$patch": "replace"}, {"name": "C", "value": "3"}]}]}}}}
    patched = apps.patch_namespaced_deployment("smr", kube_namespace, patch)
    assert [e.name for e in patched.spec.template.spec.containers[0].env] == ["C"]


def test_strategic_merge_on_custom_resource_returns_415(custom: client.CustomObjectsApi,
                                                        kube_namespace: str) -> None:
    custom.create_namespaced_custom_object(CR_GROUP, CR_VERSION, kube_namespace, CR_PLURAL,
                                           widget("w1", size=1))
    code, body = status_of(lambda: custom.patch_namespaced_custom_object(
        CR_GROUP, CR_VERSION, kube_namespace, CR_PLURAL, "w1", {"spec": {"size": 2}},
        _content_type="application/strategic-merge-patch+json"))
    assert code == 415 and body["reason"] == "UnsupportedMediaType"


# -- custom resources, subresources -------------------------------------------------------------

def test_custom_objects_create_get_list_merge_patch_delete(custom: client.CustomObjectsApi,
                                                           kube_namespace: str) -> None:
    args = (CR_GROUP, CR_VERSION, kube_namespace, CR_PLURAL)
    created = custom.create_namespaced_custom_object(*args, widget("w", size=1, tags=["a"]))
    assert created["metadata"]["generation"] == 1 and created["kind"] == CR_KIND
    patched = custom.patch_namespaced_custom_object(*args, "w", {"spec": {"size": 2}})
    assert patched["spec"] == {"size": 2, "tags": ["a"]}
    assert patched["metadata"]["generation"] == 2
    listed = custom.list_namespaced_custom_object(*args)
    assert listed["kind"] == f"{CR_KIND}List"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["w"]
    assert listed["items"][0]["apiVersion"] == f"{CR_GROUP}/{CR_VERSION}"
    deleted = custom.delete_namespaced_custom_object(*args, "w")
    assert (deleted["kind"], deleted["status"], deleted["details"]["name"]) == ("Status", "Success", "w")
    code, _ = status_of(lambda: custom.get_namespaced_custom_object(*args, "w"))
    assert code == 404


def test_custom_object_put_requires_resource_version(custom: client.CustomObjectsApi,
                                                     kube_namespace: str) -> None:
    args = (CR_GROUP, CR_VERSION, kube_namespace, CR_PLURAL)
    custom.create_namespaced_custom_object(*args, widget("nv", size=1))
    code, body = status_of(lambda: custom.replace_namespaced_custom_object(
        *args, "nv", widget("nv", size=2)))
    assert code == 422 and body["details"]["causes"][0]["field"] == "metadata.resourceVersion"


def test_status_subresource_writes_only_status(custom: client.CustomObjectsApi,
                                               kube_namespace: str) -> None:
    args = (CR_GROUP, CR_VERSION, kube_namespace, CR_PLURAL)
    custom.create_namespaced_custom_object(*args, {**widget("st", size=1), "status": {"x": 1}})
    fresh = custom.get_namespaced_custom_object(*args, "st")
    assert "status" not in fresh
    updated = custom.patch_namespaced_custom_object_status(
        *args, "st", {"spec": {"size": 9}, "status": {"ready": True}})
    assert updated["status"] == {"ready": True} and updated["spec"] == {"size": 1}
    assert updated["metadata"]["generation"] == 1
    main = custom.patch_namespaced_custom_object(*args, "st", {"status": {"ready": False}})
    assert main["status"] == {"ready": True}


def test_scale_subresource_reads_and_writes_spec_replicas(apps: client.AppsV1Api,
                                                          kube_namespace: str) -> None:
    apps.create_namespaced_deployment(kube_namespace, deployment("sc", replicas=2))
    scale = apps.read_namespaced_deployment_scale("sc", kube_namespace)
    assert scale.kind == "Scale" and scale.api_version == "autoscaling/v1"
    assert scale.spec.replicas == 2 and scale.status.selector == "app=sc"
    scale.spec.replicas = 3

    def replace() -> Any:  # a real controller's status writes may move the resourceVersion first
        try:
            return apps.replace_namespaced_deployment_scale("sc", kube_namespace, scale)
        except ApiException as e:
            if e.status != 409:
                raise
            scale.metadata.resource_version = apps.read_namespaced_deployment_scale(
                "sc", kube_namespace).metadata.resource_version
            return None

    assert eventually(replace).spec.replicas == 3
    patched = apps.patch_namespaced_deployment_scale("sc", kube_namespace,
                                                     {"spec": {"replicas": 4}})
    assert patched.spec.replicas == 4
    assert apps.read_namespaced_deployment("sc", kube_namespace).spec.replicas == 4


def test_scale_put_with_stale_resource_version_conflicts(apps: client.AppsV1Api,
                                                         kube_namespace: str) -> None:
    apps.create_namespaced_deployment(kube_namespace, deployment("scs"))
    scale = apps.read_namespaced_deployment_scale("scs", kube_namespace)
    apps.patch_namespaced_deployment("scs", kube_namespace, {"metadata": {"labels": {"a": "b"}}})
    scale.spec.replicas = 5
    code, body = status_of(
        lambda: apps.replace_namespaced_deployment_scale("scs", kube_namespace, scale))
    assert code == 409 and body["reason"] == "Conflict"


# -- dry run and delete -------------------------------------------------------------------------

def test_dry_run_create_is_not_stored(core: client.CoreV1Api, kube_namespace: str) -> None:
    would_be = core.create_namespaced_config_map(kube_namespace, cm("dry", k="v"), dry_run="All")
    assert would_be.metadata.name == "dry" and would_be.metadata.uid
    code, _ = status_of(lambda: core.read_namespaced_config_map("dry", kube_namespace))
    assert code == 404
    assert names(core.list_namespaced_config_map(kube_namespace).items) == [ROOT_CA]


@fake_only
def test_dry_run_does_not_bump_resource_version(fake_api: FakeApiServer, core: client.CoreV1Api,
                                                kube_namespace: str) -> None:
    before = core.list_namespaced_config_map(kube_namespace).metadata.resource_version
    core.create_namespaced_config_map(kube_namespace, cm("dry", k="v"), dry_run="All")
    after = core.list_namespaced_config_map(kube_namespace).metadata.resource_version
    assert after == before


def test_dry_run_update_patch_delete_leave_object_unchanged(core: client.CoreV1Api,
                                                            kube_namespace: str) -> None:
    created = core.create_namespaced_config_map(kube_namespace, cm("keep", k="v"))
    patched = core.patch_namespaced_config_map("keep", kube_namespace, {"data": {"k": "x"}},
                                               dry_run="All")
    assert patched.data == {"k": "x"}
    replaced = core.replace_namespaced_config_map("keep", kube_namespace, cm("keep", k="y"),
                                                  dry_run="All")
    assert replaced.data == {"k": "y"}
    core.delete_namespaced_config_map("keep", kube_namespace, dry_run="All")
    current = core.read_namespaced_config_map("keep", kube_namespace)
    assert current.data == {"k": "v"}
    assert current.metadata.resource_version == created.metadata.resource_version


def test_dry_run_still_validates(core: client.CoreV1Api, kube_namespace: str) -> None:
    code, _ = status_of(lambda: core.create_namespaced_config_map(
        kube_namespace, cm("Bad_Name"), dry_run="All"))
    assert code == 422


def test_delete_returns_status_for_configmap_and_object_for_pod(
        core: client.CoreV1Api, kube_namespace: str) -> None:
    created = core.create_namespaced_config_map(kube_namespace, cm("gone"))
    status = core.delete_namespaced_config_map("gone", kube_namespace)
    body = status if isinstance(status, dict) else status.to_dict()
    assert body["status"] == "Success" and body["details"]["name"] == "gone"
    assert body["details"]["uid"] == created.metadata.uid
    core.create_namespaced_pod(kube_namespace, pod("gone-pod"))
    deleted = core.delete_namespaced_pod("gone-pod", kube_namespace, grace_period_seconds=0)
    assert deleted.kind == "Pod" and deleted.metadata.name == "gone-pod"


def test_delete_missing_returns_404(core: client.CoreV1Api, kube_namespace: str) -> None:
    code, body = status_of(lambda: core.delete_namespaced_config_map("nope", kube_namespace))
    assert code == 404 and body["reason"] == "NotFound"


def test_delete_with_uid_precondition_mismatch_conflicts(core: client.CoreV1Api,
                                                         kube_namespace: str) -> None:
    core.create_namespaced_config_map(kube_namespace, cm("pre"))
    options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="not-the-uid"))
    code, body = status_of(
        lambda: core.delete_namespaced_config_map("pre", kube_namespace, body=options))
    assert code == 409 and body["reason"] == "Conflict"
    assert body["message"].startswith('Operation cannot be fulfilled on ConfigMap "pre": the UID in the '
                                      "precondition (not-the-uid) does not match the UID in record (")


def test_delete_deployment_cascades_to_replicasets_unless_orphaned(
        apps: client.AppsV1Api, kube_namespace: str) -> None:
    for name in ("casc", "orph"):
        apps.create_namespaced_deployment(kube_namespace, deployment(name))
    eventually(lambda: all(owned_replica_sets(apps, kube_namespace, n) for n in ("casc", "orph")))
    apps.delete_namespaced_deployment("casc", kube_namespace, propagation_policy="Background")
    apps.delete_namespaced_deployment("orph", kube_namespace, propagation_policy="Orphan")
    remaining = eventually(lambda: [
        rs for rs in apps.list_namespaced_replica_set(kube_namespace).items
        if not rs.metadata.name.startswith("casc-") and not rs.metadata.owner_references])
    assert [rs.metadata.name.split("-")[0] for rs in remaining] == ["orph"]


# -- watch --------------------------------------------------------------------------------------

def _watch(func: Callable[..., Any], *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
    return [(ev["type"], ev["object"].metadata.name)
            for ev in watch.Watch().stream(func, *args, timeout_seconds=1, **kwargs)]


def test_watch_streams_changes_after_resource_version(core: client.CoreV1Api,
                                                      kube_namespace: str) -> None:
    start = core.list_namespaced_config_map(kube_namespace).metadata.resource_version
    core.create_namespaced_config_map(kube_namespace, cm("w1"))
    core.patch_namespaced_config_map("w1", kube_namespace, {"data": {"a": "1"}})
    core.delete_namespaced_config_map("w1", kube_namespace)
    events = _watch(core.list_namespaced_config_map, kube_namespace, resource_version=start)
    assert events == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]


def test_watch_without_resource_version_starts_with_current_objects(
        core: client.CoreV1Api, kube_namespace: str) -> None:
    core.create_namespaced_config_map(kube_namespace, cm("existing"))
    assert _watch(core.list_namespaced_config_map, kube_namespace) == [("ADDED", "existing"),
                                                                       ("ADDED", ROOT_CA)]


def test_watch_applies_selectors_and_reports_transitions(core: client.CoreV1Api,
                                                         kube_namespace: str) -> None:
    start = core.list_namespaced_config_map(kube_namespace).metadata.resource_version
    core.create_namespaced_config_map(kube_namespace, cm("in", {"watch": "yes"}))
    core.create_namespaced_config_map(kube_namespace, cm("out", {"watch": "no"}))
    core.patch_namespaced_config_map("out", kube_namespace, {"metadata": {"labels": {
        "watch": "yes"}}})
    core.patch_namespaced_config_map("in", kube_namespace, {"metadata": {"labels": {
        "watch": "no"}}})
    events = _watch(core.list_namespaced_config_map, kube_namespace, resource_version=start,
                    label_selector="watch=yes")
    assert events == [("ADDED", "in"), ("ADDED", "out"), ("DELETED", "in")]
    by_name = _watch(core.list_namespaced_config_map, kube_namespace, resource_version=start,
                     field_selector="metadata.name=out")
    assert by_name == [("ADDED", "out"), ("MODIFIED", "out")]


def test_watch_events_carry_kind_and_resource_version(core: client.CoreV1Api,
                                                      kube_namespace: str) -> None:
    start = core.list_namespaced_config_map(kube_namespace).metadata.resource_version
    created = core.create_namespaced_config_map(kube_namespace, cm("typed"))
    stream = watch.Watch().stream(core.list_namespaced_config_map, kube_namespace,
                                  resource_version=start, timeout_seconds=1)
    event = next(iter(stream))
    assert event["raw_object"]["kind"] == "ConfigMap"
    assert event["raw_object"]["apiVersion"] == "v1"
    assert event["object"].metadata.resource_version == created.metadata.resource_version
    stream.close()


def test_watch_ends_after_timeout_seconds(core: client.CoreV1Api, kube_namespace: str) -> None:
    start_rv = core.list_namespaced_config_map(kube_namespace).metadata.resource_version
    began = time.monotonic()
    assert _watch(core.list_namespaced_config_map, kube_namespace, resource_version=start_rv) == []
    assert 0.9 <= time.monotonic() - began < 5


@fake_only
def test_watch_from_compacted_resource_version_fails_with_410_expired(
        fake_api: FakeApiServer, core: client.CoreV1Api, kube_namespace: str) -> None:
    old = core.create_namespaced_config_map(kube_namespace, cm("old")).metadata.resource_version
    core.create_namespaced_config_map(kube_namespace, cm("newer"))
    fake_api.compact()
    with pytest.raises(ApiException) as caught:
        _watch(core.list_namespaced_config_map, kube_namespace, resource_version=old)
    assert caught.value.status == 410
    assert "Expired: too old resource version" in str(caught.value.reason)


# -- leases, events, autoscaling, metrics -------------------------------------------------------

def test_lease_put_with_stale_resource_version_conflicts(kube_client: client.ApiClient,
                                                         kube_namespace: str) -> None:
    leases = client.CoordinationV1Api(kube_client)
    lease = client.V1Lease(metadata=client.V1ObjectMeta(name="leader"),
                           spec=client.V1LeaseSpec(holder_identity="a",
                                                   lease_duration_seconds=15))
    stale = leases.create_namespaced_lease(kube_namespace, lease)
    fresh = leases.read_namespaced_lease("leader", kube_namespace)
    fresh.spec.holder_identity = "b"
    renewed = leases.replace_namespaced_lease("leader", kube_namespace, fresh)
    assert renewed.spec.holder_identity == "b"
    stale.spec.holder_identity = "c"
    code, body = status_of(lambda: leases.replace_namespaced_lease("leader", kube_namespace,
                                                                   stale))
    assert code == 409 and body["message"].startswith(
        'Operation cannot be fulfilled on leases.coordination.k8s.io "leader"')


def _core_event(name: str, ns: str, kind: str, target: str) -> client.CoreV1Event:
    return client.CoreV1Event(
        metadata=client.V1ObjectMeta(name=name), reason="BackOff", message="restarting",
        type="Warning", involved_object=client.V1ObjectReference(kind=kind, name=target,
                                                                 namespace=ns),
        source=client.V1EventSource(component="kubelet"))


def test_core_events_list_with_involved_object_field_selectors(core: client.CoreV1Api,
                                                               kube_namespace: str) -> None:
    core.create_namespaced_event(kube_namespace, _core_event("e1", kube_namespace, "Pod", "web"))
    core.create_namespaced_event(kube_namespace, _core_event("e2", kube_namespace, "Pod", "db"))
    core.create_namespaced_event(kube_namespace,
                                 _core_event("e3", kube_namespace, "Deployment", "web"))
    selector = "involvedObject.name=web,involvedObject.kind=Pod"
    found = core.list_namespaced_event(kube_namespace, field_selector=selector)
    assert names(found.items) == ["e1"]
    found = core.list_namespaced_event(
        kube_namespace, field_selector=f"involvedObject.namespace={kube_namespace},type=Warning")
    assert names(found.items) == ["e1", "e2", "e3"]


def test_events_k8s_io_events_are_core_events(kube_client: client.ApiClient,
                                              core: client.CoreV1Api, kube_namespace: str) -> None:
    events = client.EventsV1Api(kube_client)
    events.create_namespaced_event(kube_namespace, client.EventsV1Event(
        metadata=client.V1ObjectMeta(name="new"), event_time=datetime.now(UTC),
        reporting_controller="hemostat.dev/agent", reporting_instance="agent-0",
        action="Rollback", reason="Mitigated", note="rolled back", type="Normal",
        regarding=client.V1ObjectReference(kind="Deployment", name="web",
                                           namespace=kube_namespace)))
    core_view = core.read_namespaced_event("new", kube_namespace)
    assert core_view.involved_object.name == "web" and core_view.message == "rolled back"
    assert core_view.reporting_component == "hemostat.dev/agent"
    found = events.list_namespaced_event(kube_namespace, field_selector="regarding.name=web")
    assert [(e.metadata.name, e.note) for e in found.items] == [("new", "rolled back")]


def test_hpa_is_served_as_autoscaling_v1_and_v2(kube_client: client.ApiClient,
                                                kube_namespace: str) -> None:
    v1 = client.AutoscalingV1Api(kube_client)
    v2 = client.AutoscalingV2Api(kube_client)
    v1.create_namespaced_horizontal_pod_autoscaler(kube_namespace, client.V1HorizontalPodAutoscaler(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1HorizontalPodAutoscalerSpec(
            max_replicas=5, target_cpu_utilization_percentage=70,
            scale_target_ref=client.V1CrossVersionObjectReference(
                api_version="apps/v1", kind="Deployment", name="web"))))
    as_v2 = v2.read_namespaced_horizontal_pod_autoscaler("web", kube_namespace)
    assert as_v2.spec.min_replicas == 1 and as_v2.spec.max_replicas == 5
    assert as_v2.spec.metrics[0].resource.target.average_utilization == 70
    v2.patch_namespaced_horizontal_pod_autoscaler("web", kube_namespace, {"spec": {
        "maxReplicas": 8}})
    assert v1.read_namespaced_horizontal_pod_autoscaler("web", kube_namespace).spec.max_replicas == 8


@fake_only
def test_metrics_pods_are_seeded_and_read_only(fake_api: FakeApiServer,
                                               kube_client: client.ApiClient) -> None:
    fake_api.seed({"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
                   "metadata": {"name": "web-1", "namespace": "default"},
                   "timestamp": "2024-01-01T00:00:00Z", "window": "30s",
                   "containers": [{"name": "app", "usage": {"cpu": "250m", "memory": "64Mi"}}]})
    metrics = client.CustomObjectsApi(kube_client)
    listed = metrics.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", "default", "pods")
    assert listed["kind"] == "PodMetricsList"
    assert listed["items"][0]["containers"][0]["usage"]["cpu"] == "250m"
    code, body = status_of(lambda: metrics.delete_namespaced_custom_object(
        "metrics.k8s.io", "v1beta1", "default", "pods", "web-1"))
    assert code == 405 and body["reason"] == "MethodNotAllowed"


# -- pod logs -----------------------------------------------------------------------------------

def test_pod_log_requires_container_for_multi_container_pod(core: client.CoreV1Api,
                                                            kube_namespace: str) -> None:
    core.create_namespaced_pod(kube_namespace, pod("multi", "a", "b"))
    code, body = status_of(lambda: core.read_namespaced_pod_log("multi", kube_namespace))
    assert code == 400 and body["reason"] == "BadRequest"
    assert body["message"] == ("a container name must be specified for pod multi, "
                               "choose one of: [a b]")


def test_pod_log_of_missing_pod_returns_404(core: client.CoreV1Api, kube_namespace: str) -> None:
    code, body = status_of(lambda: core.read_namespaced_pod_log("ghost", kube_namespace))
    assert code == 404 and body["message"] == 'pods "ghost" not found'


@fake_only
def test_pod_log_is_text_honouring_container_and_tail_lines(
        fake_api: FakeApiServer, core: client.CoreV1Api, kube_namespace: str) -> None:
    core.create_namespaced_pod(kube_namespace, pod("logs", "a", "b"))
    fake_api.set_pod_log(kube_namespace, "logs", "a", "one\ntwo\nthree")
    fake_api.set_pod_log(kube_namespace, "logs", "b", "other")
    assert core.read_namespaced_pod_log("logs", kube_namespace, container="a",
                                        tail_lines=2) == "two\nthree\n"
    assert core.read_namespaced_pod_log("logs", kube_namespace, container="b") == "other\n"
    _, _, headers = core.read_namespaced_pod_log_with_http_info("logs", kube_namespace,
                                                                container="a")
    assert headers["Content-Type"] == "text/plain"


@fake_only
def test_pod_log_since_seconds_uses_line_timestamps(fake_api: FakeApiServer,
                                                    core: client.CoreV1Api,
                                                    kube_namespace: str) -> None:
    core.create_namespaced_pod(kube_namespace, pod("since"))
    now = datetime.now(UTC)
    fake_api.set_pod_log(kube_namespace, "since", "app", "old\nrecent\nnew",
                         timestamps=[now - timedelta(hours=1), now - timedelta(seconds=30), now])
    assert core.read_namespaced_pod_log("since", kube_namespace,
                                        since_seconds=60) == "recent\nnew\n"


@fake_only
def test_pod_log_timestamps_prefix_rfc3339_nano(fake_api: FakeApiServer, core: client.CoreV1Api,
                                                kube_namespace: str) -> None:
    core.create_namespaced_pod(kube_namespace, pod("stamped"))
    stamp = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    fake_api.set_pod_log(kube_namespace, "stamped", "app", "hello", timestamps=[stamp])
    text = core.read_namespaced_pod_log("stamped", kube_namespace, timestamps=True)
    assert text == "2024-05-01T12:00:00.123456000Z hello\n"


@fake_only
def test_previous_log_without_terminated_container_returns_400(
        fake_api: FakeApiServer, core: client.CoreV1Api, kube_namespace: str) -> None:
    core.create_namespaced_pod(kube_namespace, pod("prev"))
    code, body = status_of(lambda: core.read_namespaced_pod_log("prev", kube_namespace,
                                                                previous=True))
    assert code == 400
    assert body["message"] == 'previous terminated container "app" in pod "prev" not found'
    fake_api.set_pod_log(kube_namespace, "prev", "app", "crashed", previous=True)
    assert core.read_namespaced_pod_log("prev", kube_namespace, previous=True) == "crashed\n"


# -- deployment controller-lite -----------------------------------------------------------------

def test_deployment_create_makes_owned_replicaset_with_revision(apps: client.AppsV1Api,
                                                                kube_namespace: str) -> None:
    created = apps.create_namespaced_deployment(kube_namespace, deployment("web", replicas=1))
    [rs] = eventually(lambda: owned_replica_sets(apps, kube_namespace, "web"))
    ref = rs.metadata.owner_references[0]
    assert (ref.kind, ref.uid, ref.controller) == ("Deployment", created.metadata.uid, True)
    pod_hash = rs.metadata.labels["pod-template-hash"]
    assert rs.metadata.name == f"web-{pod_hash}" and revision(rs) == "1"
    assert rs.spec.selector.match_labels == {"app": "web", "pod-template-hash": pod_hash}
    current = eventually(lambda: (
        d := apps.read_namespaced_deployment("web", kube_namespace)).status.available_replicas
        and d)
    assert revision(current) == "1" and current.status.observed_generation == 1
    assert current.status.updated_replicas == current.status.ready_replicas == 1
    conditions = {c.type: c.status for c in current.status.conditions}
    assert conditions == {"Available": "True", "Progressing": "True"}


def _template_image(apps: client.AppsV1Api, ns: str, image: str) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}
    apps.patch_namespaced_deployment("web", ns, patch)


def _revisions(apps: client.AppsV1Api, ns: str) -> dict[str, str]:
    return {rs.spec.template.spec.containers[0].image: revision(rs) or ""
            for rs in owned_replica_sets(apps, ns, "web")}


def test_template_change_creates_new_replicaset_and_bumps_revision(
        apps: client.AppsV1Api, kube_namespace: str) -> None:
    apps.create_namespaced_deployment(kube_namespace, deployment("web", image="nginx:1.0"))
    eventually(lambda: owned_replica_sets(apps, kube_namespace, "web"))
    _template_image(apps, kube_namespace, "nginx:1.1")
    assert eventually(lambda: len(_revisions(apps, kube_namespace)) == 2 and _revisions(
        apps, kube_namespace)) == {"nginx:1.0": "1", "nginx:1.1": "2"}
    assert eventually(lambda: revision(apps.read_namespaced_deployment(
        "web", kube_namespace)) == "2")
    old = [rs for rs in owned_replica_sets(apps, kube_namespace, "web")
           if revision(rs) == "1"]
    assert eventually(lambda: apps.read_namespaced_replica_set(
        old[0].metadata.name, kube_namespace).spec.replicas == 0)


def test_rollback_to_old_template_reuses_replicaset_with_new_revision(
        apps: client.AppsV1Api, kube_namespace: str) -> None:
    apps.create_namespaced_deployment(kube_namespace, deployment("web", image="nginx:1.0"))
    eventually(lambda: owned_replica_sets(apps, kube_namespace, "web"))
    _template_image(apps, kube_namespace, "nginx:1.1")
    eventually(lambda: len(_revisions(apps, kube_namespace)) == 2)
    _template_image(apps, kube_namespace, "nginx:1.0")
    assert eventually(lambda: _revisions(apps, kube_namespace).get("nginx:1.0") == "3" and
                      _revisions(apps, kube_namespace)) == {"nginx:1.0": "3", "nginx:1.1": "2"}
    assert eventually(lambda: revision(apps.read_namespaced_deployment(
        "web", kube_namespace)) == "3")


def test_paused_deployment_does_not_roll(apps: client.AppsV1Api, kube_namespace: str) -> None:
    apps.create_namespaced_deployment(kube_namespace, deployment("web", image="nginx:1.0"))
    eventually(lambda: owned_replica_sets(apps, kube_namespace, "web"))
    apps.patch_namespaced_deployment("web", kube_namespace, {"spec": {"paused": True}})
    _template_image(apps, kube_namespace, "nginx:2.0")
    watched = _watch(apps.list_namespaced_replica_set, kube_namespace, resource_version=(
        apps.list_namespaced_replica_set(kube_namespace).metadata.resource_version))
    assert [event for event in watched if event[0] == "ADDED"] == []
    assert _revisions(apps, kube_namespace) == {"nginx:1.0": "1"}


@fake_only
def test_set_deployment_unavailable_reports_broken_rollout(
        fake_api: FakeApiServer, apps: client.AppsV1Api, kube_namespace: str) -> None:
    apps.create_namespaced_deployment(kube_namespace, deployment("web", replicas=4))
    fake_api.set_deployment_unavailable(kube_namespace, "web", available=1)
    broken = apps.read_namespaced_deployment("web", kube_namespace)
    assert broken.status.available_replicas == 1 and broken.status.unavailable_replicas == 3
    conditions = {c.type: (c.status, c.reason) for c in broken.status.conditions}
    assert conditions["Available"] == ("False", "MinimumReplicasUnavailable")
    assert conditions["Progressing"] == ("True", "ReplicaSetUpdated")
    _template_image(apps, kube_namespace, "nginx:fixed")
    healed = apps.read_namespaced_deployment("web", kube_namespace)
    assert healed.status.available_replicas == 4 and healed.status.unavailable_replicas is None


# -- seeding and fake-only hooks ----------------------------------------------------------------

def test_seed_and_get_object_round_trip(kube_api: KubeApi, kube_namespace: str) -> None:
    stored = kube_api.seed({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "seeded", "namespace": kube_namespace},
                            "data": {"k": "v"}})
    assert stored["metadata"]["uid"] and stored["metadata"]["resourceVersion"]
    fetched = kube_api.get_object("v1", "configmaps", kube_namespace, "seeded")
    assert fetched is not None and fetched["data"] == {"k": "v"}
    assert fetched["metadata"]["uid"] == stored["metadata"]["uid"]
    assert kube_api.get_object("v1", "configmaps", kube_namespace, "absent") is None


@fake_only
def test_fail_next_injects_status_errors_then_recovers(fake_api: FakeApiServer,
                                                       core: client.CoreV1Api) -> None:
    fake_api.fail_next("GET", "/api/v1/namespaces/default/configmaps", 500, count=2)
    fake_api.fail_next("*", "/api/v1/namespaces/default/secrets", 429)
    secret = client.V1Secret(metadata=client.V1ObjectMeta(name="s"))
    for _ in range(2):
        code, body = status_of(lambda: core.list_namespaced_config_map("default"))
        assert code == 500 and body["reason"] == "InternalError"
    assert names(core.list_namespaced_config_map("default").items) == [ROOT_CA]
    with pytest.raises(ApiException) as caught:  # POST: urllib3 does not retry on Retry-After
        core.create_namespaced_secret("default", secret)
    assert caught.value.status == 429 and (caught.value.headers or {})["Retry-After"] == "1"
    assert json.loads(caught.value.body)["reason"] == "TooManyRequests"


@fake_only
def test_set_hang_delays_responses_past_client_timeout(fake_api: FakeApiServer,
                                                       core: client.CoreV1Api) -> None:
    fake_api.set_hang("/api/v1/namespaces/default/configmaps", 1.0)
    with pytest.raises((urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.MaxRetryError)):
        core.list_namespaced_config_map("default", _request_timeout=0.2)
    fake_api.set_hang("/api/v1/namespaces/default/configmaps", 0)
    assert names(core.list_namespaced_config_map("default", _request_timeout=1).items) == [ROOT_CA]


@fake_only
def test_requests_log_records_method_and_path_with_query(fake_api: FakeApiServer,
                                                         core: client.CoreV1Api) -> None:
    core.list_namespaced_pod("default", label_selector="app=web")
    core.create_namespaced_config_map("default", cm("logged"))
    assert ("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb") in fake_api.requests
    assert ("POST", "/api/v1/namespaces/default/configmaps") in fake_api.requests
