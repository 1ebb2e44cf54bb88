/* checkout.c — a directory checked out from its manifest in windows
 * (workspace.h, mlx_workspace_checkout_manifest).
 *
 * A pull into a fresh clone restores whole directories: before, their
 * manifests were read into lists (a Lua table per file, then a C list),
 * which at 200,000 files cost more than 100 MB. Here the manifest is read
 * in pieces (manifest.h) and its files are placed a window at a time
 * through mlx_workspace_checkout, so every rule of a checkout (the path
 * check, no symlinked parent, verification or the verified ids, quarantine,
 * link modes, stat-cache dating) applies unchanged, and memory does not
 * depend on the number of files. */
#include "workspace.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manifest.h"
#include "statcache.h"
#include "workspace_internal.h"

/* Files placed per call of mlx_workspace_checkout, unless the caller says. */
#define DEFAULT_WINDOW 4096

struct window {
	struct mlx_workspace *ws;
	const char *dir;
	enum mlx_link link;
	struct mlx_idset *verified;
	struct mlx_filelist list;
	size_t window;
	unsigned char *trusted; /* window bytes */
	/* The directory's stat-cache tree, written window by window as the
	 * files are placed, or NULL (none, or it could not be written: the
	 * tree is only an accelerator). A window goes into it once the next
	 * one is placed (placed, with the stamp its copies got), dated then. */
	struct mlx_tree_writer *tree;
	struct mlx_filelist placed;
	int64_t placed_stamp;
	/* Progress over the whole directory, windows after windows. */
	mlx_workspace_report report;
	void *report_ctx;
	size_t done, total;
	uint64_t done_bytes, total_bytes;
};

static int window_report(void *vw, size_t files, size_t nfiles, uint64_t bytes, uint64_t nbytes)
{
	(void)nfiles;
	(void)nbytes;
	struct window *w = vw;
	return w->report(w->report_ctx, w->done + files, w->total, w->done_bytes + bytes, w->total_bytes);
}

/* Adds the window placed before to the tree, and empties it. Its copies
 * that still have their stamp are recorded as checked now: the stamp
 * proves their bytes whenever it is seen (mlx_workspace_checkout), and
 * being dated a window later than their own checkout ended, they are not
 * racy by the next look, as the rows of the last files of each window
 * are (recorded when it ended, within 100 ms of their ctime). */
static void tree_add_placed(struct window *w)
{
	if (w->tree) {
		int64_t now = mlx_hash_now_ns();
		for (size_t i = 0; i < w->placed.len; i++) {
			struct mlx_file *f = &w->placed.items[i];
			if (w->placed_stamp && f->mtime_ns == w->placed_stamp && f->hashed_ns)
				f->hashed_ns = now;
		}
		if (mlx_statcache_tree_add(w->tree, &w->placed, NULL) != MLX_OK) {
			mlx_statcache_tree_abort(w->tree);
			w->tree = NULL;
		}
	}
	mlx_filelist_free(&w->placed);
}

/* Places the files of the window and empties it. */
static int flush(struct window *w, struct mlx_err *err)
{
	if (w->list.len == 0)
		return MLX_OK;
	for (size_t i = 0; w->verified && i < w->list.len; i++) {
		unsigned char id[32];
		w->trusted[i] = mlx_id_from_hex(w->list.items[i].hex, id) && mlx_idset_find(w->verified, id);
	}
	int64_t stamp;
	int rc = mlx_workspace_checkout_dated(w->ws, w->dir, &w->list, w->link,
	                                      w->verified ? w->trusted : NULL, &stamp, err);
	for (size_t i = 0; i < w->list.len; i++) {
		w->done++;
		w->done_bytes += w->list.items[i].size;
	}
	if (rc == MLX_OK && w->tree) {
		tree_add_placed(w);
		w->placed = w->list; /* moved: the list starts empty again */
		w->placed_stamp = stamp;
		w->list = (struct mlx_filelist){0};
	}
	mlx_filelist_free(&w->list);
	return rc;
}

