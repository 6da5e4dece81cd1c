/*
 * Conversions between IEEE binary32 and the two 16-bit float formats that
 * model weights ship in: IEEE binary16 ("fp16", F16 in safetensors) and
 * bfloat16 ("bf16", the top half of a binary32).
 *
 * Both directions are exact where they can be (every fp16 and bf16 value is
 * a binary32 value) and round to nearest, ties to even, where they cannot.
 * Infinities stay infinities, denormals are converted exactly (fp16
 * denormals are normal binary32 numbers; binary32 values below the fp16
 * normal range become fp16 denormals or signed zero), and a NaN stays a NaN
 * with the top bits of its payload kept, so fp16 -> fp32 -> fp16 and
 * bf16 -> fp32 -> bf16 give back every one of the 65536 bit patterns.
 * Signalling NaNs are not quietened (no hardware conversion is involved).
 *
 * Pure functions of their arguments: thread-safe, no allocation. The array
 * forms read and write 16-bit values as little-endian bytes (the safetensors
 * byte order) so callers can pass tensor data straight from a file without
 * worrying about alignment or host byte order.
 */
#ifndef CAIRN_MODEL_HALF_H
#define CAIRN_MODEL_HALF_H

#include <stddef.h>
#include <stdint.h>

float cairn_fp16_to_fp32(uint16_t h);
uint16_t cairn_fp32_to_fp16(float f);
float cairn_bf16_to_fp32(uint16_t h);
uint16_t cairn_fp32_to_bf16(float f);

/* Convert `n` little-endian 16-bit values at `in` (any alignment) to floats. */
void cairn_fp16_to_fp32_n(float *out, const void *in, size_t n);
void cairn_bf16_to_fp32_n(float *out, const void *in, size_t n);
/* Convert `n` floats to little-endian 16-bit values at `out` (any alignment). */
void cairn_fp32_to_fp16_n(void *out, const float *in, size_t n);
void cairn_fp32_to_bf16_n(void *out, const float *in, size_t n);

#endif
