/* workspace.c — see workspace.h. */
#include "workspace.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "path.h"
#include "statcache.h"
#include "workspace_internal.h"

struct mlx_workspace {
	struct mlx_progress progress; /* given to the store and the hashing pool */
	mlx_workspace_report report;  /* the caller's, or NULL */
	void *report_ctx;
	uint64_t *prefix;	      /* prefix[i]: bytes of the list's items before i */
	size_t prefix_n;
	struct mlx_store *store;
	struct mlx_statcache *sc;
	struct mlx_present *pending; /* presence records to write after the commit */
	int sc_tried;
	int jobs;
	int root_fd;
	char root[PATH_MAX];
};

int mlx_workspace_open(const char *root, int store_flags, int jobs, struct mlx_workspace **out,
		       struct mlx_err *err)
{
	if (root[0] != '/' || strlen(root) >= PATH_MAX / 2)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "%s: expected the absolute path of the project root", root);
	struct mlx_workspace *ws = calloc(1, sizeof *ws);
	if (!ws)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	snprintf(ws->root, sizeof ws->root, "%s", root);
	ws->jobs = jobs;
	ws->root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ws->root_fd < 0) {
		int rc = mlx_err_sys(err, errno, "cannot open the project directory %s", root);
		free(ws);
		return rc;
	}
	int rc = mlx_store_open(root, store_flags, &ws->store, err);
	if (rc != MLX_OK) {
		close(ws->root_fd);
		free(ws);
		return rc;
	}
	*out = ws;
	return MLX_OK;
}

void mlx_workspace_close(struct mlx_workspace *ws)
{
	if (!ws)
		return;
	free(ws->prefix);
	mlx_workspace_present_free(ws->pending);
	mlx_statcache_close(ws->sc);
	mlx_store_close(ws->store);
	close(ws->root_fd);
	free(ws);
}

struct mlx_store *mlx_workspace_store(const struct mlx_workspace *ws)
{
	return ws->store;
}

int mlx_workspace_commit(struct mlx_workspace *ws, struct mlx_err *err)
{
	int rc = mlx_store_commit(ws->store, err);
	if (rc == MLX_OK)
		mlx_workspace_present_write(ws);
	return rc;
}

struct mlx_present **mlx_workspace_pending_present(struct mlx_workspace *ws)
{
	return &ws->pending;
}

static int report_progress(void *vws, size_t started, size_t n)
{
	struct mlx_workspace *ws = vws;
	uint64_t bytes = 0, total = 0;
	if (ws->prefix && n == ws->prefix_n) {
		bytes = ws->prefix[started];
		total = ws->prefix[n];
	}
	return ws->report(ws->report_ctx, started, n, bytes, total);
}

void mlx_workspace_set_progress(struct mlx_workspace *ws, mlx_workspace_report report, void *ctx)
{
	ws->report = report;
	ws->report_ctx = ctx;
	ws->progress = (struct mlx_progress){.report = report_progress, .ctx = ws};
	mlx_store_set_progress(ws->store, report ? &ws->progress : NULL);
}

/* The progress for a pool over list (NULL when none is wanted), with the
 * byte counts of its items summed beforehand: workers write sizes while
 * the calling thread reports. */
static const struct mlx_progress *progress_over(struct mlx_workspace *ws, const struct mlx_filelist *list)
{
	if (!ws->report)
		return NULL;
	free(ws->prefix);
	ws->prefix = malloc((list->len + 1) * sizeof *ws->prefix);
	ws->prefix_n = list->len;
	if (ws->prefix) {
		ws->prefix[0] = 0;
		for (size_t i = 0; i < list->len; i++)
			ws->prefix[i + 1] = ws->prefix[i] + list->items[i].size;
	}
	return &ws->progress;
}

const char *mlx_workspace_root(const struct mlx_workspace *ws)
{
	return ws->root;
}

