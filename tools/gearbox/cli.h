/* SPDX-License-Identifier: MIT */
/* Shared pieces of the `gearbox` command line. */
#ifndef GEARBOX_TOOLS_CLI_H
#define GEARBOX_TOOLS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXIT_USAGE 2

/* Print "gearbox: <message>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parse a whole unsigned number in [min, max]; -1 on anything else. */
int cli_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out);

/* "--groups N|all" against a model with G groups: fills [first, last]. */
int cli_parse_groups(const char *s, unsigned G, unsigned *first, unsigned *last);


/* "no policy 'NAME' (have: ...; looked in SHIPPED and ETCDIR)", malloc'ed. */
struct pol_set;
char *cli_no_policy(const struct pol_set *set, const char *name, const char *shipped, const char *etcdir);

/* Sort `n` samples and return the q-quantile (0..1), nearest rank. */
double cli_quantile(double *samples, size_t n, double q);

/* Subcommands. */
int cmd_accuracy(int argc, char **argv);
int cmd_model(int argc, char **argv);
int cmd_platform(int argc, char **argv);
int cmd_pareto(int argc, char **argv);
int cmd_simulate(int argc, char **argv);
int cmd_solve(int argc, char **argv);
int cmd_tune(int argc, char **argv);

#endif
