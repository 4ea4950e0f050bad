"""A small stateful fake kube-apiserver for tests (standard library HTTP on loopback).

See ``docs/testing-kubernetes.md`` for what it simulates. Entry points: ``FakeApiServer`` in
``tests.kubeapi.server`` and the ``kube_api`` fixture in ``tests.kubeapi.fixtures``.
"""
