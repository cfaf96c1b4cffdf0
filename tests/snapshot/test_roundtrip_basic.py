"""Save a namespace in one real kernel, shut it down, restore it in a fresh one: values come back."""

from __future__ import annotations

from pathlib import Path

from .conftest import KernelFactory, shutdown
from .helpers import restore_into, take_snapshot

PLAIN = """
import math
import numpy as np
import pandas as pd
from collections import OrderedDict
numbers = [1, 2.5, 3 + 4j, None, True]
nested = {"a": (1, 2), "b": {"c": [b"bytes", "text", {1, 2}]}, "d": OrderedDict(x=1)}
big_int = 2 ** 200
arr = np.arange(12, dtype=np.float32).reshape(3, 4)
obj_arr = np.array([{"k": 1}, None], dtype=object)
df = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
series = pd.Series([1.5, 2.5], name="s")
"""


async def test_plain_values_numpy_and_pandas_come_back(kernels: KernelFactory, tmp_path: Path) -> None:
    first = await kernels()
    await first.run(PLAIN)
    report = await take_snapshot(first, tmp_path / "snap")
    assert set(report.saved) >= {
        "math",
        "np",
        "pd",
        "OrderedDict",
        "numbers",
        "nested",
        "big_int",
        "arr",
        "obj_arr",
        "df",
        "series",
    }
    assert report.skipped == {}
    await shutdown(first)

    second = await kernels()
    restored = await restore_into(second, tmp_path / "snap")
    assert set(restored.saved) == set(report.saved)
    assert await second.value("repr(numbers)") == "[1, 2.5, (3+4j), None, True]"
    assert await second.value("nested['b']['c'][0] == b'bytes' and nested['b']['c'][2] == {1, 2}")
    assert await second.value("type(nested['d']).__name__") == "OrderedDict"
    assert await second.value("big_int == 2 ** 200")
    assert await second.value("arr.tolist()") == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert await second.value("str(arr.dtype)") == "float32"
    assert await second.value("obj_arr[0]") == {"k": 1}
    assert await second.value("df.to_dict('list')") == {"x": [1, 2, 3], "y": ["a", "b", "c"]}
    assert await second.value("(series.name, series.tolist())") == ["s", [1.5, 2.5]]
    assert await second.value("math.sqrt(16)") == 4.0


async def test_modules_are_reimported_under_their_alias(kernels: KernelFactory, tmp_path: Path) -> None:
    first = await kernels()
    await first.run("import numpy as np\nimport os.path\nfrom xml import dom as d\n")
    await take_snapshot(first, tmp_path / "snap")
    await shutdown(first)
    second = await kernels()
    await restore_into(second, tmp_path / "snap")
    assert await second.value("(np.__name__, os.__name__, d.__name__)") == ["numpy", "os", "xml.dom"]
    assert await second.value("int(np.arange(3).sum())") == 3
