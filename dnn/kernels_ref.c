/* SPDX-License-Identifier: MIT */
/* Reference kernels: the definitions, written plainly. Every other kernel is
 * tested against these; they are also the "ref" family of `gearbox model
 * bench`. */
#include "config.h"

#include <float.h>
#include <math.h>
#include <stdint.h>

#include "dnn/kernels.h"

/* Direct convolution. Output channel o of block b sums over input channels
 * [ch0, ch1); linear layers are the 1x1, 1x1-map case. */
void
dnn_f32_conv2d_ref(const struct dnn_op *op, unsigned part, unsigned parts)
{
	const struct dnn_layer *l = op->layer;
	const struct dnn_block *blocks = op->plan->blocks;
	unsigned nb = op->plan->nblocks;
	unsigned H = l->in_h, W = l->in_w, OH = l->out_h, OW = l->out_w;
	size_t first, last;

	dnn_share(blocks[nb - 1].row1, part, parts, 1, &first, &last);
	for (unsigned b = 0; b < nb; b++) {
		const struct dnn_block *bk = &blocks[b];
		for (unsigned o = bk->row0; o < bk->row1; o++) {
			const float *w = l->weight + (size_t)o * l->weight_cols;
			if (o < first || o >= last)
				continue;
			for (unsigned oy = 0; oy < OH; oy++) {
				for (unsigned ox = 0; ox < OW; ox++) {
					float acc = l->bias != NULL ? l->bias[o] : 0.0f;
					for (unsigned c = bk->ch0; c < bk->ch1; c++) {
						for (unsigned ky = 0; ky < l->kh; ky++) {
							long iy = (long)oy * l->sh - (long)l->ph + ky;
							if (iy < 0 || iy >= (long)H)
								continue;
							for (unsigned kx = 0; kx < l->kw; kx++) {
								long ix = (long)ox * l->sw - (long)l->pw + kx;
								if (ix < 0 || ix >= (long)W)
									continue;
								acc += w[((size_t)(c - bk->wch0) * l->kh + ky) * l->kw + kx] *
								       op->in[((size_t)c * H + (size_t)iy) * W + (size_t)ix];
							}
						}
					}
					if (op->relu && acc < 0.0f)
						acc = 0.0f;
					op->out[((size_t)o * OH + oy) * OW + ox] = acc;
				}
			}
		}
	}
}

/* The quantised convolution as defined in kernels_int8.c, written plainly:
 * weights per output channel and the input per tensor (op->q_scale, q_zp)
 * quantised by the same rules, exact int32 sums of q_w * (u - zp) over the
 * window (the padding is the zero point, so it adds nothing), then
 * (float)sum * (scale * s_o) + bias and ReLU. */
void
dnn_q8_conv2d_ref(const struct dnn_op *op, unsigned part, unsigned parts)
{
	const struct dnn_layer *l = op->layer;
	const struct dnn_block *blocks = op->plan->blocks;
	unsigned nb = op->plan->nblocks, H = l->in_h, W = l->in_w;
	float inv = 1.0f / op->q_scale;
	size_t first, last;

	dnn_share(blocks[nb - 1].row1, part, parts, 1, &first, &last);
	for (unsigned b = 0; b < nb; b++) {
		const struct dnn_block *bk = &blocks[b];
		for (unsigned o = bk->row0; o < bk->row1; o++) {
			const float *w = l->weight + (size_t)o * l->weight_cols;
			float ws = dnn_q8_weight_scale(w, l->weight_cols);
			if (o < first || o >= last)
				continue;
			for (unsigned oy = 0; oy < l->out_h; oy++)
				for (unsigned ox = 0; ox < l->out_w; ox++) {
					int32_t acc = 0;
					float v;
					for (unsigned c = bk->ch0; c < bk->ch1; c++)
						for (unsigned ky = 0; ky < l->kh; ky++)
							for (unsigned kx = 0; kx < l->kw; kx++) {
								long iy = (long)oy * l->sh - (long)l->ph + ky;
								long ix = (long)ox * l->sw - (long)l->pw + kx;
								int u;
								if (iy < 0 || iy >= (long)H || ix < 0 || ix >= (long)W)
									continue;
								u = dnn_q8_activation(op->in[((size_t)c * H + (size_t)iy) * W + (size_t)ix],
								                      inv, op->q_zp);
								acc += dnn_q8_weight(w[((size_t)(c - bk->wch0) * l->kh + ky) * l->kw + kx],
								                     ws) * (u - op->q_zp);
							}
					v = (float)acc * (op->q_scale * ws) + (l->bias != NULL ? l->bias[o] : 0.0f);
					if (op->relu && v < 0.0f)
						v = 0.0f;
					op->out[((size_t)o * l->out_h + oy) * l->out_w + ox] = v;
				}
		}
	}
}

static void
pool_ref(const struct dnn_op *op, unsigned part, unsigned parts, bool max)
{
	const struct dnn_layer *l = op->layer;
	unsigned channels = op->plan->in_c;
	size_t first, last;

	dnn_share(channels, part, parts, 1, &first, &last);
	for (size_t c = first; c < last; c++) {
		const float *in = op->in + c * l->in_h * l->in_w;
		float *out = op->out + c * l->out_h * l->out_w;
		for (unsigned oy = 0; oy < l->out_h; oy++) {
			for (unsigned ox = 0; ox < l->out_w; ox++) {
				float acc = max ? -INFINITY : 0.0f;
				for (unsigned ky = 0; ky < l->kh; ky++) {
					for (unsigned kx = 0; kx < l->kw; kx++) {
						float v = in[(oy * l->sh + ky) * l->in_w + ox * l->sw + kx];
						acc = max ? (v > acc ? v : acc) : acc + v;
					}
				}
				out[oy * l->out_w + ox] = max ? acc : acc / (float)(l->kh * l->kw);
			}
		}
	}
}

void
dnn_f32_maxpool_ref(const struct dnn_op *op, unsigned part, unsigned parts)
{
	pool_ref(op, part, parts, true);
}

void
dnn_f32_avgpool_ref(const struct dnn_op *op, unsigned part, unsigned parts)
{
	pool_ref(op, part, parts, false);
}

void
dnn_f32_relu_ref(const struct dnn_op *op, unsigned part, unsigned parts)
{
	size_t first, last;

	dnn_share(op->n, part, parts, 1, &first, &last);
	for (size_t i = first; i < last; i++)
		op->out[i] = op->in[i] > 0.0f ? op->in[i] : 0.0f;
}

/* Numerically stable softmax; small (one value per class), so part 0 does it. */
void
dnn_f32_softmax_ref(const struct dnn_op *op, unsigned part, unsigned parts)
{
	float maxv = -FLT_MAX, sum = 0.0f;

	if (part != 0)
		return;
	for (size_t i = 0; i < op->n; i++)
		maxv = op->in[i] > maxv ? op->in[i] : maxv;
	for (size_t i = 0; i < op->n; i++) {
		op->out[i] = expf(op->in[i] - maxv);
		sum += op->out[i];
	}
	for (size_t i = 0; i < op->n; i++)
		op->out[i] /= sum;
}
