"""Square attack (Andriushchenko et al. 2020, "Square Attack: a query-efficient black-box adversarial attack via
random search"), L-inf and L2, natively in TF2: batched, seeded, graph-safe, a tf.while_loop per restart.

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


def _gather_pixels(pixels, first, grid):
    """The window pixels [n, side^2, C] of n images in `pixels` (images flattened to [.. * H * W, C]): window i
    has its corner at pixel first[i]."""
    return tf.gather(pixels, first[:, None] + grid[None, :])


def _scatter_pixels(pixels, first, grid, values):
    """`pixels` with the window pixels of `_gather_pixels(pixels, first, grid)` set to values [n, side^2, C]:
    one scatter of C-vectors (on a CPU several times cheaper than a scatter of single entries)."""
    return tf.tensor_scatter_nd_update(pixels, tf.reshape(first[:, None] + grid[None, :], [-1, 1]),
                                       tf.reshape(values, [-1, tf.shape(pixels)[1]]))


def _linf_window(x_pixels, first, grid, signs, eps):
    """The L-inf step's values in each example's window [n, side^2, C]: a window entry moves by 2 eps towards its
    channel's sign (signs [n, C] of +-1) from a point in the eps box around x, and the projection onto the box
    and [0, 1] puts it on the box's edge that way whatever it was: clip(x + eps * sign, 0, 1), bit for bit the
    bound min(x + eps, 1) or max(x - eps, 0). x_pixels: the clean images as [B * H * W, C] pixels."""
    return tf.clip_by_value(_gather_pixels(x_pixels, first, grid) + eps * signs[:, None, :], 0.0, 1.0)


def _pixels(images):
    return tf.reshape(images, [-1, images.shape[-1]])


def linf_proposal(x, x_best, eps, side, top, left, signs):
    """The L-inf candidate: each example's window at (top, left) of side `side` moves by 2 eps * signs (one sign
    per channel, [n, C]) from the current best, then everything is projected onto the eps box and [0, 1]; x_best
    must lie in that box (in the attack it always does), so only the window changes."""
    height, width = x.shape[1], x.shape[2]
    grids, _ = _window_tables([_static_side(side)], height, width, "linf")
    first = tf.range(tf.shape(x)[0]) * (height * width) + top * width + left
    values = _linf_window(_pixels(x), first, grids[0], tf.sign(tf.cast(signs, tf.float32)), eps)
    return tf.reshape(_scatter_pixels(_pixels(x_best), first, grids[0], values), tf.shape(x))


def _static_side(side):
    value = tf.get_static_value(side)
    if value is None:
        raise UsageError(f"the window side must be known when the graph is built (an int), got {side!r}")
    return int(value)


def _l2_windows(x_pixels, best_pixels, norm_squared, eps, x_first, first, shift, side, grid, fresh, signs):
    """The L2 step of n examples, on the pixels of their two windows only. The perturbation delta = best - x has its
    mass in window 1 and window 2 moved into window 1, as the fresh pattern (fresh [n, side^2], `_l2_fresh`)
    times a sign per channel (signs [n, C]) plus window 1's old content, with the per-channel norm that keeps the
    perturbation at eps (norm_squared [n]: its current squared norm); window 2 is cleared; then the reference
    rescales the whole perturbation to norm eps and clips to [0, 1].

    That rescaling is done here on the windows only: the new squared norm is ||delta||^2 - (the two windows' old
    mass) + (window 1's new mass) = ||delta||^2 + max(eps^2 - ||delta||^2, 0), which is eps^2 whenever
    ||delta|| <= eps, and a best point always has ||delta|| <= eps (a point of norm eps clipped to [0, 1]). So the
    factor eps / ||delta'|| is 1 up to rounding, and outside the windows clip(x + delta * 1) is the best point
    itself. (Where rounding put ||delta|| above eps the budget is 0 and the factor, applied to window 1, pulls
    the norm back.)

    x_pixels, best_pixels: clean and best images as pixels [.., C]; x_first, first [n, 2]: each window's corner
    pixel in them; shift [n, 2]: window 2's corner minus window 1's, in (rows, columns); side: the windows' side
    (a scalar tensor), grid [side^2]: the windows' pixel offsets from their corner. Returns the pixel indices
    into best_pixels [n 2 side^2] (window 1's, then window 2's, per example), their candidate values
    [n 2 side^2, C] (a pixel in both windows has the same value in both places), and the
    candidates' squared norms [n]."""
    n, count, channels = tf.shape(first)[0], tf.shape(grid)[0], tf.shape(signs)[1]
    indices = tf.reshape(first[:, :, None] + grid, [-1])
    old = tf.gather(best_pixels, indices)
    x_windows = tf.reshape(tf.gather(x_pixels, tf.reshape(x_first[:, :, None] + grid, [-1])), [n, 2, count, channels])
    delta = tf.reshape(old, [n, 2, count, channels]) - x_windows
    square = tf.square(delta)
    # Where the windows overlap: window 1's pixel (i, j) is window 2's (i - shift), window 2's (i, j) window 1's
    # (i + shift).
    local = tf.range(count)
    row, col = local // side, local % side
    row1, col1 = row[None, :] + shift[:, :1], col[None, :] + shift[:, 1:]  # window 2's pixels in window 1
    in1 = (row1 >= 0) & (row1 < side) & (col1 >= 0) & (col1 < side)
    row2, col2 = row[None, :] - shift[:, :1], col[None, :] - shift[:, 1:]  # window 1's pixels in window 2
    in2 = (row2 >= 0) & (row2 < side) & (col2 >= 0) & (col2 < side)
    # Per channel: window 1's squared norm, and the union's (window 2, plus window 1 outside window 2).
    window1 = tf.reduce_sum(square[:, 0], axis=1)
    union = (tf.reduce_sum(square[:, 0] * tf.cast(tf.logical_not(in2), tf.float32)[:, :, None], axis=1)
             + tf.reduce_sum(square[:, 1], axis=1))
    moved = fresh[:, :, None] * signs[:, None, :] + delta[:, 0] / (_TINY + tf.sqrt(window1))[:, None, :]
    budget = tf.maximum(tf.square(eps) - norm_squared, 0.0)[:, None] / tf.cast(channels, tf.float32)
    moved = moved * (tf.sqrt(budget + union) / (_TINY + tf.sqrt(tf.reduce_sum(tf.square(moved), axis=1))))[:, None, :]
    outside = tf.maximum(norm_squared - tf.reduce_sum(union, axis=1), 0.0)  # the squared norm off the windows
    scale = eps / (tf.sqrt(outside + tf.reduce_sum(tf.square(moved), axis=[1, 2])) + _TINY)
    new1 = tf.clip_by_value(x_windows[:, 0] + moved * scale[:, None, None], 0.0, 1.0)
    in_window1 = tf.clip_by_value(row1, 0, side - 1) * side + tf.clip_by_value(col1, 0, side - 1)
    overlap = tf.cast(in1, tf.float32)[:, :, None]  # a * 1 + b * 0 is a, bit for bit
    new2 = (tf.gather(tf.reshape(new1, [-1, channels]), in_window1 + tf.range(n)[:, None] * count) * overlap
            + x_windows[:, 1] * (1.0 - overlap))
    norm_squared = outside + tf.reduce_sum(tf.square(new1 - x_windows[:, 0]), axis=[1, 2])
    return indices, tf.reshape(tf.stack([new1, new2], axis=1), [-1, channels]), norm_squared


def l2_proposal(x, x_best, eps, side, top, left, top2, left2, signs, transpose):
    """The L2 candidate: the perturbation's mass in window 1 (at top, left) and window 2 (at top2, left2) is
    moved into window 1, as a fresh pattern (random sign per channel) plus the old content of window 1, with the
    norm that keeps the whole perturbation at eps; window 2 is cleared; the result is rescaled to norm eps and
    clipped to [0, 1] (see `_l2_windows`: x_best must be within eps of x, as in the attack). signs [n, C];
    transpose bool [n]."""
    height, width, channels = x.shape[1], x.shape[2], x.shape[3]
    side = _static_side(side)
    grids, patterns = _window_tables([side], height, width, "l2")
    start = tf.range(tf.shape(x)[0]) * (height * width)
    first = tf.stack([start + top * width + left, start + top2 * width + left2], axis=1)
    best = _pixels(x_best)
    indices, values, _ = _l2_windows(
        _pixels(x), best, tf.reduce_sum(tf.square(tf.reshape(x_best - x, [tf.shape(x)[0], -1])), axis=1), eps,
        first, first, tf.stack([top2 - top, left2 - left], axis=1), tf.constant(side), grids[0],
        _l2_fresh(patterns[0], transpose), tf.cast(signs, tf.float32))
    return tf.reshape(tf.tensor_scatter_nd_update(best, indices[:, None], values), tf.shape(x))


def _l2_fresh(patterns, transpose):
    """The fresh window pattern of each example at its window's pixels [n, side^2]: patterns [2, side^2] (a row of
    `_window_tables`' patterns, cut to the side), the second row where transpose [n] is True."""
    return tf.gather(patterns, tf.cast(transpose, tf.int32))


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


def _step_draws(seed, queries):
    """The Philox key, one counter per iteration and the algorithm of the loop's random draws: iteration i draws
    `StatelessRandomUniformV2` with counter i, whose high word is the seed's plus i, so the iterations' streams
    are disjoint; a uniform [B, K] draw gives example b the stream's entries b K .. b K + K - 1 whatever the batch
    size, so an example's draws depend on the seed, the iteration and its index only."""
    key, counter, algorithm = tf.raw_ops.StatelessRandomGetKeyCounterAlg(seed=seed)
    offsets = tf.stack([tf.zeros([queries], tf.int64), tf.range(queries, dtype=tf.int64)], axis=1)
    return key, counter[None, :] + tf.cast(offsets, tf.uint64), algorithm


def _square_run(forward, x, labels, targets, previous, *, eps, norm, sizes, seed):
    """One restart from x, on the examples whose previous margin is > 0; returns the new (x, margin, loss) of
    every example: the run's result where it fooled the example or lowered its loss, else `previous`.

    Each iteration queries only the examples not yet fooled, kept packed together (see the loop below), and
    computes only the window's pixels (L-inf) or the two windows' pixels (L2)."""
    x_prev, margin_prev, loss_prev = previous
    height, width, channels = x.shape[1], x.shape[2], x.shape[3]
    image_size = height * width * channels
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

    # Loop invariants, built once. Iteration i draws uniforms u per example: the window corner(s) are
    # floor(u * (H - s)) and floor(u * (W - s)), then (L2) the pattern's orientation (u > 0.5), then one sign per
    # channel (u > 0.5 is +). The window's pixels and (L2) its patterns come from tables with a row per side.
    key, counters, algorithm = _step_draws(starts.derived_seed(seed, 1), queries)
    corners = 2 if norm == "linf" else 4
    draw_shape = tf.stack([batch, corners + (0 if norm == "linf" else 1) + channels])
    spans = tf.constant([[height - side, width - side] * (corners // 2) for side in sizes_list], tf.float32)
    to_pixel = tf.constant([width, 1] * (corners // 2), tf.int32)  # (top, left) -> pixel index
    sides = sorted(set(sizes_list))
    slots = tf.constant([sides.index(side) for side in sizes_list], tf.int32)
    counts = tf.constant([side * side for side in sizes_list], tf.int32)
    grids, patterns = _window_tables(sides, height, width, norm)
    pixels_per_image = height * width
    x_rows = tf.reshape(x, [-1, image_size])
    x_pixels = _pixels(x)

    # The loop keeps the examples still to fool packed together (rows 0 .. n - 1 of "held"; `chosen` says which
    # examples they are), so a query gathers no images. It holds each one's current best as pixels [n H W, C] (L2:
    # and its perturbation's squared norm): a candidate is that best with the window's pixels (L2: both windows')
    # overwritten, and only the accepted candidates replace their images. The inner loop runs until an example
    # is fooled; the outer one then writes the pack back and packs the examples still to fool.
    def hold(chosen, best_rows):
        best = tf.gather(best_rows, chosen)
        if norm == "linf":
            return (tf.reshape(best, [-1, channels]),)
        return tf.reshape(best, [-1, channels]), tf.reduce_sum(tf.square(best - tf.gather(x_rows, chosen)), axis=1)

    def inner_run(iteration, chosen, held, margin, loss):
        local = tf.range(tf.shape(chosen)[0]) * pixels_per_image  # each held image's first pixel among the held
        labels_held, targets_held = tf.gather(labels, chosen), _gather_or_none(targets, chosen)

        def body(iteration, held, margin, loss):
            uniform = tf.gather(tf.raw_ops.StatelessRandomUniformV2(
                shape=draw_shape, key=key, alg=algorithm, counter=tf.gather(counters, iteration)), chosen)
            # Casting truncates, which is floor for these non-negative products.
            rows_cols = tf.cast(uniform[:, :corners] * tf.gather(spans, iteration), tf.int32)
            corner = rows_cols * to_pixel
            count, slot = tf.gather(counts, iteration), tf.gather(slots, iteration)
            grid = tf.gather(grids, slot)[:count]
            signs = tf.where(uniform[:, corners + corners // 4:] > 0.5, 1.0, -1.0)  # [n, C]
            if norm == "linf":
                (best,) = held
                corner = corner[:, 0] + corner[:, 1]
                values = _linf_window(x_pixels, chosen * pixels_per_image + corner, grid, signs, eps)
                candidates = _scatter_pixels(best, local + corner, grid, values)
            else:
                best, norm_squared = held
                fresh = _l2_fresh(tf.gather(patterns, slot)[:, :count], uniform[:, corners] > 0.5)
                corner = tf.stack([corner[:, 0] + corner[:, 1], corner[:, 2] + corner[:, 3]], axis=1)
                indices, values, new_squared = _l2_windows(
                    x_pixels, best, norm_squared, eps, (chosen * pixels_per_image)[:, None] + corner,
                    local[:, None] + corner, rows_cols[:, 2:] - rows_cols[:, :2], tf.gather(sizes, iteration), grid,
                    fresh, signs)
                candidates = tf.tensor_scatter_nd_update(best, indices[:, None], values)
            new_margin, new_loss = margin_and_loss(
                forward(tf.reshape(candidates, [-1, height, width, channels]))["logits"], labels_held, targets_held)
            # Accept a lower loss or a fooling point; untargeted, the loss is the margin, so a lower margin.
            if targets is None:
                accept = new_margin < margin
                margin = loss = tf.minimum(new_margin, margin)
            else:
                improved = new_loss < loss
                accept = tf.logical_or(improved, new_margin <= 0)
                margin, loss = tf.where(accept, new_margin, margin), tf.where(improved, new_loss, loss)
            # The accepted candidates replace their images: a scatter of whole images, which pays per index
            # (there are few) where a Select with a per-example condition pays per entry.
            accepted = tf.where(accept)
            best = tf.reshape(tf.tensor_scatter_nd_update(
                tf.reshape(best, [-1, image_size]), accepted,
                tf.gather_nd(tf.reshape(candidates, [-1, image_size]), accepted)), [-1, channels])
            held = (best,) if norm == "linf" else (best, tf.where(accept, new_squared, norm_squared))
            return iteration + 1, held, margin, loss

        def more(iteration, held, margin, loss):
            return tf.logical_and(iteration < queries, tf.reduce_all(margin > 0))

        return tf.while_loop(more, body, (iteration, held, margin, loss))

    def outer_body(iteration, chosen, results):
        best_rows, margin_all, loss_all = results
        iteration, held, margin, loss = inner_run(iteration, chosen, hold(chosen, best_rows),
                                                  tf.gather(margin_all, chosen), tf.gather(loss_all, chosen))
        rows = chosen[:, None]
        held_best = tf.reshape(held[0], [-1, image_size])
        results = (tf.tensor_scatter_nd_update(best_rows, rows, held_best),
                   tf.tensor_scatter_nd_update(margin_all, rows, margin),
                   tf.tensor_scatter_nd_update(loss_all, rows, loss))
        return iteration, tf.gather(chosen, tf.where(margin > 0)[:, 0]), results

    def outer_more(iteration, chosen, results):
        return tf.logical_and(iteration < queries, tf.size(chosen) > 0)

    results = (tf.reshape(x_run, [-1, image_size]), margin_run, loss_run)
    _, _, (x_run, margin_run, loss_run) = tf.while_loop(
        outer_more, outer_body, (tf.constant(0), tf.cast(tf.where(margin_run > 0)[:, 0], tf.int32), results),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None]), tuple(r.shape for r in results)))
    x_run = tf.reshape(x_run, tf.shape(x))
    take = tf.logical_and(margin_prev > 0, tf.logical_or(margin_run <= 0, loss_run < loss_prev))
    return (tf.where(geometry.per_example(take, x), x_run, x_prev), tf.where(take, margin_run, margin_prev),
            tf.where(take, loss_run, loss_prev))


def _window_tables(sides, height, width, norm):
    """For each window side s in `sides`: the offsets of a window's pixels from its top-left pixel in an image
    flattened to [H * W, C] pixels, row by row, and (L2) `square_l2_pattern(s)` at those pixels, upright and
    transposed; padded to the largest side: int [len(sides), S^2] and float [len(sides), 2, S^2] (None for
    L-inf)."""
    largest = max(sides)
    grids = np.zeros([len(sides), largest * largest], np.int32)
    fresh = np.zeros([len(sides), 2, largest * largest], np.float32)
    for slot, side in enumerate(sides):
        rows, cols = np.repeat(np.arange(side), side), np.tile(np.arange(side), side)
        grids[slot, :side * side] = rows * width + cols
        if norm == "l2":
            pattern = square_l2_pattern(side)
            fresh[slot, 0, :side * side], fresh[slot, 1, :side * side] = pattern[rows, cols], pattern.T[rows, cols]
    return tf.constant(grids), (tf.constant(fresh) if norm == "l2" else None)


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

    # As the reference, examples already fooled at x01 (margin <= 0) are not attacked and come back as x01.
    clean_logits = forward(x)["logits"]
    check_targets(targets, clean_logits.shape[-1])
    clean_margin, clean_loss = margin_and_loss(clean_logits, labels, targets)
    fooled = clean_margin <= 0
    unfooled = tf.fill(tf.shape(clean_margin), tf.constant(np.inf, tf.float32))
    best = (x, tf.where(fooled, clean_margin, unfooled), tf.where(fooled, clean_loss, unfooled))
    for restart in range(restarts):
        best = _square_run(forward, x, labels, targets, best, eps=eps, norm=norm, sizes=sizes,
                           seed=starts.derived_seed(seed, restart))
    return tf.stop_gradient(best[0])
