/* SPDX-License-Identifier: MIT */
/* gearboxd — serves budgeted inference on dynamic DNNs over a Unix socket.
 *
 * This file is the lifecycle: options and gearboxd.conf, the models and
 * workers (serve.c), the socket (systemd socket activation, else bound
 * here), then the main thread's sd-event loop: accepting connections
 * (handed to the workers' epoll set), notices from the workers (flush a
 * connection's output, forget a closed one), signals (TERM/INT stop, HUP
 * reloads), a status timer and the watchdog. Requests never pass through
 * this thread: see daemon.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "common/cause.h"
#include "daemon/daemon.h"
#include "daemon/log.h"

static void
notify_status(struct daemon *d)
{
	char line[512];
	size_t n = 0;

	n += (size_t)snprintf(line + n, sizeof(line) - n, "STATUS=%u model%s", d->nhosts, d->nhosts == 1 ? "" : "s");
	for (unsigned i = 0; i < d->nhosts && n < sizeof(line) - 64; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "; %s on %s g=%u", dnn_model_name(d->hosts[i].model),
		                      d->hosts[i].placement, d->hosts[i].last_groups);
	if (n < sizeof(line) - 64)
		snprintf(line + n, sizeof(line) - n, "; %u clients, %.1f requests/s, %llu served, deadline hit rate %s%.1f%%",
		         d->nconns, d->requests_per_s, (unsigned long long)d->served, d->deadline_total ? "" : "n/a ",
		         d->deadline_total ? 100.0 * (double)d->deadline_met / (double)d->deadline_total : 0.0);
	sd_notify(0, line);
}

static int
on_status_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct daemon *d = userdata;

	serve_pm_qos_update(d);
	pthread_mutex_lock(&d->lock);
	d->requests_per_s = (double)(d->served - d->served_at_last_status) / 5.0;
	d->served_at_last_status = d->served;
	notify_status(d);
	pthread_mutex_unlock(&d->lock);
	sd_event_source_set_time(s, usec + 5 * 1000000ull);
	return 0;
}


static bool
same_models(const struct config *a, const struct config *b)
{
	if (a->nmodels != b->nmodels)
		return false;
	for (unsigned i = 0; i < a->nmodels; i++)
		if (strcmp(a->models[i], b->models[i]) != 0)
			return false;
	return true;
}

const char *
daemon_policy_dir(const struct daemon *d)
{
	return d->config.policy_dir ? d->config.policy_dir : POL_DEFAULT_ETCDIR;
}

/* Re-read the policy files; a bad one keeps the old set (and names the
 * file and line). Queued requests carry their own copy of their policy. */
static int
reload_policies(struct daemon *d, char **cause)
{
	struct pol_set next;
	struct stat st;

	/* a folder gearboxd.conf names that is gone is a mistake to report,
	 * not a reason to drop its policies (the default one may be absent) */
	if (d->config.policy_dir != NULL && stat(d->config.policy_dir, &st) != 0) {
		set_cause(cause, "policies = %s: %s", d->config.policy_dir, strerror(errno));
		log_error("policies not reloaded, keeping the running ones: %s", *cause);
		return -1;
	}
	if (pol_set_load(&next, pol_shipped_dir(), daemon_policy_dir(d), cause) != 0) {
		log_error("policies not reloaded, keeping the running ones: %s", *cause);
		return -1;
	}
	pol_set_clear(&d->policies);
	d->policies = next;
	log_notice("policies reloaded: %u", d->policies.n);
	return 0;
}

static bool
same_string(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The keys read at start only (gearboxd(8)) that differ in `next`, as a
 * list of names in `out`; false when none does. */
static bool
start_only_changes(const struct config *next, const struct config *now, char *out, size_t size)
{
	const struct {
		const char *name;
		bool changed;
	} keys[] = {
		{ "socket", next->socket != NULL && !same_string(next->socket, now->socket) },
		{ "models", next->nmodels != 0 && !same_models(next, now) },
		{ "threads", next->threads != now->threads },
		{ "opencl", next->opencl != now->opencl },
		{ "split", !same_string(next->split, now->split) },
		{ "realtime", next->realtime != now->realtime },
		{ "realtime_priority", next->realtime_priority != now->realtime_priority },
		{ "realtime_limit_ms", next->realtime_limit_ms != now->realtime_limit_ms },
		{ "lock_memory", next->lock_memory != now->lock_memory },
		{ "pm_qos", next->pm_qos != now->pm_qos },
		{ "pm_qos_device", !same_string(next->pm_qos_device, now->pm_qos_device) },
	};
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i].changed && len < size)
			len += (size_t)snprintf(out + len, size - len, "%s%s", len ? ", " : "", keys[i].name);
	return len > 0;
}

