/* SPDX-License-Identifier: MIT */
/* The frame assembler (proto/frame.c) on an arbitrary byte stream. The same
 * bytes go through two readers: one fed the whole stream (gbx_frame_feed),
 * one that receives it in pieces of sizes taken from the stream itself
 * (gbx_frame_space + gbx_frame_commit, as gearboxd's read_frames does, and
 * gbx_frame_reader_trim between some frames). Both
 * must yield the same frames and end in the same state, and every frame must
 * be what its bytes say. */
#include "config.h"

#include <string.h>

#include "proto/frame.h"
#include "tests/fuzz/fuzz.h"

#define MAX_SEEN 4096

struct seen {
	uint16_t type;
	uint32_t id, length;
	uint64_t hash;
};

struct run {
	struct seen frames[MAX_SEEN];
	unsigned n;
	int end;          /* the last state */
	size_t pending;
};

static uint64_t
fnv(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

/* A yielded frame: it is what the stream holds at offset `at`. */
static void
check_frame(struct run *r, const struct gbx_frame_reader *fr, const uint8_t *data, size_t size, size_t at)
{
	unsigned char hdr[GBX_HEADER_SIZE];

	FUZZ_ASSERT(fr->h.version == GBX_PROTOCOL_VERSION && fr->h.length <= GBX_MAX_PAYLOAD);
	FUZZ_ASSERT(at + GBX_HEADER_SIZE + fr->h.length <= size);
	gbx_encode_header(hdr, fr->h.type, fr->h.id, fr->h.length);
	FUZZ_ASSERT(memcmp(hdr, data + at, GBX_HEADER_SIZE) == 0);
	FUZZ_ASSERT(memcmp(fr->payload, data + at + GBX_HEADER_SIZE, fr->h.length) == 0);
	FUZZ_ASSERT(fr->payload[fr->h.length] == '\0');
	FUZZ_ASSERT(gbx_frame_pending(fr) == 0);
	if (r->n < MAX_SEEN)
		r->frames[r->n++] = (struct seen){ fr->h.type, fr->h.id, fr->h.length, fnv(fr->payload, fr->h.length) };
}

static void
whole(struct run *r, const uint8_t *data, size_t size)
{
	struct gbx_frame_reader fr;
	size_t off = 0, start = 0;

	gbx_frame_reader_init(&fr);
	r->end = GBX_FRAME_MORE;
	while (off < size) {
		size_t used;
		r->end = gbx_frame_feed(&fr, data + off, size - off, &used);
		FUZZ_ASSERT(used <= size - off);
		off += used;
		if (r->end == GBX_FRAME_READY) {
			check_frame(r, &fr, data, size, start);
			start = off;
		} else if (r->end != GBX_FRAME_MORE) {
			FUZZ_ASSERT(fr.error != NULL);
			FUZZ_ASSERT(gbx_frame_feed(&fr, data, size, &used) == r->end && used == 0);
			break;
		} else
			FUZZ_ASSERT(off == size);
	}
	r->pending = gbx_frame_pending(&fr);
	gbx_frame_reader_clear(&fr);
}

static void
pieces(struct run *r, const uint8_t *data, size_t size)
{
	struct gbx_frame_reader fr;
	size_t off = 0, start = 0, k = 0;

	gbx_frame_reader_init(&fr);
	r->end = GBX_FRAME_MORE;
	while (off < size) {
		void *into;
		size_t room = gbx_frame_space(&fr, &into), n = 1 + data[k++ % size] % 23u;
		FUZZ_ASSERT(room >= 1);
		if (n > room)
			n = room;
		if (n > size - off)
			n = size - off;
		memcpy(into, data + off, n);
		off += n;
		r->end = gbx_frame_commit(&fr, n);
		if (r->end == GBX_FRAME_READY) {
			check_frame(r, &fr, data, size, start);
			start = off;
			if (data[k % size] & 1)
				gbx_frame_reader_trim(&fr); /* as gearboxd does after each frame */
		} else if (r->end != GBX_FRAME_MORE)
			break;
	}
	r->pending = gbx_frame_pending(&fr);
	gbx_frame_reader_clear(&fr);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run a, b;

	a.n = b.n = 0;
	whole(&a, data, size);
	pieces(&b, data, size);
	FUZZ_ASSERT(a.n == b.n && a.end == b.end && a.pending == b.pending);
	FUZZ_ASSERT(memcmp(a.frames, b.frames, a.n * sizeof(a.frames[0])) == 0);
	return 0;
}