int mlx_workspace_manifest(struct mlx_workspace *ws, const char *hex, struct mlx_filelist *out,
			   struct mlx_err *err)
{
	char *text = NULL;
	size_t len;
	int rc = mlx_store_read(ws->store, hex, &text, &len, err);
	if (rc == MLX_OK)
		rc = mlx_hash_manifest_parse(text, len, out, err);
	free(text);
	if (rc == MLX_ERR_CORRUPT && !strstr(err->msg, hex)) {
		char msg[MLX_ERR_MSG_MAX];
		memcpy(msg, err->msg, sizeof msg);
		mlx_err_set(err, MLX_ERR_CORRUPT, 0, "manifest %.64s: %.400s", hex, msg);
	}
	return rc;
}

static int by_hex(const void *a, const void *b)
{
	return strcmp(((const struct mlx_file *)a)->hex, ((const struct mlx_file *)b)->hex);
}

int mlx_workspace_manifest_present(struct mlx_workspace *ws, const char *hex, struct mlx_filelist *out,
                                   unsigned char **present, struct mlx_err *err)
{
	*present = NULL;
	int rc = mlx_workspace_manifest(ws, hex, out, err);
	if (rc != MLX_OK)
		return rc;
	/* Sorted by id, so that a content held by several files is one
	 * object, asked about once. */
	qsort(out->items, out->len, sizeof *out->items, by_hex);
	const char **ids = malloc((out->len ? out->len : 1) * sizeof *ids);
	unsigned char *has = malloc(out->len ? out->len : 1);
	*present = malloc(out->len ? out->len : 1);
	if (!ids || !has || !*present) {
		free(ids);
		free(has);
		free(*present);
		*present = NULL;
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	}
	size_t n = 0;
	for (size_t i = 0; i < out->len; i++)
		if (i == 0 || strcmp(out->items[i].hex, out->items[i - 1].hex) != 0)
			ids[n++] = out->items[i].hex;
	mlx_store_has_many(ws->store, ids, n, has);
	for (size_t i = 0, k = 0; i < out->len; i++) {
		if (i > 0 && strcmp(out->items[i].hex, out->items[i - 1].hex) != 0)
			k++;
		(*present)[i] = has[k];
	}
	free(ids);
	free(has);
	return MLX_OK;
}

int mlx_workspace_check_store(struct mlx_workspace *ws, struct mlx_filelist *out, struct mlx_err *err)
{
	int rc = mlx_store_list(ws->store, out, err);
	if (rc == MLX_OK) {
		progress_over(ws, out);
		rc = mlx_store_check(ws->store, out, ws->jobs, err);
	}
	return rc;
}

void mlx_artifact_free(struct mlx_artifact *a)
{
	free(a->manifest);
	a->manifest = NULL;
	a->manifest_len = 0;
}

/* The stat cache, opened on first use; NULL if it cannot be (work goes on
 * without it). */
static struct mlx_statcache *statcache(struct mlx_workspace *ws)
{
	if (!ws->sc_tried) {
		ws->sc_tried = 1;
		char path[sizeof ws->root + 16];
		snprintf(path, sizeof path, "%s/.mlx/state.db", ws->root);
		if (mlx_statcache_open(path, &ws->sc, NULL) != MLX_OK)
			ws->sc = NULL;
	}
	return ws->sc;
}

static int check_relative(const char *rel, int allow_empty, struct mlx_err *err)
{
	if ((!allow_empty && !*rel) || rel[0] == '/' || strlen(rel) >= PATH_MAX / 2)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "%.200s: expected a path relative to the project root",
				   rel);
	return MLX_OK;
}

/* root/rel into out (PATH_MAX bytes); lengths were checked on entry. */
static void full_path(const struct mlx_workspace *ws, const char *rel, char *out)
{
	if (snprintf(out, PATH_MAX, "%s%s%s", ws->root, *rel ? "/" : "", rel) >= PATH_MAX)
		out[0] = '\0';
}

/* For workspace_delta.c (workspace_internal.h). */
struct mlx_statcache *mlx_workspace_statcache(struct mlx_workspace *ws)
{
	return statcache(ws);
}

int mlx_workspace_check_relative(const char *rel, int allow_empty, struct mlx_err *err)
{
	return check_relative(rel, allow_empty, err);
}

void mlx_workspace_full_path(const struct mlx_workspace *ws, const char *rel, char *out)
{
	full_path(ws, rel, out);
}

