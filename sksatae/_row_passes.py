"""The single-sample kernel's three passes over the weights, written as vector code.

At a batch size of 1 each SGD step makes three passes over the weights' rows
(``_kernels.sgd_epoch_single_sample``): the encoder's update and product, the
decoder's share of the residual, and the decoder's gradient and update. At
144 features and 100 units a row takes about 8 ns, so the work around each
row's loop counts. Written as numba loops inside the epoch, the passes took
1.2 to 1.25 times as long as the same passes written by hand in C with AVX-512
intrinsics: between rows the compiler reloaded spilled values, repeated its
overlap checks between the arrays and ran the last 16 features of each row
through a narrower loop of their own (``docs/performance_log.md``).

Each pass here is an intrinsic that emits its own LLVM IR: a loop over the
rows and, in each row, a loop over 64-byte vectors (8 float64 or 16 float32
values) with two independent sums, one more vector where one is left, then
single values. LLVM maps the vectors to the machine's registers, whatever
their width, and ``llvm.fmuladd`` to a fused multiply-add where there is one.
The loops over features carry metadata that keeps LLVM from unrolling or
vectorising them again. Sums are therefore taken in a fixed order: two interleaved partial
sums of vectors, then across the lanes.

Arrays must be C-contiguous: the loops step through memory one value at a
time. With numba's JIT disabled, the plain Python versions below run instead.
"""

import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import jit

VECTOR_BYTES = 64
_I32 = ir.IntType(32)


def _encoder_pass_python(encoder, encoder_bias, pending, waiting, previous, sample, cross,
                         codes, unit, end_unit):
    for k in range(unit, end_unit):
        change = pending[k] if waiting else 0.0
        z = 0.0
        for j in range(encoder.shape[1]):
            weight = encoder[k, j]
            if change != 0.0:
                encoder[k, j] = weight - change * previous[j]
            z += weight * sample[j]
        if change != 0.0:
            z -= change * cross
        codes[k] = z + encoder_bias[k]


def _residual_pass_python(decoder, codes, share, unit, end_unit):
    for k in range(unit, end_unit):
        if codes[k] != 0.0:
            for j in range(decoder.shape[1]):
                share[j] += codes[k] * decoder[k, j]


def _decoder_pass_python(decoder, encoder_bias, penalty_grads, codes, slopes, residual, sample,
                         pending, step, tied, normalize, unit, end_unit):
    for k in range(unit, end_unit):
        scale = step * codes[k]
        back = 0.0
        for j in range(decoder.shape[1]):
            weight = decoder[k, j]
            back += weight * residual[j]
            if scale != 0.0:
                decoder[k, j] = weight - scale * residual[j]
        change = step * (penalty_grads[k] + (slopes[k] * back if slopes[k] != 0.0 else 0.0))
        encoder_bias[k] -= change
        if tied and normalize and change != 0.0:
            for j in range(decoder.shape[1]):
                decoder[k, j] -= change * sample[j]
            change = 0.0
        pending[k] = change
        if normalize:
            norm = 0.0
            for j in range(decoder.shape[1]):
                norm += decoder[k, j] * decoder[k, j]
            if 0.0 < norm < float("inf"):
                factor = 1.0 / norm ** 0.5
                for j in range(decoder.shape[1]):
                    decoder[k, j] *= factor


# ------------------------------------------------------------------ IR helpers


def _one_float_dtype(matrix, vectors):
    """Whether ``matrix`` is a C-contiguous 2-D float array and ``vectors`` are
    C-contiguous 1-D arrays of its dtype: what the passes' loops step through."""
    def contiguous(array, ndim):
        return isinstance(array, types.Array) and array.ndim == ndim and array.layout == "C"
    return (contiguous(matrix, 2) and matrix.dtype in (types.float32, types.float64)
            and all(contiguous(vector, 1) and vector.dtype == matrix.dtype
                    for vector in vectors))


