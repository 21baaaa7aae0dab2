/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cause.h"
#include "common/plot.h"

static void
quote(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++)
		if (*s != '"' && *s != '\\' && *s != '\n')
			fputc(*s, f);
	fputc('"', f);
}

/* gnuplot, reading its commands on a pipe. The PNG is created here first,
 * so that a path that cannot be written is an error that names it; and
 * gnuplot's standard output goes to /dev/null: when it cannot open its
 * output it falls back to stdout, which would put PNG bytes on a terminal. */
static FILE *
open_gnuplot(const char *png, char **cause)
{
	FILE *gp, *out;

	if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
		set_cause(cause, "--plot needs gnuplot (apt-get install gnuplot-nox)");
		return NULL;
	}
	if ((out = fopen(png, "wb")) == NULL) {
		set_cause(cause, "cannot write the plot %s: %s", png, strerror(errno));
		return NULL;
	}
	fclose(out);
	if ((gp = popen("exec gnuplot >/dev/null", "w")) == NULL)
		set_cause(cause, "cannot run gnuplot: %s", strerror(errno));
	return gp;
}

static int
close_gnuplot(FILE *gp, const char *png, char **cause)
{
	int status = pclose(gp);

	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		unlink(png); /* the empty file open_gnuplot made */
		return set_cause(cause, "gnuplot failed to draw %s", png);
	}
	return 0;
}

int
plot_timeseries(const char *png, const char *title, const struct plot_sample *samples, size_t n,
                const char *const *place_names, size_t nplaces, unsigned max_groups, char **cause)
{
	FILE *gp = open_gnuplot(png, cause);

	if (gp == NULL)
		return -1;
	fputs("$run << EOD\n", gp);
	for (size_t i = 0; i < n; i++)
		fprintf(gp, "%.4f %.4f %.4f %u %.3f %u %.1f %.3f\n", samples[i].t_s, samples[i].latency_us / 1e3,
		        samples[i].deadline_us / 1e3, samples[i].groups, samples[i].load, samples[i].place,
		        samples[i].freq_mhz, samples[i].energy_uj);
	fputs("EOD\nset terminal pngcairo size 1200,1300 noenhanced font ',10'\nset output ", gp);
	quote(gp, png);
	fputs("\nset multiplot layout 5,1 title ", gp);
	quote(gp, title);
	fputs("\nset grid\nset key top left\nset lmargin 12\nset rmargin 10\nset autoscale xfix\n"
	      "set ylabel 'latency (ms)'\n"
	      "plot $run using 1:2 with points pt 7 ps 0.3 lc rgb '#1f77b4' title 'latency', "
	      "'' using 1:3 with lines lw 2 lc rgb '#d62728' title 'deadline'\n",
	      gp);
	/* whole numbers only on the g axis */
	fprintf(gp, "set ylabel 'active groups g'\nset yrange [0.5:%u.5]\nset ytics 1\n"
	        "plot $run using 1:4 with steps lw 2 lc rgb '#2ca02c' title 'chosen g'\n",
	        max_groups ? max_groups : 1);
	/* placements by name, the frequency on the right */
	fputs("set ylabel 'placement'\nset ytics (", gp);
	for (size_t p = 0; p < nplaces; p++) {
		fputs(p ? ", " : "", gp);
		quote(gp, place_names[p]);
		fprintf(gp, " %zu", p);
	}
	fprintf(gp, ")\nset yrange [-0.5:%zu.5]\nset y2label 'frequency (MHz)'\nset y2tics\nset y2range [0:*]\n"
	        "plot $run using 1:6 with points pt 7 ps 0.4 lc rgb '#9467bd' title 'placement', "
	        "'' using 1:7 axes x1y2 with steps lw 1 lc rgb '#8c564b' title 'frequency (right)'\n"
	        "unset y2tics\nunset y2label\nset ytics autofreq\nset yrange [0:*]\n"
	        "set ylabel 'energy per inference (uJ)'\n"
	        "plot $run using 1:8 with points pt 7 ps 0.3 lc rgb '#e377c2' title 'energy'\n"
	        "set ylabel 'co-runner load'\nset xlabel 'time (s)'\nset yrange [0:1.05]\n"
	        "plot $run using 1:5 with filledcurves y1=0 lc rgb '#ff7f0e' title 'load'\n"
	        "unset multiplot\n",
	        nplaces ? nplaces - 1 : 0);
	return close_gnuplot(gp, png, cause);
}

