/* SPDX-License-Identifier: MIT */
/* gearboxctl — talk to a running gearboxd. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#ifdef HAVE_PNG
#include <png.h>
#endif

#include "client/gearbox.h"
#include "common/clock.h"
#include "common/json_num.h"
#include "common/plot.h"
#include "proto/protocol.h"
#include "common/dataset.h"

#define EXIT_USAGE 2

struct opts {
	const char *socket;
	bool json;
	const char *model, *idx, *raw, *image;
	unsigned long index, count;
	double rate;
	struct gbx_budget budget;
	const char *schedule;   /* "SECONDS:DEADLINE_US,..." */
	const char *policy, *plot;
	bool all;               /* pareto: every point */
	double interval;
};

/* Each command's usage, so that `gearboxctl COMMAND --help` shows only its own. */
static const struct command {
	const char *name, *args, *summary, *options;
} commands[] = {
	{ "status", "", "what the daemon serves, sessions, hit rates", "" },
	{ "models", "", "hosted models: groups, input shape, accuracy per g", "" },
	{ "infer", "INPUT [BUDGET]", "run inference; one JSON line per request with --json",
	  "INPUT:  --idx FILE [--index I]   IDX images (gzip or not), e.g.\n"
	  "                                 /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz\n"
	  "        --image FILE             a PNG or binary PGM (P5) image (PNG colour: R, G, B planes)\n"
	  "        --raw FILE               float32 values, already normalised\n"
	  "        --count N [--rate HZ]    a stream of N requests (cycling through the IDX images)\n"
	  "        --model NAME             which hosted model (needed when several are)\n"
	  "        --policy NAME            the session's policy (default: the daemon's)\n"
	  "BUDGET: --deadline-us N  --energy-uj N  --min-accuracy X\n"
	  "        --deadline-schedule 'T:US,...'   change the deadline T seconds into a stream\n" },
	{ "budget", "SESSION BUDGET", "change a running session's budget",
	  "BUDGET: --deadline-us N  --energy-uj N  --min-accuracy X\n" },
	{ "watch", "[--interval S]", "live view: operating point, latency, hit rate, events",
	  "  --interval S     seconds between status lines (default 1)\n" },
	{ "platform", "", "the daemon's view of the platform", "" },
	{ "reload", "", "re-read configuration and policies, load changed model files again (root, admin group)", "" },
	{ "pareto", "[--model NAME] [--policy P] [--all] [--plot FILE.png]",
	  "the Pareto front of a model's operating points, as the daemon predicts them now",
	  "  --model NAME     which hosted model (needed when several are)\n"
	  "  --policy NAME    limit the points as this policy does (default: the daemon's)\n"
	  "  --all            print every point, not only the front\n"
	  "  --plot FILE.png  draw the points (needs gnuplot)\n" },
	{ "calibrate", "[--model NAME]", "re-measure a model's latency predictor (root, gearbox-admin group)",
	  "  --model NAME     which hosted model (needed when several are)\n" },
	{ "plan", "", "the tenant plan: what each session was given and why, what binds", "" },
};

static const char common_options[] =
	"  --socket PATH   gearboxd's socket (default $GEARBOX_SOCKET or " GBX_DEFAULT_SOCKET ")\n"
	"  --json          machine-readable output\n"
	"  -h, --help      this help (after a command: that command's)\n";

static const struct command *
find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void
usage(FILE *out)
{
	fputs("Usage: gearboxctl [--socket PATH] [--json] COMMAND [OPTIONS]\n\nCommands:\n", out);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n%s\n"
	        "'gearboxctl COMMAND --help' shows that command's options.\n"
	        "\n"
	        "Environment: GEARBOX_BUSY_POLL_US=N polls up to N us for each reply before sleeping\n"
	        "(no wake-up when it comes in time; costs a busy CPU, see libgearbox(3)).\n"
	        "GEARBOX_WAKE_AHEAD_US=N: otherwise, wake N us before a reply is due and poll for it\n"
	        "(default 20; 0 sleeps until the reply wakes it).\n",
	        common_options);
}

static void
command_usage(const struct command *cmd, FILE *out)
{
	fprintf(out, "Usage: gearboxctl [--socket PATH] [--json] %s%s%s\n\n%s\n\n%s%s%s", cmd->name, *cmd->args ? " " : "",
	        cmd->args, cmd->summary, cmd->options, *cmd->options ? "\n" : "", common_options);
}

