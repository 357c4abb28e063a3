"""Square attack (Andriushchenko et al. 2020, "Square Attack: a query-efficient black-box adversarial attack via
random search"), L-inf and L2, natively in TF2: batched, seeded, graph-safe, one tf.while_loop per restart.

It needs no gradient, only the logits, so a model that hides its gradients (quantised inputs, saturated
probabilities) cannot fool it. Each iteration proposes, for every example not yet fooled, a change of one square
window of the current best perturbation and keeps it only if the margin loss went down (or the example became
misclassified). The window covers a fraction p of the image that shrinks over the query budget on the reference
implementation's schedule (fra31/auto-attack `square.py`).

Deliberate difference from that implementation: every example draws its own window position, signs and pattern
orientation (as in Algorithm 1 of the paper and the authors' original code); auto-attack's port draws one window
per iteration for the whole batch. Per-example draws make an example's result independent of the batch it is in.
"""

import math

import numpy as np
import tensorflow as tf

from mocse_tf.attacks import geometry, starts
from mocse_tf.attacks.checks import check_count, check_eps, check_images, check_number, check_targets
from mocse_tf.errors import UsageError

# The schedule of p: p = p_init / 2^k, k the number of these (rescaled) iterations that lie strictly below the
# current one.
_P_HALVING_AFTER = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
# Iterations the schedule is written for; other budgets rescale their iteration to it (rescale_schedule=True).
_SCHEDULE_LENGTH = 10000
# The L2 initialisation tiles the image with squares of side H // _L2_INIT_TILES.
_L2_INIT_TILES = 5
# The reference's guard against dividing by a zero norm.
_TINY = 1e-12


def square_p_schedule(queries, p_init=0.8, rescale=True):
    """The fraction p of the image a square window covers at iterations 0 .. queries - 1.

    rescale=True maps iteration i to int(i / queries * 10000) first, so any budget runs through the whole
    schedule (the SquareAttack class default). AutoAttack's standard version builds its Square attack with the
    rescaling off (`resc_schedule=False` in autoattack.py): with 5000 queries it then stops at p_init / 128.
    """
    check_count("queries", queries)
    _check_p_init(p_init)
    schedule = []
    for iteration in range(queries):
        position = int(iteration / queries * _SCHEDULE_LENGTH) if rescale else iteration
        halvings = sum(1 for threshold in _P_HALVING_AFTER if position > threshold)
        schedule.append(p_init / 2 ** halvings)
    return schedule


def square_window_sizes(schedule, height, width, channels, norm):
    """The side s of the square window at each iteration: round(sqrt(p * H * W)), at least 1 (L-inf) or an odd
    number at least 3 (L2), at most min(H, W). Rounds half to even, as Python's round does in the reference."""
    features = channels * height * width
    sizes = []
    for p in schedule:
        side = int(round(math.sqrt(p * features / channels)))
        if norm == "linf":
            side = max(side, 1)
        else:
            side = max(side, 3)
            side += 1 - side % 2
        sizes.append(min(side, height, width))
    return sizes


def _check_p_init(p_init):
    check_number("p_init", p_init, 0.0, strict=True)
    if p_init > 1:
        raise UsageError(f"p_init is the fraction of the image the first squares cover, in (0, 1]; got {p_init!r}")