static int add_line(void *vw, const char *hex, uint64_t size, uint32_t mode, const char *path, size_t plen,
                    struct mlx_err *err)
{
	struct window *w = vw;
	char name[sizeof((struct mlx_manifest_walk *)0)->prev];
	memcpy(name, path, plen); /* plen < sizeof name: the walk checked it */
	name[plen] = '\0';
	int rc = mlx_filelist_push(&w->list, name, size, mode, hex, err);
	if (rc == MLX_OK && w->list.len == w->window)
		rc = flush(w, err);
	return rc;
}

int mlx_workspace_manifest_count(struct mlx_workspace *ws, const char *hex, uint64_t *files, uint64_t *bytes,
                                 struct mlx_err *err)
{
	*files = *bytes = 0;
	int fd = mlx_store_open_object(mlx_workspace_store(ws), hex, err);
	if (fd < 0)
		return fd;
	int rc = mlx_manifest_walk_fd(fd, hex, hex, NULL, NULL, files, bytes, err);
	close(fd);
	return rc;
}

int mlx_workspace_checkout_manifest(struct mlx_workspace *ws, const char *dir, const char *hex,
                                    enum mlx_link link, struct mlx_idset *verified, size_t window,
                                    mlx_workspace_report report, void *ctx, size_t *files,
                                    struct mlx_err *err)
{
	*files = 0;
	if (window == 0)
		window = DEFAULT_WINDOW;
	struct window *w = calloc(1, sizeof *w);
	unsigned char *trusted = malloc(window);
	if (!w || !trusted) {
		free(w);
		free(trusted);
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	}
	*w = (struct window){.ws = ws,
	                     .dir = dir,
	                     .link = link,
	                     .verified = verified,
	                     .window = window,
	                     .trusted = trusted,
	                     .report = report,
	                     .report_ctx = ctx};
	int fd = mlx_store_open_object(mlx_workspace_store(ws), hex, err);
	int rc = fd < 0 ? fd : MLX_OK;
	/* First the whole manifest is verified (nothing is written for a
	 * manifest that is not what its id says), then it is read again and
	 * placed. */
	uint64_t total = 0;
	if (rc == MLX_OK)
		rc = mlx_manifest_walk_fd(fd, hex, hex, NULL, NULL, &total, &w->total_bytes, err);
	w->total = (size_t)total;
	if (rc == MLX_OK && lseek(fd, 0, SEEK_SET) != 0)
		rc = mlx_err_sys(err, errno, "cannot read object %s", hex);
	if (rc == MLX_OK && report)
		mlx_workspace_set_progress(ws, window_report, w);
	/* The files placed here are recorded as mlx_workspace_checkout
	 * records them, and also as the directory's tree, the one a walk of
	 * it would write: the next status or no-op pull then compares the
	 * directory with the tree instead of walking it into a list. Only
	 * inside the project, where the stat cache records files. */
	struct mlx_statcache *sc = dir[0] != '/' ? mlx_workspace_statcache(ws) : NULL;
	if (rc == MLX_OK && sc && mlx_statcache_tree_start(sc, dir, &w->tree, NULL) != MLX_OK)
		w->tree = NULL;
	if (rc == MLX_OK)
		rc = mlx_manifest_walk_fd(fd, hex, hex, add_line, w, NULL, NULL, err);
	if (rc == MLX_OK)
		rc = flush(w, err);
	if (report)
		mlx_workspace_set_progress(ws, report, ctx);
	if (rc == MLX_OK)
		*files = w->done;
	/* The id is recorded only if every file of the manifest is in the
	 * tree (finish checks the count). */
	if (rc == MLX_OK && w->tree)
		tree_add_placed(w);
	if (rc == MLX_OK && w->tree)
		mlx_statcache_tree_finish(w->tree, hex, total, NULL);
	else
		mlx_statcache_tree_abort(w->tree);
	mlx_filelist_free(&w->placed);
	if (fd >= 0)
		close(fd);
	mlx_filelist_free(&w->list);
	free(w->trusted);
	free(w);
	return rc;
}
