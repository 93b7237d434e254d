"""How anything in the platform is made safe, in one hop: keys, log groups, the secure bucket, the Python
function, the Powertools layer, cdk-nag wiring and the compliance report."""