class _Emitter:
    """IR for loops over one dtype's values, in one function being built."""

    def __init__(self, context, builder, dtype):
        self.builder = builder
        self.element = context.get_value_type(dtype)
        self.itemsize = context.get_abi_sizeof(self.element)
        self.width = VECTOR_BYTES // self.itemsize
        self.vector = ir.VectorType(self.element, self.width)
        self.intp = context.get_value_type(types.intp)
        module = builder.module
        unroll = module.add_metadata([ir.MetaDataString(module, "llvm.loop.unroll.disable")])
        vectorize = module.add_metadata([ir.MetaDataString(module, "llvm.loop.vectorize.enable"),
                                         ir.Constant(ir.IntType(1), 0)])
        self.loop_id = module.add_metadata([unroll, vectorize])
        self.loop_id.operands = (self.loop_id, unroll, vectorize)  # a loop ID names itself

    def constant(self, value):
        return ir.Constant(self.intp, value)

    def zero(self, lanes=1):
        single = ir.Constant(self.element, 0.0)
        return single if lanes == 1 else ir.Constant(ir.VectorType(self.element, lanes),
                                                     [single] * lanes)

    def loop(self, start, stop, step, body, hint=True):
        """``for i in range(start, stop, step): body(i)`` (``step`` > 0)."""
        builder = self.builder
        before = builder.basic_block
        check = builder.append_basic_block("loop.check")
        inside = builder.append_basic_block("loop.body")
        after = builder.append_basic_block("loop.end")
        builder.branch(check)
        builder.position_at_end(check)
        index = builder.phi(self.intp)
        index.add_incoming(start, before)
        builder.cbranch(builder.icmp_signed("<", index, stop), inside, after)
        builder.position_at_end(inside)
        body(index)
        following = builder.add(index, step)
        back = builder.branch(check)
        if hint:
            back.set_metadata("llvm.loop", self.loop_id)
        index.add_incoming(following, builder.basic_block)
        builder.position_at_end(after)

    def fmuladd(self, a, b, c):
        kind = a.type
        scalar = kind.element if isinstance(kind, ir.VectorType) else kind
        suffix = "f64" if isinstance(scalar, ir.DoubleType) else "f32"
        if isinstance(kind, ir.VectorType):
            suffix = "v%d%s" % (kind.count, suffix)
        function = cgutils.get_or_insert_function(
            self.builder.module, ir.FunctionType(kind, [kind] * 3), "llvm.fmuladd." + suffix)
        return self.builder.call(function, [a, b, c])

    def splat(self, scalar):
        builder, kind = self.builder, self.vector
        single = builder.insert_element(ir.Constant(kind, ir.Undefined), scalar, _I32(0))
        everywhere = ir.Constant(ir.VectorType(_I32, self.width), [0] * self.width)
        return builder.shuffle_vector(single, ir.Constant(kind, ir.Undefined), everywhere)

    def lane_sum(self, vector):
        builder, width = self.builder, self.width
        while width > 1:
            half = width // 2
            low = builder.shuffle_vector(vector, vector,
                                         ir.Constant(ir.VectorType(_I32, half), list(range(half))))
            high = builder.shuffle_vector(
                vector, vector, ir.Constant(ir.VectorType(_I32, half), list(range(half, width))))
            vector, width = builder.fadd(low, high), half
        return builder.extract_element(vector, _I32(0))

    def load(self, pointer, index, lanes):
        address = self.builder.gep(pointer, [index])
        if lanes == 1:
            return self.builder.load(address)
        kind = ir.VectorType(self.element, lanes).as_pointer()
        return self.builder.load(self.builder.bitcast(address, kind), align=self.itemsize)

    def store(self, value, pointer, index, lanes):
        address = self.builder.gep(pointer, [index])
        if lanes == 1:
            self.builder.store(value, address)
        else:
            kind = ir.VectorType(self.element, lanes).as_pointer()
            self.builder.store(value, self.builder.bitcast(address, kind), align=self.itemsize)

    def features(self, n, step, n_sums):
        """Loop over ``n`` features: ``step(index, lanes, sums) -> sums`` on two
        vectors at a time (two sets of sums), then one vector, then single values;
        returns each sum over all features."""
        builder, width = self.builder, self.width
        vector_sums = [[cgutils.alloca_once(builder, self.vector) for _ in range(2)]
                       for _ in range(n_sums)]
        single_sums = [cgutils.alloca_once(builder, self.element) for _ in range(n_sums)]
        for pair, single in zip(vector_sums, single_sums):
            builder.store(self.zero(width), pair[0])
            builder.store(self.zero(width), pair[1])
            builder.store(self.zero(), single)

        def run(index, lanes, slots):
            new = step(index, lanes, [builder.load(slot) for slot in slots])
            for slot, value in zip(slots, new):
                builder.store(value, slot)

        paired_end = builder.and_(n, self.constant(-2 * width))
        vector_end = builder.and_(n, self.constant(-width))

        def two(index):
            run(index, width, [pair[0] for pair in vector_sums])
            run(builder.add(index, self.constant(width)), width, [pair[1] for pair in vector_sums])
        self.loop(self.constant(0), paired_end, self.constant(2 * width), two)
        with builder.if_then(builder.icmp_signed("<", paired_end, vector_end)):
            run(paired_end, width, [pair[0] for pair in vector_sums])
        self.loop(vector_end, n, self.constant(1),
                  lambda index: run(index, 1, single_sums))
        return [builder.fadd(self.lane_sum(builder.fadd(builder.load(pair[0]),
                                                        builder.load(pair[1]))),
                             builder.load(single))
                for pair, single in zip(vector_sums, single_sums)]

    def row(self, array, index):
        """Pointer to the first value of row ``index`` of a C-contiguous 2-D array."""
        builder = self.builder
        stride = cgutils.unpack_tuple(builder, array.strides)[0]
        start = builder.bitcast(array.data, ir.IntType(8).as_pointer())
        return builder.bitcast(builder.gep(start, [builder.mul(index, stride)]), array.data.type)

    def value(self, array, index):
        return self.builder.load(self.builder.gep(array.data, [index]))

    def nonzero(self, value):
        return self.builder.fcmp_unordered("!=", value, self.zero())  # NaN counts

    def dot(self, n, left, right):
        """``left[:n] . right[:n]`` (pointers to values)."""
        def step(j, lanes, sums):
            return [self.fmuladd(self.load(left, j, lanes), self.load(right, j, lanes), sums[0])]
        return self.features(n, step, 1)[0]

    def add_scaled(self, n, target, by, source):
        """``target[:n] += by * source[:n]`` (pointers to values)."""
        wide = self.splat(by)

        def step(j, lanes, sums):
            self.store(self.fmuladd(wide if lanes > 1 else by, self.load(source, j, lanes),
                                    self.load(target, j, lanes)), target, j, lanes)
            return []
        self.features(n, step, 0)

    def over_units(self, context, signature, args, first, body):
        """``body(k)`` for each unit ``k`` from ``args[first]`` to ``args[first + 1]``."""
        start, end = (context.cast(self.builder, args[i], signature.args[i], types.intp)
                      for i in (first, first + 1))
        self.loop(start, end, self.constant(1), body, hint=False)
        return context.get_dummy_value()


