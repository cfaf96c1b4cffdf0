"""Functions and classes defined in the notebook travel by value and keep behaving as before the release."""

from __future__ import annotations

from pathlib import Path

from .conftest import KernelFactory, shutdown
from .helpers import restore_into, take_snapshot

NOTEBOOK = """
import functools
factor = 3
_hidden_helper = 100

def scale(x):
    return x * factor

def uses_private(x):
    return x + _hidden_helper

def make_counter(start):
    count = [start]
    def step():
        count[0] += 1
        return count[0]
    return step

class Point:
    dims = 2
    def __init__(self, x, y):
        self.x, self.y = x, y
    def norm2(self):
        return self.x ** 2 + self.y ** 2 + factor * 0
    @staticmethod
    def origin():
        return Point(0, 0)
    @property
    def scaled(self):
        return scale(self.x)

p = Point(3, 4)
points = [Point(1, 1), Point(2, 2)]
square = lambda v: v * v
triple = functools.partial(scale, x=5)
counter = make_counter(10)
counter()
"""


async def _carried(kernels: KernelFactory, tmp_path: Path):
    first = await kernels()
    await first.run(NOTEBOOK)
    report = await take_snapshot(first, tmp_path / "snap")
    assert report.skipped == {}
    await shutdown(first)
    second = await kernels()
    await restore_into(second, tmp_path / "snap")
    return second


async def test_functions_closures_and_lambdas_work_after_restore(
    kernels: KernelFactory, tmp_path: Path
) -> None:
    kernel = await _carried(kernels, tmp_path)
    assert await kernel.value("scale(2)") == 6
    assert await kernel.value("square(7)") == 49
    assert await kernel.value("triple()") == 15
    assert await kernel.value("counter()") == 12
    assert await kernel.value("uses_private(1)") == 101


async def test_functions_see_the_live_namespace_after_restore(kernels: KernelFactory, tmp_path: Path) -> None:
    kernel = await _carried(kernels, tmp_path)
    await kernel.run("factor = 10")
    assert await kernel.value("scale(2)") == 20
    assert await kernel.value("p.scaled") == 30


async def test_instances_keep_their_class_identity(kernels: KernelFactory, tmp_path: Path) -> None:
    kernel = await _carried(kernels, tmp_path)
    assert await kernel.value("isinstance(p, Point) and all(isinstance(q, Point) for q in points)")
    assert await kernel.value("p.norm2()") == 25
    assert await kernel.value("Point.origin().norm2()") == 0
    assert await kernel.value("Point.dims") == 2
    await kernel.run("Point.dims = 3")
    assert await kernel.value("p.dims") == 3
