"""`python -m agent` runs the CLI (the demo uses it to call the real command)."""

from agent.cli.main import main

main()
