"""Fixtures for the probes tests: the fake kube-apiserver over real HTTP."""

from tests.kubeapi.fixtures import fake_api, kube_api, kube_client  # noqa: F401
