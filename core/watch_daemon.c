/* watch_daemon.c — the watcher of one project (watch.h).
 *
 * One thread, one poll loop over the inotify descriptor, the listening
 * socket and the clients waiting for their cookie. Every directory of the
 * project but .git/ and .mlx/ (at any depth, any letter case, as the walks
 * skip them) has a watch, added before the directory is read, so that a
 * name created while it is read is an event; a symlink is never followed
 * (IN_DONT_FOLLOW | IN_ONLYDIR, and the walk opens with O_NOFOLLOW). Each
 * event's path goes into a table of path → the sequence number of its
 * last change; "since S" answers the paths whose number is above S.
 * What the daemon cannot vouch for moves the floor up: a token below it
 * gets "everything" (a lost queue, a path it cannot report, a table grown
 * past its bound), and a watch it could not add makes every answer
 * "everything" until it is restarted.
 *
 * The daemon is a process of its own (mlx_watch_start forks it): it never
 * returns into the caller's code, and ends with _exit. */
#include "watch.h"

#include "path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WATCH_MASK                                                                                           \
	(IN_MODIFY | IN_ATTRIB | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF |      \
	 IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)
#define TABLE_MAX 262144    /* paths remembered before the floor moves up */
#define COOKIE_WAIT_MS 5000 /* a cookie not seen by then: "everything" */
#define CLIENTS_MAX 64      /* clients waiting at once */
#define CHECK_EVERY_MS 2000 /* how often .mlx and the socket are looked at */

/* A client waiting for its cookie's event. */
struct client {
	int fd;
	uint64_t cookie;
	int64_t since; /* -1: from another instance, or none */
	int64_t deadline_ms;
};

/* One remembered path and the number of its last change. */
struct slot {
	char *path;
	uint64_t seq;
};

