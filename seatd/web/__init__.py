"""The web console and JSON API, served by the daemon on its own listener (DESIGN.md §8)."""
