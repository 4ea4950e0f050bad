"""Policy: the gate every proposal passes, and the bundled policy and decision-tree files."""
