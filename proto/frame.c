/* Frame assembly (see frame.h): the header is checked as soon as its 16
 * bytes are in, the payload buffer sized from it, and a frame is yielded when
 * its last payload byte arrives. A broken header or a failed allocation is
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

size_t
gbx_frame_space(struct gbx_frame_reader *r, void **into)
{
	next_frame(r);
	if (r->have < GBX_HEADER_SIZE || r->failed != 0) {
		size_t have = r->have < GBX_HEADER_SIZE ? r->have : 0;
		*into = r->header + have;
		return GBX_HEADER_SIZE - have;
	}
	*into = r->payload + (r->have - GBX_HEADER_SIZE);
	return r->h.length - (r->have - GBX_HEADER_SIZE);
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
		free(r->payload);
		if ((r->payload = malloc((size_t)r->h.length + 1)) == NULL) {
			r->error = "out of memory";
			return (enum gbx_frame_state)(r->failed = GBX_FRAME_NOMEM);
		}
	}
	if (r->have < GBX_HEADER_SIZE + (size_t)r->h.length)
		return GBX_FRAME_MORE;
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

size_t
gbx_frame_pending(const struct gbx_frame_reader *r)
{
	return r->done ? 0 : r->have;
}
