/* SPDX-License-Identifier: MIT */
/* The session record: one per OPEN, owned by the daemon's table (looked up
 * by id, kept sorted since ids only grow), counted in stats.c. Every call
 * here runs with daemon.lock held. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "common/cause.h"
#include "daemon/daemon.h"

struct session *
session_open(struct session_table *t, struct conn *owner, struct host *host, char **cause)
{
	struct session *s;

	if (t->n == t->cap) {
		unsigned cap = t->cap ? t->cap * 2 : 64;
		struct session **v = realloc(t->v, cap * sizeof(*v));
		if (v == NULL)
			return set_cause(cause, "out of memory"), NULL;
		t->v = v;
		t->cap = cap;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return set_cause(cause, "out of memory"), NULL;
	s->id = ++t->next_id;
	s->owner = owner;
	s->uid = owner->uid;
	s->host = host;
	t->v[t->n++] = s;
	return s;
}

static int
index_of(const struct session_table *t, uint32_t id)
{
	unsigned lo = 0, hi = t->n;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;
		if (t->v[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < t->n && t->v[lo]->id == id ? (int)lo : -1;
}

struct session *
session_find(struct session_table *t, uint32_t id)
{
	int i = index_of(t, id);

	return i < 0 ? NULL : t->v[i];
}

void
session_close(struct session_table *t, struct session *s)
{
	int i = index_of(t, s->id);

	if (i < 0)
		return;
	memmove(&t->v[i], &t->v[i + 1], (t->n - (unsigned)i - 1) * sizeof(*t->v));
	t->n--;
	free(s);
}

void
session_close_owned(struct session_table *t, struct conn *owner)
{
	unsigned k = 0;

	for (unsigned i = 0; i < t->n; i++) {
		if (t->v[i]->owner == owner)
			free(t->v[i]);
		else
			t->v[k++] = t->v[i];
	}
	t->n = k;
}

unsigned
session_count_owned(const struct session_table *t, const struct conn *owner)
{
	unsigned n = 0;

	for (unsigned i = 0; i < t->n; i++)
		n += t->v[i]->owner == owner;
	return n;
}

void
session_table_free(struct session_table *t)
{
	for (unsigned i = 0; i < t->n; i++)
		free(t->v[i]);
	free(t->v);
	memset(t, 0, sizeof(*t));
}
