/* SPDX-License-Identifier: MIT */
/* INFER's fast reader (daemon/decode.c, infer_fast) against json-c: every
 * request is decoded by decode_request (the fast reader, json-c where it
 * declines) and by decode_request_json (json-c alone), and the two must
 * agree on everything, refusals' messages included. The requests are what
 * libgearbox writes (client/infer.c, infer_head) for many values, which the
 * fast reader must take; hand-made variants around that form; and random
 * mutations of both. */
#include "config.h"
#include "tests/common/check_main.h"
#include "tests/common/compare.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/infer.h"
#include "daemon/decode.h"
#include "proto/protocol.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t
next_random(void)
{
	return xorshift64(&rng);
}

/* Both decoders on text NUL input; their results must be equal. true when
 * the fast reader took it (a decoded INFER without json-c's object). */
static bool
compare(const char *text, size_t text_len)
{
	static const unsigned char input[] = { 1, 2, 3, 4 };
	size_t len = text_len + 1 + sizeof(input);
	unsigned char *payload = malloc(len + 1);
	struct decode_error ef, ej;
	struct decoded qf, qj;
	int rf, rj;
	bool fast;

	ck_assert_ptr_nonnull(payload);
	memcpy(payload, text, text_len);
	payload[text_len] = '\0';
	memcpy(payload + text_len + 1, input, sizeof(input));
	payload[len] = '\0'; /* as the frame reader leaves it */
	rf = decode_request(GBX_MSG_INFER, payload, len, &qf, &ef);
	rj = decode_request_json(GBX_MSG_INFER, payload, len, &qj, &ej);
	ck_assert_msg(rf == rj, "%.*s: fast %d, json-c %d", (int)text_len, text, rf, rj);
	if (rf != 0) {
		ck_assert_str_eq(ef.code, ej.code);
		ck_assert_str_eq(ef.why, ej.why);
		ck_assert_ptr_null(qf.json);
		free(payload);
		return false;
	}
	fast = qf.json == NULL;
	ck_assert_ptr_nonnull(qj.json);
	ck_assert_msg(qf.session == qj.session, "%.*s: session %u, json-c %u", (int)text_len, text, qf.session,
	              qj.session);
	ck_assert_msg(qf.pixels == qj.pixels, "%.*s: pixels", (int)text_len, text);
	ck_assert_msg(qf.has_sent_ns == qj.has_sent_ns && qf.sent_ns == qj.sent_ns, "%.*s: sent_ns %llu, json-c %llu",
	              (int)text_len, text, (unsigned long long)qf.sent_ns, (unsigned long long)qj.sent_ns);
	ck_assert_msg(qf.has_return_us == qj.has_return_us && same_double(qf.return_us, qj.return_us),
	              "%.*s: return_us %.17g, json-c %.17g", (int)text_len, text, qf.return_us, qj.return_us);
	ck_assert(qf.input == qj.input && qf.input_len == qj.input_len);
	ck_assert(qf.input == payload + text_len + 1 && qf.input_len == sizeof(input));
	ck_assert(qf.model == NULL && qj.model == NULL && qf.policy == NULL && qj.policy == NULL);
	ck_assert(qf.budget.deadline_us == 0 && qf.priority == 0 && !qf.all);
	decoded_clear(&qf);
	decoded_clear(&qj);
	ck_assert_ptr_null(qf.json);
	free(payload);
	return fast;
}

static bool
compare_str(const char *text)
{
	return compare(text, strlen(text));
}

static const double return_values[] = { -1, 0, 0.04, 0.05, 0.06, 0.25, 1, 1.25, 17.5, 123.45, 999.95, 65536.1,
	                                999999.94, 999999.96, 1e6, 12345678.9, 4503599627370495.5, 1e20 };

/* libgearbox's requests: the fast reader takes them all, to json-c's values. */
START_TEST(test_writer_forms)
{
	static const uint32_t sessions[] = { 0, 1, 2, 9, 10, 99, 65535, 2147483647u, 2147483648u, 4294967295u };
	static const uint64_t sent[] = { 0, 1, 9, 10, 123456789, 1000000000000000ull, 999999999999999999ull };
	char head[INFER_HEAD_MAX];
	unsigned taken = 0, n = 0;

	for (unsigned s = 0; s < sizeof(sessions) / sizeof(sessions[0]); s++)
		for (unsigned t = 0; t < sizeof(sent) / sizeof(sent[0]); t++)
			for (unsigned r = 0; r < sizeof(return_values) / sizeof(return_values[0]); r++)
				for (int px = 0; px <= 1; px++) {
					int len = infer_head(head, sessions[s], px, sent[t], return_values[r]);
					ck_assert_int_lt(len, INFER_HEAD_MAX);
					ck_assert_msg(compare(head, (size_t)len), "%s: not taken by the fast reader", head);
					taken++;
					n++;
				}
	for (unsigned i = 0; i < 20000; i++) {
		uint32_t session = (uint32_t)next_random();
		uint64_t sent_ns = next_random() % 1000000000000000000ull;
		double ret = (double)(next_random() % 100000000) / 100.0; /* a measured return path, < 1e6 us */
		int len = infer_head(head, session, next_random() & 1, sent_ns >> (next_random() % 60),
		                     next_random() % 4 == 0 ? -1 : ret);
		ck_assert_msg(compare(head, (size_t)len), "%s: not taken by the fast reader", head);
		taken++;
		n++;
	}
	ck_assert_uint_eq(taken, n);
}
END_TEST

