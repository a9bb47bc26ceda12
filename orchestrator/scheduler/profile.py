"""Time per plugin and extension point (`ketch scheduler --profile`).

PluginTimes.wrap(plugin) gives a stand-in with the same name, weight and extension points, each
timed; `table()` says, per plugin and point, how many calls, their total, the mean per call and
per scheduling cycle, and the share of all cycle time (what is left is the framework's own loop).
The stand-ins cost two clock reads per call, so the switch is off unless asked for.
"""

from __future__ import annotations

import collections
import time
from types import SimpleNamespace

POINTS = ("prefilter", "filter", "prescore", "score", "normalize")


class PluginTimes:
    def __init__(self) -> None:
        self.seconds: collections.Counter = collections.Counter()  # (plugin, point) -> seconds
        self.calls: collections.Counter = collections.Counter()
        self.cycles = 0
        self.cycle_seconds = 0.0

    def wrap(self, plugin):
        stand_in = SimpleNamespace(name=plugin.name)
        if hasattr(plugin, "weight"):
            stand_in.weight = plugin.weight
        for point in POINTS:
            if hasattr(plugin, point):
                setattr(stand_in, point, self._timed(plugin.name, point, getattr(plugin, point)))
        return stand_in

    def _timed(self, plugin: str, point: str, method):
        key = (plugin, point)
        seconds, calls, clock = self.seconds, self.calls, time.perf_counter

        def timed(*args):
            started = clock()
            try:
                return method(*args)
            finally:
                seconds[key] += clock() - started
                calls[key] += 1
        return timed

    def cycle(self, seconds: float) -> None:
        self.cycles += 1
        self.cycle_seconds += seconds

    def table(self) -> str:
        cycles = max(1, self.cycles)
        lines = [f"{self.cycles} cycles, {1000 * self.cycle_seconds / cycles:.3f} ms each",
                 f"{'plugin':<34} {'point':<10} {'calls':>9} {'total ms':>10} {'us/call':>8} "
                 f"{'ms/cycle':>9} {'share':>6}"]
        for (plugin, point), spent in sorted(self.seconds.items(), key=lambda item: -item[1]):
            calls = self.calls[(plugin, point)]
            share = spent / self.cycle_seconds if self.cycle_seconds else 0.0
            lines.append(f"{plugin:<34} {point:<10} {calls:>9} {1000 * spent:>10.1f} {1e6 * spent / calls:>8.2f} "
                         f"{1000 * spent / cycles:>9.3f} {share:>6.1%}")
        rest = self.cycle_seconds - sum(self.seconds.values())
        lines.append(f"{'(framework: loops, sorting, the rest)':<45} {'':>9} {1000 * rest:>10.1f} {'':>8} "
                     f"{1000 * rest / cycles:>9.3f} {rest / self.cycle_seconds if self.cycle_seconds else 0:>6.1%}")
        return "\n".join(lines)
