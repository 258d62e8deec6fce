"""The kustomize overlays, rendered by `kubectl kustomize`: valid for every Kubernetes the
schema validator knows from 1.27 on, and in agreement with the code they run."""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from crm_sync import exit_codes
from crm_sync.cli import build_parser
from crm_sync.config import (
    Config,
    ScheduleConfig,
    WebhookConfig,
    interpolate_env,
    parse_config,
)
from crm_sync.wiring import check_sources

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE = ROOT / "deploy" / "kustomize"
SECRET_EXAMPLE = KUSTOMIZE / "secret.example.yaml"
OVERLAYS = ("cronjob", "daemon")
OVERLAY_OF = {"CronJob": "cronjob", "Deployment": "daemon", "Service": "daemon"}
OLDEST_MINOR = 27  # CronJob timeZone is GA from 1.27; podFailurePolicy is on by default
NEWEST_MINOR = int(kubernetes_validate.latest_version().split(".")[1])
KUBERNETES_VERSIONS = tuple(f"1.{m}.0" for m in range(OLDEST_MINOR, NEWEST_MINOR + 1))
CONNECTOR_FILES = (ROOT / "connectors" / "hubspot", ROOT / "connectors" / "salesforce")
NEEDS_CONNECTORS = pytest.mark.skipif(
    not all(path.exists() for path in CONNECTOR_FILES),
    reason="connectors/hubspot or connectors/salesforce not written yet; "
    "the wiring validates source settings through them",
)
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")
TMP_DIR = "/tmp"  # noqa: S108 - the path the pod mounts an emptyDir on, not a file we use


