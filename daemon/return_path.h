/* SPDX-License-Identifier: MIT */
/* A connection's return path: how long its replies take to reach the client
 * (each INFER reports the previous one's), kept to estimate the time a reply
 * still needs when a request is planned and admitted. */
#ifndef GEARBOX_DAEMON_RETURN_PATH_H
#define GEARBOX_DAEMON_RETURN_PATH_H

#define RETURN_SAMPLES 64 /* the last ones reported */

struct return_path {
	double us[RETURN_SAMPLES];
	unsigned n; /* reported so far (the ring's next slot mod RETURN_SAMPLES) */
};

void return_path_note(struct return_path *r, double us);
/* About the 98.5th percentile: the second largest of the samples (0 when
 * there are none). */
double return_path_slow(const struct return_path *r);
/* Their median (0 when none). */
double return_path_typical(const struct return_path *r);

#endif
