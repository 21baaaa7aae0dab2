#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

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

int
plot_pareto(const char *png, const char *title, const struct plot_point *points, size_t n, char **cause)
{
	FILE *gp;
	int status;

	if (system("command -v gnuplot >/dev/null 2>&1") != 0)
		return set_cause(cause, "--plot needs gnuplot (apt-get install gnuplot-nox)");
	if ((gp = popen("gnuplot", "w")) == NULL)
		return set_cause(cause, "cannot run gnuplot: %s", strerror(errno));
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
	status = pclose(gp);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return set_cause(cause, "gnuplot failed to draw %s", png);
	return 0;
}