/* Values past what the fast reader takes: json-c decides, the same way. */
START_TEST(test_writer_extremes)
{
	char head[INFER_HEAD_MAX];
	int len;

	/* a sent_ns of 19 or 20 digits: json-c's (uint64 kept, int64 clamped) */
	len = infer_head(head, 1, false, 1000000000000000000ull, 5);
	ck_assert(!compare(head, (size_t)len));
	len = infer_head(head, 1, false, UINT64_MAX, 5);
	ck_assert(!compare(head, (size_t)len));
	/* a return path so long that its text is cut (the client's buffer) */
	len = infer_head(head, 1, true, 5, 1e300);
	compare(head, (size_t)len);
	/* the canned frame the daemon rehearses with (serve.c, rehearse_request) */
	ck_assert(compare_str("{\"session\":1,\"sent_ns\":1,\"return_us\":1}"));
}
END_TEST

/* Hand-made forms: what the fast reader also takes (1), what it leaves to
 * json-c (0, accepted or refused), either (-1: strtod's underflow, which
 * the C library may or may not flag). Both give the same in every case. */
static const struct variant {
	const char *text;
	int fast;
} variants[] = {
	{ "{}", 1 },
	{ "{ }", 1 },
	{ "{\"session\":3}", 1 },
	{ "{ \"session\" : 3 , \"pixels\" : false }", 1 },
	{ "{\n\t\"sent_ns\":5,\r\n\"session\":3}", 1 },
	{ "{\"return_us\":7,\"pixels\":true,\"sent_ns\":0,\"session\":4294967295}", 1 },
	{ "{\"return_us\":-3.5}", 1 },
	{ "{\"return_us\":-0}", 1 },
	{ "{\"return_us\":-0.0}", 1 },
	{ "{\"return_us\":0.1e1}", 1 },
	{ "{\"return_us\":1E3}", 1 },
	{ "{\"return_us\":1e-3}", 1 },
	{ "{\"return_us\":1e+22}", 1 },
	{ "{\"return_us\":1e23}", 1 },
	{ "{\"return_us\":123456789012345678901234567890}", 0 },
	{ "{\"return_us\":1234567890123456789012.5}", 1 },
	{ "{\"return_us\":9007199254740993.0}", 1 },
	{ "{\"return_us\":0.30000000000000004}", 1 },
	{ "{\"return_us\":2.2250738585072014e-308}", 1 },
	{ "{\"return_us\":2.2250738585072011e-308}", -1 },
	{ "{\"return_us\":4.9e-324}", -1 },
	{ "{\"return_us\":1e400}", 0 },
	{ "{\"return_us\":1e-400}", 0 },
	{ "{\"return_us\":9223372036854775807}", 1 },
	{ "{\"return_us\":-9223372036854775808}", 0 },
	{ "{\"return_us\":999999999999999999}", 1 },
	{ "{\"return_us\":NaN}", 0 },
	{ "{\"return_us\":nan}", 0 },
	{ "{\"return_us\":Infinity}", 0 },
	{ "{\"return_us\":-Infinity}", 0 },
	{ "{\"return_us\":null}", 0 },
	{ "{\"return_us\":\"5\"}", 0 },
	{ "{\"return_us\":true}", 0 },
	{ "{\"return_us\":.5}", 0 },
	{ "{\"return_us\":5.}", 0 },
	{ "{\"return_us\":05}", 0 },
	{ "{\"return_us\":+5}", 0 },
	{ "{\"return_us\":-}", 0 },
	{ "{\"return_us\":1e}", 0 },
	{ "{\"return_us\":0x10}", 0 },
	{ "{\"session\":4294967296}", 0 },
	{ "{\"session\":-1}", 0 },
	{ "{\"session\":-0}", 0 },
	{ "{\"session\":01}", 0 },
	{ "{\"session\":1.0}", 0 },
	{ "{\"session\":1e0}", 0 },
	{ "{\"session\":null}", 0 },
	{ "{\"session\":\"1\"}", 0 },
	{ "{\"session\":true}", 0 },
	{ "{\"session\":[1]}", 0 },
	{ "{\"session\":{}}", 0 },
	{ "{\"session\":99999999999999999999}", 0 },
	{ "{\"sent_ns\":-5}", 0 },
	{ "{\"sent_ns\":5.5}", 0 },
	{ "{\"sent_ns\":null}", 0 },
	{ "{\"sent_ns\":9223372036854775807}", 0 },
	{ "{\"sent_ns\":18446744073709551615}", 0 },
	{ "{\"sent_ns\":18446744073709551616}", 0 },
	{ "{\"pixels\":1}", 0 },
	{ "{\"pixels\":0}", 0 },
	{ "{\"pixels\":\"\"}", 0 },
	{ "{\"pixels\":\"no\"}", 0 },
	{ "{\"pixels\":TRUE}", 0 },
	{ "{\"pixels\":True}", 0 },
	{ "{\"pixels\":null}", 0 },
	{ "{\"pixels\":tru}", 0 },
	{ "{\"pixels\":truee}", 0 },
	{ "{\"session\":1,\"session\":2}", 0 },
	{ "{\"pixels\":true,\"pixels\":false}", 0 },
	{ "{\"session\":1,\"model\":\"x\"}", 0 },
	{ "{\"session\":1,\"\":0}", 0 },
	{ "{\"sess\\u0069on\":7}", 0 },
	{ "{\"session\\u0000\":7}", 0 },
	{ "{'session':7}", 0 },
	{ "{session:7}", 0 },
	{ "{\"session\":7,}", 0 },
	{ "{,\"session\":7}", 0 },
	{ "{\"session\":7 \"pixels\":true}", 0 },
	{ "{\"session\" 7}", 0 },
	{ "{\"session\":7", 0 },
	{ "{\"session", 0 },
	{ "{\"session\":7}}", 0 },
	{ "{\"session\":7} ", 0 },
	{ " {\"session\":7}", 0 },
	{ "{\"session\":7}x", 0 },
	{ "{\"session\":7}{}", 0 },
	{ "{/* c */\"session\":7}", 0 },
	{ "{\"session\":7// c\n}", 0 },
	{ "{\"session\":\v7}", 0 },
	{ "{\"session\":\f7}", 0 },
	{ "[]", 0 },
	{ "[{\"session\":7}]", 0 },
	{ "\"session\"", 0 },
	{ "7", 0 },
	{ "null", 0 },
	{ "", 0 },
	{ " ", 0 },
};

