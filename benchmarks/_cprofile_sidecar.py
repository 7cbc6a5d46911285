"""Run tgbot-sidecar under cProfile with a CPU-time clock; the stats go to $PROFILE_OUT on exit."""

from __future__ import annotations

import cProfile
import os
import sys
import time

from tgbot_sidecar.cli import main

profiler = cProfile.Profile(time.process_time)  # CPU time: preemption on a busy machine is not cost
profiler.enable()
try:
    main(sys.argv[1:])
except SystemExit:
    pass
finally:
    profiler.disable()
    profiler.dump_stats(os.environ["PROFILE_OUT"])
