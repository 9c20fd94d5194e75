#include "level.h"

#include <math.h>
#include <string.h>

/* GCC on x86-64 Linux builds an AVX2 and a baseline (SSE2) copy of the hot loops and picks one
 * at load time, so one wheel runs everywhere and still uses 256-bit registers where it can. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define RTC_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define RTC_SIMD_CLONES
#endif

/* PyBUF_MAX_NDIM: no buffer reaching us has more. */
#define RTC_MAX_DIMS 64

static inline int16_t load_i16(const char *p) {
    int16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Peak and energy over one run of samples. The contiguous forms keep max and min in int16 (one
 * vector lane per sample) instead of abs(), which overflows on -32768 and blocks vectorising. */
RTC_SIMD_CLONES
static int32_t peak_contiguous(const int16_t *s, size_t n) {
    int16_t hi = 0, lo = 0;
    for (size_t i = 0; i < n; i++) {
        hi = s[i] > hi ? s[i] : hi;
        lo = s[i] < lo ? s[i] : lo;
    }
    int32_t neg = -(int32_t)lo;
    int32_t peak = hi > neg ? hi : neg;
    return peak > RTC_AUDIO_LEVEL_MAX ? RTC_AUDIO_LEVEL_MAX : peak;
}

static int32_t peak_strided(const char *p, size_t n, ptrdiff_t stride) {
    int32_t hi = 0, lo = 0;
    for (size_t i = 0; i < n; i++, p += stride) {
        int32_t v = load_i16(p);
        hi = v > hi ? v : hi;
        lo = v < lo ? v : lo;
    }
    int32_t peak = hi > -lo ? hi : -lo;
    return peak > RTC_AUDIO_LEVEL_MAX ? RTC_AUDIO_LEVEL_MAX : peak;
}

RTC_SIMD_CLONES
static uint64_t energy_contiguous(const int16_t *s, size_t n) {
    /* Blocks of 2^16 squares (each < 2^30) fit an int64 partial sum with room to spare, and the
     * inner loop stays a plain widening multiply-add the vectoriser recognises. */
    uint64_t total = 0;
    while (n > 0) {
        size_t block = n < 65536 ? n : 65536;
        int64_t acc = 0;
        for (size_t i = 0; i < block; i++) acc += (int32_t)s[i] * (int32_t)s[i];
        total += (uint64_t)acc;
        s += block;
        n -= block;
    }
    return total;
}

static uint64_t energy_strided(const char *p, size_t n, ptrdiff_t stride) {
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++, p += stride) {
        int32_t v = load_i16(p);
        total += (uint64_t)(v * v);
    }
    return total;
}

static int is_dense(const char *p, ptrdiff_t stride) {
    return stride == (ptrdiff_t)sizeof(int16_t) && ((uintptr_t)p % sizeof(int16_t)) == 0;
}

int32_t rtc_dbov_from_energy(uint64_t sum_squares, uint64_t count) {
    if (count == 0 || sum_squares == 0) return RTC_DBOV_SILENCE;
    /* Full scale is 32768^2, as in libwebrtc's RmsLevel; round half up. */
    double mean_square = (double)sum_squares / (double)count / (32768.0 * 32768.0);
    double level = -10.0 * log10(mean_square) + 0.5;
    if (level >= RTC_DBOV_SILENCE) return RTC_DBOV_SILENCE;
    return level <= 0.0 ? 0 : (int32_t)level;
}

typedef struct {
    size_t frame_len;
    size_t in_frame;   /* samples accumulated in the current frame */
    size_t frames;     /* frames emitted */
    int32_t peak;
    uint64_t energy;
    int32_t *peak_out;
    int32_t *dbov_out;
} level_walk;

static void emit(level_walk *w) {
    if (w->peak_out) w->peak_out[w->frames] = w->peak;
    if (w->dbov_out) w->dbov_out[w->frames] = rtc_dbov_from_energy(w->energy, w->in_frame);
    w->frames++;
    w->in_frame = 0;
    w->peak = 0;
    w->energy = 0;
}

/* Feeds one innermost-dimension run into the frames it overlaps. */
static void feed_run(level_walk *w, const char *p, size_t n, ptrdiff_t stride) {
    while (n > 0) {
        size_t take = n;
        if (w->frame_len) {
            size_t room = w->frame_len - w->in_frame;
            if (take > room) take = room;
        }
        int dense = is_dense(p, stride);
        if (w->peak_out) {
            int32_t pk = dense ? peak_contiguous((const int16_t *)(const void *)p, take)
                               : peak_strided(p, take, stride);
            if (pk > w->peak) w->peak = pk;
        }
        if (w->dbov_out) {
            w->energy += dense ? energy_contiguous((const int16_t *)(const void *)p, take)
                               : energy_strided(p, take, stride);
        }
        w->in_frame += take;
        p += (ptrdiff_t)take * stride;
        n -= take;
        if (w->frame_len && w->in_frame == w->frame_len) emit(w);
    }
}

size_t rtc_audio_levels(const char *buf, int ndim, const ptrdiff_t *shape,
                        const ptrdiff_t *strides, size_t frame_len,
                        int32_t *peak_out, int32_t *dbov_out) {
    level_walk w = {frame_len, 0, 0, 0, 0, peak_out, dbov_out};
    if (ndim <= 0) {
        feed_run(&w, buf, 1, (ptrdiff_t)sizeof(int16_t));
    } else if (ndim <= RTC_MAX_DIMS) {
        for (int d = 0; d < ndim; d++) {
            if (shape[d] == 0) goto done;
        }
        /* Odometer over the outer dimensions; the innermost one is a run. */
        ptrdiff_t index[RTC_MAX_DIMS] = {0};
        const char *p = buf;
        int inner = ndim - 1;
        for (;;) {
            feed_run(&w, p, (size_t)shape[inner], strides[inner]);
            int d = inner - 1;
            while (d >= 0) {
                index[d]++;
                p += strides[d];
                if (index[d] < shape[d]) break;
                p -= strides[d] * shape[d];
                index[d] = 0;
                d--;
            }
            if (d < 0) break;
        }
    }
done:
    /* A short last frame still counts; with frame_len 0 the whole buffer is one frame, even an
     * empty one (silence), while a framed walk over no samples reports no frames. */
    if (w.in_frame > 0 || frame_len == 0) emit(&w);
    return w.frames;
}
