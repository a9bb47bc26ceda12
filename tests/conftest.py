"""Shared test settings.

Hypothesis profiles: `default` as hypothesis ships it; `mutation` (used by
tests/mutation_check.py) skips shrinking, because there only "does it fail" matters.
"""

from hypothesis import Phase, settings

settings.register_profile("mutation", phases=[Phase.explicit, Phase.reuse, Phase.generate])