/* The configuration files, in order: --config's alone, else the
 * administrator's and the vendor's with their drop-ins. */
static unsigned
config_file_list(const struct daemon *d, char ***files)
{
	if (d->config_path != NULL) {
		*files = malloc(sizeof(char *));
		(*files)[0] = strdup(d->config_path);
		return 1;
	}
	return config_files(config_etc_dir(), config_vendor_dir(), files);
}

/* "a, b and c" of the files, for the log. */
static void
file_names(char *const *files, unsigned n, char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(out + len, size - len, "%s%s", i == 0 ? "" : i + 1 == n ? " and " : ", ", files[i]);
}

/* --cat-config: each file under a "# PATH" line, in the order they apply. */
static int
cat_config(const struct daemon *d)
{
	char **files = NULL, buf[4096];
	unsigned n = config_file_list(d, &files);
	int rc = 0;

	if (n == 0)
		printf("# no configuration file (looked for %s/gearboxd.conf, %s/gearboxd.conf and their gearboxd.conf.d/*.conf)\n",
		       config_etc_dir(), config_vendor_dir());
	for (unsigned i = 0; i < n; i++) {
		FILE *f = fopen(files[i], "r");
		size_t got;
		printf("%s# %s\n", i ? "\n" : "", files[i]);
		if (f == NULL) {
			fprintf(stderr, "gearboxd: %s: %s\n", files[i], strerror(errno));
			rc = 1;
			continue;
		}
		while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
			fwrite(buf, 1, got, stdout);
		fclose(f);
	}
	config_files_free(files, n);
	return rc;
}

/* SIGHUP: re-read the configuration. A bad file is refused with its reason
 * and the running configuration stays; serving never stops. */
int
daemon_reload(struct daemon *d, char **error, struct json_object *loading)
{
	struct config next;
	char *cause = NULL, *config_error = NULL;
	int rc;

	char **files = NULL, names[1024];
	unsigned nfiles;

	sd_notify(0, "RELOADING=1");
	pthread_mutex_lock(&d->lock);
	/* the files again: a drop-in added or removed since counts */
	nfiles = config_file_list(d, &files);
	file_names(files, nfiles, names, sizeof(names));
	if (nfiles == 0) {
		log_event(LOG_NOTICE, GBX_MID_RELOAD, NULL, "reload: no configuration file to re-read; %u model%s still served",
		          d->nhosts, d->nhosts == 1 ? "" : "s");
	} else {
		config_defaults(&next);
		if (config_load_files(&next, files, nfiles, &cause) != 0) {
			log_event(LOG_ERR, GBX_MID_RELOAD, NULL, "reload refused, keeping the running configuration: %s", cause);
			set_cause(&config_error, "%s; keeping the running configuration", cause);
			config_free(&next);
		} else {
			char changed[200];
			if (start_only_changes(&next, &d->config, changed, sizeof(changed)))
				log_warning("reload: %s changed in %s; that takes effect at the next start", changed, names);
			log_event(LOG_NOTICE, GBX_MID_RELOAD, NULL, "reloaded %s (margin %.2f)", names,
			          next.margin >= 0 ? next.margin : 0.0);
			config_free(&d->config);
			d->config = next;
		}
		free(cause);
	}
	config_files_free(files, nfiles);
	/* the policies, from the (new) override folder; then the default name */
	rc = reload_policies(d, error);
	serve_reload_models(d, loading);
	if (config_error != NULL) { /* both said: the configuration's first */
		if (*error != NULL) {
			char *both = NULL;
			set_cause(&both, "%s; %s", config_error, *error);
			free(*error);
			free(config_error);
			config_error = both;
		}
		*error = config_error;
		rc = -1;
	}
	if (d->config.policy && strcmp(d->config.policy, d->default_policy) != 0) {
		if (pol_set_find(&d->policies, d->config.policy) == NULL)
			log_error("reload: policy '%s' does not exist; keeping '%s'", d->config.policy, d->default_policy);
		else
			snprintf(d->default_policy, sizeof(d->default_policy), "%s", d->config.policy);
	}
	notify_status(d);
	pthread_mutex_unlock(&d->lock);
	sd_notify(0, "READY=1");
	return rc;
}

