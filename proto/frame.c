/* SPDX-License-Identifier: MIT */
/* Frame assembly (see frame.h): the header is checked as soon as its 16
 * bytes are in, the payload buffer grows as the payload arrives, and a frame
 * is yielded when its last payload byte does. A broken header or a failed allocation is
 * final: the stream has lost its framing. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"

void
gbx_frame_reader_init(struct gbx_frame_reader *r)
{
	memset(r, 0, sizeof(*r));
}

void
gbx_frame_reader_clear(struct gbx_frame_reader *r)
{
	free(r->payload);
	gbx_frame_reader_init(r);
}

/* After a frame was yielded, the next call starts the next one. */
static void
next_frame(struct gbx_frame_reader *r)
{
	if (r->done) {
		r->have = 0;
		r->done = 0;
	}
}

static enum gbx_frame_state
nomem(struct gbx_frame_reader *r)
{
	r->error = "out of memory";
	return (enum gbx_frame_state)(r->failed = GBX_FRAME_NOMEM);
}

size_t
gbx_frame_space(struct gbx_frame_reader *r, void **into)
{
	next_frame(r);
	if (r->have < GBX_HEADER_SIZE || r->failed != 0) {
		size_t have = r->have < GBX_HEADER_SIZE ? r->have : 0;
		*into = r->header + have;
		return GBX_HEADER_SIZE - have;
	}
	/* up to the frame's end or the buffer's, whichever comes first */
	*into = r->payload + (r->have - GBX_HEADER_SIZE);
	return (r->cap - 1 < r->h.length ? r->cap - 1 : r->h.length) - (r->have - GBX_HEADER_SIZE);
}

enum gbx_frame_state
gbx_frame_commit(struct gbx_frame_reader *r, size_t n)
{
	size_t before;

	if (r->failed != 0)
		return (enum gbx_frame_state)r->failed;
	next_frame(r);
	before = r->have;
	r->have += n;
	if (r->have < GBX_HEADER_SIZE)
		return GBX_FRAME_MORE;
	if (before < GBX_HEADER_SIZE) {
		/* the header just completed */
		const char *bad = gbx_decode_header(r->header, &r->h);
		if (bad != NULL) {
			r->error = bad;
			return (enum gbx_frame_state)(r->failed = GBX_FRAME_BAD);
		}
		/* a buffer for the first chunk; one of that size is kept between frames */
		size_t first = (r->h.length < GBX_FRAME_CHUNK ? r->h.length : GBX_FRAME_CHUNK) + 1;
		if (r->payload == NULL || r->cap < first || r->cap > GBX_FRAME_CHUNK + 1) {
			free(r->payload);
			r->cap = 0;
			if ((r->payload = malloc(first)) == NULL)
				return nomem(r);
			r->cap = first;
		}
	}
	if (r->have < GBX_HEADER_SIZE + (size_t)r->h.length) {
		size_t got = r->have - GBX_HEADER_SIZE;
		if (got == r->cap - 1) {
			/* full: double it, up to the frame's length */
			size_t more = got * 2 < r->h.length ? got * 2 : r->h.length;
			unsigned char *p = realloc(r->payload, more + 1);
			if (p == NULL)
				return nomem(r);
			r->payload = p;
			r->cap = more + 1;
		}
		return GBX_FRAME_MORE;
	}
	r->payload[r->h.length] = '\0';
	r->done = 1;
	return GBX_FRAME_READY;
}

enum gbx_frame_state
gbx_frame_feed(struct gbx_frame_reader *r, const void *buf, size_t len, size_t *used)
{
	enum gbx_frame_state state = GBX_FRAME_MORE;

	*used = 0;
	if (r->failed != 0)
		return (enum gbx_frame_state)r->failed;
	while (*used < len) {
		void *into;
		size_t room = gbx_frame_space(r, &into), n = len - *used < room ? len - *used : room;
		memcpy(into, (const unsigned char *)buf + *used, n);
		*used += n;
		if ((state = gbx_frame_commit(r, n)) != GBX_FRAME_MORE)
			return state;
	}
	return state;
}

void
gbx_frame_reader_trim(struct gbx_frame_reader *r)
{
	if (gbx_frame_pending(r) == 0 && r->cap > GBX_FRAME_CHUNK + 1) {
		free(r->payload);
		r->payload = NULL;
		r->cap = 0;
	}
}

size_t
gbx_frame_pending(const struct gbx_frame_reader *r)
{
	return r->done ? 0 : r->have;
}