def _arrays(context, builder, signature, args, count):
    return [context.make_array(kind)(context, builder, value)
            for kind, value in zip(signature.args[:count], args[:count])]


# ------------------------------------------------------------------ the passes


@intrinsic
def _encoder_pass(typingctx, encoder, encoder_bias, pending, waiting, previous, sample, cross,
                 codes, unit, end_unit):
    """For each unit ``k`` from ``unit`` to ``end_unit``: ``change = pending[k]``
    if ``waiting`` (else 0), ``codes[k] = encoder[k] . sample - change * cross +
    encoder_bias[k]`` with ``encoder[k]`` as it was, and ``encoder[k] -= change *
    previous``. ``cross`` is ``previous . sample``."""
    if not _one_float_dtype(encoder, (encoder_bias, pending, previous, sample, codes)):
        return None
    dtype = encoder.dtype
    signature = types.void(encoder, encoder_bias, pending, waiting, previous, sample, cross, codes,
                           unit, end_unit)

    def codegen(context, builder, signature, args):
        emit = _Emitter(context, builder, dtype)
        weights, bias, waiting_changes = _arrays(context, builder, signature, args, 3)
        old, new = (context.make_array(signature.args[i])(context, builder, args[i])
                    for i in (4, 5))
        out = context.make_array(signature.args[7])(context, builder, args[7])
        waiting_now = context.cast(builder, args[3], signature.args[3], types.boolean)
        cross_value = context.cast(builder, args[6], signature.args[6], dtype)
        n = cgutils.unpack_tuple(builder, weights.shape)[1]

        def unit_row(k):
            row = emit.row(weights, k)
            change = builder.select(waiting_now, emit.value(waiting_changes, k), emit.zero())
            z = cgutils.alloca_once(builder, emit.element)
            with builder.if_else(emit.nonzero(change)) as (update, product):
                with update:
                    lessened = builder.fneg(change)
                    wide = emit.splat(lessened)

                    def step(j, lanes, sums):
                        by = wide if lanes > 1 else lessened
                        weight = emit.load(row, j, lanes)
                        emit.store(emit.fmuladd(by, emit.load(old.data, j, lanes), weight),
                                   row, j, lanes)
                        return [emit.fmuladd(weight, emit.load(new.data, j, lanes), sums[0])]
                    total = emit.features(n, step, 1)[0]
                    builder.store(emit.fmuladd(lessened, cross_value, total), z)
                with product:
                    builder.store(emit.dot(n, row, new.data), z)
            builder.store(builder.fadd(builder.load(z), emit.value(bias, k)),
                          builder.gep(out.data, [k]))
        return emit.over_units(context, signature, args, 8, unit_row)

    return signature, codegen


