# The workflow's glue lives in the package (src/matchforge/workflow/, unit-tested in tests/unit/workflow/test_glue.py):
# `wf` holds the validated config and every input function, param builder, resource function and target list
# that the rule files name; `A` (matchforge.artifacts) every path under results/, written once. Rule files hold rule
# declarations only.
import sys

from matchforge import artifacts as A
from matchforge.errors import MatchforgeError
from matchforge.workflow.glue import prepare


# The config is parsed once into its typed form (matchforge.config_file.ConfigFile: every default, bound and unknown-key
# message comes from the models; then names and cross-references). A config mistake ends planning with its one-line
# message, no traceback. The schemas under src/matchforge/schemas/ are generated from the same models, as documentation.
try:
    wf = prepare(config, workflow.configfiles, checkpoints, workflow.config_settings)
except MatchforgeError as _err:
    print(f"matchforge: {_err}", file=sys.stderr)
    raise SystemExit(2)
