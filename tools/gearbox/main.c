/* SPDX-License-Identifier: MIT */
/* gearbox — the offline toolkit: inspect, evaluate and benchmark models
 * without a daemon. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/gearbox/cli.h"

static int run(int argc, char **argv);

static void
usage(FILE *out)
{
	fputs("Usage: gearbox COMMAND ...\n"
	      "\n"
	      "Offline toolkit of the gearbox runtime adaptation daemon.\n"
	      "\n"
	      "Commands:\n"
	      "  accuracy FILE --dataset DIR [...]        int8 sensitivity per layer; plan accuracy predictor\n"
	      "  model info FILE [--json]                 layers, parameters, FLOPs and accuracy per g\n"
	      "  model eval FILE --dataset DIR [...]      top-1 accuracy per active-group count\n"
	      "  model run FILE --idx IMAGES [...]        classify images, print class scores\n"
	      "  model bench FILE [...]                   latency per active-group count\n"
	      "  platform [--json]                        CPU clusters, DVFS, GPUs, OpenCL, energy sources\n"
	      "  platform set-freq|set-gpu-freq|restore   control frequencies (see gearbox platform --help)\n"
	      "  pareto FILE [--validate] [--plot PNG]    operating points and their Pareto front here\n"
	      "  simulate --platform xu3|nano --trace CSV run the policies against a platform model\n"
	      "  solve --platform xu3|nano --tenants FILE one point per tenant by integer programming (simulated)\n"
	      "  tune FILE --out PLAN [...]               per-layer implementations (Winograd, int8, ...) searched\n"
	      "\n"
	      "Options:\n"
	      "  -h, --help       show this help (after a command, that command's: gearbox model info --help)\n"
	      "  --json           before the command: the command's machine-readable output (gearbox --json platform)\n"
	      "  -V, --version    show the version\n"
	      "\n"
	      "See gearbox(1).\n",
	      out);
}

int
main(int argc, char **argv)
{
	char **args = NULL;
	int ret;

	/* --json before the command (gearbox --json platform), as gearboxctl
	 * takes it: handed to the command at the end of its arguments. */
	if (argc >= 2 && strcmp(argv[1], "--json") == 0) {
		if ((args = calloc((size_t)argc + 1, sizeof(*args))) == NULL)
			return 1;
		args[0] = argv[0];
		for (int i = 2; i < argc; i++)
			args[i - 1] = argv[i];
		args[argc - 1] = argv[1];
		argv = args;
		if (argc == 2) /* nothing but --json */
			argc = 1;
	}
	ret = run(argc, argv);
	free(args);
	return ret;
}

static int
run(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("gearbox %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "accuracy") == 0)
		return cmd_accuracy(argc - 1, argv + 1);
	if (strcmp(argv[1], "model") == 0)
		return cmd_model(argc - 1, argv + 1);
	if (strcmp(argv[1], "platform") == 0)
		return cmd_platform(argc - 1, argv + 1);
	if (strcmp(argv[1], "pareto") == 0)
		return cmd_pareto(argc - 1, argv + 1);
	if (strcmp(argv[1], "simulate") == 0)
		return cmd_simulate(argc - 1, argv + 1);
	if (strcmp(argv[1], "solve") == 0)
		return cmd_solve(argc - 1, argv + 1);
	if (strcmp(argv[1], "tune") == 0)
		return cmd_tune(argc - 1, argv + 1);
	cli_error("unknown command '%s' (try 'gearbox --help')", argv[1]);
	return EXIT_USAGE;
}
