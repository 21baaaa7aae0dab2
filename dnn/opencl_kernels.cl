/* SPDX-License-Identifier: MIT */
/* gearbox OpenCL kernels (OpenCL C 1.2). The same definitions as the CPU
 * reference kernels in kernels_ref.c, one work-item per output value.
 *
 * Weights stay as the model file has them (row o of a layer holds
 * weight_cols floats: input channels x kh x kw); a launch covers one block of
 * the active-group plan (output rows [row0, row0 + global size 1) reading
 * input channels [ch0, ch1), whose weight columns start at channel wch0), so
 * running at g never copies or repacks weights. Linear layers are 1x1
 * convolutions over a 1x1 map, as on the CPU. */

/* Each work-item computes one output pixel of four consecutive output
 * channels, so that every input value loaded serves four weights. */
__kernel void
f32_conv2d_direct(__global const float *in, __global const float *weight, __global const float *bias,
                  int has_bias, __global float *out, uint in_h, uint in_w, uint out_h, uint out_w, uint kh,
                  uint kw, uint sh, uint sw, uint ph, uint pw, uint weight_cols, uint row0, uint row1, uint ch0,
                  uint ch1, uint wch0, int relu)
{
	uint pixel = get_global_id(0);
	uint o0 = row0 + 4 * get_global_id(1);
	uint plane = out_h * out_w;

	if (pixel >= plane || o0 >= row1)
		return;
	uint nout = min(4u, row1 - o0);
	uint oy = pixel / out_w, ox = pixel % out_w;
	int iy0 = (int)(oy * sh) - (int)ph, ix0 = (int)(ox * sw) - (int)pw;
	/* rows past the block's end read row o0 again and are not stored */
	size_t r1 = nout > 1 ? weight_cols : 0, r2 = nout > 2 ? 2 * weight_cols : 0, r3 = nout > 3 ? 3 * weight_cols : 0;
	__global const float *w = weight + (size_t)o0 * weight_cols;
	float4 acc = (float4)(0.0f);
	/* the taps whose input is inside the image (the rest read padding) */
	uint ky0 = (uint)clamp(-iy0, 0, (int)kh), ky1 = (uint)clamp((int)in_h - iy0, 0, (int)kh);
	uint kx0 = (uint)clamp(-ix0, 0, (int)kw), kx1 = (uint)clamp((int)in_w - ix0, 0, (int)kw);

	for (uint c = ch0; c < ch1; c++) {
		size_t wc = (size_t)(c - wch0) * kh * kw;
		__global const float *ic = in + (size_t)c * in_h * in_w;
		for (uint ky = ky0; ky < ky1; ky++) {
			int row = (iy0 + (int)ky) * (int)in_w + ix0;
			for (uint kx = kx0; kx < kx1; kx++) {
				float v = ic[row + (int)kx];
				size_t k = wc + ky * kw + kx;
				acc += v * (float4)(w[k], w[r1 + k], w[r2 + k], w[r3 + k]);
			}
		}
	}
	float vals[4] = { acc.s0, acc.s1, acc.s2, acc.s3 };
	for (uint j = 0; j < nout; j++) {
		float v = vals[j] + (has_bias ? bias[o0 + j] : 0.0f);
		out[(size_t)(o0 + j) * plane + pixel] = relu && v < 0.0f ? 0.0f : v;
	}
}

/* Dense rows (linear layers, and 1x1 maps): a work-group of `local` items
 * shares one output row and reduces in local memory, so that long rows use
 * the whole device. */
__kernel void
f32_linear_rows(__global const float *in, __global const float *weight, __global const float *bias, int has_bias,
                __global float *out, uint weight_cols, uint row0, uint ch0, uint ch1, uint wch0, int relu,
                __local float *partial)
{
	uint lid = get_local_id(0), lsize = get_local_size(0);
	uint o = row0 + get_group_id(1);
	__global const float *w = weight + (size_t)o * weight_cols - wch0;
	float acc = 0.0f;

	for (uint c = ch0 + lid; c < ch1; c += lsize)
		acc += w[c] * in[c];
	partial[lid] = acc;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (uint s = lsize / 2; s > 0; s >>= 1) {
		if (lid < s)
			partial[lid] += partial[lid + s];
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	if (lid == 0) {
		float v = partial[0] + (has_bias ? bias[o] : 0.0f);
		out[o] = relu && v < 0.0f ? 0.0f : v;
	}
}

__kernel void
f32_pool2d(__global const float *in, __global float *out, uint in_h, uint in_w, uint out_h, uint out_w, uint kh,
           uint kw, uint sh, uint sw, int is_max)
{
	uint pixel = get_global_id(0), c = get_global_id(1);

	if (pixel >= out_h * out_w)
		return;
	uint oy = pixel / out_w, ox = pixel % out_w;
	__global const float *ic = in + (size_t)c * in_h * in_w;
	float acc = is_max ? -INFINITY : 0.0f;

	for (uint ky = 0; ky < kh; ky++) {
		for (uint kx = 0; kx < kw; kx++) {
			float v = ic[(oy * sh + ky) * in_w + ox * sw + kx];
			acc = is_max ? fmax(acc, v) : acc + v;
		}
	}
	out[(size_t)c * out_h * out_w + pixel] = is_max ? acc : acc / (float)(kh * kw);
}

__kernel void
f32_relu(__global const float *in, __global float *out, uint n)
{
	uint i = get_global_id(0);

	if (i < n)
		out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

/* One value per class: a single work-item. */
__kernel void
f32_softmax(__global const float *in, __global float *out, uint n)
{
	float maxv = -MAXFLOAT, sum = 0.0f;

	for (uint i = 0; i < n; i++)
		maxv = fmax(maxv, in[i]);
	for (uint i = 0; i < n; i++) {
		out[i] = exp(in[i] - maxv);
		sum += out[i];
	}
	for (uint i = 0; i < n; i++)
		out[i] /= sum;
}
