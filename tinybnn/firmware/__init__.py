"""Running compiled models: on emulated Cortex-M cores (`harness`, `profile`, and the
streaming API: `streaming`) and on the host (`host`). The harness's API is re-exported here:
`firmware.build`, `firmware.run`, ..."""

from . import streaming  # noqa: F401
from .harness import *  # noqa: F403
from .harness import __all__  # noqa: F401
