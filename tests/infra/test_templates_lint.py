"""Every synthesized template passes cfn-lint (the built-in CloudFormation validation is off in synth)."""

from __future__ import annotations

import pytest

from tests import background
from tests.infra.conftest import cfn_lint


@pytest.mark.background
def test_cfn_lint_reports_nothing_on_any_template(variants):
    for synth in variants.values():
        assert synth.templates  # every stack of the variant (tests/infra/test_stages.py checks which)
    # The `variants` fixture started it as soon as the templates existed; ignores are in .cfnlintrc.yaml.
    result = background.result("cfn-lint", lambda: cfn_lint(variants))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