static int
error_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
error_out(const char *fmt, ...)
{
	va_list ap;

	fputs("gearboxctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* ------------------------------------------------------------------------ */
/* Inputs. */

struct images {
	size_t count, size;  /* images, bytes per image */
	uint8_t *pixels;     /* uint8 images, or NULL */
	float *values;       /* float32 values (--raw), or NULL */
};

static int
read_idx(const char *path, struct images *im)
{
	struct dataset ds;
	char *cause = NULL;

	if (dataset_read_idx_images(&ds, path, &cause) != 0) {
		error_out("%s", cause);
		free(cause);
		return 1;
	}
	im->count = ds.count;
	im->size = (size_t)ds.height * ds.width;
	im->pixels = ds.pixels; /* ours now: freed with the other inputs */
	ds.pixels = NULL;
	dataset_close(&ds);
	if ((uint64_t)im->count * im->size > (1ull << 32)) {
		free(im->pixels);
		im->pixels = NULL;
		return error_out("%s: absurd IDX file (over 4 GiB of images)", path);
	}
	return 0;
}

/* The next token of a PGM header, skipping white space and '#' comments
 * (to the end of their line), as netpbm and GIMP write them. */
static int
pgm_number(FILE *f, unsigned *v)
{
	int ch;
	unsigned long n = 0;
	bool digits = false;

	for (;;) {
		ch = fgetc(f);
		if (ch == '#')
			while ((ch = fgetc(f)) != EOF && ch != '\n' && ch != '\r')
				;
		else if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r' && ch != '\v' && ch != '\f')
			break;
	}
	for (; ch >= '0' && ch <= '9'; ch = fgetc(f)) {
		digits = true;
		if ((n = n * 10 + (unsigned long)(ch - '0')) > 1u << 26)
			return -1;
	}
	/* one white-space character ends the token (after maxval it is the last header byte) */
	if (!digits || (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r' && ch != '\v' && ch != '\f' && ch != '#'))
		return -1;
	if (ch == '#') /* a comment right after the number: to the end of its line */
		while ((ch = fgetc(f)) != EOF && ch != '\n' && ch != '\r')
			;
	*v = (unsigned)n;
	return 0;
}

static int
read_pgm(const char *path, struct images *im)
{
	FILE *f = fopen(path, "rb");
	unsigned w, h, maxv;

	if (f == NULL)
		return error_out("%s: %s", path, strerror(errno));
	if (fgetc(f) != 'P' || fgetc(f) != '5' || pgm_number(f, &w) != 0 || pgm_number(f, &h) != 0 ||
	    pgm_number(f, &maxv) != 0 || maxv != 255 || w == 0 || h == 0 || (uint64_t)w * h > 1u << 26) {
		fclose(f);
		return error_out("%s: not an 8-bit binary PGM (P5, maxval 255) image", path);
	}
	im->count = 1;
	im->size = (size_t)w * h;
	im->pixels = malloc(im->size);
	if (im->pixels == NULL || fread(im->pixels, 1, im->size, f) != im->size) {
		fclose(f);
		return error_out("%s: truncated PGM image", path);
	}
	fclose(f);
	return 0;
}

/* PNG through libpng's simplified API: grey images as one plane, colour as
 * three (R, G, B planes, the CHW order models take). */
static int
read_png(const char *path, struct images *im)
{
#ifdef HAVE_PNG
	png_image img;
	uint8_t *rgb;
	bool grey;

	memset(&img, 0, sizeof(img));
	img.version = PNG_IMAGE_VERSION;
	if (!png_image_begin_read_from_file(&img, path))
		return error_out("%s: not a readable PNG (%s)", path, img.message);
	grey = (img.format & PNG_FORMAT_FLAG_COLOR) == 0;
	img.format = grey ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
	rgb = malloc(PNG_IMAGE_SIZE(img));
	if (rgb == NULL || !png_image_finish_read(&img, NULL, rgb, 0, NULL)) {
		free(rgb);
		png_image_free(&img);
		return error_out("%s: cannot decode the PNG (%s)", path, img.message);
	}
	im->count = 1;
	im->size = (size_t)img.width * img.height * (grey ? 1 : 3);
	if (grey) {
		im->pixels = rgb;
		return 0;
	}
	im->pixels = malloc(im->size);
	for (size_t i = 0; i < (size_t)img.width * img.height; i++)
		for (unsigned ch = 0; ch < 3; ch++)
			im->pixels[ch * img.width * img.height + i] = rgb[3 * i + ch];
	free(rgb);
	return 0;
#else
	return error_out("%s: this gearboxctl was built without libpng; use a PGM image", path);
#endif
}

static int
read_image(const char *path, struct images *im)
{
	size_t n = strlen(path);

	if (n > 4 && strcasecmp(path + n - 4, ".png") == 0)
		return read_png(path, im);
	return read_pgm(path, im);
}

static int
read_raw(const char *path, struct images *im)
{
	FILE *f = fopen(path, "rb");
	long len;

	if (f == NULL)
		return error_out("%s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	if (len <= 0 || len % 4 != 0) {
		fclose(f);
		return error_out("%s: a raw input holds float32 values (size a multiple of 4)", path);
	}
	im->count = 1;
	im->size = (size_t)len / 4;
	im->values = malloc((size_t)len);
	if (im->values == NULL || fread(im->values, 4, im->size, f) != im->size) {
		fclose(f);
		return error_out("%s: read error", path);
	}
	fclose(f);
	return 0;
}

/* ------------------------------------------------------------------------ */

/* One object on one line (JSON Lines), then freed. */
static void
print_line(struct json_object *j)
{
	puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(j);
}

static void
print_reply(const char *reply)
{
	struct json_object *o = json_tokener_parse(reply);

	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static int
simple_call(struct gbx_conn *c, int (*request)(struct gbx_conn *, char **), const struct opts *o,
            void (*text)(struct json_object *))
{
	char *reply = NULL;
	struct json_object *r;

	if (request(c, &reply) != 0)
		return error_out("%s", gbx_last_error(c));
	if (o->json || text == NULL) {
		print_reply(reply);
	} else {
		r = json_tokener_parse(reply);
		text(r);
		json_object_put(r);
	}
	free(reply);
	return 0;
}

/* RELOAD: the daemon keeps what it had when a file is refused; say so, and
 * exit 1, so that a script notices. */
static int
cmd_reload(struct gbx_conn *c, const struct opts *o)
{
	char *reply = NULL;
	struct json_object *r, *v;
	bool ok;

	if (gbx_reload(c, &reply) != 0)
		return error_out("%s", gbx_last_error(c));
	r = json_tokener_parse(reply);
	ok = r != NULL && json_object_object_get_ex(r, "reloaded", &v) && json_object_get_boolean(v);
	if (o->json)
		print_reply(reply);
	else if (ok)
		printf("reloaded\n");
	if (!o->json && r != NULL && json_object_object_get_ex(r, "loading", &v))
		for (size_t i = 0; i < json_object_array_length(v); i++) {
			struct json_object *e = json_object_array_get_idx(v, i), *name, *path;
			if (json_object_object_get_ex(e, "model", &name) && json_object_object_get_ex(e, "path", &path))
				printf("loading again: %s (%s changed on disk)\n", json_object_get_string(name),
				       json_object_get_string(path));
		}
	if (!ok)
		fprintf(stderr, "gearboxctl: reload refused: %s\n",
		        r && json_object_object_get_ex(r, "error", &v) ? json_object_get_string(v) : reply);
	json_object_put(r);
	free(reply);
	return ok ? 0 : 1;
}

/* A field for text output. json-c writes a double with 17 significant digits
 * (0.39100000000000001); six are plenty to read. The strings live in a ring,
 * so that one printf can show many fields. */
static const char *
str_of(struct json_object *o, const char *key)
{
	static char ring[32][32];
	static unsigned next;
	struct json_object *v = json_object_object_get(o, key);
	char *text;

	if (v == NULL)
		return "-";
	if (!json_object_is_type(v, json_type_double))
		return json_object_get_string(v);
	text = ring[next++ % 32];
	snprintf(text, sizeof(ring[0]), "%.6g", json_object_get_double(v));
	return text;
}

/* A model's per-layer plans (STATUS models[].layer_plans), one line per plan
 * file with the placements and thread counts it runs on. */
static void
layer_plans_text(struct json_object *plans)
{
	size_t n = plans != NULL && json_object_is_type(plans, json_type_array) ? json_object_array_length(plans) : 0;

	for (size_t i = 0; i < n; i++) {
		const char *label = str_of(json_object_array_get_idx(plans, i), "plan");
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = strcmp(str_of(json_object_array_get_idx(plans, j), "plan"), label) == 0;
		if (seen)
			continue;
		printf("    per-layer plan %s on", label);
		for (size_t j = i; j < n; j++) {
			struct json_object *p = json_object_array_get_idx(plans, j);
			if (strcmp(str_of(p, "plan"), label) == 0)
				printf(" %s x%s", str_of(p, GBX_KEY_PLACEMENT), str_of(p, GBX_KEY_THREADS));
		}
		putchar('\n');
	}
}

static void
status_text(struct json_object *r)
{
	struct json_object *models = json_object_object_get(r, "models"), *sessions = json_object_object_get(r, "session_list");

	printf("gearboxd %s, up %s s, %s clients, %s sessions, %s requests served, deadline hit rate %s\n",
	       str_of(r, "version"), str_of(r, "uptime_s"), str_of(r, "clients"), str_of(r, "sessions"), str_of(r, "served"),
	       str_of(r, "deadline_hit_rate"));
	printf("DVFS %s, energy from %s\n", json_object_get_boolean(json_object_object_get(r, "dvfs")) ? "available" : "unavailable",
	       str_of(r, "energy_source"));
	for (size_t i = 0; models && i < json_object_array_length(models); i++) {
		struct json_object *m = json_object_array_get_idx(models, i);
		printf("  %-24s on %-10s g=%s last %s us, %s queued, %s served, %s BUSY\n", str_of(m, "name"),
		       str_of(m, "placement"), str_of(m, "last_groups"), str_of(m, "last_latency_us"), str_of(m, "queued"),
		       str_of(m, "requests"), str_of(m, "busy_rejections"));
		layer_plans_text(json_object_object_get(m, "layer_plans"));
	}
	for (size_t i = 0; sessions && i < json_object_array_length(sessions); i++) {
		struct json_object *s = json_object_array_get_idx(sessions, i);
		printf("  session %s: %s, uid %s, deadline %s us, energy %s uJ, min accuracy %s\n", str_of(s, "session"),
		       str_of(s, "model"), str_of(s, "uid"), str_of(s, "deadline_us"), str_of(s, "energy_uj"),
		       str_of(s, "min_accuracy"));
	}
}

static void
models_text(struct json_object *r)
{
	struct json_object *models = json_object_object_get(r, "models");

	for (size_t i = 0; models && i < json_object_array_length(models); i++) {
		struct json_object *m = json_object_array_get_idx(models, i), *acc = json_object_object_get(m, "accuracy");
		printf("%s: G=%s, input %s, %s classes, on %s, accuracy per g:", str_of(m, "name"), str_of(m, "groups"),
		       str_of(m, "input_shape"), str_of(m, "classes"), str_of(m, "placement"));
		for (size_t g = 0; acc && g < json_object_array_length(acc); g++) {
			struct json_object *a = json_object_array_get_idx(acc, g);
			if (a == NULL)
				printf(" -");
			else
				printf(" %.2f%%", 100 * json_object_get_double(a));
		}
		putchar('\n');
	}
}

/* "T:US,T:US" -> the deadline in force `t` seconds into the stream. */
static uint64_t
scheduled_deadline(const char *schedule, double t, uint64_t fallback)
{
	uint64_t current = fallback;
	const char *p = schedule;

	while (p != NULL && *p) {
		double at = strtod(p, (char **)&p);
		if (*p != ':')
			break;
		uint64_t us = strtoull(p + 1, (char **)&p, 10);
		if (at <= t)
			current = us;
		if (*p == ',')
			p++;
	}
	return current;
}

static int
cmd_infer(struct gbx_conn *c, const struct opts *o)
{
	struct images im = { 0 };
	struct gbx_result *r = gbx_result_new();
	struct gbx_budget b = o->budget;
	uint32_t session;
	unsigned long n = o->count ? o->count : 1, met = 0, with_deadline = 0;

	b.size = sizeof(b);
	b.rate_hz = o->rate; /* the tenant plan knows the stream's rate from the start */
	double *lat = calloc(n, sizeof(double)), start = monotonic_us(), acc_groups = 0;
	int ret = 0;

	if ((o->idx && read_idx(o->idx, &im)) || (o->image && read_image(o->image, &im)) || (o->raw && read_raw(o->raw, &im)))
		ret = 1;
	else if (im.count == 0)
		ret = error_out("infer needs an input: --idx FILE, --image FILE or --raw FILE");
	else if (o->index >= im.count)
		ret = error_out("--index %lu: the file has %zu images", o->index, im.count);
	else if (gbx_open_session_policy(c, o->model, &b, o->policy, &session) != 0)
		ret = error_out("%s", gbx_last_error(c));
	if (ret != 0)
		n = 0; /* nothing to send: fall through to the clean-up */
	for (unsigned long i = 0; i < n; i++) {
		size_t k = (o->index + i) % im.count;
		double t0, t1;
		if (o->rate > 0) {
			double due = start + (double)i * 1e6 / o->rate, now = monotonic_us();
			if (due > now)
				usleep((useconds_t)(due - now));
		}
		if (o->schedule != NULL) {
			uint64_t want = scheduled_deadline(o->schedule, (monotonic_us() - start) / 1e6, o->budget.deadline_us);
			if (want != b.deadline_us) {
				b.deadline_us = want;
				if (gbx_set_budget(c, session, &b) != 0) {
					ret = error_out("%s", gbx_last_error(c));
					break;
				}
				if (!o->json)
					printf("-- deadline now %llu us\n", (unsigned long long)want);
			}
		}
		t0 = monotonic_us();
		if ((im.pixels ? gbx_infer_pixels(c, session, im.pixels + k * im.size, im.size, r)
		               : gbx_infer(c, session, im.values, im.size, r)) != 0) {
			ret = error_out("%s", gbx_last_error(c));
			break;
		}
		t1 = monotonic_us();
		lat[i] = t1 - t0;
		acc_groups += gbx_result_groups(r);
		if (b.deadline_us) {
			with_deadline++;
			met += lat[i] <= (double)b.deadline_us;
		}
		if (o->json) {
			struct json_object *j = json_object_new_object();
			json_object_object_add(j, "request", json_object_new_int64((int64_t)i));
			json_object_object_add(j, "image", json_object_new_int64((int64_t)k));
			json_object_object_add(j, "latency_us", json_num(lat[i], 1));
			json_object_object_add(j, "server_latency_us", json_num(gbx_result_latency_us(r), 1));
			json_object_object_add(j, "queue_us", json_num(gbx_result_queue_us(r), 1));
			json_object_object_add(j, "class", json_object_new_int64(gbx_result_class(r)));
			json_object_object_add(j, "label", json_object_new_string(gbx_result_label(r)));
			json_object_object_add(j, "groups", json_object_new_int64(gbx_result_groups(r)));
			json_object_object_add(j, "placement", json_object_new_string(gbx_result_placement(r)));
			json_object_object_add(j, "threads", json_object_new_int64(gbx_result_threads(r)));
			json_object_object_add(j, "freq_khz", json_object_new_int64((int64_t)gbx_result_freq_khz(r)));
			json_object_object_add(j, "energy_uj", json_num(gbx_result_energy_uj(r), 1));
			json_object_object_add(j, "energy_source", json_object_new_string(gbx_result_energy_source(r)));
			json_object_object_add(j, "deadline_us", json_object_new_int64((int64_t)b.deadline_us));
			json_object_object_add(j, "deadline_met", json_object_new_boolean(!b.deadline_us || lat[i] <= (double)b.deadline_us));
			json_object_object_add(j, "energy_met", json_object_new_boolean(gbx_result_energy_met(r)));
			json_object_object_add(j, "feasible", json_object_new_boolean(gbx_result_feasible(r)));
			json_object_object_add(j, "reason", gbx_result_feasible(r) ? NULL : json_object_new_string(gbx_result_reason(r)));
			json_object_object_add(j, "policy", json_object_new_string(gbx_result_policy(r)));
			json_object_object_add(j, "predicted_us", json_num(gbx_result_predicted_us(r), 1));
			json_object_object_add(j, "daemon_e2e_us", json_num(gbx_result_e2e_us(r), 1));
			json_object_object_add(j, "fallback", gbx_result_fallback(r)[0] ? json_object_new_string(gbx_result_fallback(r)) : NULL);
			print_line(j);
		} else {
			printf("image %zu: %s (class %u), g=%u on %s, %.0f us end to end (%.0f us inference), %.0f uJ (%s)%s%s%s%s\n",
			       k, gbx_result_label(r), gbx_result_class(r), gbx_result_groups(r), gbx_result_placement(r), lat[i], gbx_result_latency_us(r), gbx_result_energy_uj(r), gbx_result_energy_source(r),
			       gbx_result_feasible(r) ? "" : ", infeasible: ", gbx_result_feasible(r) ? "" : gbx_result_reason(r),
			       gbx_result_fallback(r)[0] ? ", moved off the device: " : "", gbx_result_fallback(r));
		}
		fflush(stdout);
	}
	if (ret == 0 && n > 1) {
		double sorted_sum = 0;
		for (unsigned long i = 0; i < n; i++)
			sorted_sum += lat[i];
		/* summary: mean, median and p99 of client-measured latency */
		for (unsigned long i = 1; i < n; i++)
			for (unsigned long j = i; j > 0 && lat[j - 1] > lat[j]; j--) {
				double t = lat[j];
				lat[j] = lat[j - 1];
				lat[j - 1] = t;
			}
		if (o->json) {
			struct json_object *j = json_object_new_object();
			json_object_object_add(j, "summary", json_object_new_boolean(true));
			json_object_object_add(j, "requests", json_object_new_int64((int64_t)n));
			json_object_object_add(j, "mean_us", json_num(sorted_sum / (double)n, 1));
			json_object_object_add(j, "p50_us", json_num(lat[n / 2], 1));
			json_object_object_add(j, "p99_us", json_num(lat[(size_t)ceil(0.99 * (double)n) - 1], 1));
			json_object_object_add(j, "mean_groups", json_num(acc_groups / (double)n, 3));
			json_object_object_add(j, "deadline_hit_rate",
			                       with_deadline ? json_num((double)met / (double)with_deadline, 4) : NULL);
			print_line(j);
		} else {
			printf("%lu requests: mean %.0f us, p50 %.0f us, p99 %.0f us, mean g %.2f\n", n, sorted_sum / (double)n,
			       lat[n / 2], lat[(size_t)ceil(0.99 * (double)n) - 1], acc_groups / (double)n);
		}
		if (with_deadline && !o->json)
			printf("deadlines met: %lu of %lu (%.1f%%)\n", met, with_deadline, 100.0 * (double)met / (double)with_deadline);
	}
	free(lat);
	gbx_result_free(r);
	free(im.pixels);
	free(im.values);
	return ret;
}

static int
cmd_pareto(struct gbx_conn *c, const struct opts *o)
{
	char *reply = NULL, *cause = NULL;
	struct json_object *r, *list;
	struct plot_point *pts;
	size_t n;
	int ret = 0;

	if (gbx_pareto(c, o->model, o->policy, o->all, &reply) != 0)
		return error_out("%s", gbx_last_error(c));
	if ((r = json_tokener_parse(reply)) == NULL) {
		free(reply);
		return error_out("gearboxd sent bad JSON");
	}
	list = json_object_object_get(r, o->all ? GBX_KEY_ALL : GBX_KEY_FRONT);
	n = list ? json_object_array_length(list) : 0;
	pts = calloc(n ? n : 1, sizeof(*pts));
	for (size_t i = 0; i < n; i++) {
		struct json_object *p = json_object_array_get_idx(list, i);
		pts[i].latency_us = json_object_get_double(json_object_object_get(p, "latency_us"));
		pts[i].energy_uj = json_object_get_double(json_object_object_get(p, "energy_uj"));
		pts[i].accuracy = json_object_get_double(json_object_object_get(p, "accuracy"));
		pts[i].groups = (unsigned)json_object_get_int(json_object_object_get(p, "groups"));
		snprintf(pts[i].label, sizeof(pts[i].label), "%s x%s", str_of(p, "placement"), str_of(p, "threads"));
	}
	/* The plot first: when it cannot be drawn, nothing has been printed. */
	if (o->plot != NULL) {
		char title[160];
		snprintf(title, sizeof(title), "%s, policy %s (gearboxd's predictions)", str_of(r, "model"),
		         str_of(r, "policy"));
		if (plot_pareto(o->plot, title, pts, n, &cause) != 0) {
			ret = error_out("%s", cause);
			free(cause);
			goto out;
		}
	}
	if (o->json) {
		print_reply(reply);
		goto out;
	}
	if (o->all)
		printf("%s under policy %s: all %zu operating points, %s of them on the Pareto front (gearboxd's "
		       "predictions, interference included)\n",
		       str_of(r, "model"), str_of(r, "policy"), n, str_of(r, "front_points"));
	else
		printf("%s under policy %s: %zu of %s operating points on the Pareto front (gearboxd's predictions, "
		       "interference included)\n",
		       str_of(r, "model"), str_of(r, "policy"), n, str_of(r, "points"));
	printf("%3s  %-10s %7s %8s %9s %11s %11s\n", "g", "placement", "threads", "MHz", "accuracy", "latency_us",
	       "energy_uj");
	for (size_t i = 0; i < n; i++) {
		struct json_object *p = json_object_array_get_idx(list, i);
		double mhz = json_object_get_double(json_object_object_get(p, "freq_khz")) / 1e3;
		char freq[16] = "-";
		if (mhz > 0)
			snprintf(freq, sizeof(freq), "%.0f", mhz);
		printf("%3u  %-10s %7s %8s %8.2f%% %11.0f %11.1f\n", pts[i].groups, str_of(p, "placement"),
		       str_of(p, "threads"), freq, pts[i].accuracy * 100, pts[i].latency_us, pts[i].energy_uj);
	}
	if (o->plot != NULL)
		printf("plot: %s\n", o->plot);
out:
	free(pts);
	json_object_put(r);
	free(reply);
	return ret;
}

static int
cmd_calibrate(struct gbx_conn *c, const struct opts *o)
{
	char *reply = NULL;
	struct json_object *r;

	if (gbx_calibrate(c, o->model, &reply) != 0)
		return error_out("%s", gbx_last_error(c));
	if (o->json) {
		print_reply(reply);
	} else {
		r = json_tokener_parse(reply);
		printf("%s: calibrated, %s points measured\n", str_of(r, "model"), str_of(r, "measured"));
		json_object_put(r);
	}
	free(reply);
	return 0;
}

static int
cmd_budget(struct gbx_conn *c, const struct opts *o, const char *session)
{
	char *end;
	unsigned long id = strtoul(session, &end, 10);

	if (*session == '\0' || *end != '\0')
		return error_out("budget needs a session number (see gearboxctl status)");
	if (gbx_set_budget(c, (uint32_t)id, &o->budget) != 0)
		return error_out("%s", gbx_last_error(c));
	if (o->json) {
		struct json_object *j = json_object_new_object();
		json_object_object_add(j, "session", json_object_new_int64((int64_t)id));
		json_object_object_add(j, "deadline_us", json_object_new_int64((int64_t)o->budget.deadline_us));
		json_object_object_add(j, "energy_uj", json_object_new_int64((int64_t)o->budget.energy_uj));
		json_object_object_add(j, "min_accuracy", json_num(o->budget.min_accuracy, 4));
		print_line(j);
	} else {
		printf("session %lu: deadline %llu us, energy %llu uJ, min accuracy %g\n", id,
		       (unsigned long long)o->budget.deadline_us, (unsigned long long)o->budget.energy_uj, o->budget.min_accuracy);
	}
	return 0;
}

static volatile sig_atomic_t stop_watch;

static void
on_sigint(int sig)
{
	(void)sig;
	stop_watch = 1;
}

/* Status every interval, with events as they come. */
static int
cmd_watch(struct gbx_conn *c, const struct opts *o)
{
	char *reply = NULL;
	struct gbx_conn *events = gbx_connect(o->socket);
	struct gbx_result *r;

	if (events == NULL || gbx_subscribe(events) != 0)
		return error_out("%s", events ? gbx_last_error(events) : gbx_connect_error());
	signal(SIGINT, on_sigint);
	signal(SIGTERM, on_sigint);
	if ((r = gbx_result_new()) == NULL)
		return error_out("out of memory");
	while (!stop_watch) {
		double until = monotonic_us() + o->interval * 1e6;
		if (gbx_status(c, &reply) != 0)
			return error_out("%s", gbx_last_error(c));
		if (o->json) {
			struct json_object *j = json_tokener_parse(reply);
			puts(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
			json_object_put(j);
		} else {
			struct json_object *j = json_tokener_parse(reply), *st, *list;
			time_t t = time(NULL);
			char when[32], *stats = NULL;
			strftime(when, sizeof(when), "%H:%M:%S", localtime(&t));
			printf("--- %s\n", when);
			status_text(j);
			json_object_put(j);
			/* latency percentiles per session */
			if (gbx_stats(c, 0, &stats) == 0 && (st = json_tokener_parse(stats)) != NULL) {
				list = json_object_object_get(st, "sessions");
				for (size_t i = 0; list && i < json_object_array_length(list); i++) {
					struct json_object *se = json_object_array_get_idx(list, i), *lat = json_object_object_get(se, "latency_us");
					printf("  session %s: %s requests, mean g %s, latency p50 %s p90 %s p99 %s us, hit rate %s\n",
					       str_of(se, "session"), str_of(se, "requests"), str_of(se, "mean_groups"), str_of(lat, "p50"),
					       str_of(lat, "p90"), str_of(lat, "p99"), str_of(se, "deadline_hit_rate"));
				}
				json_object_put(st);
			}
			free(stats);
		}
		free(reply);
		fflush(stdout);
		while (!stop_watch && monotonic_us() < until) {
			int got = gbx_receive(events, r);
			if (got < 0) {
				gbx_result_free(r);
				return error_out("%s", gbx_last_error(events));
			}
			/* with --json, the event's own JSON on its line (JSON Lines, as the status lines) */
			if (got == 1 && gbx_result_request_id(r) == 0 && gbx_last_event(events) != NULL) {
				if (o->json) {
					struct json_object *j = json_tokener_parse(gbx_last_event(events));
					if (j != NULL)
						print_line(j);
				} else {
					printf("event: %s\n", gbx_last_event(events));
				}
				fflush(stdout);
			}
			if (got == 0)
				usleep(50000);
		}
	}
	gbx_result_free(r);
	gbx_disconnect(events);
	return 0;
}

static double
num_of(struct json_object *o, const char *key)
{
	return json_object_get_double(json_object_object_get(o, key));
}

/* The placements besides its own a tenant may borrow now. */
static void
print_also_on(struct json_object *also)
{
	size_t n = also ? json_object_array_length(also) : 0;

	if (n == 0)
		return;
	printf("%-8s also on, where the others' promised shares leave room:", "");
	for (size_t k = 0; k < n; k++)
		printf(" %s", json_object_get_string(json_object_array_get_idx(also, k)));
	putchar('\n');
}

static void
plan_text(struct json_object *r)
{
	struct json_object *ts = json_object_object_get(r, "tenants"), *ps = json_object_object_get(r, "places"),
	                   *cs = json_object_object_get(r, "constraints"), *mip = json_object_object_get(r, "mip");
	unsigned nb = 0;

	if (!json_object_get_boolean(json_object_object_get(r, "enabled"))) {
		printf("no tenant plan: %s; each request is chosen for on its own\n", str_of(r, "reason"));
		return;
	}
	if (json_object_object_get(r, "generation") == NULL) {
		printf("no plan yet (%s)%s\n", str_of(r, "solver"),
		       json_object_get_boolean(json_object_object_get(r, "pending")) ? ": one is being made" : ": no sessions");
		return;
	}
	printf("plan %s, %.1f s old, made because %s; %s, solved in %.1f ms (%s), %s rows x %s columns\n",
	       str_of(r, "generation"), num_of(r, "age_s"), str_of(r, "reason"), str_of(r, "solver"),
	       num_of(mip, "solve_ms"), json_object_get_boolean(json_object_object_get(mip, "proven")) ? "optimal" : "best found in time",
	       str_of(mip, "rows"), str_of(mip, "cols"));
	printf("%-8s %-18s %8s %9s  %-28s %8s %10s %6s  %s\n", "session", "model", "rate/s", "deadline", "room", "accuracy",
	       "predicted", "util", "why");
	for (size_t i = 0; ts && i < json_object_array_length(ts); i++) {
		struct json_object *t = json_object_array_get_idx(ts, i);
		char room[64] = "dropped (g=1, what is left)";
		if (json_object_get_boolean(json_object_object_get(t, "served"))) {
			double mhz = num_of(t, "freq_khz") / 1e3;
			struct json_object *capped = json_object_object_get(t, "groups_capped");
			/* not capped: the planned g is where it started, not a ceiling */
			snprintf(room, sizeof(room), capped && !json_object_get_boolean(capped) ? "g any (%s) %s x%s" : "g<=%s %s x%s",
			         str_of(t, "groups"), str_of(t, "placement"), str_of(t, "threads"));
			if (mhz > 0)
				snprintf(room + strlen(room), sizeof(room) - strlen(room), " <=%.0f MHz", mhz);
			printf("%-8s %-18s %8.1f %6.0f us  %-28s %7.2f%% %7.0f us %6.3f  %s\n", str_of(t, "session"), str_of(t, "model"),
			       num_of(t, "rate_hz"), num_of(t, "deadline_us"), room, 100 * num_of(t, "accuracy"),
			       num_of(t, "predicted_us"), num_of(t, "util"), str_of(t, "why"));
			print_also_on(json_object_object_get(t, "also_on"));
		} else {
			printf("%-8s %-18s %8.1f %6.0f us  %-28s %8s %10s %6s  %s\n", str_of(t, "session"), str_of(t, "model"),
			       num_of(t, "rate_hz"), num_of(t, "deadline_us"), room, "-", "-", "-", str_of(t, "why"));
		}
	}
	printf("placements:");
	for (size_t i = 0; ps && i < json_object_array_length(ps); i++) {
		struct json_object *p = json_object_array_get_idx(ps, i);
		if (json_object_get_boolean(json_object_object_get(p, "used")))
			printf(" %s %.2f of %.2f busy;", str_of(p, "name"), num_of(p, "util"), num_of(p, "capacity"));
		else
			printf(" %s unused;", str_of(p, "name"));
	}
	printf("\nbinding:");
	for (size_t i = 0; cs && i < json_object_array_length(cs); i++) {
		struct json_object *b = json_object_array_get_idx(cs, i);
		if (!json_object_get_boolean(json_object_object_get(b, "binds")))
			continue;
		nb++;
		printf("\n  %s", str_of(b, "what"));
		if (num_of(b, "limit") > 0)
			printf(" (%.3g of %.3g)", num_of(b, "used"), num_of(b, "limit"));
		if (num_of(b, "weight_gain") > 0)
			printf(": relaxed, it would serve %g more weight", num_of(b, "weight_gain"));
		else if (num_of(b, "gain") > 0)
			printf(": relaxed, weighted accuracy would gain %.4f", num_of(b, "gain"));
	}
	printf("%s\n", nb ? "" : " nothing");
}

static void
platform_text(struct json_object *r)
{
	struct json_object *cl = json_object_object_get(r, "clusters");

	printf("DVFS %s, %s OpenCL device(s), %s energy source(s)\n",
	       json_object_get_boolean(json_object_object_get(r, "dvfs")) ? "available" : "unavailable",
	       str_of(r, "opencl_devices"), str_of(r, "energy_sources"));
	for (size_t i = 0; cl && i < json_object_array_length(cl); i++) {
		struct json_object *c = json_object_array_get_idx(cl, i);
		printf("  %s: CPUs %s, capacity %s, %s kHz\n", str_of(c, "name"), str_of(c, "cpus"), str_of(c, "capacity"),
		       str_of(c, "cur_khz"));
	}
}

static int
parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	*out = strtod(s, &end);
	return errno == 0 && *end == '\0' && end != s && *out >= lo && *out <= hi ? 0 : -1;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },  { "json", no_argument, NULL, 'j' },
		{ "model", required_argument, NULL, 'm' },   { "idx", required_argument, NULL, 'x' },
		{ "index", required_argument, NULL, 'i' },   { "raw", required_argument, NULL, 'r' },
		{ "image", required_argument, NULL, 'I' },   { "count", required_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, 'R' },    { "deadline-us", required_argument, NULL, 'd' },
		{ "energy-uj", required_argument, NULL, 'e' }, { "min-accuracy", required_argument, NULL, 'a' },
		{ "deadline-schedule", required_argument, NULL, 'S' }, { "interval", required_argument, NULL, 'w' },
		{ "policy", required_argument, NULL, 'P' },  { "plot", required_argument, NULL, 'O' },
		{ "all", no_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },          { "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .interval = 1.0 };
	const struct command *cmd;
	const char *verb;
	struct gbx_conn *c;
	double v;
	int ch, ret;

	/* Options may come before and after the command. */
	while ((ch = getopt_long(argc, argv, "+hVs:j", longopts, NULL)) != -1) {
		if (ch == 's')
			o.socket = optarg;
		else if (ch == 'j')
			o.json = true;
		else if (ch == 'h')
			return usage(stdout), 0;
		else if (ch == 'V')
			return printf("gearboxctl %s\n", PACKAGE_VERSION), 0;
		else
			return usage(stderr), EXIT_USAGE;
	}
	if (optind >= argc)
		return usage(stderr), EXIT_USAGE;
	verb = argv[optind];
	if ((cmd = find_command(verb)) == NULL)
		return error_out("unknown command '%s' (try gearboxctl --help)", verb), EXIT_USAGE;
	argc -= optind;
	argv += optind;
	optind = 0; /* glibc: 0 restarts scanning with a new argv */
	while ((ch = getopt_long(argc, argv, "hs:j", longopts, NULL)) != -1) {
		switch (ch) {
		case 's': o.socket = optarg; break;
		case 'j': o.json = true; break;
		case 'm': o.model = optarg; break;
		case 'x': o.idx = optarg; break;
		case 'r': o.raw = optarg; break;
		case 'I': o.image = optarg; break;
		case 'S': o.schedule = optarg; break;
		case 'P': o.policy = optarg; break;
		case 'O': o.plot = optarg; break;
		case 'A': o.all = true; break;
		case 'i':
		case 'n':
			if (parse_double(optarg, ch == 'n' ? 1 : 0, 1e9, &v) != 0 || v != floor(v))
				return error_out("--%s takes a whole number, not '%s'", ch == 'i' ? "index" : "count", optarg), EXIT_USAGE;
			*(ch == 'i' ? &o.index : &o.count) = (unsigned long)v;
			break;
		case 'R':
		case 'w':
			if (parse_double(optarg, 0.001, 1e6, &v) != 0)
				return error_out("--%s takes a positive number, not '%s'", ch == 'R' ? "rate" : "interval", optarg), EXIT_USAGE;
			*(ch == 'R' ? &o.rate : &o.interval) = v;
			break;
		case 'd':
		case 'e':
			if (parse_double(optarg, 0, 3.6e9, &v) != 0 || v != floor(v))
				return error_out("--%s takes a whole number, not '%s'", ch == 'd' ? "deadline-us" : "energy-uj", optarg), EXIT_USAGE;
			*(ch == 'd' ? &o.budget.deadline_us : &o.budget.energy_uj) = (uint64_t)v;
			break;
		case 'a':
			if (parse_double(optarg, 0, 1, &o.budget.min_accuracy) != 0)
				return error_out("--min-accuracy takes a number in [0, 1], not '%s'", optarg), EXIT_USAGE;
			break;
		case 'h': return command_usage(cmd, stdout), 0;
		default: return command_usage(cmd, stderr), EXIT_USAGE;
		}
	}
	if ((strcmp(verb, "budget") == 0) != (optind + 1 == argc) || (strcmp(verb, "budget") != 0 && optind != argc))
		return error_out(strcmp(verb, "budget") == 0 ? "budget needs one SESSION number" : "unexpected argument '%s'",
		                 argv[optind]), EXIT_USAGE;
	if ((c = gbx_connect(o.socket)) == NULL)
		return error_out("%s", gbx_connect_error());
	if (strcmp(verb, "status") == 0)
		ret = simple_call(c, gbx_status, &o, status_text);
	else if (strcmp(verb, "models") == 0)
		ret = simple_call(c, gbx_models, &o, models_text);
	else if (strcmp(verb, "platform") == 0)
		ret = simple_call(c, gbx_platform, &o, platform_text);
	else if (strcmp(verb, "reload") == 0)
		ret = cmd_reload(c, &o);
	else if (strcmp(verb, "infer") == 0)
		ret = cmd_infer(c, &o);
	else if (strcmp(verb, "budget") == 0)
		ret = cmd_budget(c, &o, argv[optind]);
	else if (strcmp(verb, "pareto") == 0)
		ret = cmd_pareto(c, &o);
	else if (strcmp(verb, "calibrate") == 0)
		ret = cmd_calibrate(c, &o);
	else if (strcmp(verb, "plan") == 0)
		ret = simple_call(c, gbx_plan, &o, plan_text);
	else
		ret = cmd_watch(c, &o);
	gbx_disconnect(c);
	return ret;
}
