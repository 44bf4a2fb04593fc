"""The context coding of docs/format.md, written from the spec in plain Python.

An oracle for the compiled coder (skvq._context): slow (tiny images only),
written from the text of the spec, section "Context coding (3)", not from
the compiled code. ``encode_index_data`` and ``decode_index_data`` handle
the whole INDX data of a frame.
"""

from __future__ import annotations

import struct

T = [1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047]
T += [2549, 2994, 3348, 3607, 3785, 3901, 3975, 4022, 4050, 4068, 4079, 4085]
T += [4089, 4092, 4093, 4094]
MASK32 = 2**32 - 1


def squash(d):
    if d > 2047:
        return 4095
    if d < -2047:
        return 1
    i, w = (d >> 7) + 16, d & 127
    return (T[i] * (128 - w) + T[i + 1] * w + 64) >> 7


def _stretch_table():
    """stretch(p): the least d in -2047..2047 with squash(d) >= p, else 2047."""
    table, d = [], -2047
    for p in range(4096):
        while d < 2047 and squash(d) < p:  # squash never decreases
            d += 1
        table.append(d)
    return table


STRETCH = _stretch_table()


def bitlen(v):
    return v.bit_length()


def hash12(key):
    return ((key * 0x9E3779B97F4A7C15) % 2**64) >> 52


class Damaged(Exception):
    """The data breaks a rule of the spec."""


class Coder:
    """The carry-less binary range coder; encodes when ``data`` is None."""

    def __init__(self, data=None):
        self.x1, self.x2 = 0, MASK32
        self.encoding = data is None
        self.out = bytearray()
        self.data, self.read = data, 0
        self.x = 0
        if not self.encoding:
            for _ in range(4):
                self.x = (self.x << 8) | self.next_byte()

    def next_byte(self):
        byte = self.data[self.read] if self.read < len(self.data) else 0
        self.read += 1
        return byte

    def bit(self, p, bit=0):
        assert 1 <= p <= 4095
        xmid = self.x1 + ((self.x2 - self.x1) >> 12) * p
        if not self.encoding:
            bit = 1 if self.x <= xmid else 0
        if bit:
            self.x2 = xmid
        else:
            self.x1 = xmid + 1
        while (self.x1 ^ self.x2) < 2**24:
            if self.encoding:
                self.out.append(self.x2 >> 24)
            else:
                self.x = ((self.x << 8) & MASK32) | self.next_byte()
            self.x1 = (self.x1 << 8) & MASK32
            self.x2 = ((self.x2 << 8) & MASK32) | 255
        return bit

    def finish(self):
        if self.encoding:
            self.out.append((self.x1 >> 24) + 1)
            return bytes(self.out)
        if self.read != len(self.data) + 3:
            raise Damaged(f"read {self.read} bytes of a stripe of {len(self.data)}")
        return None


class Counter:
    def __init__(self):
        self.q, self.n = 32768, 0

    def update(self, bit):
        rate = 65536 // (self.n + 2)
        if bit:
            self.q += ((65536 - self.q) * rate) >> 16
        else:
            self.q -= (self.q * rate) >> 16
        self.q = min(max(self.q, 32), 65504)
        if self.n < 127:
            self.n += 1


class Table(dict):
    """Counters created on first use (every one starts alike)."""

    def __missing__(self, index):
        self[index] = counter = Counter()
        return counter


def code_counter(coder, counter, bit=0):
    bit = coder.bit(counter.q >> 4, bit)
    counter.update(bit)
    return bit


def clamp(v):
    return min(max(v, -(2**22)), 2**22)


def code_mixed(coder, counters, weights, bit=0):
    m = len(counters)
    if not weights:
        weights.extend([19661] * m + [0])
    s = [STRETCH[c.q >> 4] for c in counters]
    dot = weights[m] * 256 + sum(w * x for w, x in zip(weights, s, strict=False))
    p = squash(dot >> 16)
    bit = coder.bit(p, bit)
    e = ((bit << 12) - p) * 20
    for i in range(m):
        weights[i] = clamp(weights[i] + ((s[i] * e) >> 16))
    weights[m] = clamp(weights[m] + ((256 * e) >> 16))
    for c in counters:
        c.update(bit)
    return bit


def dist(a, b):
    return sum((x - y) ** 2 for x, y in zip(a, b, strict=True))