@intrinsic
def _residual_pass(typingctx, decoder, codes, share, unit, end_unit):
    """``share += codes[k] * decoder[k]`` for each unit ``k`` from ``unit`` to
    ``end_unit`` whose code is not 0."""
    if not _one_float_dtype(decoder, (codes, share)):
        return None
    dtype = decoder.dtype
    signature = types.void(decoder, codes, share, unit, end_unit)

    def codegen(context, builder, signature, args):
        emit = _Emitter(context, builder, dtype)
        weights, code_values, out = _arrays(context, builder, signature, args, 3)
        n = cgutils.unpack_tuple(builder, weights.shape)[1]

        def unit_row(k):
            code = emit.value(code_values, k)
            with builder.if_then(emit.nonzero(code)):
                emit.add_scaled(n, out.data, code, emit.row(weights, k))
        return emit.over_units(context, signature, args, 3, unit_row)

    return signature, codegen


@intrinsic
def _decoder_pass(typingctx, decoder, encoder_bias, penalty_grads, codes, slopes, residual, sample,
                  pending, step, tied, normalize, unit, end_unit):
    """For each unit ``k`` from ``unit`` to ``end_unit``: ``dL/dz = penalty_grads[k]
    + slopes[k] * (decoder[k] . residual)`` with ``decoder[k]`` as it was,
    ``decoder[k] -= step * codes[k] * residual``, and ``change = step * dL/dz``,
    taken off ``encoder_bias[k]`` and kept in ``pending[k]`` for the encoder's
    next pass. If ``normalize``, the row is then scaled to unit norm (left as it
    is where its sum of squares is 0 or overflows), and with ``tied`` weights
    the encoder's update (``- change * sample``) is made first and nothing is
    kept. Rows of units with no code and no slope are read only to re-project."""
    arrays = (encoder_bias, penalty_grads, codes, slopes, residual, sample, pending)
    if not _one_float_dtype(decoder, arrays):
        return None
    dtype = decoder.dtype
    signature = types.void(decoder, *arrays, step, tied, normalize, unit, end_unit)

    def codegen(context, builder, signature, args):
        emit = _Emitter(context, builder, dtype)
        weights, bias, penalties, code_values, slope_values, error, visible, changes = _arrays(
            context, builder, signature, args, 8)
        rate = context.cast(builder, args[8], signature.args[8], dtype)
        tied_now, normalize_now = (context.cast(builder, args[i], signature.args[i],
                                                types.boolean) for i in (9, 10))
        n = cgutils.unpack_tuple(builder, weights.shape)[1]

        def unit_row(k):
            row = emit.row(weights, k)
            grad = cgutils.alloca_once_value(builder, emit.value(penalties, k))
            slope = emit.value(slope_values, k)
            scale = builder.fmul(rate, emit.value(code_values, k))
            lessened = builder.fneg(scale)
            wide = emit.splat(lessened)
            back = cgutils.alloca_once(builder, emit.element)  # dL/dh
            with builder.if_else(emit.nonzero(slope)) as (backward, update_only):
                with backward:
                    with builder.if_else(emit.nonzero(scale)) as (update, read_only):
                        with update:
                            def step(j, lanes, sums):
                                weight = emit.load(row, j, lanes)
                                value = emit.load(error.data, j, lanes)
                                emit.store(emit.fmuladd(wide if lanes > 1 else lessened, value,
                                                        weight), row, j, lanes)
                                return [emit.fmuladd(weight, value, sums[0])]
                            builder.store(emit.features(n, step, 1)[0], back)
                        with read_only:
                            builder.store(emit.dot(n, row, error.data), back)
                    builder.store(emit.fmuladd(slope, builder.load(back), builder.load(grad)),
                                  grad)
                with update_only:
                    with builder.if_then(emit.nonzero(scale)):
                        emit.add_scaled(n, row, lessened, error.data)
            change = builder.fmul(rate, builder.load(grad))
            bias_address = builder.gep(bias.data, [k])
            builder.store(builder.fsub(builder.load(bias_address), change), bias_address)
            kept = cgutils.alloca_once_value(builder, change)
            first = builder.and_(builder.and_(tied_now, normalize_now), emit.nonzero(change))
            with builder.if_then(first):
                emit.add_scaled(n, row, builder.fneg(change), visible.data)
                builder.store(emit.zero(), kept)
            builder.store(builder.load(kept), builder.gep(changes.data, [k]))
            with builder.if_then(normalize_now):
                def squares(j, lanes, sums):
                    value = emit.load(row, j, lanes)
                    return [emit.fmuladd(value, value, sums[0])]
                norm = emit.features(n, squares, 1)[0]
                finite = ir.Constant(emit.element, float("inf"))
                usable = builder.and_(builder.fcmp_ordered("<", emit.zero(), norm),
                                      builder.fcmp_ordered("<", norm, finite))
                with builder.if_then(usable):
                    root = builder.call(cgutils.get_or_insert_function(
                        builder.module, ir.FunctionType(emit.element, [emit.element]),
                        "llvm.sqrt." + ("f64" if emit.itemsize == 8 else "f32")), [norm])
                    factor = builder.fdiv(ir.Constant(emit.element, 1.0), root)
                    wide_factor = emit.splat(factor)

                    def rescale(j, lanes, sums):
                        emit.store(builder.fmul(wide_factor if lanes > 1 else factor,
                                                emit.load(row, j, lanes)), row, j, lanes)
                        return []
                    emit.features(n, rescale, 0)
        return emit.over_units(context, signature, args, 11, unit_row)

    return signature, codegen