def _l2_rings(rows, cols):
    """Concentric rectangles around (rows // 2, cols // 2): a pixel at Chebyshev distance d from the centre gets
    sum_{k=d}^{K-1} 1 / (k + 1)^2, K = max(rows, cols) // 2 + 1; scaled to L2 norm 1."""
    if rows == 0:
        return np.zeros([0, cols])
    steps = max(rows // 2 + 1, cols // 2 + 1)
    distance = np.maximum(np.abs(np.arange(rows)[:, None] - rows // 2), np.abs(np.arange(cols)[None, :] - cols // 2))
    weights = 1.0 / (np.arange(steps) + 1.0) ** 2
    tail = np.cumsum(weights[::-1])[::-1]  # tail[d] = sum_{k >= d} weights[k]
    rings = tail[np.minimum(distance, steps - 1)] * (distance < steps)
    return rings / np.sqrt(np.sum(rings ** 2))


def square_l2_pattern(side):
    """The L2 attack's s x s window pattern: rings of one sign in the top s // 2 rows and of the other below,
    L2 norm 1 (the reference's `eta`, before its random transpose)."""
    top = side // 2
    pattern = np.concatenate([_l2_rings(top, side), -_l2_rings(side - top, side)], axis=0)
    return pattern / np.sqrt(np.sum(pattern ** 2))


def _l2_pattern_table(largest, canvas):
    """Patterns of sides 0 .. largest, each in the top-left corner of a canvas x canvas zero array."""
    table = np.zeros([largest + 1, canvas, canvas])
    for side in range(1, largest + 1):
        table[side, :side, :side] = square_l2_pattern(side)
    return table


def _band_table(length):
    """Row (side * length + start) is 1.0 at positions start .. start + side - 1 of `length`, else 0: the 1D
    extent of every window of side 0 .. length at every start; shape [(length + 1) * length, length]."""
    side = np.arange(length + 1)[:, None, None]
    start = np.arange(length)[None, :, None]
    position = np.arange(length)[None, None, :]
    bands = (position >= start) & (position < start + side)
    return tf.constant(bands.reshape([-1, length]), tf.float32)


def _window_mask(top, left, side, height, width, bands=None):
    """1.0 inside each example's side x side window at (top, left), else 0; shape [n, H, W, 1]. bands: the
    (row, column) `_band_table`s if already built (inside a loop: built once outside)."""
    row_bands, col_bands = bands if bands is not None else (_band_table(height), _band_table(width))
    in_rows = tf.gather(row_bands, side * height + top)
    in_cols = tf.gather(col_bands, side * width + left)
    return in_rows[:, :, None, None] * in_cols[:, None, :, None]


def _placed_pattern(table, side, top, left, transpose, height, width, window):
    """Each example's window pattern of `side` (transposed where `transpose`) placed at (top, left), cut to
    `window` (that window's `_window_mask`); [n, H, W, 1]."""
    pattern = tf.gather(table, side)
    rows = tf.clip_by_value(tf.range(height)[None] - top[:, None], 0, height - 1)
    cols = tf.clip_by_value(tf.range(width)[None] - left[:, None], 0, width - 1)

    def place(square):
        return tf.gather(tf.gather(square, rows), cols, axis=2, batch_dims=1)

    placed = tf.where(transpose[:, None, None], place(tf.transpose(pattern)), place(pattern))
    return placed[..., None] * window


def _per_channel_l2(values):
    """L2 norm over height and width for each example and channel; shape [n, 1, 1, C]."""
    return tf.sqrt(tf.reduce_sum(tf.square(values), axis=[1, 2], keepdims=True))


def linf_stripes_start(x, eps, seed):
    """The L-inf start: vertical stripes, x + eps * s with a random sign s per example, column and channel
    (constant down each column), clipped to [0, 1]."""
    shape = tf.stack([tf.shape(x)[0], 1, tf.shape(x)[2], tf.shape(x)[3]])
    signs = tf.sign(tf.random.stateless_uniform(shape, seed, -1.0, 1.0))
    return tf.clip_by_value(x + eps * signs, 0.0, 1.0)


def l2_tiles_start(x, eps, seed):
    """The L2 start: the image tiled with a 5 x 5 grid of L2 window patterns (side H // 5, each with a random
    orientation and a random sign per channel), scaled to L2 norm eps, clipped to [0, 1]."""
    height, width = x.shape[1], x.shape[2]
    side = height // _L2_INIT_TILES
    offset = (height - side * _L2_INIT_TILES) // 2
    pattern = square_l2_pattern(side)
    canvases = []
    for tile_top in range(offset, offset + side * (height // side), side):
        for tile_left in range(offset, offset + side * (width // side), side):
            canvas = np.zeros([2, height + side, width + side])
            canvas[0, tile_top:tile_top + side, tile_left:tile_left + side] = pattern
            canvas[1, tile_top:tile_top + side, tile_left:tile_left + side] = pattern.T
            canvases.append(canvas[:, :height, :width])  # tiles past the border are cut, as in the reference
    placed = tf.constant(np.stack(canvases, axis=1), tf.float32)  # [orientation, tile, H, W]
    batch, tiles, channels = tf.shape(x)[0], len(canvases), x.shape[3]
    signs = tf.sign(tf.random.stateless_uniform([batch, tiles, channels], starts.derived_seed(seed, 0), -1.0, 1.0))
    transposed = tf.cast(tf.random.stateless_uniform([batch, tiles], starts.derived_seed(seed, 1)) > 0.5, tf.float32)
    delta = (tf.einsum("thw,btc->bhwc", placed[0], signs * (1.0 - transposed)[..., None])
             + tf.einsum("thw,btc->bhwc", placed[1], signs * transposed[..., None]))
    return tf.clip_by_value(x + eps * geometry.unit_direction(delta, "l2"), 0.0, 1.0)


def linf_proposal(x, x_best, eps, side, top, left, signs):
    """The L-inf candidate: each example's window at (top, left) of side `side` moves by 2 eps * signs (one sign
    per channel, [n, C]) from the current best, then everything is projected onto the eps box and [0, 1]."""
    bands = (_band_table(x.shape[1]), _band_table(x.shape[2]))
    return _linf_windowed(x_best, *_linf_bounds(x, eps), bands, side, top, left, eps, signs)


def _linf_bounds(x, eps):
    """Where the eps box around x meets [0, 1]: clipping to these is clipping to the box, then to [0, 1]."""
    return tf.maximum(x - eps, 0.0), tf.minimum(x + eps, 1.0)


def _linf_windowed(x_best, low, high, bands, side, top, left, eps, signs):
    """`linf_proposal` from the eps-box bounds and the `_band_table`s. The window's step is one outer product (a
    batched matmul with inner size 1, so every entry is a single exact product): rows [n, H, 1] times columns x
    signs [n, 1, W * C]; a broadcast multiply of a [n, H, W, 1] mask by [n, 1, 1, C] signs costs far more."""
    height, width, channels = x_best.shape[1], x_best.shape[2], x_best.shape[3]
    in_rows = tf.gather(bands[0], side * height + top)
    in_cols = tf.gather(bands[1], side * width + left)
    across = tf.reshape(in_cols[:, :, None] * ((2.0 * eps) * signs)[:, None, :], [-1, 1, width * channels])
    step = tf.reshape(tf.matmul(in_rows[:, :, None], across), [-1, height, width, channels])
    return tf.clip_by_value(x_best + step, low, high)


def l2_proposal(x, x_best, eps, table, side, top, left, top2, left2, signs, transpose, bands=None):
    """The L2 candidate: the perturbation's mass in window 1 (at top, left) and window 2 (at top2, left2) is
    moved into window 1, as a fresh pattern (random sign per channel) plus the old content of window 1, with the
    norm that keeps the whole perturbation at eps; window 2 is cleared; the result is rescaled to norm eps and
    clipped to [0, 1]. table: `_l2_pattern_table`; signs [n, C]; transpose bool [n]; bands: see `_window_mask`."""
    height, width, channels = x.shape[1], x.shape[2], x.shape[3]
    delta = x_best - x
    window1 = _window_mask(top, left, side, height, width, bands)
    window2 = _window_mask(top2, left2, side, height, width, bands)
    both = tf.maximum(window1, window2)
    image_norm = geometry.per_example(geometry.l2_norm(delta), delta)
    fresh = _placed_pattern(table, side, top, left, transpose, height, width, window1) * signs[:, None, None, :]
    moved = fresh + delta * window1 / (_TINY + _per_channel_l2(delta * window1))
    budget = tf.maximum(tf.square(eps) - tf.square(image_norm), 0.0) / channels
    moved = moved / (_TINY + _per_channel_l2(moved)) * tf.sqrt(budget + tf.square(_per_channel_l2(delta * both)))
    delta = tf.where(window1 > 0, moved, tf.where(window2 > 0, tf.zeros_like(delta), delta))
    return tf.clip_by_value(x + eps * geometry.unit_direction(delta, "l2"), 0.0, 1.0)


def margin_and_loss(logits, labels, targets=None):
    """What Square minimises, per example. Untargeted: margin z_y - max_{j != y} z_j, and the loss is that
    margin. Targeted (as the reference): margin max_{j != t} z_j - z_t, loss the cross-entropy of the target.
    An example counts as fooled once its margin is <= 0."""
    logits = tf.cast(logits, tf.float32)
    wanted = tf.cast(tf.reshape(labels if targets is None else targets, [-1]), tf.int32)
    own = tf.gather(logits, wanted, axis=1, batch_dims=1)
    is_own = tf.one_hot(wanted, tf.shape(logits)[1], on_value=True, off_value=False)
    best_other = tf.reduce_max(tf.where(is_own, tf.constant(-np.inf, tf.float32), logits), axis=1)
    if targets is None:
        return own - best_other, own - best_other
    return best_other - own, tf.reduce_logsumexp(logits, axis=1) - own


def _gather_or_none(values, index):
    return None if values is None else tf.gather(values, index)


def _square_run(forward, x, labels, targets, previous, *, eps, norm, sizes, table, seed):
    """One restart from x, on the examples whose previous margin is > 0; returns the new (x, margin, loss) of
    every example: the run's result where it fooled the example or lowered its loss, else `previous`."""
    x_prev, margin_prev, loss_prev = previous
    height, width, channels = x.shape[1], x.shape[2], x.shape[3]
    batch = tf.shape(x)[0]
    queries, sizes_list = len(sizes), sizes
    sizes = tf.constant(sizes, tf.int32)

    def score(x_query, index):
        logits = forward(x_query)["logits"]
        return margin_and_loss(logits, tf.gather(labels, index), _gather_or_none(targets, index))

    # The start, queried only for the examples still to fool.
    start = (linf_stripes_start if norm == "linf" else l2_tiles_start)(x, eps, starts.derived_seed(seed, 0))
    index = tf.where(margin_prev > 0)[:, 0]
    start_margin, start_loss = tf.cond(  # some networks fail on an empty batch: skip the query then
        tf.size(index) > 0, lambda: score(tf.gather(start, index), index), lambda: (tf.zeros([0]), tf.zeros([0])))
    rows = index[:, None]
    x_run = tf.tensor_scatter_nd_update(x_prev, rows, tf.gather(start, index))
    margin_run = tf.tensor_scatter_nd_update(margin_prev, rows, start_margin)
    loss_run = tf.tensor_scatter_nd_update(loss_prev, rows, start_loss)

    # Loop invariants, built once: the per-iteration tables and seeds, the window bands, the L-inf bounds.
    spans = tf.constant([[height - side, width - side] for side in sizes_list], tf.float32)
    step_seeds = starts.derived_seed(seed, 1)
    step_head = starts.derived_seed(step_seeds, tf.constant(0))[0]  # derived_seed(s, i) = [f(s), i]
    draw_shape, sign_shape = tf.stack([batch, 5]), tf.stack([batch, channels])
    bands = (_band_table(height), _band_table(width))
    if norm == "linf":
        low, high = _linf_bounds(x, eps)

    def draw(iteration):
        """This iteration's window positions, signs and orientations for every example, so an example's draws
        depend on the seed, the iteration and its own index only (the same as `derived_seed`-ing per step)."""
        step_seed = tf.stack([step_head, iteration])  # = starts.derived_seed(step_seeds, iteration)
        uniform = tf.random.stateless_uniform(draw_shape, step_seed)
        span = tf.gather(spans, iteration)
        corners = tf.cast(tf.floor(uniform[:, :4] * tf.tile(span, [2])), tf.int32)
        signs = tf.sign(tf.random.stateless_uniform(sign_shape, starts.derived_seed(step_seed, 1), -1.0, 1.0))
        return corners, signs, uniform[:, 4] > 0.5

    def body(iteration, x_best, margin, loss):
        # Every example's candidate is built (cheap elementwise work), only the ones not yet fooled are queried.
        active = margin > 0
        index = tf.where(active)[:, 0]
        side = tf.gather(sizes, iteration)
        corners, signs, transpose = draw(iteration)
        top, left, top2, left2 = tf.unstack(corners, axis=1)
        if norm == "linf":
            candidate = _linf_windowed(x_best, low, high, bands, side, top, left, eps, signs)
        else:
            candidate = l2_proposal(x, x_best, eps, table, side, top, left, top2, left2, signs, transpose, bands)
        rows = index[:, None]
        new_margin, new_loss = score(tf.gather(candidate, index), index)
        new_margin = tf.tensor_scatter_nd_update(margin, rows, new_margin)  # the others keep their values
        new_loss = tf.tensor_scatter_nd_update(loss, rows, new_loss)
        improved = new_loss < loss
        accept = tf.logical_and(active, tf.logical_or(improved, new_margin <= 0))
        # Select with a per-example condition copies whole rows; tf.where would broadcast it element by element.
        x_best = tf.raw_ops.Select(condition=accept, x=candidate, y=x_best)
        return iteration + 1, x_best, tf.where(accept, new_margin, margin), tf.where(improved, new_loss, loss)

    def more(iteration, x_best, margin, loss):
        return tf.logical_and(iteration < queries, tf.reduce_any(margin > 0))

    _, x_run, margin_run, loss_run = tf.while_loop(
        more, body, (tf.constant(0), x_run, margin_run, loss_run), maximum_iterations=queries)
    take = tf.logical_and(margin_prev > 0, tf.logical_or(margin_run <= 0, loss_run < loss_prev))
    return (tf.where(geometry.per_example(take, x), x_run, x_prev), tf.where(take, margin_run, margin_prev),
            tf.where(take, loss_run, loss_prev))


def square_attack(forward, x01, labels, *, eps, norm="linf", queries=5000, p_init=0.8, restarts=1, seed=0,
                  targets=None, rescale_schedule=True):
    """The Square attack; returns adversarial images in [0, 1] within eps of x01 (no gradient).

    forward: `forward(x01) -> {"logits": [B, N], ...}` (see `model_forward`); only the logits are read.
    x01: float images [B, H, W, C] in [0, 1] (static H, W, C). labels: true labels [B]. eps: radius in [0, 1]
    units. norm: "linf" or "l2". queries: iterations per restart (each one model query for every example not
    yet fooled, plus one query for the start; one more for x01 itself). p_init: the first windows' fraction of the image. restarts:
    independent runs from x01, each only on the examples no earlier run fooled; restart r draws with
    `derived_seed(seed, r)`. targets: target classes [B] for the targeted version (stops when the target wins).
    rescale_schedule: see `square_p_schedule` (AutoAttack's standard version runs with False).
    Each example returns its point with the lowest loss, or the first that fooled it; an example already
    misclassified at x01 (targeted: already classified as its target) returns x01.
    """
    geometry.check_norm(norm)
    check_eps(eps)
    check_count("queries", queries)
    check_count("restarts", restarts)
    _check_p_init(p_init)
    x = check_images(x01)
    if x.shape.rank != 4 or None in x.shape[1:]:
        raise UsageError(f"the Square attack takes images [B, H, W, C] with known H, W, C, got shape {x.shape}")
    height, width, channels = x.shape[1], x.shape[2], x.shape[3]
    if norm == "l2" and min(height, width) < _L2_INIT_TILES:
        raise UsageError(f"the L2 Square attack tiles the image in 5 x 5 squares; it needs images at least 5 x 5, "
                         f"got {height} x {width}")
    seed = starts.as_seed(seed)
    labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
    if targets is not None:
        targets = tf.cast(tf.reshape(targets, [-1]), tf.int32)
    sizes = square_window_sizes(square_p_schedule(queries, p_init, rescale_schedule), height, width, channels, norm)
    table = tf.constant(_l2_pattern_table(min(height, width), max(height, width)), tf.float32)

    # As the reference, examples already fooled at x01 (margin <= 0) are not attacked and come back as x01.
    clean_logits = forward(x)["logits"]
    check_targets(targets, clean_logits.shape[-1])
    clean_margin, clean_loss = margin_and_loss(clean_logits, labels, targets)
    fooled = clean_margin <= 0
    unfooled = tf.fill(tf.shape(clean_margin), tf.constant(np.inf, tf.float32))
    best = (x, tf.where(fooled, clean_margin, unfooled), tf.where(fooled, clean_loss, unfooled))
    for restart in range(restarts):
        best = _square_run(forward, x, labels, targets, best, eps=eps, norm=norm, sizes=sizes, table=table,
                           seed=starts.derived_seed(seed, restart))
    return tf.stop_gradient(best[0])