static int
on_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	char *cause = NULL;

	(void)s;
	(void)si;
	(void)daemon_reload(userdata, &cause, NULL);
	free(cause);
	return 0;
}

static int
on_stop(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	(void)userdata;
	log_notice("stopping on signal %u", si->ssi_signo);
	sd_notify(0, "STOPPING=1");
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

/* ------------------------------------------------------------------------ */
/* The socket: from systemd when socket-activated, else bound here with mode
 * 0660 and group gearbox (when that group exists) so its members may connect. */

static int
open_socket(struct daemon *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int n = sd_listen_fds(1), fd;

	if (n > 1) {
		log_error("systemd passed %d sockets; gearboxd takes one", n);
		return -1;
	}
	if (n == 1) {
		d->listen_fd = SD_LISTEN_FDS_START;
		if (sd_is_socket_unix(d->listen_fd, SOCK_STREAM, 1, NULL, 0) <= 0) {
			log_error("the socket systemd passed is not a listening Unix stream socket");
			return -1;
		}
		fcntl(d->listen_fd, F_SETFL, fcntl(d->listen_fd, F_GETFL) | O_NONBLOCK);
		log_info("listening on the socket passed by systemd");
		return 0;
	}
	if (strlen(d->socket_path) >= sizeof(sa.sun_path)) {
		log_error("socket path too long: %s", d->socket_path);
		return -1;
	}
	strcpy(sa.sun_path, d->socket_path);
	{
		/* Create the parent directory (/run/gearbox) if needed. */
		char dir[sizeof(sa.sun_path)], *slash;
		strcpy(dir, d->socket_path);
		if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
			*slash = '\0';
			mkdir(dir, 0755);
		}
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		log_error("socket: %s", strerror(errno));
		return -1;
	}
	/* A stale socket from a crash: connect fails, so it can go. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		log_error("%s: another gearboxd is already listening", d->socket_path);
		close(fd);
		return -1;
	}
	unlink(d->socket_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 256) != 0) {
		log_error("%s: %s", d->socket_path, strerror(errno));
		close(fd);
		return -1;
	}
	if (d->gearbox_gid != (gid_t)-1 && chown(d->socket_path, (uid_t)-1, d->gearbox_gid) != 0)
		log_warning("%s: cannot give it to group gearbox: %s", d->socket_path, strerror(errno));
	chmod(d->socket_path, 0660);
	d->listen_fd = fd;
	d->own_socket = true;
	log_info("listening on %s", d->socket_path);
	return 0;
}

/* Root, or a member of the admin group (primary or supplementary). The
 * socket's own group (gearbox) only lets a user connect: whoever can
 * connect is in it, so it cannot be what separates an administrator. */
static bool
is_admin(struct daemon *d, uid_t uid, gid_t gid)
{
	if (uid == 0 || (d->admin_gid != (gid_t)-1 && gid == d->admin_gid))
		return true;
	if (d->admin_gid != (gid_t)-1) {
		struct group *g = getgrgid(d->admin_gid);
		struct passwd *pw = getpwuid(uid);
		for (char **m = g ? g->gr_mem : NULL; m != NULL && *m != NULL && pw != NULL; m++)
			if (strcmp(*m, pw->pw_name) == 0)
				return true;
	}
	return false;
}

/* Whether a client of this uid may connect now (daemon.lock held):
 * max_clients in all, of which RESERVED_CLIENTS only for administrators,
 * and max_clients_per_uid for any one other user. */
static const char *
refuse_client(struct daemon *d, uid_t uid, bool privileged, char *why, size_t size)
{
	const struct config *cf = &d->config;
	unsigned mine = 0;

	if (d->nconns >= cf->max_clients || (!privileged && d->nconns >= cf->max_clients - RESERVED_CLIENTS)) {
		snprintf(why, size, "%u clients are connected (max_clients = %u, %u of them kept for administrators)",
		         d->nconns, cf->max_clients, RESERVED_CLIENTS);
		return why;
	}
	for (struct conn *c = d->conns; c != NULL && !privileged; c = c->next)
		mine += c->uid == uid;
	if (!privileged && mine >= cf->max_clients_per_uid) {
		snprintf(why, size, "uid %u has %u connections already (max_clients_per_uid = %u)", (unsigned)uid, mine,
		         cf->max_clients_per_uid);
		return why;
	}
	return NULL;
}

/* A refused client is told why in an error frame before it is closed. */
static void
refuse(int fd, uid_t uid, const char *why)
{
	struct json_object *o = json_object_new_object();
	unsigned char hdr[GBX_HEADER_SIZE];
	const char *text;

	json_object_object_add(o, GBX_KEY_ERROR, json_object_new_string(why));
	json_object_object_add(o, GBX_KEY_CODE, json_object_new_string(GBX_ERR_LIMIT));
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	gbx_encode_header(hdr, GBX_MSG_ERROR, 0, (uint32_t)strlen(text));
	if (send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL | MSG_DONTWAIT) == sizeof(hdr))
		(void)!send(fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT);
	json_object_put(o);
	log_notice("refusing a connection of uid %u: %s", (unsigned)uid, why);
	close(fd);
}

