"""The name model's weight table: each feature finds its own weights, any other finds none."""

from __future__ import annotations

import io
import random

import pytest

from filterdns.lists import nametable

RNG = random.Random(11)
FEATURES = sorted(
    {"".join(RNG.choices("abcdefghik0123-^$", k=RNG.randint(3, 5))) for _ in range(3000)}
    | {f"w:{'x' * n}casino" for n in range(20)}  # longer than 7 bytes: hashed keys
)
WEIGHTS = [
    {f: RNG.choice((-1, 1)) * RNG.randint(1, 5202) / 1000 for f in FEATURES[::2]},
    {f: RNG.randint(-4000, 4000) / 1000 for f in FEATURES[1::3]},
]
UNKNOWN = "zzzzz"  # no feature above holds a z


@pytest.fixture(scope="module")
def table() -> nametable.WeightTable:
    return nametable.build(WEIGHTS)


def test_every_feature_finds_its_weights_and_others_none(table: nametable.WeightTable) -> None:
    unknown = nametable.key(UNKNOWN)
    wrong = [
        f
        for f in FEATURES
        if table.sums([nametable.key(f), unknown])
        != pytest.approx([w.get(f, 0.0) for w in WEIGHTS], abs=1e-9)
    ]
    assert wrong == []
    assert table.sums([unknown, nametable.key("w:nothere-at-all")]) == (0.0, 0.0)


def test_weights_add_up(table: nametable.WeightTable) -> None:
    chosen = FEATURES[:40]
    sums = table.sums([nametable.key(f) for f in chosen])
    assert sums == pytest.approx([sum(w.get(f, 0.0) for f in chosen) for w in WEIGHTS], abs=1e-9)


def test_the_table_is_small_and_counts_its_weights(table: nametable.WeightTable) -> None:
    assert table.count() == sum(1 for w in WEIGHTS for v in w.values() if v)
    held = len(set().union(*WEIGHTS))
    assert held < table.size < held / nametable.LOAD + 64


def test_a_table_reads_back_as_written(table: nametable.WeightTable) -> None:
    read = nametable.read(io.BytesIO(table.to_bytes()))
    assert (read.keys, read.displacements, read.weights) == (
        table.keys, table.displacements, table.weights
    )  # fmt: skip


@pytest.mark.parametrize(
    ("feature", "key"),
    [
        pytest.param("abc", 0x636261, id="ngram-is-its-bytes"),
        pytest.param("^bet8", int.from_bytes(b"^bet8", "little"), id="five-bytes"),
        pytest.param("w:casinos", int.from_bytes(b"w:casinos", "little") % nametable.PRIME,
                     id="long-word-modulo-prime"),
    ],
)  # fmt: skip
def test_a_key_is_the_features_bytes_as_an_integer(feature: str, key: int) -> None:
    assert nametable.key(feature) == key


@pytest.mark.parametrize("weight", [32.768, -32.769, 100.0])
def test_a_weight_the_table_cannot_hold_is_refused(weight: float) -> None:
    with pytest.raises(ValueError, match="out of the table's range"):
        nametable.build([{"abc": weight}])
