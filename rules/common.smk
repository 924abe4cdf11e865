# The workflow's glue lives in the package (src/matchforge/workflow/, unit-tested in tests/unit/workflow/test_glue.py):
# `wf` holds the validated config and every input function, param builder, resource function and target list
# that the rule files name. Rule files hold rule declarations only.
import sys

from snakemake.utils import validate

from matchforge.config_schema import SCHEMA_DIR
from matchforge.errors import MatchforgeError
from matchforge.workflow import prepare


# our own concise checks first (key path, allowed keys, closest name; names; cross-references), then Snakemake's
# as a second line. A config mistake ends planning with its one-line message, no traceback.
try:
    wf = prepare(config, workflow.configfiles, checkpoints, workflow.config_settings)
except MatchforgeError as _err:
    print(f"matchforge: {_err}", file=sys.stderr)
    raise SystemExit(2)
validate(config, schema=SCHEMA_DIR / "config.schema.yaml")