/* Out of descriptors (or memory): stop watching the listen socket instead
 * of being woken for it again at once; the sweep timer watches it again a
 * second later. Said once per episode. */
static void
pause_accepting(struct daemon *d, int err)
{
	if (d->accept_paused)
		return;
	d->accept_paused = true;
	sd_event_source_set_enabled(d->accept_src, SD_EVENT_OFF);
	log_warning("accept: %s with %u clients connected: not accepting for a second (raise LimitNOFILE= or "
	            "lower max_clients)", strerror(err), d->nconns);
}

/* Every connection goes to the workers' epoll set, one owner at a time. */
static int
on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct daemon *d = userdata;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct conn *c;
	char why[200];
	int cfd;

	(void)s;
	(void)revents;
	while ((cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT };
		bool privileged = false;
		const char *refused;
		uid_t uid = (uid_t)-1;
		gid_t gid = (gid_t)-1;
		if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
			uid = cred.uid;
			gid = cred.gid;
			privileged = is_admin(d, cred.uid, cred.gid);
		}
		pthread_mutex_lock(&d->lock);
		refused = refuse_client(d, uid, privileged, why, sizeof(why));
		pthread_mutex_unlock(&d->lock);
		if (refused != NULL) {
			refuse(cfd, uid, refused);
			continue;
		}
		if ((c = conn_new(d, cfd)) == NULL) {
			close(cfd);
			continue;
		}
		c->uid = uid;
		c->gid = gid;
		c->admin = privileged;
		pthread_mutex_lock(&d->lock);
		c->id = ++d->next_conn_id;
		c->next = d->conns;
		d->conns = c;
		d->nconns++;
		ev.data.ptr = c;
		if (epoll_ctl(d->conn_epfd, EPOLL_CTL_ADD, cfd, &ev) != 0) {
			log_warning("cannot watch a connection: %s", strerror(errno));
			conn_close_locked(d, c);
		}
		pthread_mutex_unlock(&d->lock);
		log_debug("client %llu connected (uid %u)", (unsigned long long)c->id, (unsigned)c->uid);
	}
	if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
		pause_accepting(d, errno);
	else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
		log_warning("accept: %s", strerror(errno));
	return 0;
}

static int
on_sweep_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct daemon *d = userdata;

	conn_sweep(d);
	if (d->accept_paused) {
		d->accept_paused = false;
		sd_event_source_set_enabled(d->accept_src, SD_EVENT_ON);
	}
	sd_event_source_set_time(s, usec + 1000000ull);
	return 0;
}

static int
on_notice(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	(void)s, (void)fd, (void)revents;
	conn_take_notices(userdata);
	serve_pm_qos_update(userdata); /* a worker may have asked for it */
	return 0;
}

static void
usage(FILE *out)
{
	fputs("Usage: gearboxd [OPTIONS]\n"
	      "\n"
	      "Serves budgeted inference on dynamic DNNs over a Unix socket.\n"
	      "\n"
	      "  -f, --foreground      stay in the foreground (gearboxd never forks; kept for scripts)\n"
	      "  -s, --socket PATH     listen here (default " GBX_DEFAULT_SOCKET "; ignored when socket-activated)\n"
	      "  -m, --model FILE      host this model (repeatable; default: every *.safetensors in\n"
	      "                        " GEARBOX_DATADIR "/models)\n"
	      "  -c, --config FILE     read this configuration file only (default: " GEARBOXD_CONFIG ",\n"
	      "                        else " GEARBOX_DATADIR "/gearboxd.conf, then the *.conf drop-ins of\n"
	      "                        both folders' gearboxd.conf.d/ by name; see gearboxd(8))\n"
	      "      --cat-config      print the configuration files in the order they apply, and exit\n"
	      "  -p, --policy NAME     the policy of sessions that name none (default: default; see\n"
	      "                        gearbox.policy(5))\n"
	      "  -v, --verbose         debug logging\n"
	      "  -h, --help            this help\n"
	      "  -V, --version         the version\n",
	      out);
}

