"""The LRU of drawn lines: the least recently used goes first, a hit makes a value recent."""

from tracetui.app.cache import LRU


def test_the_least_recently_used_goes_first():
    c: LRU[str] = LRU(3)
    for k in "abc":
        c.put(k, k.upper())
    assert c.get("a") == "A"  # a is now the most recent: b is the oldest
    c.put("d", "D")
    assert "b" not in c and [k in c for k in "acd"] == [True, True, True]
    assert c.get("b") is None and (c.hits, c.misses) == (1, 1)
    c.put("c", "C2")  # a new value for a key makes it recent too
    c.put("e", "E")
    assert "a" not in c and c.get("c") == "C2" and len(c) == 3


def test_a_smaller_size_takes_effect_on_the_next_insert():
    c: LRU[int] = LRU(10)
    for i in range(10):
        c.put(i, i)
    c.maxsize = 4  # a smaller terminal
    assert len(c) == 10
    c.put(10, 10)
    assert len(c) == 4 and [i in c for i in (7, 8, 9, 10)] == [True] * 4
    c.clear()
    assert len(c) == 0