struct mlx_statcache *mlx_workspace_tree_dir(struct mlx_workspace *ws, const char *rel, char *full)
{
	if (check_relative(rel, 0, NULL) != MLX_OK)
		return NULL;
	struct mlx_statcache *sc = statcache(ws);
	full_path(ws, rel, full);
	struct stat st;
	if (!sc || lstat(full, &st) != 0 || !S_ISDIR(st.st_mode))
		return NULL;
	return sc;
}

const struct mlx_progress *mlx_workspace_progress_over(struct mlx_workspace *ws, const struct mlx_filelist *list)
{
	return progress_over(ws, list);
}

int mlx_workspace_jobs(const struct mlx_workspace *ws)
{
	return ws->jobs;
}

/* mlx_workspace_hash, leaving the hashed files in *list (empty; the caller
 * frees it, also on failure). */
static int hash_list(struct mlx_workspace *ws, const char *rel, int flags, struct mlx_artifact *out,
                     struct mlx_filelist *list, struct mlx_err *err)
{
	*out = (struct mlx_artifact){0};
	int rc = check_relative(rel, 0, err);
	if (rc != MLX_OK)
		return rc;
	char full[PATH_MAX], base[PATH_MAX], prefix[PATH_MAX];
	full_path(ws, rel, full);
	struct stat st;
	if (lstat(full, &st) != 0)
		return mlx_err_sys(err, errno, "cannot stat %s", rel);
	int is_dir = S_ISDIR(st.st_mode), put = flags & MLX_WS_PUT;
	const char *objects = mlx_store_objects_dir(ws->store);
	/* The shards before the walk: once committed, those unchanged hold
	 * every object of the manifest, which the next add then need not
	 * look up. */
	struct mlx_present *present =
	    put && is_dir && (flags & MLX_WS_PRESENT) ? mlx_workspace_present_start(ws, rel) : NULL;
	if (is_dir) {
		snprintf(base, sizeof base, "%s", full);
		snprintf(prefix, sizeof prefix, "%s", rel);
		rc = mlx_hash_walk(base, objects, 0, list, err);
	} else {
		/* The stat cache keys a single file by its parent ("" at the top). */
		const char *slash = strrchr(rel, '/');
		const char *name = slash ? slash + 1 : rel;
		snprintf(prefix, sizeof prefix, "%.*s", slash ? (int)(slash - rel) : 0, rel);
		full_path(ws, prefix, base);
		rc = mlx_hash_stat(base, name, objects, list, err);
	}
	if (rc != MLX_OK) {
		mlx_workspace_present_free(present);
		return rc;
	}
	struct mlx_statcache *sc = statcache(ws);
	if (sc)
		mlx_statcache_fill(sc, prefix, is_dir, list, NULL, NULL);
	int known = is_dir && !put && (flags & MLX_WS_NO_MANIFEST) && sc && mlx_statcache_id(sc, prefix, out->hex);
	if (!known) {
		const struct mlx_progress *progress = progress_over(ws, list);
		rc = put ? mlx_store_stage_files(ws->store, base, list, ws->jobs, err)
		         : mlx_hash_files_progress(base, list, ws->jobs, progress, err);
		if (rc == MLX_OK && is_dir)
			rc = mlx_hash_manifest(list, &out->manifest, &out->manifest_len, out->hex, err);
		if (rc == MLX_OK && sc)
			mlx_statcache_store(sc, prefix, is_dir, list, is_dir ? out->hex : NULL, NULL);
		if (rc == MLX_OK && put && is_dir)
			rc = mlx_store_stage_bytes(ws->store, out->manifest, out->manifest_len, out->hex, err);
	}
	if (rc == MLX_OK) {
		out->is_dir = is_dir;
		for (size_t i = 0; i < list->len; i++)
			out->size += list->items[i].size;
		if (is_dir) {
			out->files = list->len;
			mlx_workspace_present_keep(ws, present, out->hex);
			present = NULL;
		} else {
			memcpy(out->hex, list->items[0].hex, sizeof out->hex);
			out->mode = list->items[0].mode;
		}
	} else {
		mlx_artifact_free(out);
	}
	mlx_workspace_present_free(present);
	return rc;
}

