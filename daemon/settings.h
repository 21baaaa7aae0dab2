/* gearboxd's configuration file (INI):
 *
 *   [daemon]
 *   socket = /run/gearbox/gearboxd.sock
 *   models = /usr/share/gearbox/models    # a folder: every *.safetensors in it
 *   model = /opt/my.safetensors           # one more model (repeatable)
 *   policy = default                      # the policy of sessions that name none
 *   policies = /etc/gearbox/policies      # administrator's policy files (override the shipped ones)
 *   margin = 0.10                         # overrides every policy's margin (optional)
 *   threads = 2                           # at most this many threads per request (0: all CPUs)
 *   opencl = yes                          # offer OpenCL devices as placements
 */
#ifndef GEARBOX_DAEMON_SETTINGS_H
#define GEARBOX_DAEMON_SETTINGS_H

#include <stdbool.h>

#define GEARBOXD_CONFIG "/etc/gearbox/gearboxd.conf"

struct config {
	char *socket;
	char **models;       /* files, folders expanded */
	unsigned nmodels;
	double margin;       /* < 0: each policy's own */
	unsigned threads;    /* 0: no limit beyond the policy's */
	char *policy;        /* default policy name */
	char *policy_dir;    /* /etc override folder */
	bool opencl;         /* offer OpenCL devices as placements */
};

void config_defaults(struct config *c);
/* Parse path into c (which keeps earlier values for keys the file lacks).
 * Returns 0, or -1 with *cause = "file:line: problem". */
int config_load(struct config *c, const char *path, char **cause);
/* Add every *.safetensors of a folder, sorted. */
int config_add_folder(struct config *c, const char *dir, char **cause);
void config_add_model(struct config *c, const char *path);
void config_free(struct config *c);

#endif
