"""Tools by audience: operator commands (`python -m tools.keys`, `tools.knowledge`, `tools.users`; what they
share is operator.py), quality gates (gates/) and the platform on a laptop (local/). Nothing on the synth path
imports this package (`make lint` enforces it)."""
