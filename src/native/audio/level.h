/* Audio level kernels over int16 PCM: plain data in, plain numbers out, no Python. */
#ifndef RTCROOM_AUDIO_LEVEL_H
#define RTCROOM_AUDIO_LEVEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The reference's AudioLevel ceiling: |-32768| does not fit, so it counts as this. */
#define RTC_AUDIO_LEVEL_MAX 32767
/* RFC 6464: 127 means -127 dBov or quieter, and is what digital silence must report. */
#define RTC_DBOV_SILENCE 127

/* Walks an n-dimensional int16 buffer in C order (any strides, in bytes), cuts the samples into
 * frames of frame_len samples (0: all samples are one frame; the last frame may be short) and
 * writes each frame's level to the arrays that are not NULL:
 *   peak_out[i]: max |sample|, 0..32767;
 *   dbov_out[i]: RFC 6464 level, 0..127, of the frame's RMS.
 * Returns the number of frames written: ceil(samples / frame_len), or 1 when frame_len is 0.
 * Samples are read with unaligned-safe loads, so any byte offset and stride is allowed. */
size_t rtc_audio_levels(const char *buf, int ndim, const ptrdiff_t *shape,
                        const ptrdiff_t *strides, size_t frame_len,
                        int32_t *peak_out, int32_t *dbov_out);

/* RFC 6464 level of a frame from its exact sum of squares over `count` samples. */
int32_t rtc_dbov_from_energy(uint64_t sum_squares, uint64_t count);

#ifdef __cplusplus
}
#endif

#endif