static int
by_latency(const void *a, const void *b)
{
	const struct plot_point *x = a, *y = b;
	return (x->latency_us > y->latency_us) - (x->latency_us < y->latency_us);
}

int
plot_pareto(const char *png, const char *title, const struct plot_point *points, size_t n, char **cause)
{
	static const char *const colours[] = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
		                               "#9467bd", "#8c564b", "#e377c2", "#17becf" };
	const char *labels[8];
	struct plot_point *sorted;
	size_t nlabels = 0;
	FILE *gp;

	if ((sorted = malloc((n ? n : 1) * sizeof(*sorted))) == NULL)
		return set_cause(cause, "out of memory");
	memcpy(sorted, points, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), by_latency);
	if ((gp = open_gnuplot(png, cause)) == NULL) {
		free(sorted);
		return -1;
	}
	/* one colour per placement x threads (the ninth and later share the last) */
	fputs("$front << EOD\n", gp);
	for (size_t i = 0; i < n; i++) {
		size_t k;
		for (k = 0; k < nlabels && strcmp(labels[k], sorted[i].label) != 0; k++)
			;
		if (k == nlabels && nlabels < 8)
			labels[nlabels++] = sorted[i].label;
		if (k == 8)
			k = 7;
		fprintf(gp, "%.4f %.5f %.5f %u %zu\n", sorted[i].latency_us / 1e3, sorted[i].energy_uj / 1e3,
		        sorted[i].accuracy * 100, sorted[i].groups, k);
	}
	fputs("EOD\n", gp);
	fputs("set terminal pngcairo size 1200,560 noenhanced font ',10'\nset output ", gp);
	quote(gp, png);
	fputs("\nset multiplot layout 1,2 title ", gp);
	quote(gp, title);
	/* g at its accuracy on the right-hand axis (no labels among the points),
	 * over the same accuracy range as the left-hand one */
	double lo = 100, hi = 0;
	for (size_t i = 0; i < n; i++) {
		lo = fmin(lo, sorted[i].accuracy * 100);
		hi = fmax(hi, sorted[i].accuracy * 100);
	}
	if (n == 0 || hi - lo < 0.1) {
		lo -= 0.5;
		hi += 0.5;
	}
	fprintf(gp, "\nset grid\nset logscale x\nset ylabel 'top-1 accuracy (%%)'\nset yrange [%.4f:%.4f]\n"
	        "set y2range [%.4f:%.4f]\nset y2tics (",
	        lo - 0.06 * (hi - lo), hi + 0.06 * (hi - lo), lo - 0.06 * (hi - lo), hi + 0.06 * (hi - lo));
	for (size_t i = 0, shown = 0; i < n; i++) {
		bool seen = false;
		for (size_t j = 0; j < i; j++)
			seen |= sorted[j].groups == sorted[i].groups;
		if (seen)
			continue;
		fprintf(gp, "%s\"g=%u\" %.5f", shown++ ? ", " : "", sorted[i].groups, sorted[i].accuracy * 100);
	}
	/* the front rises to the right: its top left is free for the key */
	fputs(")\nset key top left box opaque\nset offsets graph 0.05, graph 0.05, 0, 0\n", gp);
	for (int panel = 0; panel < 2; panel++) {
		fprintf(gp, "set xlabel '%s'\nplot $front using %d:3 with lines lc rgb '#bbbbbb' notitle", 
		        panel ? "energy per inference (mJ, log)" : "latency (ms, log)", panel ? 2 : 1);
		for (size_t k = 0; k < nlabels; k++) {
			fprintf(gp, ", '' using ($5 == %zu ? $%d : NaN):3 with points pt 7 ps 1.3 lc rgb '%s' title ", k,
			        panel ? 2 : 1, colours[k]);
			quote(gp, labels[k]);
		}
		fputc('\n', gp);
		fputs("set key off\n", gp);
	}
	fputs("unset multiplot\n", gp);
	free(sorted);
	return close_gnuplot(gp, png, cause);
}

