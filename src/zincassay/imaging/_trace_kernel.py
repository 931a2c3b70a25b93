"""Compiled frame loop of :func:`zincassay.imaging.traces.extract_traces` (numba).

Imported on first use, so that importing the package does not load numba; compiled on the first
call for each pixel type (~0.85 s) and cached on disk (``cache=True``: later processes load it in
~0.25 s, after ~0.15 s to import numba).
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def _prefetch(typingctx, array, index):  # pragma: no cover - compiled
    """Ask the CPU to load the cache line of ``array[index]`` (LLVM's ``prefetch``: a read, kept in
    every cache level). Unlike a load it never waits for memory; invalid addresses are ignored."""
    sig = types.void(array, index)

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        byte_ptr = ir.IntType(8).as_pointer()
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_ptr] + [ir.IntType(32)] * 3), "llvm.prefetch")
        i32 = ir.IntType(32)
        builder.call(fn, [builder.bitcast(builder.gep(data, [args[1]]), byte_ptr), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True, nogil=True)
def measure_frames(stack, frame_of, phase_of, offset_of, order, pattern_weights, pattern_of, base, base_of, delta,
                   indptr, n_parts, cell_of_part, threshold, weight, partial, saturated):  # pragma: no cover - compiled
    """Weighted sums of pixels over the rows of a CSR layout for each measured frame, and saturated
    pairs per cell.

    Parameters
    ----------
    stack : ndarray (T, Y * X)
        Frames (any integer or float type, native byte order).
    frame_of, phase_of, offset_of : ndarray (F,) int
        Per measured frame ``j``: its frame in ``stack``, its phase (row of ``pattern_weights``)
        and its whole-pixel offset (index into ``base_of`` and ``delta``).
    order : ndarray (F,) int
        Order in which the measured frames are taken (by phase: the weights change per phase).
    pattern_weights : ndarray (Q, M) float
        Each membership pattern's weight per phase; its type is that of the sums.
    pattern_of : ndarray (P,) int
        Each pair's pattern: ``weight[:P]`` is set to ``pattern_weights[q, pattern_of]`` when the
        phase changes; ``weight[P:]`` (background pixels) stays 1.
    base : ndarray (B, K) int32
        Flat pixel positions of the K entries (``base[0]``: the reference grid; others: clamped
        positions for offsets at the edge); entry ``k`` of frame ``j`` reads pixel
        ``base[base_of[o], k] + delta[o]``, ``o = offset_of[j]``.
    base_of, delta : ndarray (n_offsets,) int
    indptr : ndarray (R + 1,) unsigned int
        Row ``r`` is entries ``indptr[r]:indptr[r + 1]`` (unsigned: numba indexes with it without a
        negative-index check).
    n_parts : int
        Rows ``< n_parts`` are a cell's pairs (``cell_of_part``: column of ``saturated``).
    threshold : float
        Pairs with a pixel ``>= threshold`` (compared in float64) and a weight ``>= 0.5`` count
        as saturated.
    weight : ndarray (K,) float
        Work array, 1 after P.
    partial : ndarray (F, R) float, output
        Sums are added to it exactly as scipy's ``csr_matvec``: one running sum per row in the
        weights' type, starting from ``partial[j, r]``, products added in index order.
    saturated : ndarray (T, N) int64, output
        Saturated pairs are added per frame (of ``stack``) and cell.
    """
    n_pairs = len(pattern_of)
    n_rows = len(indptr) - 1
    n_px = stack.shape[1]
    line = max(64 // stack.itemsize, 1)  # pixels per 64-byte cache line
    # the next frame is prefetched a slice per row while this one is summed: its pixels are in
    # cache when they are gathered (without it, 3x slower: waiting for memory at every line)
    ahead = -(-n_px // line // max(n_rows, 1)) * line
    current = -1
    for i in range(len(order)):
        j = order[i]
        q = phase_of[j]
        if q != current:
            current = q
            for k in range(n_pairs):
                weight[k] = pattern_weights[q, pattern_of[k]]
        t = frame_of[j]
        frame = stack[t]
        coming = stack[frame_of[order[min(i + 1, len(order) - 1)]]]
        pos = base[base_of[offset_of[j]]]
        d = delta[offset_of[j]]
        out = partial[j]
        for r in range(n_rows):
            for p in range(r * ahead, min((r + 1) * ahead, n_px), line):
                _prefetch(coming, p)
            s = out[r]
            top = frame.dtype.type(0)  # >= the row's largest pixel (NaN ignored)
            for k in range(indptr[r], indptr[r + 1]):
                v = frame[np.uint64(pos[k] + d)]
                s += weight[k] * weight.dtype.type(v)  # (numba would take float32 * uint16 in float64)
                if v > top:
                    top = v
            out[r] = s
            if r < n_parts and np.float64(top) >= threshold:  # rare: count the row's saturated pairs
                over = 0
                for k in range(indptr[r], indptr[r + 1]):
                    if np.float64(frame[np.uint64(pos[k] + d)]) >= threshold and weight[k] >= 0.5:
                        over += 1
                saturated[t, cell_of_part[r]] += over
