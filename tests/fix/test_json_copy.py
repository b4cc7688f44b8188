"""redundant-conversion fixes: json.loads(json.dumps(x)) -> copy.deepcopy(x) only where the types allow."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import pytest


def test_a_copy_of_parsed_json_becomes_deepcopy(fixed: Callable[..., str], code: Callable[[str], str]) -> None:
    before = """
        import json


        def snapshot(text: str) -> dict:
            state = json.loads(text)
            draft = json.loads(json.dumps(state))  # <-
            return draft
    """
    assert fixed(before, "redundant-conversion") == code("""
        import copy
        import json


        def snapshot(text: str) -> dict:
            state = json.loads(text)
            draft = copy.deepcopy(state)  # <-
            return draft
    """)


def test_a_json_annotated_parameter_is_copied_and_the_unused_json_import_goes(fixed: Callable[..., str],
                                                                             code: Callable[[str], str]) -> None:
    before = """
        import json


        def draft_of(cart: dict[str, list[dict[str, int | str]]]) -> dict:
            return json.loads(json.dumps(cart))  # <-
    """
    result = fixed(before, "redundant-conversion")
    assert result == code("""
        import copy


        def draft_of(cart: dict[str, list[dict[str, int | str]]]) -> dict:
            return copy.deepcopy(cart)  # <-
    """)


def test_deepcopy_equals_the_round_trip_on_json_data_and_differs_beyond_it() -> None:
    # why the fix wants JSON types: on them the two copies agree, on a tuple or an int key they do not
    cart = {"warehouse": "north", "items": [{"sku": "A", "qty": 3, "price": 1.5, "tags": ["x"], "gift": None}]}
    assert copy.deepcopy(cart) == json.loads(json.dumps(cart))
    other = {"pair": (1, 2), 7: "seven"}
    assert copy.deepcopy(other) != json.loads(json.dumps(other))


@pytest.mark.parametrize(("source", "reason"), [
    # the example's shape: an untyped dict parameter, rebound in the loop
    ("def f(cart: dict):\n    return json.loads(json.dumps(cart))  # <-\n", "annotation does not restrict"),
    ("def f(cart):\n    return json.loads(json.dumps(cart))  # <-\n", "annotation does not restrict"),
    ("def f(cart: dict[str, tuple[int, int]]):\n    return json.loads(json.dumps(cart))  # <-\n",
     "annotation does not restrict"),
    ("def f(cart: dict[int, str]):\n    return json.loads(json.dumps(cart))  # <-\n", "annotation does not restrict"),
    ("def f(cart: dict[str, Any]):\n    return json.loads(json.dumps(cart))  # <-\n", "annotation does not restrict"),
    ("def f(text):\n    s = json.loads(text)\n    s['when'] = (1, 2)\n    return json.loads(json.dumps(s))  # <-\n",
     "changes it in place"),
    ("def f(text):\n    s = json.loads(text)\n    s = dict(s)\n    return json.loads(json.dumps(s))  # <-\n",
     "bound more than once"),
    ("def f(s: dict[str, int]):\n    return json.loads(json.dumps(s, default=str))  # <-\n", "given options"),
    ("def f(s: dict[str, int]):\n    return json.loads(json.dumps(s), parse_float=float)  # <-\n", "given options"),
    ("def f(s):\n    return json.loads(json.dumps(s['items']))  # <-\n", "cannot tell that s['items']"),
    ("def f(s):\n    return json.loads(text)  # <-\n", "no single json.loads(json.dumps(x))"),
    ("def f(s: dict[str, int], copy):\n    return json.loads(json.dumps(s))  # <-\n", "copy means something else"),
])
def test_round_trips_that_may_convert_are_refused(refused: Callable[..., str], source: str, reason: str) -> None:
    assert reason in refused("import json\nfrom typing import Any\n" + source, "redundant-conversion")


def test_the_fix_says_it_is_not_faster(fix: Callable[..., object]) -> None:
    result = fix("import json\ndef f(s: list[int]):\n    return json.loads(json.dumps(s))  # <-\n",
                 "redundant-conversion")
    assert "not faster" in result.edits[0].note  # type: ignore[attr-defined]