int
plot_search(const char *png, const char *title, const char *const *panel_titles, const struct plot_curve *curves,
            size_t per_panel, size_t panels, char **cause)
{
	static const char *const colours[] = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd" };
	FILE *gp = open_gnuplot(png, cause);

	if (gp == NULL)
		return -1;
	for (size_t c = 0; c < per_panel * panels; c++) {
		fprintf(gp, "$c%zu << EOD\n", c);
		for (size_t i = 0; i < curves[c].n; i++)
			if (isfinite(curves[c].y[i])) /* nothing found yet */
				fprintf(gp, "%.1f %.3f\n", curves[c].x0 + (double)i + 1, curves[c].y[i]);
		fputs("EOD\n", gp);
	}
	fprintf(gp, "set terminal pngcairo size %d,%d noenhanced font ',10'\nset output ", panels > 1 ? 1200 : 800,
	        panels > 2 ? 900 : 500);
	quote(gp, png);
	fprintf(gp, "\nset multiplot layout %zu,%zu title ", panels > 2 ? (size_t)2 : (size_t)1, panels > 1 ? (size_t)2 : (size_t)1);
	quote(gp, title);
	fputs("\nset grid\nset key top right\nset xlabel 'end-to-end measurements spent'\nset ylabel 'best latency (us)'\n", gp);
	for (size_t j = 0; j < panels; j++) {
		fputs("set title ", gp);
		quote(gp, panel_titles[j]);
		fputs("\nplot ", gp);
		for (size_t k = 0; k < per_panel; k++) {
			fprintf(gp, "%s$c%zu using 1:2 with lines lw 2 lc rgb '%s' title ", k ? ", " : "", j * per_panel + k,
			        colours[k % 5]);
			quote(gp, curves[j * per_panel + k].name);
		}
		fputc('\n', gp);
	}
	fputs("unset multiplot\n", gp);
	return close_gnuplot(gp, png, cause);
}

int
plot_panels(const char *png, const char *title, size_t panels, const char *const *xlabels, const char *const *ylabels,
            const struct plot_series *series, const size_t *per_panel, char **cause)
{
	FILE *gp = open_gnuplot(png, cause);
	size_t k = 0, total = 0;

	if (gp == NULL)
		return -1;
	for (size_t j = 0; j < panels; j++)
		total += per_panel[j];
	for (size_t s = 0; s < total; s++) {
		fprintf(gp, "$s%zu << EOD\n", s);
		for (size_t i = 0; i < series[s].n; i++)
			fprintf(gp, "%.6g %.6g\n", series[s].x[i], series[s].y[i]);
		fputs("EOD\n", gp);
	}
	fprintf(gp, "set terminal pngcairo size %zu,560 noenhanced font ',10'\nset output ", 560 * panels + 80);
	quote(gp, png);
	fprintf(gp, "\nset multiplot layout 1,%zu title ", panels);
	quote(gp, title);
	fputs("\nset grid\nset key bottom right\n", gp);
	for (size_t j = 0; j < panels; j++) {
		size_t xl = strlen(xlabels[j]);
		/* "... (log)": that panel's x axis in log scale */
		fputs(xl > 6 && !strcmp(xlabels[j] + xl - 6, " (log)") ? "set logscale x\n" : "unset logscale x\n", gp);
		fputs("set xlabel ", gp);
		quote(gp, xlabels[j]);
		fputs("\nset ylabel ", gp);
		quote(gp, ylabels[j]);
		fputs("\nplot ", gp);
		if (per_panel[j] == 0)
			fputs("NaN notitle", gp);
		for (size_t s = 0; s < per_panel[j]; s++, k++) {
			const struct plot_series *se = &series[k];
			const char *style = se->style ? se->style : "points";
			fprintf(gp, "%s$s%zu using 1:2 with %s", s ? ", " : "", k, style);
			if (strcmp(style, "lines") != 0)
				fprintf(gp, " pt %d ps %.2f", se->point_type ? se->point_type : 7,
				        se->point_size > 0 ? se->point_size : 0.8);
			if (strcmp(style, "points") != 0)
				fputs(" lw 2", gp);
			if (se->color > 0)
				fprintf(gp, " lc %d", se->color);
			fputs(" title ", gp);
			quote(gp, se->name ? se->name : "");
		}
		fputs("\n", gp);
	}
	fputs("unset multiplot\n", gp);
	return close_gnuplot(gp, png, cause);
}
