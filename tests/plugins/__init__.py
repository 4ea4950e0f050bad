"""Third-party-style plugins used by the tests, installed as real distributions (entry points)."""
