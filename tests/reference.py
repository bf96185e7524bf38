"""Reference interval arithmetic for the tests, written plainly (sort and sweep, two
pointers) and independent of ``tracetui.analysis.intervals``, which it checks."""

from __future__ import annotations


def ref_union(pairs) -> list[tuple]:
    """Sorted, disjoint union of [s, e) pairs (sort + sweep); empty pairs dropped."""
    out: list[list] = []
    for s, e in sorted(p for p in pairs if p[1] > p[0]):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def ref_intersect(a, b) -> list[tuple]:
    """Intersection of two disjoint sorted interval lists (two-pointer sweep)."""
    i = j = 0
    out = []
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if s < e:
            out.append((s, e))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def ref_total(ivs) -> int:
    return sum(e - s for s, e in ivs)


def ref_subtract(a, b) -> list[tuple]:
    """a − b for two disjoint sorted interval lists (sweep over a, skipping b's pieces)."""
    out = []
    j = 0
    for s, e in a:
        while j < len(b) and b[j][1] <= s:
            j += 1
        k = j
        cur = s
        while k < len(b) and b[k][0] < e:
            if b[k][0] > cur:
                out.append((cur, b[k][0]))
            cur = max(cur, b[k][1])
            k += 1
        if cur < e:
            out.append((cur, e))
    return out
