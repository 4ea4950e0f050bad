"""Fixtures for the actions tests: the fake kube-apiserver over real HTTP."""

from tests.actions.test_rollback_gitops import gitops  # noqa: F401 (a bare remote Argo CD syncs)
from tests.kubeapi.fixtures import fake_api, kube_api, kube_client  # noqa: F401
