# cython: language_level=3, boundscheck=False, wraparound=False
# cython: cdivision=True, initializedcheck=False
"""Compiled context coding of .vq index maps (coding 3 of ``docs/format.md``).

A stripe of an index map is coded pixel by pixel in raster order with an
adaptive binary range coder. Each pixel asks in turn: is it the colour of
its left neighbour W? Else, is it the colour of each other distinct
neighbour (N, NW, NE, WW, NN)? Else, which rank has its colour among the
untried codebook entries sorted by distance from a colour predicted from W,
N and NW (codebooks of more than 256 entries: which index)? Decisions about
neighbours mix four adaptive predictions (logistic mixing); ranks and
indices use one adaptive probability per bit. The section "Context coding"
of docs/format.md is the bit-exact specification: every constant and
formula below is there too.

Encoding and decoding run the same code (``coder.encoding`` decides which
way each bit goes), so the two cannot drift apart.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport abs, free, malloc, realloc
from libc.string cimport memset

import numpy as np

cdef extern from *:
    int __builtin_clz(unsigned int) nogil

cdef enum:
    COUNT_LIMIT = 127
    TABLE_BITS = 12
    TABLE_SIZE = 1 << TABLE_BITS
    MAX_INPUTS = 4
    FIRST_INPUTS = 4
    CANDIDATE_INPUTS = 3
    N_WEIGHTS = MAX_INPUTS + 1  # room for the bias of each weight set
    MIX_RATE = 20
    WEIGHT_INIT = 19661  # 0.3 in 16.16 fixed point
    WEIGHT_LIMIT = 1 << 22  # 64
    BIAS = 256
    # Context table sizes.
    ACTIVITIES = 27
    FLAT_CONTEXTS = 1 << TABLE_BITS
    FIRST_SHAPES = 32 * 8 * ACTIVITIES
    FIRST_DISTANCES = ACTIVITIES * 20 * 20
    CANDIDATE_SHAPES = 4 * 32 * 8 * ACTIVITIES
    CANDIDATE_DISTANCES = 4 * 32 * 20 * 20
    BUCKET_CONTEXTS = 16 * 16 * 9
    OFFSET_CONTEXTS = 9 * 4
    INDEX_CONTEXTS = 256 + 16
    # Largest codebook whose escapes are coded as ranks.
    RANKED_CODES = 256

cdef uint64_t HASH_MULTIPLIER = 0x9E3779B97F4A7C15ULL

# Codes: one byte each for up to 256 colours, else two.
ctypedef fused code_t:
    uint8_t
    uint16_t

# Results of decode_stripe.
cpdef enum Status:
    OK = 0
    BAD_RANK = 1
    BAD_INDEX = 2
    BAD_LENGTH = 3
    NO_MEMORY = 4
    TRUNCATED = 5

# -- Probabilities -------------------------------------------------------------

# squash(d) = 4096 / (1 + exp(-d / 256)) for d in -2047..2047, interpolated
# between these 33 points (those of lpaq1).
cdef int _SQUASH_POINTS[33]
_SQUASH_POINTS[:] = [
    1, 2, 3, 6, 10, 16, 27, 45, 73, 120, 194, 310, 488, 747, 1101, 1546, 2047,
    2549, 2994, 3348, 3607, 3785, 3901, 3975, 4022, 4050, 4068, 4079, 4085,
    4089, 4092, 4093, 4094,
]
# stretch(p), the inverse of squash for 12-bit probabilities.
cdef int _STRETCH[4096]
# Adaptation of a counter seen n times: 65536 / (n + 2).
cdef int _RATE[COUNT_LIMIT + 1]


cdef inline int squash(int d) noexcept nogil:
    cdef int w
    if d > 2047:
        return 4095
    if d < -2047:
        return 1
    w = d & 127
    d = (d >> 7) + 16
    return (_SQUASH_POINTS[d] * (128 - w) + _SQUASH_POINTS[d + 1] * w + 64) >> 7


cdef void _fill_tables() noexcept nogil:
    cdef int x, v, i, previous = 0
    for x in range(-2047, 2048):
        v = squash(x)
        for i in range(previous, v + 1):
            _STRETCH[i] = x
        previous = v + 1
    for i in range(previous, 4096):
        _STRETCH[i] = 2047
    for i in range(COUNT_LIMIT + 1):
        _RATE[i] = 65536 // (i + 2)


_fill_tables()


cdef struct Counter:
    uint16_t p  # P(bit = 1) in 1/65536
    uint16_t n  # times seen, at most COUNT_LIMIT


cdef inline void update(Counter* counter, int bit) noexcept nogil:
    cdef int p = counter.p
    if bit:
        p += ((65536 - p) * _RATE[counter.n]) >> 16
    else:
        p -= (p * _RATE[counter.n]) >> 16
    if p < 32:
        p = 32
    elif p > 65504:
        p = 65504
    counter.p = p
    if counter.n < COUNT_LIMIT:
        counter.n += 1


# -- The binary range coder ----------------------------------------------------


cdef struct Coder:
    uint32_t x1, x2, x
    uint8_t* data        # encoder: the output; decoder: the input
    Py_ssize_t size      # encoder: bytes allocated; decoder: bytes present
    Py_ssize_t position  # bytes written, or read (past the end too)
    bint encoding
    bint failed          # the encoder ran out of memory


cdef inline void put_byte(Coder* coder, uint8_t byte) noexcept nogil:
    cdef uint8_t* grown
    if coder.position == coder.size:
        grown = <uint8_t*>realloc(coder.data, 2 * coder.size + 256)
        if grown == NULL:
            coder.failed = True
            coder.position = 0  # keep writing somewhere; the result is dropped
            return
        coder.data = grown
        coder.size = 2 * coder.size + 256
    coder.data[coder.position] = byte
    coder.position += 1


cdef inline uint8_t get_byte(Coder* coder) noexcept nogil:
    cdef uint8_t byte = 0
    if coder.position < coder.size:
        byte = coder.data[coder.position]
    coder.position += 1
    return byte


cdef inline int code_bit(Coder* coder, int p, int bit) noexcept nogil:
    """Encode ``bit``, or decode and return a bit; P(1) = p / 4096."""
    cdef uint32_t middle = coder.x1 + ((coder.x2 - coder.x1) >> 12) * <uint32_t>p
    if not coder.encoding:
        bit = coder.x <= middle
    if bit:
        coder.x2 = middle
    else:
        coder.x1 = middle + 1
    while (coder.x1 ^ coder.x2) >> 24 == 0:
        if coder.encoding:
            put_byte(coder, coder.x2 >> 24)
        else:
            coder.x = (coder.x << 8) | get_byte(coder)
        coder.x1 <<= 8
        coder.x2 = (coder.x2 << 8) | 255
    return bit


cdef inline int code_counter(Coder* coder, Counter* counter, int bit) noexcept nogil:
    bit = code_bit(coder, counter.p >> 4, bit)
    update(counter, bit)
    return bit


cdef inline int32_t clamp_weight(int32_t weight) noexcept nogil:
    return -WEIGHT_LIMIT if weight < -WEIGHT_LIMIT else min(weight, WEIGHT_LIMIT)


cdef inline int code_mixed(
    Coder* coder, Counter** inputs, int n, int32_t* weights, int bit
) noexcept nogil:
    """Code a bit with the logistic mix of ``n`` counters' predictions.

    ``weights`` holds one weight per counter, then the bias's.
    """
    cdef int stretched[MAX_INPUTS]
    cdef int64_t dot = <int64_t>weights[n] * BIAS
    cdef int i, p, error
    for i in range(n):
        stretched[i] = _STRETCH[inputs[i].p >> 4]
        dot += <int64_t>weights[i] * stretched[i]
    p = squash(<int>(dot >> 16))
    bit = code_bit(coder, p, bit)
    error = ((bit << 12) - p) * MIX_RATE
    for i in range(n):
        weights[i] = clamp_weight(weights[i] + ((stretched[i] * error) >> 16))
        update(inputs[i], bit)
    weights[n] = clamp_weight(weights[n] + ((BIAS * error) >> 16))
    return bit


# -- The model -----------------------------------------------------------------


cdef struct Model:
    Counter* flat                       # is it W, all neighbours being W?
    Counter* first[FIRST_INPUTS]        # is it W?
    Counter* candidate[CANDIDATE_INPUTS]  # is it this neighbour's colour?
    Counter* bucket
    Counter* offset
    Counter* index
    int32_t* first_weights              # one set per activity
    int32_t* candidate_weights          # one set per slot (4) and activity
    const uint8_t* nearest        # row e: every entry, nearest to entry e first
    const uint8_t* positions      # row e: each entry's position in row e of nearest
    uint8_t* states               # two rows of pixel states: 0 = W, 1 = neighbour, 2 = escape


cdef Py_ssize_t _FIRST_SIZES[FIRST_INPUTS]
cdef Py_ssize_t _CANDIDATE_SIZES[CANDIDATE_INPUTS]
_FIRST_SIZES[:] = [FIRST_SHAPES, TABLE_SIZE, TABLE_SIZE, FIRST_DISTANCES]
_CANDIDATE_SIZES[:] = [CANDIDATE_SHAPES, TABLE_SIZE, CANDIDATE_DISTANCES]


cdef void reset_counters(Counter* counters, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        counters[i].p = 32768
        counters[i].n = 0


cdef void reset_weights(int32_t* weights, Py_ssize_t n_sets, int n) noexcept nogil:
    """Sets of ``n`` weights 0.3 and a bias weight 0."""
    cdef Py_ssize_t i
    for i in range(n_sets * N_WEIGHTS):
        weights[i] = WEIGHT_INIT if i % N_WEIGHTS < n else 0


cdef Counter* new_counters(Py_ssize_t n) noexcept nogil:
    cdef Counter* counters = <Counter*>malloc(n * sizeof(Counter))
    if counters != NULL:
        reset_counters(counters, n)
    return counters


cdef void free_model(Model* model) noexcept nogil:
    cdef int i
    free(model.flat)
    for i in range(FIRST_INPUTS):
        free(model.first[i])
    for i in range(CANDIDATE_INPUTS):
        free(model.candidate[i])
    free(model.bucket)
    free(model.offset)
    free(model.index)
    free(model.first_weights)
    free(model.candidate_weights)
    free(model.states)


cdef bint init_model(Model* model, int n_codes, Py_ssize_t width) noexcept nogil:
    """Allocate and reset the model; False when out of memory (free it then)."""
    cdef int i
    memset(model, 0, sizeof(Model))
    model.flat = new_counters(FLAT_CONTEXTS)
    if model.flat == NULL:
        return False
    for i in range(FIRST_INPUTS):
        model.first[i] = new_counters(_FIRST_SIZES[i])
        if model.first[i] == NULL:
            return False
    for i in range(CANDIDATE_INPUTS):
        model.candidate[i] = new_counters(_CANDIDATE_SIZES[i])
        if model.candidate[i] == NULL:
            return False
    model.bucket = new_counters(BUCKET_CONTEXTS)
    model.offset = new_counters(OFFSET_CONTEXTS)
    model.index = new_counters(INDEX_CONTEXTS)
    model.first_weights = <int32_t*>malloc(ACTIVITIES * N_WEIGHTS * sizeof(int32_t))
    model.candidate_weights = <int32_t*>malloc(
        4 * ACTIVITIES * N_WEIGHTS * sizeof(int32_t)
    )
    model.states = <uint8_t*>malloc(2 * width)
    if (model.bucket == NULL or model.offset == NULL or model.index == NULL
            or model.first_weights == NULL or model.candidate_weights == NULL
            or model.states == NULL):
        return False
    reset_weights(model.first_weights, ACTIVITIES, FIRST_INPUTS)
    reset_weights(model.candidate_weights, 4 * ACTIVITIES, CANDIDATE_INPUTS)
    memset(model.states, 0, 2 * width)
    return True


cdef inline int bit_length(uint32_t value) noexcept nogil:
    return 0 if value == 0 else 32 - __builtin_clz(value)


cdef inline uint32_t hashed(uint64_t key, int bits) noexcept nogil:
    return <uint32_t>((key * HASH_MULTIPLIER) >> (64 - bits))


cdef inline uint32_t distance(const int32_t* a, const int32_t* b) noexcept nogil:
    """Squared distance of two colours (4 channels, unused ones 0)."""
    cdef int32_t d0 = a[0] - b[0], d1 = a[1] - b[1], d2 = a[2] - b[2], d3 = a[3] - b[3]
    return d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3


cdef enum:
    # Squared distances of 8-bit colours are below 4 * 256**2 = 2**18: two
    # counting passes of 9 bits each sort them.
    DIGIT_BITS = 9
    DIGITS = 1 << DIGIT_BITS


cdef void sort_by_distance(
    const uint32_t* distances, uint8_t* order, uint8_t* buffer, Py_ssize_t n
) noexcept nogil:
    """``order``: the entries 0..n-1 by distance, then index (a stable radix sort)."""
    cdef Py_ssize_t counts[DIGITS]
    cdef Py_ssize_t i, total, count
    cdef int digit, shift, bucket
    cdef uint8_t* source = order
    cdef uint8_t* target
    for i in range(n):
        order[i] = i
    for digit in range(2):  # order to buffer, then back
        shift = digit * DIGIT_BITS
        target = buffer if source == order else order
        memset(counts, 0, sizeof(counts))
        for i in range(n):
            counts[(distances[i] >> shift) & (DIGITS - 1)] += 1
        total = 0
        for i in range(DIGITS):
            count = counts[i]
            counts[i] = total
            total += count
        for i in range(n):
            bucket = (distances[source[i]] >> shift) & (DIGITS - 1)
            target[counts[bucket]] = source[i]
            counts[bucket] += 1
        source = target


def nearest_entries(const int32_t[:, ::1] palette):
    """For each entry e, every entry by (distance to e, index), and its inverse.

    Returns (nearest, positions), two (K, K) uint8 arrays: ``nearest[e]``
    lists the entries nearest to ``e`` first; ``positions[e, f]`` is where
    ``f`` is in ``nearest[e]``. For codebooks of at most 256 entries, as
    int32 in 4 columns of values 0..255.
    """
    if palette.shape[1] != 4 or not 1 <= palette.shape[0] <= RANKED_CODES:
        raise ValueError(f"palette must have shape (1..256, 4), got {palette.shape}")
    values = np.asarray(palette)
    if values.min() < 0 or values.max() > 255:
        raise ValueError("palette values must be 0..255")
    cdef Py_ssize_t n_codes = palette.shape[0], e, f
    nearest_array = np.empty((n_codes, n_codes), np.uint8)
    positions_array = np.empty((n_codes, n_codes), np.uint8)
    cdef uint8_t[:, ::1] nearest = nearest_array
    cdef uint8_t[:, ::1] positions = positions_array
    cdef uint32_t distances[RANKED_CODES]
    cdef uint8_t buffer[RANKED_CODES]
    with nogil:
        for e in range(n_codes):
            for f in range(n_codes):
                distances[f] = distance(&palette[f, 0], &palette[e, 0])
            sort_by_distance(distances, &nearest[e, 0], buffer, n_codes)
            for f in range(n_codes):
                positions[e, nearest[e, f]] = f
    return nearest_array, positions_array


cdef inline bint is_tried(const int* tried, int n_tried, int code) noexcept nogil:
    cdef int i
    for i in range(n_tried):
        if tried[i] == code:
            return True
    return False


cdef int code_rank(
    Coder* coder, Model* model, const int32_t* palette, int n_codes,
    const int32_t* predicted, const int* tried, int n_tried, int code, int context
) noexcept nogil:
    """Code an escape by its rank; the code, or -1 for a rank out of range.

    The centre is the entry found nearest the prediction by a descent from
    the nearest tried colour through each centre's 8 nearest entries; the
    rank counts the untried entries before the code in the centre's list.
    """
    cdef int remaining = n_codes - n_tried, rank = 0, bucket = 0, last_bucket
    cdef int i, j, bit, node, offset = 0, value, centre = tried[0], previous, entry, own
    cdef uint32_t centre_distance, d
    cdef const uint8_t* row
    centre_distance = distance(palette + 4 * centre, predicted)
    for i in range(1, n_tried):
        d = distance(palette + 4 * tried[i], predicted)
        if d < centre_distance:
            centre_distance = d
            centre = tried[i]
    previous = -1
    while centre != previous:
        previous = centre
        row = model.nearest + previous * n_codes
        for i in range(min(8, n_codes)):
            entry = row[i]
            d = distance(palette + 4 * entry, predicted)
            if d < centre_distance or (d == centre_distance and entry < centre):
                centre_distance = d
                centre = entry
    row = model.nearest + centre * n_codes
    if coder.encoding:
        own = model.positions[centre * n_codes + code]
        rank = own
        for i in range(n_tried):
            rank -= model.positions[centre * n_codes + tried[i]] < own
        while (rank + 1) >> (bucket + 1):
            bucket += 1
        offset = rank + 1 - (1 << bucket)
    # The bucket b, in unary: it holds ranks 2**b - 1 .. 2**(b + 1) - 2.
    last_bucket = bit_length(remaining) - 1
    j = 0
    while j < last_bucket:
        if not code_counter(coder, &model.bucket[j * 144 + context], bucket > j):
            break
        j += 1
    bucket = j
    # The offset in the bucket, most significant bit first: a tree of
    # contexts for the first two bits, the others at even odds.
    value = 0
    node = 1
    for j in range(bucket - 1, -1, -1):
        if node < 4:
            bit = code_counter(coder, &model.offset[bucket * 4 + node], (offset >> j) & 1)
            node = 2 * node + bit
        else:
            bit = code_bit(coder, 2048, (offset >> j) & 1)
        value = 2 * value + bit
    if coder.encoding:
        return code
    rank = (1 << bucket) - 1 + value
    if rank >= remaining:
        return -1
    # The position p of the code in the list: the least p with
    # p = rank + (tried entries at positions up to p).
    own = rank
    while True:
        previous = rank
        for i in range(n_tried):
            previous += model.positions[centre * n_codes + tried[i]] <= own
        if previous == own:
            return row[own]
        own = previous


cdef int code_index(
    Coder* coder, Model* model, int n_codes, const int* tried, int n_tried, int code
) noexcept nogil:
    """Code an escape of a large codebook by its index; -1 if invalid."""
    cdef int bits = bit_length(n_codes - 1), j, bit, node = 1, value = 0
    for j in range(bits - 1, -1, -1):
        if node < 256:
            bit = code_counter(coder, &model.index[node], (code >> j) & 1)
            node = 2 * node + bit
        else:
            bit = code_counter(coder, &model.index[256 + j], (code >> j) & 1)
        value = 2 * value + bit
    if value >= n_codes or is_tried(tried, n_tried, value):
        return -1
    return value


cdef int code_stripe(
    Coder* coder, Model* model, code_t* codes, Py_ssize_t height, Py_ssize_t width,
    const int32_t* palette, int n_codes, Py_ssize_t stop_after,
    Py_ssize_t* done
) noexcept nogil:
    """Code the stripe; returns OK, an error, or TRUNCATED past ``stop_after``.

    ``done`` counts the pixels coded. A decoder stops (TRUNCATED) after the
    first pixel that has read more than ``stop_after`` bytes, which it does
    not count: the pixels it counts read only bytes before that limit.
    """
    cdef Py_ssize_t y, x, row, above, above2
    cdef int code, w, n, nw, ne, ww, nn, i, j, c, slot, n_tried, n_candidates
    cdef int state_w, state_n, state_ne, activity, w_shape, n_shape, where, hit
    cdef int q_wp, q_wn, gradient_class, limited_slot
    cdef uint32_t gradient
    cdef int32_t predicted[4]
    cdef int32_t value
    cdef int neighbours[6]
    cdef int tried[6]
    cdef int candidates[5]
    cdef int wheres[5]
    cdef Counter* inputs[MAX_INPUTS]
    cdef uint8_t* states_now
    cdef uint8_t* states_above
    cdef const int32_t* pw
    cdef const int32_t* pn
    cdef const int32_t* pnw
    cdef const int32_t* pne
    for y in range(height):
        row = y * width
        above = row - width
        above2 = above - width
        states_now = model.states + (y & 1) * width
        states_above = model.states + ((y + 1) & 1) * width
        for x in range(width):
            if not coder.encoding and coder.position > stop_after:
                done[0] = max(row + x - 1, 0)  # the previous pixel read past it
                return TRUNCATED
            code = codes[row + x]
            # Neighbours, with the rules of the image borders.
            if y == 0:
                if x == 0:
                    w = n = nw = ne = ww = nn = 0
                else:
                    w = codes[row + x - 1]
                    ww = codes[row + x - 2] if x >= 2 else w
                    n = nw = ne = nn = w
                state_n = state_ne = 0
                state_w = states_now[x - 1] if x > 0 else 0
            else:
                n = codes[above + x]
                ne = codes[above + x + 1] if x + 1 < width else n
                nn = codes[above2 + x] if y >= 2 else n
                state_n = states_above[x]
                state_ne = states_above[x + 1] if x + 1 < width else state_n
                if x == 0:
                    w = nw = ww = n
                    state_w = 0
                else:
                    w = codes[row + x - 1]
                    nw = codes[above + x - 1]
                    ww = codes[row + x - 2] if x >= 2 else w
                    state_w = states_now[x - 1]
            activity = 9 * state_w + 3 * state_n + state_ne
            pw = palette + 4 * w
            w_shape = ((n == w) | (nw == w) << 1 | (ne == w) << 2 | (ww == w) << 3
                       | (nn == w) << 4)
            n_tried = 1
            tried[0] = w
            if w_shape == 31:
                # 1. All neighbours are W: is it W too? Else it is an escape.
                predicted[0] = pw[0]
                predicted[1] = pw[1]
                predicted[2] = pw[2]
                predicted[3] = pw[3]
                hit = 1
                if n_codes > 1:
                    hit = code_counter(
                        coder, &model.flat[hashed(<uint64_t>activity << 16 | w, TABLE_BITS)],
                        code == w,
                    )
                if hit:
                    codes[row + x] = w
                    states_now[x] = 0
                    continue
            else:
                pn = palette + 4 * n
                pnw = palette + 4 * nw
                for i in range(4):
                    value = (3 * pw[i] + 3 * pn[i] - 2 * pnw[i] + 2) >> 2
                    predicted[i] = 0 if value < 0 else (255 if value > 255 else value)
                q_wp = bit_length(distance(pw, predicted))
                q_wn = bit_length(distance(pw, pn))
                n_shape = (nw == n) | (ne == n) << 1 | (nn == n) << 2
                # 1. Is it W?
                inputs[0] = &model.first[0][(w_shape * 8 + n_shape) * ACTIVITIES + activity]
                inputs[1] = &model.first[1][hashed(<uint64_t>w << 16 | n, TABLE_BITS)]
                inputs[2] = &model.first[2][hashed(
                    ((<uint64_t>w << 16 | ne) << 16 | nw) << 5 | w_shape, TABLE_BITS
                )]
                inputs[3] = &model.first[3][(activity * 20 + q_wp) * 20 + q_wn]
                hit = code_mixed(
                    coder, inputs, FIRST_INPUTS,
                    &model.first_weights[activity * N_WEIGHTS], code == w
                )
                if hit:
                    codes[row + x] = w
                    states_now[x] = 0
                    continue
                # 2. Is it the colour of the next distinct neighbour?
                neighbours[0] = w
                neighbours[1] = n
                neighbours[2] = nw
                neighbours[3] = ne
                neighbours[4] = ww
                neighbours[5] = nn
                n_candidates = 0
                for i in range(1, 6):
                    c = neighbours[i]
                    if c == w or is_tried(candidates, n_candidates, c):
                        continue
                    where = 0
                    for j in range(1, 6):
                        where |= (neighbours[j] == c) << (j - 1)
                    candidates[n_candidates] = c
                    wheres[n_candidates] = where
                    n_candidates += 1
                hit = 0
                for slot in range(n_candidates):
                    if n_codes - n_tried == 1:
                        break
                    c = candidates[slot]
                    where = wheres[slot]
                    limited_slot = slot if slot < 3 else 3
                    inputs[0] = &model.candidate[0][
                        ((limited_slot * 32 + where) * 8 + min(n_candidates - slot, 7))
                        * ACTIVITIES + activity
                    ]
                    inputs[1] = &model.candidate[1][hashed(
                        (<uint64_t>slot << 16 | c) << 16 | w, TABLE_BITS
                    )]
                    inputs[2] = &model.candidate[2][
                        ((limited_slot * 32 + where) * 20
                         + bit_length(distance(palette + 4 * c, predicted)))
                        * 20 + q_wp
                    ]
                    tried[n_tried] = c
                    n_tried += 1
                    hit = code_mixed(
                        coder, inputs, CANDIDATE_INPUTS,
                        &model.candidate_weights[
                            (limited_slot * ACTIVITIES + activity) * N_WEIGHTS
                        ],
                        code == c,
                    )
                    if hit:
                        code = c
                        break
                if hit:
                    codes[row + x] = code
                    states_now[x] = 1
                    continue
            # 3. An escape: the rank (or index) of the colour.
            states_now[x] = 2
            if n_codes - n_tried == 1:
                for code in range(n_codes):  # the one colour left
                    if not is_tried(tried, n_tried, code):
                        break
            elif n_codes <= RANKED_CODES:
                gradient = 0
                if w_shape != 31:
                    pne = palette + 4 * ne
                    for i in range(4):
                        gradient += (abs(pw[i] - pnw[i]) + abs(pn[i] - pnw[i])
                                     + abs(pn[i] - pne[i]))
                gradient_class = bit_length(gradient)
                if gradient_class > 15:
                    gradient_class = 15
                code = code_rank(
                    coder, model, palette, n_codes, predicted, tried, n_tried,
                    code, gradient_class * 9 + state_w * 3 + state_n
                )
                if code < 0:
                    done[0] = row + x
                    return BAD_RANK
            else:
                code = code_index(coder, model, n_codes, tried, n_tried, code)
                if code < 0:
                    done[0] = row + x
                    return BAD_INDEX
            codes[row + x] = code
    done[0] = height * width
    if not coder.encoding and coder.position > stop_after:
        done[0] -= 1
        return TRUNCATED
    return OK


# -- Python entry points ---------------------------------------------------------


def _check_tables(palette, nearest, positions):
    n_codes = palette.shape[0]
    if palette.shape[1] != 4 or not 1 <= n_codes <= 65536:
        raise ValueError(f"palette must have shape (1..65536, 4), got {palette.shape}")
    if n_codes <= RANKED_CODES and not (
        nearest.shape[0] == nearest.shape[1] == positions.shape[0]
        == positions.shape[1] == n_codes
    ):
        raise ValueError("nearest and positions must be the palette's nearest_entries")


cdef inline void start(Coder* coder) noexcept nogil:
    coder.x1 = 0
    coder.x2 = 0xFFFFFFFFU
    coder.x = 0
    coder.position = 0
    coder.failed = False


def encode_stripe(
    const code_t[:, ::1] codes,
    const int32_t[:, ::1] palette,
    const uint8_t[:, ::1] nearest,
    const uint8_t[:, ::1] positions,
):
    """The coded bytes of a stripe of codes (all below ``len(palette)``).

    ``palette`` is the codebook as int32, 4 columns (unused channels 0);
    ``nearest`` and ``positions`` are its :func:`nearest_entries` (any
    arrays for more than 256 entries).
    """
    cdef Coder coder
    cdef Model model
    cdef code_t[:, ::1] work = np.array(codes)  # coding writes each code back
    cdef Py_ssize_t height = codes.shape[0], width = codes.shape[1]
    cdef int status
    cdef bint ready
    cdef Py_ssize_t done
    _check_tables(palette, nearest, positions)
    start(&coder)
    coder.encoding = True
    coder.size = 0
    coder.data = NULL
    with nogil:
        ready = init_model(&model, palette.shape[0], width)
        model.nearest = &nearest[0, 0]
        model.positions = &positions[0, 0]
        if ready:
            status = code_stripe(
                &coder, &model, &work[0, 0], height, width, &palette[0, 0],
                palette.shape[0], 0, &done
            )
            # Flush: one byte puts the decoder's value inside the final range.
            put_byte(&coder, (coder.x1 >> 24) + 1)
        free_model(&model)
    try:
        if not ready or coder.failed:
            raise MemoryError("out of memory encoding a stripe")
        return bytes((<char*>coder.data)[:coder.position])
    finally:
        free(coder.data)


def decode_stripe(
    const uint8_t[::1] data,
    code_t[:, ::1] codes,
    const int32_t[:, ::1] palette,
    const uint8_t[:, ::1] nearest,
    const uint8_t[:, ::1] positions,
    Py_ssize_t length,
):
    """Decode a stripe into ``codes``; returns (status, exact pixels).

    ``data`` holds the bytes present of a stripe of ``length`` bytes. Cut
    short, decoding stops (status TRUNCATED) after the first pixel that
    needs a byte past them, and the pixels before it are exact. A whole
    stripe is read to its end: its decoder reads it and exactly 3 bytes
    past it.
    """
    cdef Coder coder
    cdef Model model
    cdef Py_ssize_t height = codes.shape[0], width = codes.shape[1], i
    cdef Py_ssize_t present = data.shape[0], done = 0
    cdef int status = NO_MEMORY
    _check_tables(palette, nearest, positions)
    start(&coder)
    coder.encoding = False
    coder.data = <uint8_t*>&data[0] if present else NULL
    coder.size = present
    with nogil:
        for i in range(4):
            coder.x = (coder.x << 8) | get_byte(&coder)
        if init_model(&model, palette.shape[0], width):
            model.nearest = &nearest[0, 0]
            model.positions = &positions[0, 0]
            status = code_stripe(
                &coder, &model, &codes[0, 0], height, width, &palette[0, 0],
                palette.shape[0], length + 3 if present == length else present, &done
            )
        free_model(&model)
    if status == OK and coder.position != length + 3:
        status = BAD_LENGTH
    elif status != OK and present < length and coder.position > present:
        status = TRUNCATED  # from bytes past those present, not damage
    elif status != OK and status != NO_MEMORY and coder.position > length + 3:
        status = BAD_LENGTH  # the stripe ran out before its pixels
    return status, done