static int
run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "foreground", no_argument, NULL, 'f' }, { "socket", required_argument, NULL, 's' },
		{ "model", required_argument, NULL, 'm' }, { "config", required_argument, NULL, 'c' },
		{ "policy", required_argument, NULL, 'p' }, { "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },        { "version", no_argument, NULL, 'V' },
		{ "cat-config", no_argument, NULL, 'C' },  { NULL, 0, NULL, 0 },
	};
	struct daemon d = { .listen_fd = -1, .gearbox_gid = (gid_t)-1, .admin_gid = (gid_t)-1, .conn_epfd = -1,
		            .post_fd = -1 };
	char **paths = NULL, *cause = NULL, **files = NULL, cfg_names[1024];
	unsigned nfiles = 0;
	bool cat = false;
	const char *socket_arg = NULL, *policy_arg = NULL;
	unsigned npaths = 0;
	sd_event_source *notice_src = NULL, *timer = NULL, *sweep = NULL;
	struct group *grp;
	sigset_t mask;
	uint64_t now;
	int ch, ret = 1;

	/* Block the signals sd-event handles before any thread starts, so that
	 * every thread inherits the mask and none takes a default action. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	log_init(LOG_INFO);
	while ((ch = getopt_long(argc, argv, "fs:m:c:p:vhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f': break;
		case 's': socket_arg = optarg; break;
		case 'm':
			paths = realloc(paths, (npaths + 1) * sizeof(char *));
			paths[npaths++] = strdup(optarg);
			break;
		case 'c': d.config_path = optarg; break;
		case 'p': policy_arg = optarg; break;
		case 'v': log_init(LOG_DEBUG); break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("gearboxd %s\n", PACKAGE_VERSION); return 0;
		case 'C': cat = true; break;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s' (see gearboxd --help)", argv[optind]);
		return 2;
	}
	if (cat) {
		for (unsigned i = 0; i < npaths; i++)
			free(paths[i]);
		free(paths);
		return cat_config(&d);
	}
	config_defaults(&d.config);
	nfiles = config_file_list(&d, &files);
	if (config_load_files(&d.config, files, nfiles, &cause) != 0) {
		log_error("%s", cause);
		free(cause);
		config_files_free(files, nfiles);
		config_free(&d.config);
		return 1;
	}
	file_names(files, nfiles, cfg_names, sizeof(cfg_names));
	if (nfiles > 0)
		log_info("configuration: %s", cfg_names);
	config_files_free(files, nfiles);
	/* Command-line models and socket win over the file. */
	if (npaths > 0) {
		for (unsigned i = 0; i < d.config.nmodels; i++)
			free(d.config.models[i]);
		d.config.nmodels = 0;
		for (unsigned i = 0; i < npaths; i++)
			config_add_model(&d.config, paths[i]);
	} else if (d.config.nmodels == 0) {
		config_add_folder(&d.config, GEARBOX_DATADIR "/models", NULL);
	}
	if (d.config.nmodels == 0) {
		log_error("no model: give --model FILE, 'models =' in the configuration, or install one in %s/models",
		          GEARBOX_DATADIR);
		config_free(&d.config);
		return 1;
	}
	d.socket_path = (char *)(socket_arg ? socket_arg : d.config.socket ? d.config.socket : GBX_DEFAULT_SOCKET);
	if ((grp = getgrnam("gearbox")) != NULL)
		d.gearbox_gid = grp->gr_gid;
	if (d.config.admin_group != NULL && (grp = getgrnam(d.config.admin_group)) != NULL)
		d.admin_gid = grp->gr_gid;
	else if (d.config.admin_group != NULL)
		log_info("no group '%s' (admin_group): only root administers gearboxd", d.config.admin_group);
	d.started = time(NULL);

	if (pol_set_load(&d.policies, pol_shipped_dir(), daemon_policy_dir(&d), &cause) != 0) {
		log_error("%s", cause);
		goto out;
	}
	snprintf(d.default_policy, sizeof(d.default_policy), "%s",
	         policy_arg ? policy_arg : d.config.policy ? d.config.policy : "default");
	if (pol_set_find(&d.policies, d.default_policy) == NULL) {
		char names[512];
		policy_names(&d, names, sizeof(names));
		log_error("no policy '%s' (have: %s; shipped in %s, yours in %s)", d.default_policy, names,
		          pol_shipped_dir(), daemon_policy_dir(&d));
		goto out;
	}
	daemon_mutex_init(&d.lock);
	daemon_mutex_init(&d.post_lock);
	if ((d.conn_epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 || (d.post_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		log_error("cannot set up: %s", strerror(errno));
		goto out;
	}
	if (serve_open(&d, &cause) != 0) {
		log_error("%s", cause ? cause : "cannot open the models");
		goto out;
	}
	if (open_socket(&d) != 0)
		goto out;

	if (sd_event_default(&d.event) < 0 ||
	    sd_event_add_io(d.event, &d.accept_src, d.listen_fd, EPOLLIN, on_accept, &d) < 0 ||
	    sd_event_add_io(d.event, &notice_src, d.post_fd, EPOLLIN, on_notice, &d) < 0 ||
	    sd_event_add_signal(d.event, NULL, SIGTERM, on_stop, &d) < 0 ||
	    sd_event_add_signal(d.event, NULL, SIGINT, on_stop, &d) < 0 ||
	    sd_event_add_signal(d.event, NULL, SIGHUP, on_reload, &d) < 0 ||
	    sd_event_now(d.event, CLOCK_MONOTONIC, &now) < 0 ||
	    sd_event_add_time(d.event, &timer, CLOCK_MONOTONIC, now + 5 * 1000000ull, 0, on_status_timer, &d) < 0 ||
	    sd_event_add_time(d.event, &sweep, CLOCK_MONOTONIC, now + 1000000ull, 0, on_sweep_timer, &d) < 0) {
		log_error("cannot set up the event loop");
		goto out;
	}
	sd_event_source_set_enabled(timer, SD_EVENT_ON);
	sd_event_source_set_enabled(sweep, SD_EVENT_ON);
	sd_event_set_watchdog(d.event, true);
	if (serve_start(&d, &cause) != 0 || plan_start(&d, &cause) != 0) {
		log_error("%s", cause);
		goto out;
	}
	sd_notify(0, "READY=1");
	notify_status(&d);
	log_event(LOG_NOTICE, GBX_MID_READY, NULL, "ready: %u model%s on %u placement%s", d.nhosts, d.nhosts == 1 ? "" : "s",
	          d.nplaces, d.nplaces == 1 ? "" : "s");
	ret = sd_event_loop(d.event) < 0 ? 1 : 0;
out:
	serve_stop(&d);
	pthread_mutex_lock(&d.lock);
	while (d.conns != NULL)
		conn_close_locked(&d, d.conns);
	pthread_mutex_unlock(&d.lock);
	plan_stop(&d);
	if (d.post_fd >= 0)
		conn_take_notices(&d);
	session_table_free(&d.sessions);
	serve_close(&d);
	sd_event_source_disable_unref(d.accept_src);
	sd_event_source_disable_unref(sweep);
	sd_event_source_disable_unref(notice_src);
	sd_event_source_disable_unref(timer);
	sd_event_unref(d.event);
	pol_set_clear(&d.policies);
	if (d.own_socket) {
		close(d.listen_fd);
		unlink(d.socket_path);
	}
	if (d.conn_epfd >= 0)
		close(d.conn_epfd);
	if (d.post_fd >= 0)
		close(d.post_fd);
	config_free(&d.config);
	for (unsigned i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
	free(cause);
	return ret;
}

int
main(int argc, char **argv)
{
	/* OpenBLAS (pthread build) starts a thread pool in a library constructor,
	 * before main, with signals unblocked: SIGTERM could land there and kill
	 * us instead of reaching the event loop. gearbox runs BLAS on its own
	 * pinned threads and needs none of those, so ask for none and start
	 * again (the systemd unit sets the variable, so this is for hand runs). */
	if (getenv("OPENBLAS_NUM_THREADS") == NULL) {
		setenv("OPENBLAS_NUM_THREADS", "1", 1);
		if (strchr(argv[0], '/') != NULL)
			execv(argv[0], argv);
		else
			execvp(argv[0], argv);
		fprintf(stderr, "gearboxd: cannot restart with OPENBLAS_NUM_THREADS=1 (%s); signals may be lost\n",
		        strerror(errno));
	}
	return run(argc, argv);
}