struct daemon {
	char root[PATH_MAX], mlxdir[PATH_MAX];
	dev_t root_dev;
	ino_t root_ino;
	int ifd, lfd, cookie_dfd, log;
	int mlx_wd, cookie_wd, root_wd;
	char **dirs; /* watch descriptor → the directory's path ("" for the root) */
	size_t ndirs;
	struct slot *table;
	size_t cap, used;
	char instance[17];
	uint64_t seq, floor, cookies;
	int degraded, stopping, debug_overflow;
	uint64_t queries, answered_everything, overflows;
	struct client clients[CLIENTS_MAX];
	size_t nclients;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One line of the daemon's log, dated. */
static void say(struct daemon *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct daemon *d, const char *fmt, ...)
{
	char line[1024];
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ ", &tm);
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
	va_end(ap);
	n = k < 0 ? n : n + (size_t)k < sizeof line - 1 ? n + (size_t)k : sizeof line - 2;
	line[n++] = '\n';
	if (d->log >= 0 && write(d->log, line, n) < 0) {
		/* nowhere else to say it */
	}
}

/* A name the walks skip: .git and .mlx in any letter case. */
static int skipped(const char *name)
{
	return strcasecmp(name, ".git") == 0 || strcasecmp(name, ".mlx") == 0;
}

static uint64_t hash_path(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static void table_clear(struct daemon *d)
{
	for (size_t i = 0; i < d->cap; i++)
		free(d->table[i].path);
	memset(d->table, 0, d->cap * sizeof *d->table);
	d->used = 0;
}

/* Nothing older than now can be told any more: tokens before it get
 * "everything". */
static void forget_all(struct daemon *d, const char *why)
{
	d->floor = ++d->seq;
	table_clear(d);
	say(d, "everything may have changed (%s): tokens before %llu are answered 'everything'", why,
	    (unsigned long long)d->floor);
}

static int table_grow(struct daemon *d)
{
	size_t cap = d->cap ? d->cap * 2 : 1024;
	struct slot *t = calloc(cap, sizeof *t);
	if (!t)
		return 0;
	for (size_t i = 0; i < d->cap; i++) {
		if (!d->table[i].path)
			continue;
		size_t k = hash_path(d->table[i].path) & (cap - 1);
		while (t[k].path)
			k = (k + 1) & (cap - 1);
		t[k] = d->table[i];
	}
	free(d->table);
	d->table = t;
	d->cap = cap;
	return 1;
}

/* Records that path (relative to the root) changed now. */
static void changed(struct daemon *d, const char *path)
{
	uint64_t seq = ++d->seq;
	if (d->used >= TABLE_MAX) {
		forget_all(d, "too many paths changed");
		return;
	}
	if ((d->used + 1) * 2 > d->cap && !table_grow(d)) {
		forget_all(d, "out of memory");
		return;
	}
	size_t k = hash_path(path) & (d->cap - 1);
	while (d->table[k].path && strcmp(d->table[k].path, path) != 0)
		k = (k + 1) & (d->cap - 1);
	if (!d->table[k].path) {
		if (!(d->table[k].path = strdup(path))) {
			forget_all(d, "out of memory");
			return;
		}
		d->used++;
	}
	d->table[k].seq = seq;
}

static int remember_dir(struct daemon *d, int wd, const char *path)
{
	if ((size_t)wd >= d->ndirs) {
		size_t n = d->ndirs ? d->ndirs : 256;
		while (n <= (size_t)wd)
			n *= 2;
		char **dirs = realloc(d->dirs, n * sizeof *dirs);
		if (!dirs)
			return 0;
		memset(dirs + d->ndirs, 0, (n - d->ndirs) * sizeof *dirs);
		d->dirs = dirs;
		d->ndirs = n;
	}
	char *copy = strdup(path);
	if (!copy)
		return 0;
	free(d->dirs[wd]);
	d->dirs[wd] = copy;
	return 1;
}

static void lost_watch(struct daemon *d, const char *path, int e)
{
	if (!d->degraded)
		say(d, "cannot watch '%s': %s; every answer is 'everything' until the watcher is restarted",
		    path, strerror(e));
	d->degraded = 1;
}

/* Watches directory rel (relative to the root, "" for the root) and every
 * directory below it, the watch before the reading. dfd is rel, open
 * (taken). */
static void watch_tree(struct daemon *d, int dfd, const char *rel)
{
	char abs[PATH_MAX];
	if (snprintf(abs, sizeof abs, "%s%s%s", d->root, *rel ? "/" : "", rel) >= (int)sizeof abs) {
		close(dfd);
		lost_watch(d, rel, ENAMETOOLONG);
		return;
	}
	int wd = inotify_add_watch(d->ifd, abs, WATCH_MASK);
	struct stat st;
	/* The watch must be on the directory opened (not a symlink or a
	 * directory put there since): the same inode. */
	if (wd < 0 || fstat(dfd, &st) != 0) {
		if (errno != ENOENT && errno != ENOTDIR)
			lost_watch(d, rel, errno);
		close(dfd);
		return;
	}
	if (!remember_dir(d, wd, rel)) {
		close(dfd);
		lost_watch(d, rel, ENOMEM);
		return;
	}
	if (!*rel)
		d->root_wd = wd;
	DIR *dir = fdopendir(dfd);
	if (!dir) {
		close(dfd);
		lost_watch(d, rel, errno);
		return;
	}
	struct dirent *e;
	while ((e = readdir(dir)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || skipped(e->d_name))
			continue;
		if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN)
			continue;
		int sub = openat(dirfd(dir), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			continue; /* not a directory (or gone): its events are its parent's */
		char path[PATH_MAX];
		if (snprintf(path, sizeof path, "%s%s%s", rel, *rel ? "/" : "", e->d_name) >=
		    (int)sizeof path) {
			close(sub);
			lost_watch(d, rel, ENAMETOOLONG);
			continue;
		}
		watch_tree(d, sub, path);
	}
	closedir(dir);
}

/* Forgets the watches of directory rel and of every directory below it
 * (it was removed or moved away). */
static void unwatch_tree(struct daemon *d, const char *rel)
{
	size_t len = strlen(rel);
	for (size_t wd = 0; wd < d->ndirs; wd++) {
		const char *p = d->dirs[wd];
		if (!p || strncmp(p, rel, len) != 0 || (p[len] != '\0' && p[len] != '/'))
			continue;
		if ((int)wd != d->root_wd)
			inotify_rm_watch(d->ifd, (int)wd);
		free(d->dirs[wd]);
		d->dirs[wd] = NULL;
	}
}

/* Answers client c: the token, then "everything" or the paths changed
 * since its token. The socket is blocking with a send timeout, so a
 * client that does not read cannot hold the daemon for long. */
static void answer(struct daemon *d, struct client *c)
{
	d->queries++;
	FILE *f = fdopen(c->fd, "w");
	if (!f) {
		close(c->fd);
		return;
	}
	fprintf(f, "token %s:%llu\n", d->instance, (unsigned long long)d->seq);
	if (c->since < 0 || (uint64_t)c->since < d->floor || (uint64_t)c->since > d->seq || d->degraded) {
		d->answered_everything++;
		fputs("everything\n", f);
	} else {
		size_t n = 0;
		for (size_t i = 0; i < d->cap; i++)
			n += d->table[i].path && d->table[i].seq > (uint64_t)c->since;
		fprintf(f, "paths %zu\n", n);
		for (size_t i = 0; i < d->cap; i++)
			if (d->table[i].path && d->table[i].seq > (uint64_t)c->since)
				fprintf(f, "%s\n", d->table[i].path);
	}
	fputs("end\n", f);
	fclose(f);
}

/* The path of event e into out; 0 if it names nothing reportable. */
static int event_path(struct daemon *d, const struct inotify_event *e, char *out, size_t size)
{
	const char *dir = (e->wd >= 0 && (size_t)e->wd < d->ndirs) ? d->dirs[e->wd] : NULL;
	if (!dir)
		return 0;
	if (e->len == 0 || !e->name[0])
		return snprintf(out, size, "%s", dir) < (int)size;
	if (skipped(e->name))
		return 0;
	return snprintf(out, size, "%s%s%s", dir, *dir ? "/" : "", e->name) < (int)size;
}

/* Handles one event; returns 0 when the daemon must end. */
static int handle(struct daemon *d, const struct inotify_event *e)
{
	if (e->mask & IN_Q_OVERFLOW) {
		d->overflows++;
		forget_all(d, "the kernel's event queue overflowed");
		return 1;
	}
	if (e->mask & IN_UNMOUNT) {
		forget_all(d, "a file system was unmounted");
		return 1;
	}
	if (e->wd == d->mlx_wd && (e->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))) {
		say(d, ".mlx was removed or moved: stopping");
		return 0;
	}
	if (e->wd == d->cookie_wd) {
		if (e->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
			say(d, ".mlx/watch was removed or moved: stopping");
			return 0;
		}
		unsigned long long n;
		if ((e->mask & IN_CREATE) && e->len && sscanf(e->name, "cookie-%llu", &n) == 1) {
			for (size_t i = 0; i < d->nclients;) {
				if (d->clients[i].cookie <= n) {
					answer(d, &d->clients[i]);
					char name[64];
					snprintf(name, sizeof name, "cookie-%llu",
					         (unsigned long long)d->clients[i].cookie);
					unlinkat(d->cookie_dfd, name, 0);
					d->clients[i] = d->clients[--d->nclients];
				} else {
					i++;
				}
			}
		}
		return 1;
	}
	if (e->wd == d->root_wd && (e->mask & (IN_DELETE_SELF | IN_MOVE_SELF))) {
		say(d, "the project's root was removed or moved: stopping");
		return 0;
	}
	char path[PATH_MAX];
	if (e->mask & IN_IGNORED) {
		/* The kernel dropped the watch (its directory is gone). */
		if (e->wd >= 0 && (size_t)e->wd < d->ndirs && d->dirs[e->wd]) {
			changed(d, d->dirs[e->wd]);
			free(d->dirs[e->wd]);
			d->dirs[e->wd] = NULL;
		}
		return 1;
	}
	if (!event_path(d, e, path, sizeof path)) {
		if (e->len && e->wd >= 0 && (size_t)e->wd < d->ndirs && d->dirs[e->wd] && !skipped(e->name))
			forget_all(d, "a path too long to report");
		return 1;
	}
	if (strchr(path, '\n')) {
		forget_all(d, "a name with a newline");
		return 1;
	}
	if ((e->mask & IN_ISDIR) && (e->mask & (IN_DELETE | IN_MOVED_FROM)))
		unwatch_tree(d, path);
	changed(d, path);
	if ((e->mask & IN_ISDIR) && (e->mask & (IN_CREATE | IN_MOVED_TO))) {
		/* Its first names came before its watch: reported with it (a
		 * path means everything below it), and watched from now. */
		unwatch_tree(d, path);
		/* Below the root without following a symlink in any
		 * component: gone or replaced already is no directory to
		 * watch (its own events say so). */
		int rootfd = open(d->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd = -1;
		if (rootfd >= 0) {
			mlx_path_open_dir(rootfd, path, 0, &fd, NULL);
			close(rootfd);
		}
		if (fd >= 0)
			watch_tree(d, fd, path);
	}
	return 1;
}

/* Reads and handles the events there are; returns 0 when the daemon must
 * end. */
static int read_events(struct daemon *d)
{
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(d->ifd, buf, sizeof buf);
		if (n <= 0)
			return 1;
		if (d->debug_overflow) {
			/* MLX_WATCH_DEBUG_OVERFLOW: every batch as if the queue had
			 * overflowed after it (tests). */
			struct inotify_event o = {.wd = -1, .mask = IN_Q_OVERFLOW};
			if (!handle(d, &o))
				return 0;
		}
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)p;
			if (!handle(d, e))
				return 0;
			p += sizeof *e + e->len;
		}
	}
}

