"""The platform on a laptop (`make local`, `make local-check`, `make e2e`): the AWS emulator, the deploy
with the pinned CDK CLI, the read-back against cdk.out, the local API gateway and Lambda runtime.

Run as ``python -m tools.local up|check|down``. Modules import nothing heavy at package level: the
emulator's own venv imports ``tools.local.emulator`` and ``tools.local.runtime`` only.
"""
