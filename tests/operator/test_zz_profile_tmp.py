import cProfile
import pstats
import time

from .conftest import Rig


async def test_profile_pass(rig: Rig) -> None:
    await rig.worker.run_pass()
    rig.clock.advance(400)
    await rig.worker.run_pass()
    n = 3000
    pr = cProfile.Profile()
    t = time.perf_counter()
    pr.enable()
    for _ in range(n):
        rig.clock.advance(0.01)
        await rig.worker.run_pass()
    pr.disable()
    print("per pass us", (time.perf_counter() - t) / n * 1e6)
    pstats.Stats(pr).sort_stats("cumulative").print_stats(45)