/* Reads one request line of fd (blocking, with a timeout) into line. */
static int read_line(int fd, char *line, size_t size)
{
	size_t n = 0;
	while (n + 1 < size) {
		ssize_t k = read(fd, line + n, 1);
		if (k <= 0)
			return 0;
		if (line[n] == '\n') {
			line[n] = '\0';
			return 1;
		}
		n++;
	}
	return 0;
}

static void reply(int fd, const char *text)
{
	size_t len = strlen(text);
	if (write(fd, text, len) != (ssize_t)len) {
		/* the client went away */
	}
	close(fd);
}

/* Takes a new client; returns 0 when the daemon must end. */
static int accept_client(struct daemon *d)
{
	int fd = accept4(d->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return 1;
	struct timeval tv = {.tv_sec = 2};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	struct ucred cred;
	socklen_t clen = sizeof cred;
	/* Only its own user (or root) may ask. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0 ||
	    (cred.uid != getuid() && cred.uid != 0)) {
		close(fd);
		return 1;
	}
	char line[256], buf[PATH_MAX + 256];
	if (!read_line(fd, line, sizeof line)) {
		close(fd);
		return 1;
	}
	if (strcmp(line, "stop") == 0) {
		say(d, "stop requested");
		reply(fd, "stopping\n");
		return 0;
	}
	if (strcmp(line, "status") == 0) {
		size_t watches = 0;
		for (size_t i = 0; i < d->ndirs; i++)
			watches += d->dirs[i] != NULL;
		snprintf(buf, sizeof buf,
		         "pid %ld\nroot %s\ntoken %s:%llu\nwatches %zu\npaths %zu\nqueries %llu\n"
		         "everything %llu\noverflows %llu\ndegraded %d\n",
		         (long)getpid(), d->root, d->instance, (unsigned long long)d->seq, watches, d->used,
		         (unsigned long long)d->queries, (unsigned long long)d->answered_everything,
		         (unsigned long long)d->overflows, d->degraded);
		reply(fd, buf);
		return 1;
	}
	/* since <token> <dev>:<ino> — the root's identity: the socket answers
	 * only its own project. */
	char token[MLX_WATCH_TOKEN_MAX];
	unsigned long long dev, ino;
	if (sscanf(line, "since %63s %llu:%llu", token, &dev, &ino) != 3) {
		reply(fd, "error bad request\n");
		return 1;
	}
	if ((dev_t)dev != d->root_dev || (ino_t)ino != d->root_ino) {
		reply(fd, "error this watcher serves another project\n");
		return 1;
	}
	if (d->nclients == CLIENTS_MAX) {
		reply(fd, "error busy\n");
		return 1;
	}
	struct client c = {
	    .fd = fd, .since = -1, .cookie = ++d->cookies, .deadline_ms = now_ms() + COOKIE_WAIT_MS};
	size_t il = strlen(d->instance);
	char *end;
	if (strncmp(token, d->instance, il) == 0 && token[il] == ':') {
		errno = 0;
		unsigned long long s = strtoull(token + il + 1, &end, 10);
		if (!errno && *end == '\0' && end != token + il + 1 && s < (unsigned long long)INT64_MAX)
			c.since = (int64_t)s;
	}
	/* The cookie: every change made before the question is queued before
	 * its event, so the answer waits for it. */
	char name[64];
	snprintf(name, sizeof name, "cookie-%llu", (unsigned long long)c.cookie);
	int cfd = openat(d->cookie_dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (cfd < 0) {
		say(d, "cannot create the cookie .mlx/watch/%s: %s", name, strerror(errno));
		c.since = -1;
		answer(d, &c);
		return 1;
	}
	close(cfd);
	d->clients[d->nclients++] = c;
	return 1;
}

/* 1 while .mlx and our socket are where they were. */
static int still_home(struct daemon *d, const struct stat *sock)
{
	char path[PATH_MAX + 16];
	struct stat st;
	snprintf(path, sizeof path, "%s/watch.sock", d->mlxdir);
	return lstat(path, &st) == 0 && st.st_ino == sock->st_ino && st.st_dev == sock->st_dev;
}

static void serve(struct daemon *d, const struct stat *sock)
{
	int64_t next_check = now_ms() + CHECK_EVERY_MS;
	for (;;) {
		int64_t now = now_ms(), wait = next_check - now;
		for (size_t i = 0; i < d->nclients; i++)
			if (d->clients[i].deadline_ms - now < wait)
				wait = d->clients[i].deadline_ms - now;
		struct pollfd p[2] = {{.fd = d->ifd, .events = POLLIN}, {.fd = d->lfd, .events = POLLIN}};
		int r = poll(p, 2, wait < 0 ? 0 : (int)wait);
		if (r < 0 && errno != EINTR)
			return;
		/* Events first: a cookie seen answers its clients. */
		if (r > 0 && (p[0].revents & POLLIN) && !read_events(d))
			return;
		if (r > 0 && (p[1].revents & POLLIN) && !accept_client(d))
			return;
		now = now_ms();
		for (size_t i = 0; i < d->nclients;) {
			if (d->clients[i].deadline_ms <= now) {
				say(d, "cookie %llu not seen in time: answering 'everything'",
				    (unsigned long long)d->clients[i].cookie);
				d->clients[i].since = -1;
				answer(d, &d->clients[i]);
				d->clients[i] = d->clients[--d->nclients];
			} else {
				i++;
			}
		}
		if (now >= next_check) {
			if (!still_home(d, sock)) {
				say(d, "the socket or .mlx went away: stopping");
				return;
			}
			next_check = now + CHECK_EVERY_MS;
		}
	}
}

/* Sets the daemon up and serves until stopped. Tells the starter on ready
 * ("ok\n" or "error <why>\n"). Returns the exit status. */
static int run(struct daemon *d, int ready)
{
	char path[PATH_MAX + 32], msg[PATH_MAX + 128];
	struct stat st;
	int pidfd = -1;
	snprintf(path, sizeof path, "%s/watch.pid", d->mlxdir);
	if ((pidfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) {
		snprintf(msg, sizeof msg, "error cannot open %s: %s\n", path, strerror(errno));
		goto fail;
	}
	if (flock(pidfd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(msg, sizeof msg, "busy\n");
		goto fail;
	}
	char pid[32];
	int plen = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(pidfd, 0) != 0 || pwrite(pidfd, pid, (size_t)plen, 0) != plen) {
		snprintf(msg, sizeof msg, "error cannot write %s: %s\n", path, strerror(errno));
		goto fail;
	}
	int rootfd = open(d->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0 || fstat(rootfd, &st) != 0) {
		snprintf(msg, sizeof msg, "error cannot open %s: %s\n", d->root, strerror(errno));
		goto fail;
	}
	d->root_dev = st.st_dev;
	d->root_ino = st.st_ino;
	/* The cookie directory: watched for nothing else, emptied of the
	 * cookies of a daemon that died. */
	snprintf(path, sizeof path, "%s/watch", d->mlxdir);
	mkdir(path, 0700);
	if ((d->cookie_dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		snprintf(msg, sizeof msg, "error cannot open %s: %s\n", path, strerror(errno));
		goto fail;
	}
	DIR *cd = fdopendir(dup(d->cookie_dfd));
	struct dirent *ce;
	while (cd && (ce = readdir(cd)) != NULL)
		if (strncmp(ce->d_name, "cookie-", 7) == 0)
			unlinkat(d->cookie_dfd, ce->d_name, 0);
	if (cd)
		closedir(cd);
	if ((d->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
		snprintf(msg, sizeof msg, "error inotify: %s\n", strerror(errno));
		goto fail;
	}
	d->mlx_wd =
	    inotify_add_watch(d->ifd, d->mlxdir, IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW);
	d->cookie_wd = inotify_add_watch(
	    d->ifd, path, IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW);
	if (d->mlx_wd < 0 || d->cookie_wd < 0) {
		snprintf(msg, sizeof msg, "error cannot watch %s: %s\n", path, strerror(errno));
		goto fail;
	}
	d->root_wd = -1;
	watch_tree(d, rootfd, "");
	/* The socket last: a client that reaches it is answered about a
	 * project watched whole. Only its owner may connect. */
	d->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	char sock[PATH_MAX + 16];
	snprintf(sock, sizeof sock, "%s/watch.sock", d->mlxdir);
	char viafd[64];
	const char *name = sock;
	int mfd = open(d->mlxdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (strlen(sock) >= sizeof addr.sun_path && mfd >= 0) {
		snprintf(viafd, sizeof viafd, "/proc/self/fd/%d/watch.sock", mfd);
		name = viafd;
	}
	if (strlen(name) >= sizeof addr.sun_path) {
		snprintf(msg, sizeof msg, "error socket path too long: %s\n", sock);
		goto fail;
	}
	memcpy(addr.sun_path, name, strlen(name) + 1);
	unlink(sock); /* ours: we hold the pid file's lock */
	mode_t old = umask(077);
	int bound = d->lfd >= 0 && bind(d->lfd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
	            listen(d->lfd, 64) == 0;
	umask(old);
	if (mfd >= 0)
		close(mfd);
	struct stat sst;
	if (!bound || lstat(sock, &sst) != 0) {
		snprintf(msg, sizeof msg, "error cannot listen on %s: %s\n", sock, strerror(errno));
		goto fail;
	}
	uint64_t watches = 0;
	for (size_t i = 0; i < d->ndirs; i++)
		watches += d->dirs[i] != NULL;
	say(d, "started: pid %ld, instance %s, %llu directories watched%s", (long)getpid(), d->instance,
	    (unsigned long long)watches, d->degraded ? " (some could not be: answering 'everything')" : "");
	if (write(ready, "ok\n", 3) != 3) {
		/* the starter is gone; serve all the same */
	}
	close(ready);
	serve(d, &sst);
	if (still_home(d, &sst))
		unlink(sock);
	say(d, "stopped");
	return 0;
fail:
	if (write(ready, msg, strlen(msg)) < 0) {
		/* the starter is gone */
	}
	say(d, "%.*s", (int)strcspn(msg, "\n"), msg);
	return 1;
}

/* The daemon process: a new session, no terminal, its streams on
 * /dev/null and its log; serves, then _exits. */
static void daemon_main(const char *root, const char *mlxdir, int ready)
{
	setsid();
	/* The starter's mask and handlers are not the daemon's: SIGTERM
	 * ends it (the next start replaces what it leaves). */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	/* Nothing of the starter stays open here but ready (moved to 3). */
	if (ready != 3) {
		if (dup2(ready, 3) < 0)
			_exit(1);
		close(ready);
		ready = 3;
	}
	close_range(4, ~0u, 0);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	if (chdir("/") != 0) {
		/* paths are absolute */
	}
	static struct daemon d;
	memset(&d, 0, sizeof d);
	snprintf(d.root, sizeof d.root, "%s", root);
	snprintf(d.mlxdir, sizeof d.mlxdir, "%s", mlxdir);
	d.ifd = d.lfd = d.cookie_dfd = -1;
	d.debug_overflow = getenv("MLX_WATCH_DEBUG_OVERFLOW") != NULL;
	char path[PATH_MAX + 32];
	snprintf(path, sizeof path, "%s/logs", mlxdir);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/logs/watch.log", mlxdir);
	d.log = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	unsigned char rnd[8];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
		/* still unique enough per start: pid and time */
		uint64_t v = (uint64_t)getpid() ^ (uint64_t)time(NULL) << 20 ^ (uint64_t)now_ms() << 40;
		memcpy(rnd, &v, sizeof rnd);
	}
	for (int i = 0; i < 8; i++)
		snprintf(d.instance + 2 * i, 3, "%02x", rnd[i]);
	_exit(run(&d, ready));
}

int mlx_watch_start(const char *root, pid_t *pid, struct mlx_err *err)
{
	char mlxdir[PATH_MAX];
	if (snprintf(mlxdir, sizeof mlxdir, "%s/.mlx", root) >= (int)sizeof mlxdir)
		return mlx_err_set(err, MLX_ERR_INVALID, ENAMETOOLONG, "%s: path too long", root);
	struct stat st;
	if (lstat(mlxdir, &st) != 0 || !S_ISDIR(st.st_mode))
		return mlx_err_set(err, MLX_ERR_NOTFOUND, ENOENT, "%s: not a directory", mlxdir);
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return mlx_err_sys(err, errno, "pipe");
	pid_t child = fork();
	if (child < 0) {
		close(p[0]);
		close(p[1]);
		return mlx_err_sys(err, errno, "fork");
	}
	if (child == 0) {
		close(p[0]);
		/* A grandchild, so that the daemon is nobody's child here. */
		pid_t g = fork();
		if (g != 0)
			_exit(g < 0);
		daemon_main(root, mlxdir, p[1]);
	}
	close(p[1]);
	int status;
	waitpid(child, &status, 0);
	/* Until ready: it watches every directory first, which takes a while
	 * for a large project. */
	char msg[PATH_MAX + 128];
	size_t n = 0;
	ssize_t k;
	while (n + 1 < sizeof msg && (k = read(p[0], msg + n, sizeof msg - 1 - n)) != 0) {
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			break;
		n += (size_t)k;
	}
	close(p[0]);
	msg[n] = '\0';
	if (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';
	if (strcmp(msg, "ok") == 0) {
		char path[PATH_MAX + 16], buf[32] = "";
		snprintf(path, sizeof path, "%s/watch.pid", mlxdir);
		FILE *f = fopen(path, "re");
		if (f) {
			if (!fgets(buf, sizeof buf, f))
				buf[0] = '\0';
			fclose(f);
		}
		*pid = (pid_t)atol(buf);
		return MLX_OK;
	}
	if (strcmp(msg, "busy") == 0)
		return mlx_err_set(err, MLX_ERR_BUSY, 0, "a watcher already runs for %s", root);
	return mlx_err_set(err, MLX_ERR_IO, 0, "the watcher could not start: %s",
	                   n > 6 ? msg + 6 : "it exited without a word");
}
