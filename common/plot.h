/* SPDX-License-Identifier: MIT */
/* Plots through gnuplot (Debian gnuplot-nox), fed on a pipe: the Pareto
 * front of `gearbox pareto` / `gearboxctl pareto` and the time series of
 * bench/adaptation and `gearbox simulate`. */
#ifndef GEARBOX_COMMON_PLOT_H
#define GEARBOX_COMMON_PLOT_H

#include <stddef.h>

struct plot_point {
	double latency_us, energy_uj, accuracy;
	unsigned groups;
	char label[64];       /* e.g. "cluster1 x2 1400MHz" */
};

/* Draw accuracy against latency and against energy (two panels, log time
 * and energy axes) into a PNG: the points in one colour per label
 * (placement x threads) with a key, the front as a line, and g on the
 * right-hand axis at each accuracy. 0, or -1 with *cause (gnuplot missing,
 * cannot write the file). */
int plot_pareto(const char *png, const char *title, const struct plot_point *points, size_t n, char **cause);

struct plot_sample {
	double t_s, latency_us, deadline_us, load;
	unsigned groups;
	unsigned place;        /* index into the placement names */
	double freq_mhz;       /* 0: unknown */
	double energy_uj;
};

/* Over time, five stacked panels into a PNG: latency against the deadline,
 * the chosen g (1 to max_groups), the placement (its name on the axis) with
 * the frequency, the energy per inference, and the co-runner load. */
int plot_timeseries(const char *png, const char *title, const struct plot_sample *samples, size_t n,
                    const char *const *place_names, size_t nplaces, unsigned max_groups, char **cause);

/* A search's progress: best latency against measurements spent. Curve k of
 * panel j is curves[j * per_panel + k]: y[i] (µs) after x0 + i + 1
 * measurements. */
struct plot_curve {
	const char *name;
	const double *y;
	size_t n;
	double x0;
};

int plot_search(const char *png, const char *title, const char *const *panel_titles, const struct plot_curve *curves,
                size_t per_panel, size_t panels, char **cause);

/* Panels side by side, each with its series: x against y as points
 * ("points", the default), lines ("lines") or both ("linespoints"). The
 * series of panel j follow those of panel j - 1; per_panel[j] says how many. */
struct plot_series {
	const char *name;
	const double *x, *y;
	size_t n;
	const char *style;
	int point_type;          /* gnuplot pt, 0 = 7 (a filled circle) */
	double point_size;       /* 0 = 0.8 */
	int color;               /* gnuplot linetype for the colour, 0 = the next one */
};

/* (An x label ending in " (log)" draws that panel's x axis in log scale.) */
int plot_panels(const char *png, const char *title, size_t panels, const char *const *xlabels,
                const char *const *ylabels, const struct plot_series *series, const size_t *per_panel, char **cause);

#endif
