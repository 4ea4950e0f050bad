"""hemostat.yaml: bad config gets an error naming the file, the field and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.model import ConfigError, PermanentError, SecretRef
from agent.model.config import load_config


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hemostat.yaml"
    path.write_text(text)
    return path


def test_minimal_config_loads_with_safe_defaults(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "targets:\n  - name: checkout\n"))
    assert config.target("checkout").namespace == "default"
    assert config.store.backend == "sqlite"
    assert config.store.path == tmp_path / "hemostat-ledger.db"  # relative to the config file


@pytest.mark.parametrize(("text", "field", "reason"), [
    ("targets:\n  - name: Checkout_1\n", "targets.0.name", "String should match pattern"),
    ("targets:\n  - name: a\n    nmespace: x\n", "targets.0.nmespace", "Extra inputs are not permitted"),
    ("targets:\n  - name: a\n  - name: a\n", "", "target names must be unique, repeated: a"),
    ("targets:\n  - name: a\n    postgres: {dsn: 'postgresql://u:hunter2@db/app'}\n",
     "targets.0.postgres.dsn", "secrets are given by reference only"),
    ("targets:\n  - name: a\n    postgres: {dsn: {env: A, file: /b}}\n",
     "targets.0.postgres.dsn", "give exactly one of 'env' or 'file'"),
    ("targets:\n  - name: a\n    logs: {patterns: ['(unclosed']}\n",
     "targets.0.logs.patterns", "is not a valid regular expression"),
    ("store: {backend: postgres}\n", "store", "backend 'postgres' needs 'dsn'"),
    ("targets:\n  - name: a\n    dependencies: [{name: s, url: 'not a url'}]\n",
     "targets.0.dependencies.0.url", "Input should be a valid URL"),
    ("targets:\n  - name: a\n    dependencies: [{name: s, url: {env: A, file: /b}}]\n",
     "targets.0.dependencies.0.url", "give a URL, or exactly one of {env: NAME} or {file: PATH}"),
    ("targets:\n  - name: a\n    deploy_repo: {path: /r, branch: '--output=/tmp/pwned'}\n",
     "targets.0.deploy_repo.branch", "is not a valid git branch name: it starts with '-'"),
])
def test_bad_config_names_file_field_and_reason(tmp_path: Path, text: str, field: str,
                                                reason: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.source == str(path)
    assert err.value.field == field
    assert reason in err.value.reason


def test_inline_secret_never_appears_in_the_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "targets:\n  - name: a\n    postgres: {dsn: 'postgresql://u:hunter2@db/app'}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "hunter2" not in str(err.value)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "targets:\n  - name: a\n   bad: [\n")
    with pytest.raises(ConfigError, match=r"line \d+, column \d+: not valid YAML"):
        load_config(path)


def test_unknown_target_lists_the_known_ones(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "targets:\n  - name: checkout\n  - name: search\n"))
    with pytest.raises(ConfigError, match=r"no target named 'cart' \(known: checkout, search\)"):
        config.target("cart")


def test_secret_from_env_and_file_and_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEMOSTAT_TEST_SECRET", "s3cret")
    assert SecretRef(env="HEMOSTAT_TEST_SECRET").resolve() == "s3cret"
    (tmp_path / "token").write_text("from-file\n")
    assert SecretRef(file=tmp_path / "token").resolve() == "from-file"
    with pytest.raises(PermanentError, match="secret env:NOPE_NOT_SET is not set"):
        SecretRef(env="NOPE_NOT_SET").resolve()


def test_a_url_by_reference_is_read_when_used_and_shown_as_its_reference(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_url = "https://health.example.com/ping?access_token=tok-in-env-93f1"
    (tmp_path / "metrics-url").write_text("http://scraper:pw-in-file-7c2e@app:9090/metrics\n")
    monkeypatch.setenv("HEALTH_URL", secret_url)
    config = load_config(_write(tmp_path, (
        "targets:\n  - name: a\n    dependencies: [{name: s, url: {env: HEALTH_URL}}]\n"
        f"    metrics: {{url: {{file: {tmp_path / 'metrics-url'}}}}}\n")))
    target = config.target("a")
    assert target.dependencies[0].url.resolve() == secret_url
    assert target.metrics is not None
    assert target.metrics.url.resolve() == "http://scraper:pw-in-file-7c2e@app:9090/metrics"
    dumped = str(target.model_dump(mode="json"))
    assert "{'env': 'HEALTH_URL'}" in dumped and "tok-in-env-93f1" not in dumped
    assert "pw-in-file-7c2e" not in dumped and str(target.dependencies[0].url) == "env:HEALTH_URL"


def test_an_inline_url_is_stored_masked(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, (
        "targets:\n  - name: a\n    dependencies: [{name: s, url: 'http://u:pw-inline-5d@h/x?token=t0k3n'}]\n")))
    dep = config.target("a").dependencies[0]
    assert dep.url.resolve() == "http://u:pw-inline-5d@h/x?token=t0k3n"
    assert dep.model_dump(mode="json")["url"] == "http://h/x?token=***"


def test_a_reference_that_is_not_a_url_is_refused_without_showing_it(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    monkeypatch.setenv("BAD_URL", "not-a-url-but-a-secret-1b9")
    config = load_config(_write(tmp_path, "targets:\n  - name: a\n    metrics: {url: {env: BAD_URL}}\n"))
    metrics = config.target("a").metrics
    assert metrics is not None
    with pytest.raises(PermanentError) as err:
        metrics.url.resolve()
    assert "env:BAD_URL" in str(err.value) and "secret-1b9" not in str(err.value)
