/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
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
plot_timeseries(const char *png, const char *title, const struct plot_sample *samples, size_t n, char **cause)
{
	FILE *gp = open_gnuplot(png, cause);

	if (gp == NULL)
		return -1;
	fputs("$run << EOD\n", gp);
	for (size_t i = 0; i < n; i++)
		fprintf(gp, "%.4f %.4f %.4f %u %.3f\n", samples[i].t_s, samples[i].latency_us / 1e3,
		        samples[i].deadline_us / 1e3, samples[i].groups, samples[i].load);
	fputs("EOD\nset terminal pngcairo size 1200,900 noenhanced font ',10'\nset output ", gp);
	quote(gp, png);
	fputs("\nset multiplot layout 3,1 title ", gp);
	quote(gp, title);
	fputs("\nset grid\nset key top left\nset lmargin 10\n"
	      "set ylabel 'latency (ms)'\n"
	      "plot $run using 1:2 with points pt 7 ps 0.3 lc rgb '#1f77b4' title 'latency', "
	      "'' using 1:3 with lines lw 2 lc rgb '#d62728' title 'deadline'\n"
	      "set ylabel 'active groups g'\nset yrange [0:*]\n"
	      "plot $run using 1:4 with steps lw 2 lc rgb '#2ca02c' title 'chosen g'\n"
	      "set ylabel 'co-runner load'\nset xlabel 'time (s)'\nset yrange [0:1.05]\n"
	      "plot $run using 1:5 with filledcurves y1=0 lc rgb '#ff7f0e' title 'load'\n"
	      "unset multiplot\n",
	      gp);
	return close_gnuplot(gp, png, cause);
}

int
plot_pareto(const char *png, const char *title, const struct plot_point *points, size_t n, char **cause)
{
	FILE *gp = open_gnuplot(png, cause);

	if (gp == NULL)
		return -1;
	fputs("$front << EOD\n", gp);
	for (size_t i = 0; i < n; i++) {
		fprintf(gp, "%.3f %.3f %.5f %u ", points[i].latency_us / 1e3, points[i].energy_uj / 1e3,
		        points[i].accuracy * 100, points[i].groups);
		quote(gp, points[i].label);
		fputc('\n', gp);
	}
	fputs("EOD\n", gp);
	fputs("set terminal pngcairo size 1200,520 noenhanced font ',10'\n", gp);
	fputs("set output ", gp);
	quote(gp, png);
	fputs("\nset multiplot layout 1,2 title ", gp);
	quote(gp, title);
	fputs("\nset grid\nset key off\nset ylabel 'top-1 accuracy (%)'\n"
	      "set xlabel 'latency (ms)'\n"
	      "plot $front using 1:3 with linespoints pt 7 lc rgb '#1f77b4', "
	      "'' using 1:3:5 with labels offset 0,0.8 font ',7'\n"
	      "set xlabel 'energy per inference (mJ)'\n"
	      "plot $front using 2:3 with points pt 7 lc rgb '#d62728', "
	      "'' using 2:3:(sprintf('g=%d', $4)) with labels offset 0,0.8 font ',7'\n"
	      "unset multiplot\n",
	      gp);
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
