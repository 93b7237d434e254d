"""Tools by audience: operator commands (`python -m tools.keys`, what they share in operator.py), quality gates (gates/) and the platform on
a laptop (local/). Nothing on the synth path imports this package (`make lint` enforces it)."""
