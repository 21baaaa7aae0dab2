/* SPDX-License-Identifier: MIT */
/* A JSON number with a fixed number of decimals, for --json output (json-c
 * writes doubles with 17 significant digits: 0.39100000000000001), or JSON
 * null when it is not finite (JSON has no NaN or infinity). */
#ifndef GEARBOX_COMMON_JSON_NUM_H
#define GEARBOX_COMMON_JSON_NUM_H

#include <math.h>
#include <stdio.h>

#include <json-c/json.h>

static inline struct json_object *
json_num(double v, int digits)
{
	char text[64];

	if (!isfinite(v))
		return NULL;
	snprintf(text, sizeof(text), "%.*f", digits, v);
	return json_object_new_double_s(v, text);
}

#endif
