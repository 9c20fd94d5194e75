# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Buffer-protocol layer over the C audio level kernels (level.c).

This module only checks what the buffer holds and hands plain pointers to C, which runs without
the GIL. Public names and docs live in rtcroom.audiolevel.
"""
import sys

from cpython.array cimport array, clone
from cpython.buffer cimport (PyBUF_RECORDS_RO, PyBuffer_IsContiguous, PyBuffer_Release,
                             PyObject_GetBuffer)
from libc.stddef cimport ptrdiff_t
from libc.stdint cimport int32_t


cdef extern from "audio/level.h" nogil:
    size_t rtc_audio_levels(const char *buf, int ndim, const ptrdiff_t *shape,
                            const ptrdiff_t *strides, size_t frame_len,
                            int32_t *peak_out, int32_t *dbov_out)


cdef array _INT32 = array("i")
cdef const char *_BYTES = "B"
cdef bint _LITTLE_ENDIAN = sys.byteorder == "little"

cdef enum Kind:
    PEAK = 1
    DBOV = 2


cdef struct Samples:
    const char *buf
    int ndim
    const Py_ssize_t *shape
    const Py_ssize_t *strides
    Py_ssize_t count
    # A byte buffer is read as one run of int16; these hold its shape and stride.
    Py_ssize_t flat_shape
    Py_ssize_t flat_stride


cdef int _open(object samples, Py_buffer *view, Samples *s, str caller) except -1:
    try:
        PyObject_GetBuffer(samples, view, PyBUF_RECORDS_RO)
    except (TypeError, BufferError):
        raise TypeError(
            f"{caller}() expects int16 PCM samples with the buffer protocol (a numpy int16 "
            f"array, bytes, bytearray, memoryview or PyAV audio plane), "
            f"not {type(samples).__name__}") from None
    try:
        _classify(view, s, caller)
    except BaseException:
        PyBuffer_Release(view)
        raise
    return 0


cdef const char *_skip_native_order(const char *f):
    # '@' and '=' mean native order, and '<' is native on little-endian hosts.
    while f[0] == b"@" or f[0] == b"=" or (f[0] == b"<" and _LITTLE_ENDIAN):
        f += 1
    return f


cdef int _classify(Py_buffer *view, Samples *s, str caller) except -1:
    # The common cases are decided on the C string, without building Python objects: this runs
    # once per 20 ms frame per track.
    # A NULL format means unsigned bytes ("B"), by the buffer protocol.
    cdef const char *f = _skip_native_order(view.format if view.format != NULL else _BYTES)
    cdef Py_ssize_t i
    if f[0] == b"h" and f[1] == 0:
        s.buf = <const char *>view.buf
        s.ndim = view.ndim
        s.shape = view.shape
        s.strides = view.strides
        s.count = 1
        for i in range(view.ndim):
            s.count *= view.shape[i]
        return 0
    if (f[0] == b"B" or f[0] == b"b" or f[0] == b"c") and f[1] == 0 and view.itemsize == 1:
        if not PyBuffer_IsContiguous(view, b"A"):
            raise ValueError(f"{caller}(): a byte buffer of int16 samples must be contiguous")
        if view.len % 2:
            raise ValueError(
                f"{caller}(): byte buffer of {view.len} bytes has an odd length; little-endian "
                f"int16 samples take 2 bytes each")
        s.buf = <const char *>view.buf
        s.flat_shape = view.len // 2
        s.flat_stride = 2
        s.ndim = 1
        s.shape = &s.flat_shape
        s.strides = &s.flat_stride
        s.count = s.flat_shape
        return 0
    cdef str fmt = (<bytes>view.format).decode("ascii", "replace") if view.format != NULL else "B"
    if fmt.lstrip("@=<>!") == "h":
        raise ValueError(
            f"{caller}(): samples are byte-swapped int16 (format {fmt!r}); convert them to "
            f"native order first, e.g. array.astype('=i2')")
    raise TypeError(
        f"{caller}() expects int16 samples, got buffer format {fmt!r} with "
        f"{view.itemsize}-byte items (for numpy: dtype int16)")


cdef object _levels(object samples, Py_ssize_t frame_length, int kind, str caller):
    cdef Py_buffer view
    cdef Samples s
    cdef Py_ssize_t frames
    cdef int32_t single = 0
    cdef int32_t *out = &single
    cdef array result = None
    _open(samples, &view, &s, caller)
    try:
        if frame_length:
            frames = (s.count + frame_length - 1) // frame_length
            result = clone(_INT32, frames, False)
            out = <int32_t *>result.data.as_ints  # array("i"): C int, 32 bits on every target
        with nogil:
            rtc_audio_levels(s.buf, s.ndim, <const ptrdiff_t *>s.shape,
                             <const ptrdiff_t *>s.strides, <size_t>frame_length,
                             out if kind == PEAK else NULL, out if kind == DBOV else NULL)
    finally:
        PyBuffer_Release(&view)
    return result if frame_length else single


cdef Py_ssize_t _frame_length(object frame_length, str caller) except -1:
    if isinstance(frame_length, bool) or not isinstance(frame_length, int):
        raise TypeError(f"{caller}(): frame_length must be an int, not "
                        f"{type(frame_length).__name__}")
    if frame_length <= 0:
        raise ValueError(f"{caller}(): frame_length must be a positive number of samples, "
                         f"got {frame_length}")
    return frame_length


def audio_level(samples):
    """Max |sample| of int16 PCM, 0..32767 (-32768 counts as 32767); 0 for no samples."""
    return _levels(samples, 0, PEAK, "audio_level")


def audio_level_dbov(samples):
    """RFC 6464 level of the samples' RMS, 0..127; 127 for digital silence or no samples."""
    return _levels(samples, 0, DBOV, "audio_level_dbov")


def audio_levels(samples, frame_length):
    """audio_level of each frame of frame_length samples, as an array('i')."""
    return _levels(samples, _frame_length(frame_length, "audio_levels"), PEAK, "audio_levels")


def audio_levels_dbov(samples, frame_length):
    """audio_level_dbov of each frame of frame_length samples, as an array('i')."""
    return _levels(samples, _frame_length(frame_length, "audio_levels_dbov"), DBOV,
                   "audio_levels_dbov")
