/* SPDX-License-Identifier: MIT */
/* Strict JSON token readers for the fast readers of the request path: an
 * INFER's JSON as libgearbox writes it (daemon/decode.c) and the INFER reply
 * as gearboxd writes it (client/infer.c). Each reads one token of the plain
 * form those writers produce, to the value json-c would give for it, and
 * returns false on anything else; its caller then hands the whole text to
 * json-c. So these never decide what is valid JSON or what a refusal says:
 * they make the common case cheap, and every other case json-c's. The text
 * must be NUL-terminated (a NUL ends every token). Not installed. */
#ifndef GEARBOX_PROTO_JSON_SCAN_H
#define GEARBOX_PROTO_JSON_SCAN_H

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The whitespace JSON allows (json-c skips the same four). */
static inline const char *
js_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* A literal (true, false, null) in lower case, as JSON spells it (json-c
 * also takes other cases: those go to it). */
static inline bool
js_word(const char **p, const char *word, size_t n)
{
	if (strncmp(*p, word, n) != 0)
		return false;
	*p += n;
	return true;
}
#define JS_WORD(p, w) js_word((p), (w), sizeof(w) - 1)

/* An object key: a string of plain characters (no escape, no control
 * character), pointed to where it is (*key, *len). */
static inline bool
js_key(const char **p, const char **key, size_t *len)
{
	const char *s = *p;

	if (*s++ != '"')
		return false;
	*key = s;
	while (*s != '"') {
		if ((unsigned char)*s < 0x20 || *s == '\\')
			return false;
		s++;
	}
	*len = (size_t)(s - *key);
	*p = s + 1;
	return true;
}
#define JS_IS_KEY(key, len, name) ((len) == sizeof(name) - 1 && memcmp((key), (name), sizeof(name) - 1) == 0)

/* A non-negative JSON integer of at most max_digits digits (at most 18, so
 * that it is exact in json-c's int64): no sign, no leading zero, no
 * fraction or exponent. */
static inline bool
js_uint(const char **p, unsigned max_digits, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;
	unsigned n = 0;

	while (*s >= '0' && *s <= '9') {
		if (++n > max_digits)
			return false;
		x = x * 10 + (uint64_t)(*s++ - '0');
	}
	if (n == 0 || (n > 1 && **p == '0') || *s == '.' || *s == 'e' || *s == 'E')
		return false;
	*p = s;
	*v = x;
	return true;
}

/* A JSON number (RFC 8259's grammar, nothing looser) as
 * json_object_get_double gives it. json-c keeps one without a fraction or
 * an exponent as an int64 (converted to double when asked), and reads any
 * other with strtod in the C locale. A decimal of at most 2^53 with a power
 * of ten up to 22 is one correctly rounded multiplication or division of two
 * exact doubles, which is what strtod returns (Clinger's fast path); any
 * other goes to strtod itself. false: not such a number, an integer beyond
 * int64, out of double's range, or a strtod that reads it otherwise (a
 * locale whose decimal point is not '.'). */
static inline bool
js_number(const char **p, double *v)
{
	static const double js_pow10[] = { 1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
		                        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22 };
	const char *s = *p;
	bool neg = false, is_int = true, overflow = false;
	uint64_t m = 0;
	long exp10 = 0, e = 0;
	bool eneg = false;

	if (*s == '-') {
		neg = true;
		s++;
	}
	if (*s == '0') {
		s++;
	} else if (*s >= '1' && *s <= '9') {
		for (; *s >= '0' && *s <= '9'; s++) {
			if (m > (UINT64_MAX - 9) / 10)
				overflow = true;
			else
				m = m * 10 + (uint64_t)(*s - '0');
		}
	} else {
		return false;
	}
	if (*s == '.') {
		is_int = false;
		if (!(*++s >= '0' && *s <= '9'))
			return false;
		for (; *s >= '0' && *s <= '9'; s++) {
			if (m > (UINT64_MAX - 9) / 10) {
				overflow = true;
			} else {
				m = m * 10 + (uint64_t)(*s - '0');
				exp10--;
			}
		}
	}
	if (*s == 'e' || *s == 'E') {
		is_int = false;
		s++;
		if (*s == '+' || *s == '-')
			eneg = *s++ == '-';
		if (!(*s >= '0' && *s <= '9'))
			return false;
		for (; *s >= '0' && *s <= '9'; s++)
			if (e < 100000)
				e = e * 10 + (*s - '0');
		exp10 += eneg ? -e : e;
	}
	if (is_int) {
		if (overflow || m > (uint64_t)INT64_MAX)
			return false;
		*v = (double)(neg ? -(int64_t)m : (int64_t)m);
		*p = s;
		return true;
	}
#if FLT_EVAL_METHOD == 0
	if (!overflow && m <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22) {
		double d = (double)m;
		d = exp10 < 0 ? d / js_pow10[-exp10] : d * js_pow10[exp10];
		*v = neg ? -d : d;
		*p = s;
		return true;
	}
#endif
	{
		int saved = errno;
		char *end;
		double d;

		errno = 0;
		d = strtod(*p, &end);
		if (end != s || errno != 0 || !isfinite(d)) {
			errno = saved;
			return false;
		}
		errno = saved;
		*v = d;
		*p = s;
		return true;
	}
}

static inline int
js_hex(unsigned char h)
{
	return h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
}

/* A JSON string decoded into out, NUL-terminated (out has room for as many
 * bytes as the string's text), *len bytes: plain characters (bytes of 0x80
 * and over as they are, as json-c keeps them), the two-character escapes,
 * and \u0001 to \u007f (what gearboxd writes for control characters). false
 * on a control character, \u0000 (json-c keeps a NUL inside the string),
 * or \u0080 and over (UTF-8 encoding, surrogates and json-c's replacement
 * characters are its business). */
static inline bool
js_string(const char **p, char *out, size_t *len)
{
	const unsigned char *s = (const unsigned char *)*p;
	char *o = out;

	if (*s++ != '"')
		return false;
	for (;;) {
		const unsigned char *run = s;
		while (*s >= 0x20 && *s != '"' && *s != '\\')
			s++;
		memcpy(o, run, (size_t)(s - run));
		o += s - run;
		if (*s == '"')
			break;
		if (*s != '\\')
			return false; /* a control character or the end */
		switch (*++s) {
		case '"': case '\\': case '/': *o++ = (char)*s; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u': {
			unsigned c = 0;
			for (int i = 1; i <= 4; i++) {
				int h = js_hex(s[i]); /* a NUL is not one */
				if (h < 0)
					return false;
				c = c * 16 + (unsigned)h;
			}
			if (c == 0 || c >= 0x80)
				return false;
			*o++ = (char)c;
			s += 4;
			break;
		}
		default:
			return false;
		}
		s++;
	}
	*o = '\0';
	*len = (size_t)(o - out);
	*p = (const char *)s + 1;
	return true;
}

#endif