def neighbours(codes, y, x, width):
    """W, N, NW, NE, WW, NN with the border rules."""
    row = codes[y]
    if y == 0:
        if x == 0:
            return 0, 0, 0, 0, 0, 0
        w = row[x - 1]
        return w, w, w, w, row[x - 2] if x >= 2 else w, w
    above = codes[y - 1]
    n = above[x]
    ne = above[x + 1] if x + 1 < width else n
    nn = codes[y - 2][x] if y >= 2 else n
    if x == 0:
        return n, n, n, ne, n, nn
    return row[x - 1], n, above[x - 1], ne, row[x - 2] if x >= 2 else row[x - 1], nn


class Stripe:
    """The state of one stripe; ``code_pixel`` codes (or decodes) a pixel."""

    def __init__(self, codes, width, palette, coder):
        self.codes, self.width, self.palette, self.coder = codes, width, palette, coder
        self.k = len(palette)
        self.tables = {
            name: Table() for name in "flat f0 f1 f2 f3 c0 c1 c2 b o i".split()
        }
        self.weights = {}
        self.states = [[0] * width for _ in codes]
        self.lists = {}

    def sorted_list(self, e):
        if e not in self.lists:
            self.lists[e] = sorted(
                range(self.k), key=lambda f: (dist(self.palette[e], self.palette[f]), f)
            )
        return self.lists[e]

    def code_pixel(self, y, x):
        coder, palette, tables, k = self.coder, self.palette, self.tables, self.k
        w, n, nw, ne, ww, nn = neighbours(self.codes, y, x, self.width)
        s_w = self.states[y][x - 1] if x > 0 else 0
        s_n = self.states[y - 1][x] if y > 0 else 0
        s_ne = self.states[y - 1][x + 1] if y > 0 and x + 1 < self.width else s_n
        a = 9 * s_w + 3 * s_n + s_ne
        v = self.codes[y][x] if coder.encoding else None
        shape_w = (n == w) | (nw == w) << 1 | (ne == w) << 2 | (ww == w) << 3
        shape_w |= (nn == w) << 4
        tried = [w]
        if shape_w == 31:  # step 1, flat
            if k == 1 or code_counter(
                coder, tables["flat"][hash12(a << 16 | w)], v == w
            ):
                return w, 0
            return self.escape(v, tried, palette[w], 0, s_w, s_n), 2
        predicted = [
            min(max((3 * pw + 3 * pn - 2 * pnw + 2) >> 2, 0), 255)
            for pw, pn, pnw in zip(palette[w], palette[n], palette[nw], strict=True)
        ]
        q_wp = bitlen(dist(palette[w], predicted))
        q_wn = bitlen(dist(palette[w], palette[n]))
        shape_n = (nw == n) | (ne == n) << 1 | (nn == n) << 2
        counters = [
            tables["f0"][(shape_w * 8 + shape_n) * 27 + a],
            tables["f1"][hash12(w << 16 | n)],
            tables["f2"][hash12((((w << 16 | ne) << 16 | nw) << 5) | shape_w)],
            tables["f3"][(a * 20 + q_wp) * 20 + q_wn],
        ]
        if code_mixed(coder, counters, self.weights.setdefault(("f", a), []), v == w):
            return w, 0
        # Step 2.
        candidates = []
        for code in (n, nw, ne, ww, nn):
            if code != w and code not in candidates:
                candidates.append(code)
        for t, c in enumerate(candidates):
            if k - len(tried) == 1:
                break
            tried.append(c)
            where = sum(1 << i for i, q in enumerate((n, nw, ne, ww, nn)) if q == c)
            t_ = min(t, 3)
            q_c = bitlen(dist(palette[c], predicted))
            counters = [
                tables["c0"][
                    ((t_ * 32 + where) * 8 + min(len(candidates) - t, 7)) * 27 + a
                ],
                tables["c1"][hash12(((t << 16 | c) << 16) | w)],
                tables["c2"][((t_ * 32 + where) * 20 + q_c) * 20 + q_wp],
            ]
            weights = self.weights.setdefault(("c", t_, a), [])
            if code_mixed(coder, counters, weights, v == c):
                return c, 1
        g = sum(
            abs(pw - pnw) + abs(pn - pnw) + abs(pn - pne)
            for pw, pn, pnw, pne in zip(
                palette[w], palette[n], palette[nw], palette[ne], strict=True
            )
        )
        return self.escape(v, tried, predicted, g, s_w, s_n), 2

    def escape(self, v, tried, predicted, g, s_w, s_n):
        """Step 3: the code ``v``, none of the tried ones."""
        coder, palette, tables, k = self.coder, self.palette, self.tables, self.k
        q = k - len(tried)
        if q == 1:
            return next(code for code in range(k) if code not in tried)
        if k > 256:
            return self.index(v, tried)
        m = min(tried, key=lambda code: dist(palette[code], predicted))
        while True:
            start = m
            for f in self.sorted_list(start)[: min(8, k)]:
                d_f, d_m = dist(palette[f], predicted), dist(palette[m], predicted)
                if d_f < d_m or (d_f == d_m and f < m):
                    m = f
            if m == start:
                break
        order = self.sorted_list(m)
        b = o = 0
        if coder.encoding:
            r = sum(1 for f in order[: order.index(v)] if f not in tried)
            b = bitlen(r + 1) - 1
            o = r + 1 - 2**b
        context = min(bitlen(g), 15) * 9 + s_w * 3 + s_n
        j = 0
        while j < bitlen(q) - 1:
            if not code_counter(coder, tables["b"][j * 144 + context], b > j):
                break
            j += 1
        b, node, value = j, 1, 0
        for j in range(b - 1, -1, -1):
            bit = (o >> j) & 1
            if node < 4:
                bit = code_counter(coder, tables["o"][b * 4 + node], bit)
                node = 2 * node + bit
            else:
                bit = coder.bit(2048, bit)
            value = 2 * value + bit
        r = 2**b - 1 + value
        if r >= q:
            raise Damaged(f"rank {r} of {q} codes left")
        i = r
        while i != r + sum(1 for t in tried if order.index(t) <= i):
            i = r + sum(1 for t in tried if order.index(t) <= i)
        return order[i]

    def index(self, v, tried):
        node, value = 1, 0
        for j in range(bitlen(self.k - 1) - 1, -1, -1):
            bit = (v >> j) & 1 if self.coder.encoding else 0
            if node < 256:
                bit = code_counter(self.coder, self.tables["i"][node], bit)
                node = 2 * node + bit
            else:
                bit = code_counter(self.coder, self.tables["i"][256 + j], bit)
            value = 2 * value + bit
        if value >= self.k or value in tried:
            raise Damaged(f"index {value}")
        return value


