/* SPDX-License-Identifier: MIT */
/* Frame assembly: bytes in, whole frames out, no sockets (see protocol.h for
 * the frame layout). The reader owns the payload of the frame it yields;
 * callers read it straight into the reader's buffer (gbx_frame_space, then
 * gbx_frame_commit) or hand it bytes from elsewhere (gbx_frame_feed).
 *
 *   struct gbx_frame_reader r;
 *   gbx_frame_reader_init(&r);
 *   for (;;) {
 *           void *into;
 *           size_t room = gbx_frame_space(&r, &into);
 *           ssize_t n = recv(fd, into, room, 0);
 *           switch (gbx_frame_commit(&r, (size_t)n)) {
 *           case GBX_FRAME_MORE: continue;
 *           case GBX_FRAME_READY: use r.h, r.payload (r.h.length bytes + NUL); break;
 *           case GBX_FRAME_BAD: send an error naming r.error, close; break;
 *           case GBX_FRAME_NOMEM: close; break;
 *           }
 *   }
 */
#ifndef GEARBOX_PROTO_FRAME_H
#define GEARBOX_PROTO_FRAME_H

#include <stddef.h>

#include "proto/protocol.h"

#define GBX_FRAME_CHUNK (64u << 10)

enum gbx_frame_state {
	GBX_FRAME_MORE = 0,   /* the frame is not complete yet */
	GBX_FRAME_READY = 1,  /* r.h and r.payload hold a frame until the next call */
	GBX_FRAME_BAD = -1,   /* the header is broken (r.error says how): close the stream */
	GBX_FRAME_NOMEM = -2, /* no memory for the payload */
};

struct gbx_frame_reader {
	unsigned char header[GBX_HEADER_SIZE];
	size_t have;             /* bytes of the current frame, header included */
	struct gbx_header h;     /* valid once the header is complete */
	unsigned char *payload;  /* NUL-terminated when READY */
	size_t cap;              /* bytes allocated at payload (payload bytes + the NUL) */
	const char *error;       /* after GBX_FRAME_BAD (or GBX_FRAME_NOMEM) */
	int failed;              /* that state: every later call returns it */
	int done;                /* the last commit yielded a frame: the next starts afresh */
};

void gbx_frame_reader_init(struct gbx_frame_reader *r);
void gbx_frame_reader_clear(struct gbx_frame_reader *r);
/* Where the next bytes of the stream go and how many fit there (at least 1;
 * never past the current frame's end). */
size_t gbx_frame_space(struct gbx_frame_reader *r, void **into);
/* n (at most what gbx_frame_space said) bytes were written there. */
enum gbx_frame_state gbx_frame_commit(struct gbx_frame_reader *r, size_t n);
/* Copy bytes from buf into the reader up to the end of one frame. *used says
 * how many it took; call again with the rest after a GBX_FRAME_READY. */
enum gbx_frame_state gbx_frame_feed(struct gbx_frame_reader *r, const void *buf, size_t len, size_t *used);
/* Between frames: let a buffer larger than GBX_FRAME_CHUNK go (an idle
 * connection should not keep a 4 MiB frame's room). */
void gbx_frame_reader_trim(struct gbx_frame_reader *r);
/* Bytes of a frame begun but not complete (0 between frames). */
size_t gbx_frame_pending(const struct gbx_frame_reader *r);

#endif