if numba.config.DISABLE_JIT:
    _encoder_pass, _residual_pass, _decoder_pass = (  # noqa: F811
        _encoder_pass_python, _residual_pass_python, _decoder_pass_python)


# Each pass is a compiled function of its own, which the epoch calls: the
# epoch's many live values then take no registers from the rows' loops. With
# the passes written into the epoch, a float64 epoch at 144 x 100 took 1.03 to
# 1.04 times as long. LLVM still inlines the encoder's pass, the smallest;
# kept out of line too ("noinline" on all three), the epoch took 1.02 to 1.11
# times as long.


@jit
def encoder_pass(encoder, encoder_bias, pending, waiting, previous, sample, cross, codes, unit,
                 end_unit):
    _encoder_pass(encoder, encoder_bias, pending, waiting, previous, sample, cross, codes, unit,
                  end_unit)


@jit
def residual_pass(decoder, codes, share, unit, end_unit):
    _residual_pass(decoder, codes, share, unit, end_unit)


@jit
def decoder_pass(decoder, encoder_bias, penalty_grads, codes, slopes, residual, sample, pending,
                 step, tied, normalize, unit, end_unit):
    _decoder_pass(decoder, encoder_bias, penalty_grads, codes, slopes, residual, sample, pending,
                  step, tied, normalize, unit, end_unit)
