/* SPDX-License-Identifier: MIT */
/* Activation layouts and the conversions between them.
 *
 * NCHW (every kernel's own), NHWC (a position's channels side by side) and a
 * channel-blocked layout: blocks of B channels, each block's planes stored
 * position by position with its B channels side by side (NCHW{B}c), B the
 * vector width of the instruction set the direct convolution runs (16 floats
 * on AVX-512, 8 on AVX2, 4 on NEON and the generic build). A tensor is laid
 * out for all the channels of the layer at full width; at g only the active
 * prefix of channels is written and read. Conversions are explicit steps
 * that the executor inserts between layers of different layouts; their time
 * is measured (dnn_exec_convert_us), not assumed. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "dnn/kernels.h"

static const char *const layout_names[DNN_LAYOUT_COUNT] = { "nchw", "nhwc", "blocked" };

const char *
dnn_layout_name(enum dnn_layout layout)
{
	return (unsigned)layout < DNN_LAYOUT_COUNT ? layout_names[layout] : "?";
}

int
dnn_layout_parse(const char *name, enum dnn_layout *layout)
{
	for (unsigned i = 0; i < DNN_LAYOUT_COUNT; i++)
		if (strcmp(name, layout_names[i]) == 0) {
			*layout = (enum dnn_layout)i;
			return 0;
		}
	return -EINVAL;
}

size_t
dnn_layout_floats(enum dnn_layout layout, unsigned C, unsigned H, unsigned W, unsigned B)
{
	if (layout == DNN_LAYOUT_BLOCKED)
		C = (C + B - 1) / B * B;
	return (size_t)C * H * W;
}

struct dnn_tensor_view
dnn_view(enum dnn_layout layout, unsigned C, unsigned H, unsigned W, unsigned B)
{
	struct dnn_tensor_view v = { .layout = layout, .C = C, .HW = (size_t)H * W, .B = B };

	switch (layout) {
	case DNN_LAYOUT_NHWC: v.step = C; break;
	case DNN_LAYOUT_BLOCKED: v.step = B; break;
	default: v.step = 1; break;
	}
	return v;
}

/* Channels [0, active) of a C x H x W tensor from one layout into another;
 * shares split the channels (blocked: whole blocks, so that no two shares
 * write one cache line of a position). */
void
dnn_layout_convert(const float *src, enum dnn_layout from, float *dst, enum dnn_layout to, unsigned C,
                   unsigned active, unsigned H, unsigned W, unsigned B, unsigned part, unsigned parts)
{
	struct dnn_tensor_view s = dnn_view(from, C, H, W, B), d = dnn_view(to, C, H, W, B);
	size_t HW = s.HW, first, last;

	dnn_share(active, part, parts, from == DNN_LAYOUT_BLOCKED || to == DNN_LAYOUT_BLOCKED ? B : 1, &first,
	          &last);
	if (from == to) {
		for (size_t c = first; c < last; c++) {
			const float *i = src + dnn_view_base(&s, (unsigned)c);
			float *o = dst + dnn_view_base(&d, (unsigned)c);
			for (size_t p = 0; p < HW; p++)
				o[p * d.step] = i[p * s.step];
		}
		return;
	}
	if (from == DNN_LAYOUT_NCHW && to == DNN_LAYOUT_BLOCKED) {
		/* a block at a time: B rows read, one interleaved plane written */
		for (size_t c0 = first; c0 < last; c0 += B) {
			unsigned n = last - c0 < B ? (unsigned)(last - c0) : B;
			float *o = dst + dnn_view_base(&d, (unsigned)c0);
			for (size_t p = 0; p < HW; p++)
				for (unsigned l = 0; l < n; l++)
					o[p * B + l] = src[(c0 + l) * HW + p];
		}
		return;
	}
	if (from == DNN_LAYOUT_BLOCKED && to == DNN_LAYOUT_NCHW) {
		for (size_t c0 = first; c0 < last; c0 += B) {
			unsigned n = last - c0 < B ? (unsigned)(last - c0) : B;
			const float *i = src + dnn_view_base(&s, (unsigned)c0);
			for (unsigned l = 0; l < n; l++) {
				float *o = dst + (c0 + l) * HW;
				for (size_t p = 0; p < HW; p++)
					o[p] = i[p * B + l];
			}
		}
		return;
	}
	/* NHWC <-> the others: position-major on the NHWC side */
	for (size_t p = 0; p < HW; p++)
		for (size_t c = first; c < last; c++)
			dst[dnn_view_base(&d, (unsigned)c) + p * d.step] = src[dnn_view_base(&s, (unsigned)c) + p * s.step];
}

/* Max or average pooling (no padding, as the reference) in NHWC or blocked
 * layout: the window's positions reduced a position's channels at a time. */
static void
pool_layout(const struct dnn_op *op, unsigned part, unsigned parts, bool max)
{
	const struct dnn_layer *l = op->layer;
	unsigned B = dnn_layout_block(), C = op->plan->in_c;
	struct dnn_tensor_view vi = dnn_view(op->layout, l->in_c, l->in_h, l->in_w, B);
	struct dnn_tensor_view vo = dnn_view(op->layout, l->out_c, l->out_h, l->out_w, B);
	size_t first, last;
	float inv = 1.0f / (float)(l->kh * l->kw);

	if (op->layout == DNN_LAYOUT_NCHW) {
		(max ? dnn_f32_maxpool_ref : dnn_f32_avgpool_ref)(op, part, parts);
		return;
	}
	/* shares: whole blocks (blocked) or rows of output (NHWC) */
	if (op->layout == DNN_LAYOUT_BLOCKED) {
		dnn_share((C + B - 1) / B, part, parts, 1, &first, &last);
	} else {
		dnn_share(l->out_h, part, parts, 1, &first, &last);
	}
	for (size_t u = first; u < last; u++) {
		unsigned c0 = op->layout == DNN_LAYOUT_BLOCKED ? (unsigned)u * B : 0;
		unsigned n = op->layout == DNN_LAYOUT_BLOCKED ? (C - c0 < B ? C - c0 : B) : C;
		unsigned y0 = op->layout == DNN_LAYOUT_BLOCKED ? 0 : (unsigned)u;
		unsigned y1 = op->layout == DNN_LAYOUT_BLOCKED ? l->out_h : (unsigned)u + 1;
		const float *in = op->in + dnn_view_base(&vi, c0);
		float *out = op->out + dnn_view_base(&vo, c0);
		for (unsigned oy = y0; oy < y1; oy++)
			for (unsigned ox = 0; ox < l->out_w; ox++) {
				float *o = out + ((size_t)oy * l->out_w + ox) * vo.step;
				for (unsigned k = 0; k < n; k++)
					o[k] = max ? -INFINITY : 0.0f;
				for (unsigned ky = 0; ky < l->kh; ky++)
					for (unsigned kx = 0; kx < l->kw; kx++) {
						const float *x = in + ((size_t)(oy * l->sh + ky) * l->in_w + ox * l->sw + kx) * vi.step;
						if (max)
							for (unsigned k = 0; k < n; k++)
								o[k] = x[k] > o[k] ? x[k] : o[k];
						else
							for (unsigned k = 0; k < n; k++)
								o[k] += x[k];
					}
				if (!max)
					for (unsigned k = 0; k < n; k++)
						o[k] *= inv;
			}
	}
}

void
dnn_f32_pool_layout(const struct dnn_op *op, unsigned part, unsigned parts)
{
	pool_layout(op, part, parts, op->layer->type == DNN_MAXPOOL);
}
