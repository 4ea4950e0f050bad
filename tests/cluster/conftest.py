"""Fixtures of the real-control-plane tests (the session cluster itself is `real_cluster`)."""

from tests.cluster.kube import admin_client, ns  # noqa: F401