START_TEST(test_variants)
{
	for (unsigned i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		bool fast = compare_str(variants[i].text);
		ck_assert_msg(variants[i].fast < 0 || fast == (variants[i].fast == 1), "%s: the fast reader %s it",
		              variants[i].text, fast ? "took" : "did not take");
	}
}
END_TEST

/* Random edits of the writer's requests and of the variants. */
START_TEST(test_mutations)
{
	static const char alphabet[] = "{}[]\":,.-+0123456789eEtrufalsn\\/ \t\n\rxu'";
	char head[INFER_HEAD_MAX], text[2 * INFER_HEAD_MAX];
	unsigned fast = 0;

	for (unsigned i = 0; i < 60000; i++) {
		size_t len;
		if (i % 3 == 0) {
			snprintf(text, sizeof(text), "%s", variants[next_random() % (sizeof(variants) / sizeof(variants[0]))].text);
		} else {
			int r = (int)(next_random() % (sizeof(return_values) / sizeof(return_values[0])));
			infer_head(head, (uint32_t)next_random() >> (next_random() % 32), next_random() & 1,
			           next_random() >> (next_random() % 64), return_values[r]);
			snprintf(text, sizeof(text), "%s", head);
		}
		len = strlen(text);
		for (unsigned edits = 1 + (unsigned)(next_random() % 3); edits > 0; edits--) {
			size_t at = len ? next_random() % len : 0;
			char c = alphabet[next_random() % (sizeof(alphabet) - 1)];
			switch (next_random() % 3) {
			case 0: /* replace */
				if (len)
					text[at] = c;
				break;
			case 1: /* insert */
				if (len + 1 < sizeof(text)) {
					memmove(text + at + 1, text + at, len - at + 1);
					text[at] = c;
					len++;
				}
				break;
			default: /* delete */
				if (len) {
					memmove(text + at, text + at + 1, len - at);
					len--;
				}
			}
		}
		fast += compare(text, len);
	}
	ck_assert_uint_gt(fast, 1000); /* the mutations reach the fast reader's paths too */
}
END_TEST

/* Other message types do not go to the fast reader. */
START_TEST(test_other_types_unchanged)
{
	static const char open[] = "{\"model\":\"m\",\"deadline_us\":5000}";
	struct decode_error err;
	struct decoded q;

	ck_assert_int_eq(decode_request(GBX_MSG_OPEN, (const unsigned char *)open, sizeof(open) - 1, &q, &err), 0);
	ck_assert_ptr_nonnull(q.json);
	ck_assert_str_eq(q.model, "m");
	ck_assert_uint_eq(q.budget.deadline_us, 5000);
	decoded_clear(&q);
	/* an INFER without its NUL: refused before either reader */
	ck_assert_int_eq(decode_request(GBX_MSG_INFER, (const unsigned char *)open, sizeof(open) - 1, &q, &err), -1);
	ck_assert_str_eq(err.why, "infer payload needs JSON, a NUL byte, then the input");
}
END_TEST

static Suite *
decode_suite(void)
{
	Suite *s = suite_create("decode");
	TCase *tc = tcase_create("infer_fast");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_writer_forms);
	tcase_add_test(tc, test_writer_extremes);
	tcase_add_test(tc, test_variants);
	tcase_add_test(tc, test_mutations);
	tcase_add_test(tc, test_other_types_unchanged);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite(decode_suite());
}