/* The no-op re-check of a tracked directory: returns 1 with *out filled
 * (no manifest text) if rel is a directory that the stat cache's tree
 * records exactly as it is now; 0 if it is not, or not known to be (the
 * caller walks and hashes); or MLX_ERR_INTERRUPTED. */
static int unchanged_dir(struct mlx_workspace *ws, const char *rel, struct mlx_artifact *out, struct mlx_err *err)
{
	char full[PATH_MAX];
	struct mlx_statcache *sc = mlx_workspace_tree_dir(ws, rel, full);
	if (!sc)
		return 0;
	struct mlx_artifact a = {.is_dir = 1};
	int rc = mlx_statcache_unchanged(sc, rel, full, a.hex, &a.files, &a.size);
	if (rc < 0)
		return mlx_err_set(err, rc, EINTR, "interrupted");
	if (rc != 1)
		return 0;
	*out = a;
	return 1;
}

int mlx_workspace_hash(struct mlx_workspace *ws, const char *rel, int flags, struct mlx_artifact *out,
                       struct mlx_err *err)
{
	if ((flags & MLX_WS_NO_MANIFEST) && !(flags & MLX_WS_PUT)) {
		int rc = unchanged_dir(ws, rel, out, err);
		if (rc != 0)
			return rc < 0 ? rc : MLX_OK;
	}
	struct mlx_filelist list = {0};
	int rc = hash_list(ws, rel, flags, out, &list, err);
	mlx_filelist_free(&list);
	return rc;
}

void mlx_dirdiff_free(struct mlx_dirdiff *d)
{
	mlx_filelist_free(&d->added);
	mlx_filelist_free(&d->modified);
	mlx_filelist_free(&d->was);
	mlx_filelist_free(&d->deleted);
}

static int push_copy(struct mlx_filelist *to, const struct mlx_file *f, struct mlx_err *err)
{
	return mlx_filelist_push(to, f->path, f->size, f->mode, f->hex, err);
}

/* Merges the sorted lists of the locked manifest and of the files now,
 * keeping only what differs: a million files with one changed make one
 * record, in one pass. */
static int diff_lists(const struct mlx_filelist *locked, const struct mlx_filelist *now,
                      struct mlx_dirdiff *d, struct mlx_err *err)
{
	size_t i = 0, j = 0;
	int rc = MLX_OK;
	while (rc == MLX_OK && (i < locked->len || j < now->len)) {
		const struct mlx_file *l = i < locked->len ? &locked->items[i] : NULL;
		const struct mlx_file *n = j < now->len ? &now->items[j] : NULL;
		int c = !l ? 1 : !n ? -1 : strcmp(l->path, n->path);
		if (c < 0) {
			rc = push_copy(&d->deleted, l, err);
			i++;
		} else if (c > 0) {
			rc = push_copy(&d->added, n, err);
			j++;
		} else {
			if (strcmp(l->hex, n->hex) != 0 || l->mode != n->mode) {
				rc = push_copy(&d->modified, n, err);
				if (rc == MLX_OK)
					rc = push_copy(&d->was, l, err);
			}
			i++;
			j++;
		}
	}
	return rc;
}

int mlx_workspace_diff(struct mlx_workspace *ws, const char *rel, const char *locked,
                       struct mlx_artifact *out, struct mlx_dirdiff *d, struct mlx_err *err)
{
	*d = (struct mlx_dirdiff){0};
	/* Compared with the tree the lock's manifest was recorded with: no
	 * list of every file, and only what differs is hashed. */
	int rc = mlx_workspace_diff_from_tree(ws, rel, locked, out, d, err);
	if (rc != 0)
		return rc < 0 ? rc : MLX_OK;
	struct mlx_filelist now = {0}, was = {0};
	rc = hash_list(ws, rel, MLX_WS_NO_MANIFEST, out, &now, err);
	if (rc == MLX_OK) {
		mlx_artifact_free(out); /* the text is not wanted: the lists are */
		if (out->is_dir && strcmp(out->hex, locked) != 0) {
			/* The files are hashed either way: an unreadable manifest only
			 * leaves the diff out, which the caller decides about. */
			int mrc = mlx_workspace_manifest(ws, locked, &was, err);
			if (mrc == MLX_OK)
				rc = diff_lists(&was, &now, d, err);
			else
				d->unread = mrc;
		}
	}
	mlx_filelist_free(&was);
	mlx_filelist_free(&now);
	if (rc != MLX_OK)
		mlx_dirdiff_free(d);
	return rc;
}

