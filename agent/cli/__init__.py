"""The `hemostat` command line: one module per command group over a small shared base.

`main` holds the group and the list of subcommands; `base` the per-invocation context and the
helpers every command uses; `render` the tables and text people read; `approval_client` the
calls to a daemon's API with the engineer's kubeconfig credential. This is a top of the house:
it may import every layer below (model, ledger, diagnosis, incidents, execution, and the
daemon for `hemostat run`); nothing imports it.
"""