def _dockerfile_last(keyword: str) -> str:
    """The argument of the Dockerfile's last `keyword` instruction (the runtime stage's)."""
    lines = (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
    return [line.split(None, 1)[1] for line in lines if line.startswith(f"{keyword} ")][-1]


STATE_DIR = _dockerfile_last("WORKDIR")  # writable by the image's user; holds SQLite state
UID = int(_dockerfile_last("USER").split(":")[0])
WORKLOADS = ("CronJob", "Deployment")


def parse_cli(args: list[str]) -> argparse.Namespace:
    """The CLI's reading of these arguments; an unknown flag fails the test, not the run."""
    try:
        return build_parser().parse_args(args)
    except SystemExit:
        pytest.fail(f"crm-sync does not accept {args}")


@functools.cache
def _render(overlay: str) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl is needed to render deploy/kustomize (install it in CI)")
        pytest.skip("kubectl not installed (set CI to make this fail)")
    result = subprocess.run(
        [kubectl, "kustomize", str(KUSTOMIZE / overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def rendered(overlay: str) -> list[dict[str, Any]]:
    """What `kubectl apply -k deploy/kustomize/<overlay>` would send, as fresh objects."""
    return [doc for doc in yaml.safe_load_all(_render(overlay)) if doc]


def _secret_example() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(SECRET_EXAMPLE.read_text(encoding="utf-8"))
    return doc


def resource(kind: str) -> dict[str, Any]:
    """The one resource of this kind: from its overlay, or from either one when shared."""
    if kind == "Secret":
        return _secret_example()
    overlays = [OVERLAY_OF[kind]] if kind in OVERLAY_OF else list(OVERLAYS)
    found = [[d for d in rendered(o) if d.get("kind") == kind] for o in overlays]
    for docs in found:
        assert len(docs) == 1, f"expected one {kind}, found {len(docs)}"
    assert all(docs == found[0] for docs in found), f"{kind} differs between the overlays"
    return found[0][0]


def pod_spec(kind: str) -> dict[str, Any]:
    spec = resource(kind)["spec"]
    template = spec["jobTemplate"]["spec"]["template"] if kind == "CronJob" else spec["template"]
    pod: dict[str, Any] = template["spec"]
    return pod


def container(kind: str) -> dict[str, Any]:
    containers = pod_spec(kind)["containers"]
    assert len(containers) == 1
    only: dict[str, Any] = containers[0]
    return only


def configmap_text() -> str:
    text: str = resource("ConfigMap")["data"]["config.yaml"]
    return text


def fake_env() -> dict[str, str]:
    """Values for the variables without a fallback that the ConfigMap's config reads."""
    return {
        name: f"fake-{name.lower()}"
        for name, fallback in _ENV_REFERENCE.findall(configmap_text())
        if not fallback
    }


def configmap_config() -> Config:
    """The ConfigMap's config through the config model (connector settings not checked)."""
    missing: list[str] = []
    data = interpolate_env(yaml.safe_load(configmap_text()), fake_env(), "", missing)
    assert missing == []
    return Config.model_validate(data)


def test_versions_span_1_27_to_the_newest_the_validator_knows() -> None:
    assert KUBERNETES_VERSIONS[0] == "1.27.0"
    newest = kubernetes_validate.latest_version().split(".")
    assert KUBERNETES_VERSIONS[-1] == f"{newest[0]}.{newest[1]}.0"
    assert len(KUBERNETES_VERSIONS) == NEWEST_MINOR - OLDEST_MINOR + 1


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_against_the_kubernetes_schema(overlay: str, version: str) -> None:
    """Each rendered object validates offline, strictly (no unknown fields), for each version."""
    docs = rendered(overlay)
    kinds = {d["kind"] for d in docs}
    assert kinds >= {"ConfigMap", "PersistentVolumeClaim"}
    assert kinds >= ({"CronJob"} if overlay == "cronjob" else {"Deployment", "Service"})
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{overlay}: {doc['kind']} ({version}) at {where}: {exc.message}")


def test_secret_example_validates() -> None:
    kubernetes_validate.validate(_secret_example(), KUBERNETES_VERSIONS[-1], strict=True)


def test_image_is_set_once_for_both_overlays() -> None:
    """The registry and tag are written in one file; both overlays render that image."""
    component = yaml.safe_load((KUSTOMIZE / "components/image/kustomization.yaml").read_text())
    (image,) = component["images"]
    expected = f"{image['newName']}:{image['newTag']}"
    holders = [
        p.relative_to(KUSTOMIZE)
        for p in KUSTOMIZE.rglob("*.yaml")
        if image["newName"] in p.read_text(encoding="utf-8")
    ]
    assert holders == [Path("components/image/kustomization.yaml")]
    assert container("CronJob")["image"] == expected
    assert container("Deployment")["image"] == expected


def test_validation_rejects_an_unknown_field() -> None:
    """The schema check is strict: a misspelt field in the CronJob is refused."""
    cronjob = resource("CronJob")
    cronjob["spec"]["jobTemplate"]["spec"]["backofLimit"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(cronjob, KUBERNETES_VERSIONS[-1], strict=True)


def test_cronjob_runs_once_with_the_mounted_config() -> None:
    """The CronJob's container runs `crm-sync --once --config <ConfigMap file>`, valid CLI flags."""
    spec = container("CronJob")
    assert spec["command"] == ["crm-sync"]
    args = parse_cli(spec["args"])
    assert args.once is True
    assert args.command is None
    assert args.config == config_file_path("CronJob")


def test_deployment_runs_the_daemon_with_the_mounted_config() -> None:
    """The Deployment's container runs `crm-sync run --config <ConfigMap file>`."""
    spec = container("Deployment")
    assert spec["command"] == ["crm-sync"]
    args = parse_cli(spec["args"])
    assert args.command == "run"
    assert args.config == config_file_path("Deployment")


def config_file_path(kind: str) -> str:
    """Where the ConfigMap's config.yaml lands in this workload's container."""
    configmap = resource("ConfigMap")
    volume = next(v for v in pod_spec(kind)["volumes"] if "configMap" in v)
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    mount = next(m for m in container(kind)["volumeMounts"] if m["name"] == volume["name"])
    assert mount.get("readOnly") is True
    assert set(configmap["data"]) == {"config.yaml"}
    return f"{mount['mountPath']}/config.yaml"


def test_configmap_config_validates_against_the_model() -> None:
    """The ConfigMap's config passes the config model once the Secret's variables are set."""
    config = configmap_config()
    assert config.state.url == "sqlite:////var/lib/crm-sync/crm-sync.sqlite3"
    assert config.state.url.removeprefix("sqlite:///").startswith(STATE_DIR + "/")
    pg = "postgresql+psycopg://u:p@db:5432/crm_sync"
    data = interpolate_env(
        yaml.safe_load(configmap_text()), {**fake_env(), "CRM_SYNC_DATABASE_URL": pg}
    )
    assert Config.model_validate(data).state.url == pg


@NEEDS_CONNECTORS
def test_configmap_config_parses_with_parse_config() -> None:
    """parse_config and the wiring's check of connector settings accept the ConfigMap's config."""
    config = parse_config(yaml.safe_load(configmap_text()), fake_env())
    check_sources(config)
    assert [s.connector for s in config.sources] == ["hubspot"]


def test_ports_and_probes_match_the_daemon() -> None:
    """Port 8080 named http everywhere, readiness on /readyz, liveness on /healthz."""
    port = WebhookConfig.model_validate({}).port
    assert configmap_config().webhook.port == port
    spec = container("Deployment")
    assert spec["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    assert spec["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert spec["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert spec["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    service = resource("Service")["spec"]
    assert service["ports"] == [
        {"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}
    ]
    labels = resource("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= labels.items()
    annotations = resource("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": "/metrics",
    }


def _exit_code_table() -> dict[str, int]:
    return {
        name: value
        for name, value in vars(exit_codes).items()
        if name.startswith("EXIT_") and isinstance(value, int)
    }


def job_action(rules: list[dict[str, Any]], exit_code: int, *, disrupted: bool = False) -> str:
    """What the Job controller does with a pod whose container exited with `exit_code`: the
    first matching rule's action, or Count when none matches (Kubernetes' documented order)."""
    for rule in rules:
        on_exit = rule.get("onExitCodes")
        if on_exit:
            inside = exit_code in on_exit["values"]
            if exit_code != 0 and inside == (on_exit["operator"] == "In"):
                return str(rule["action"])
        elif any(c["type"] == "DisruptionTarget" for c in rule["onPodConditions"]) and disrupted:
            return str(rule["action"])
    return "Count"


def test_pod_failure_policy_follows_the_exit_code_table() -> None:
    """Only RETRYABLE_EXIT_CODES count against backoffLimit; every other failure code fails
    the Job at once; a disrupted pod (drain, eviction) is ignored; kubelet never retries."""
    job = resource("CronJob")["spec"]["jobTemplate"]["spec"]
    rules = job["podFailurePolicy"]["rules"]
    name = container("CronJob")["name"]
    for rule in rules:
        if "onExitCodes" in rule:
            assert rule["onExitCodes"]["containerName"] == name
            assert rule["onExitCodes"]["values"] == sorted(exit_codes.RETRYABLE_EXIT_CODES)
            assert rule["onPodConditions"] == []  # the 1.27/1.28 schemas require the key
    table = _exit_code_table()
    assert set(table.values()) >= {0, 1, 2, 3, 4, 5, 6, 7}
    for label, code in table.items():
        if code == 0:
            continue
        expected = "Count" if code in exit_codes.RETRYABLE_EXIT_CODES else "FailJob"
        assert job_action(rules, code) == expected, label
    assert job_action(rules, 137) == "FailJob"  # out of memory: a retry would fail the same way
    for code in (*table.values(), 137, 143):
        assert job_action(rules, code, disrupted=True) in {"Ignore", "Count", "FailJob"}
    assert job_action(rules, 143, disrupted=True) == "Ignore"
    assert pod_spec("CronJob")["restartPolicy"] == "Never"
    assert job["backoffLimit"] >= 1


def test_readiness_probe_outwaits_the_readyz_deadline() -> None:
    """/readyz answers (503 at worst) within its deadline, before the probe itself times out."""
    probe = container("Deployment")["readinessProbe"]
    assert configmap_config().webhook.readyz_timeout_seconds < probe["timeoutSeconds"]
    assert WebhookConfig.model_validate({}).readyz_timeout_seconds < probe["timeoutSeconds"]


def _cron_period_seconds(schedule: str) -> int:
    match = re.fullmatch(r"\*/(\d+) \* \* \* \*", schedule)
    assert match, f"expected an every-N-minutes schedule, got {schedule!r}"
    return int(match.group(1)) * 60


def test_cronjob_runs_never_overlap() -> None:
    """Forbid concurrency, and the deadline, shutdown grace and hard stop all fit one period."""
    cronjob = resource("CronJob")["spec"]
    assert cronjob["concurrencyPolicy"] == "Forbid"
    period = _cron_period_seconds(cronjob["schedule"])
    assert 0 < cronjob["startingDeadlineSeconds"] < period
    config = configmap_config()
    deadline = parse_cli(container("CronJob")["args"]).deadline
    active = cronjob["jobTemplate"]["spec"]["activeDeadlineSeconds"]
    assert config.run.collect_deadline_seconds <= deadline
    assert deadline + config.schedule.shutdown_grace_seconds < active < period


@pytest.mark.parametrize("kind", WORKLOADS)
def test_grace_period_covers_the_shutdown_grace(kind: str) -> None:
    """terminationGracePeriodSeconds leaves the config's shutdown grace plus 5 seconds."""
    grace = pod_spec(kind)["terminationGracePeriodSeconds"]
    assert grace >= configmap_config().schedule.shutdown_grace_seconds + 5
    assert grace >= ScheduleConfig.model_validate({}).shutdown_grace_seconds + 5


def test_deployment_is_a_single_daemon() -> None:
    """One replica, replaced with Recreate so two daemons never share the SQLite volume."""
    deployment = resource("Deployment")["spec"]
    assert deployment["replicas"] == 1
    assert deployment["strategy"] == {"type": "Recreate"}
    assert pod_spec("Deployment")["terminationGracePeriodSeconds"] == 30


@pytest.mark.parametrize("kind", WORKLOADS)
def test_pods_run_locked_down(kind: str) -> None:
    """Non-root uid 10001, read-only root, /tmp as emptyDir, state on the claim, resources set."""
    pod = pod_spec(kind)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == UID
    spec = container(kind)
    assert spec["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["allowPrivilegeEscalation"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in spec["volumeMounts"]}
    assert "emptyDir" in volumes[mounts[TMP_DIR]]
    claim = volumes[mounts[STATE_DIR]]["persistentVolumeClaim"]["claimName"]
    assert claim == resource("PersistentVolumeClaim")["metadata"]["name"]
    for kind_of in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(spec["resources"][kind_of])


def _secret_refs(kind: str) -> dict[str, dict[str, Any]]:
    refs: dict[str, dict[str, Any]] = {}
    for entry in container(kind)["env"]:
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            refs[entry["name"]] = ref
    return refs


@pytest.mark.parametrize("kind", WORKLOADS)
def test_secret_refs_exist_in_the_secret_example(kind: str) -> None:
    """Required keys are in the example Secret; optional ones are at least shown in it."""
    secret = resource("Secret")
    text = SECRET_EXAMPLE.read_text(encoding="utf-8")
    refs = _secret_refs(kind)
    assert refs
    for name, ref in refs.items():
        assert ref["name"] == secret["metadata"]["name"]
        if ref.get("optional"):
            assert ref["key"] in secret["stringData"] or f"# {ref['key']}:" in text, name
        else:
            assert ref["key"] in secret["stringData"], name


@pytest.mark.parametrize("kind", WORKLOADS)
def test_every_config_variable_reaches_the_container(kind: str) -> None:
    """Each `${VAR}` of the ConfigMap, commented examples included, is in the container's env."""
    env = {entry["name"] for entry in container(kind)["env"]}
    referenced = {name for name, _ in _ENV_REFERENCE.findall(configmap_text())}
    assert referenced
    assert referenced <= env
    # The enrichment key is needed by every config; CRM keys depend on the sources chosen.
    assert "optional" not in _secret_refs(kind)["FULLENRICH_API_KEY"]


def test_secret_example_holds_placeholders_only() -> None:
    """The example Secret has no base64 data and every value, commented or not, is a placeholder."""
    secret = resource("Secret")
    assert "data" not in secret
    text = SECRET_EXAMPLE.read_text(encoding="utf-8")
    values = list(secret["stringData"].values())
    values += re.findall(r'^\s*# [A-Z_]+: "(.*)"$', text, flags=re.MULTILINE)
    assert len(values) >= 6
    for value in values:
        assert "REPLACE_ME" in value, value
