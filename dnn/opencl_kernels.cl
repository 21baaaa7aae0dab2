/* gearbox OpenCL kernels (OpenCL C 1.2). The same definitions as the CPU
 * reference kernels in kernels_ref.c, one work-item per output value.
 *
 * Weights stay as the model file has them (row o of a layer holds
 * weight_cols floats: input channels x kh x kw); a launch covers one block of
 * the active-group plan (output rows [row0, row0 + global size 1) reading
 * input channels [ch0, ch1), whose weight columns start at channel wch0), so
 * running at g never copies or repacks weights. Linear layers are 1x1
 * convolutions over a 1x1 map, as on the CPU. */

__kernel void
f32_conv2d_direct(__global const float *in, __global const float *weight, __global const float *bias,
                  int has_bias, __global float *out, uint in_h, uint in_w, uint out_h, uint out_w, uint kh,
                  uint kw, uint sh, uint sw, uint ph, uint pw, uint weight_cols, uint row0, uint ch0, uint ch1,
                  uint wch0, int relu)
{
	uint pixel = get_global_id(0);
	uint o = row0 + get_global_id(1);
	uint plane = out_h * out_w;

	if (pixel >= plane)
		return;
	uint oy = pixel / out_w, ox = pixel % out_w;
	int iy0 = (int)(oy * sh) - (int)ph, ix0 = (int)(ox * sw) - (int)pw;
	__global const float *w = weight + (size_t)o * weight_cols;
	float acc = has_bias ? bias[o] : 0.0f;

	for (uint c = ch0; c < ch1; c++) {
		__global const float *wc = w + (size_t)(c - wch0) * kh * kw;
		__global const float *ic = in + (size_t)c * in_h * in_w;
		for (uint ky = 0; ky < kh; ky++) {
			int iy = iy0 + (int)ky;
			if (iy < 0 || iy >= (int)in_h)
				continue;
			for (uint kx = 0; kx < kw; kx++) {
				int ix = ix0 + (int)kx;
				if (ix < 0 || ix >= (int)in_w)
					continue;
				acc += wc[ky * kw + kx] * ic[iy * (int)in_w + ix];
			}
		}
	}
	if (relu && acc < 0.0f)
		acc = 0.0f;
	out[(size_t)o * plane + pixel] = acc;
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