int mlx_workspace_hash_files(struct mlx_workspace *ws, const char *const *names, size_t n, struct mlx_filelist *out,
			     unsigned char *found, struct mlx_err *err)
{
	for (size_t i = 0; i < n; i++) {
		int rc = check_relative(names[i], 0, err);
		if (rc != MLX_OK)
			return rc;
	}
	int rc = mlx_hash_stat_many(ws->root, names, n, mlx_store_objects_dir(ws->store), out, found, err);
	if (rc != MLX_OK)
		return rc;
	struct mlx_statcache *sc = statcache(ws);
	if (sc)
		mlx_statcache_fill(sc, "", 0, out, NULL, NULL);
	if ((rc = mlx_hash_files(ws->root, out, ws->jobs, err)) != MLX_OK)
		return rc;
	if (sc)
		mlx_statcache_store(sc, "", 0, out, NULL, NULL);
	return MLX_OK;
}

int mlx_workspace_checkout(struct mlx_workspace *ws, const char *dir, struct mlx_filelist *items,
                           enum mlx_link link, const unsigned char *verified, struct mlx_err *err)
{
	int64_t stamp;
	return mlx_workspace_checkout_dated(ws, dir, items, link, verified, &stamp, err);
}

int mlx_workspace_checkout_dated(struct mlx_workspace *ws, const char *dir, struct mlx_filelist *items,
                                 enum mlx_link link, const unsigned char *verified, int64_t *stamp_out,
                                 struct mlx_err *err)
{
	*stamp_out = 0;
	progress_over(ws, items);
	if (dir[0] == '/')
		return mlx_store_checkout_files(ws->store, dir, items, link, ws->jobs, err);
	int rc = check_relative(dir, 1, err);
	if (rc == MLX_OK && *dir)
		rc = mlx_path_check(dir, strlen(dir), err);
	if (rc != MLX_OK)
		return rc;
	/* Copies are dated a little before the checkout started (stamp), so
	 * that any later write to one, even within the same timestamp tick
	 * as the copy, gives it a newer mtime than the one recorded below
	 * (see below). */
	int64_t started = mlx_hash_now_ns();
	int64_t stamp = link == MLX_LINK_COPY ? started - 2 * MLX_STATCACHE_RACY_NS : 0;
	int dfd;
	if ((rc = mlx_path_open_dir(ws->root_fd, dir, 1, &dfd, err)) != MLX_OK)
		return rc;
	rc = mlx_store_checkout_at(ws->store, dfd, dir, items, link, verified, stamp, ws->jobs, err);
	close(dfd);
	if (rc != MLX_OK)
		return rc;
	*stamp_out = stamp;
	struct mlx_statcache *sc = statcache(ws);
	if (sc) {
		/* A copy that still has the stamp holds exactly the verified
		 * object's bytes: it was written here under a temp name, and
		 * any write since would have moved its mtime past the stamp.
		 * It is recorded as hashed now, as git's index records the
		 * files it checked out when it is written, so the stat cache's
		 * racy rule trusts it once its ctime (the rename) is older than
		 * the margin. Anything else (links, a copy changed already) is
		 * recorded as hashed when the checkout started, and re-hashed
		 * by the next look if its times are that recent. */
		int64_t now = mlx_hash_now_ns();
		for (size_t i = 0; i < items->len; i++) {
			struct mlx_file *f = &items->items[i];
			f->hashed_ns = stamp && f->mtime_ns == stamp ? now : started;
		}
		mlx_statcache_store(sc, dir, 0, items, NULL, NULL);
	}
	return MLX_OK;
}