def code_stripe(codes, width, palette, coder):
    """Code (or decode, filling ``codes``) one stripe: a list of rows."""
    stripe = Stripe(codes, width, palette, coder)
    for y in range(len(codes)):
        for x in range(width):
            codes[y][x], stripe.states[y][x] = stripe.code_pixel(y, x)
    return coder.finish()


def encode_index_data(codes, palette, rows):
    """INDX data of ``codes`` (list of rows) in stripes of ``rows`` rows."""
    height, width = len(codes), len(codes[0])
    stripes = [
        code_stripe([list(r) for r in codes[s : s + rows]], width, palette, Coder())
        for s in range(0, height, rows)
    ]
    table = struct.pack(f">I{len(stripes)}I", rows, *map(len, stripes))
    return table + b"".join(stripes)


def decode_index_data(data, height, width, palette):
    """The codes (list of rows) of INDX data; raises Damaged."""
    if len(data) < 4:
        raise Damaged("no stripe table")
    (rows,) = struct.unpack_from(">I", data)
    if not 1 <= rows <= height:
        raise Damaged(f"{rows} rows per stripe")
    n_stripes = -(-height // rows)
    if 4 + 4 * n_stripes > len(data):
        raise Damaged("stripe table")
    lengths = struct.unpack_from(f">{n_stripes}I", data, 4)
    if 0 in lengths or 4 + 4 * n_stripes + sum(lengths) != len(data):
        raise Damaged("stripe lengths")
    codes, at = [], 4 + 4 * n_stripes
    for s, length in enumerate(lengths):
        stripe = [[0] * width for _ in range(min(rows, height - s * rows))]
        code_stripe(stripe, width, palette, Coder(data[at : at + length]))
        codes += stripe
        at += length
    return codes
