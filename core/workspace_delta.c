/* workspace_delta.c — a tracked directory updated or compared by what
 * differs, not walked whole: mlx add of paths inside it
 * (mlx_workspace_put_members), and its diff against the locked manifest
 * from the stat cache's tree (mlx_workspace_diff_from_tree). Both end in
 * one merge of the locked manifest's text with the lines that changed. */
#include "workspace.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "path.h"
#include "statcache.h"
#include "workspace_internal.h"

static int push_copy(struct mlx_filelist *to, const struct mlx_file *f, struct mlx_err *err)
{
	return mlx_filelist_push(to, f->path, f->size, f->mode, f->hex, err);
}

/* The merge of a directory's locked manifest with the new lines of some of
 * its members (mlx_workspace_put_members), line by line. */
struct member_merge {
	const char *const *members; /* sorted */
	size_t nmembers;
	const struct mlx_filelist *now; /* the members' files now, sorted */
	const char *now_text;           /* their manifest lines, in that order */
	size_t j;                       /* the next of them */
	const char *line;               /* where the old line being read starts */
	struct mlx_store_writer *w;     /* the new manifest, staged; or NULL: */
	struct mlx_hash_stream hash;    /* only hashed */
	uint64_t files, size;
	struct mlx_filelist *gone; /* or NULL: the old lines replaced by no new one */
	int failed;                /* no memory for gone */
};

/* Is path (plen bytes) one of the members, or below one? One lookup per
 * ancestor: a manifest of a million lines against a few members. */
static int replaced(const struct member_merge *m, const char *path, size_t plen)
{
	for (size_t end = 0; end <= plen; end++) {
		if (end < plen && path[end] != '/')
			continue;
		size_t lo = 0, hi = m->nmembers;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			const char *s = m->members[mid];
			int c = strncmp(s, path, end);
			if (c == 0)
				c = s[end] ? 1 : 0;
			if (c == 0)
				return 1;
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	return 0;
}

/* Appends n bytes at p to the new manifest, never held whole: a million
 * lines are 92 MB, as many as the locked text beside it. */
static int put_text(struct member_merge *m, const char *p, size_t n, struct mlx_err *err)
{
	return m->w ? mlx_store_writer_write(m->w, p, n, err) : mlx_hash_stream_update(&m->hash, p, n, err);
}

/* Appends the new lines whose paths sort before path (plen bytes), or all
 * that are left if path is NULL. */
static int emit_new(struct member_merge *m, const char *path, size_t plen, struct mlx_err *err)
{
	while (m->j < m->now->len) {
		const struct mlx_file *f = &m->now->items[m->j];
		if (path) {
			size_t flen = strlen(f->path);
			int c = memcmp(f->path, path, flen < plen ? flen : plen);
			if (c > 0 || (c == 0 && flen >= plen))
				return MLX_OK;
		}
		const char *nl = strchr(m->now_text, '\n');
		size_t n = (size_t)(nl - m->now_text) + 1;
		int rc = put_text(m, m->now_text, n, err);
		if (rc != MLX_OK)
			return rc;
		m->now_text += n;
		m->files++;
		m->size += f->size;
		m->j++;
	}
	return MLX_OK;
}

/* 1 if the sorted list has a file of path (plen bytes). */
static int listed(const struct mlx_filelist *list, const char *path, size_t plen)
{
	size_t lo = 0, hi = list->len;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const char *s = list->items[mid].path;
		int c = strncmp(s, path, plen);
		if (c == 0)
			c = s[plen] ? 1 : 0;
		if (c == 0)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int merge_line(void *ctx, const char *hex, uint64_t size, uint32_t mode, const char *path, size_t plen,
                      struct mlx_err *err)
{
	struct member_merge *m = ctx;
	const char *end = path + plen + 1; /* past its newline */
	int rc = emit_new(m, path, plen, err);
	if (rc != MLX_OK)
		return rc;
	if (m->gone && !m->failed && plen < PATH_MAX && replaced(m, path, plen) && !listed(m->now, path, plen)) {
		char copy[PATH_MAX];
		memcpy(copy, path, plen);
		copy[plen] = '\0';
		m->failed = mlx_filelist_push(m->gone, copy, size, mode, hex, NULL) != MLX_OK;
	}
	if (!replaced(m, path, plen)) {
		if ((rc = put_text(m, m->line, (size_t)(end - m->line), err)) != MLX_OK)
			return rc;
		m->files++;
		m->size += size;
	}
	m->line = end;
	return MLX_OK;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends the files of member (a file or a directory below base) to now,
 * with paths relative to base, by the rules of mlx_hash_walk. */
static int list_member(struct mlx_workspace *ws, const char *base, const char *member,
                       struct mlx_filelist *now, struct mlx_err *err)
{
	const char *objects = mlx_store_objects_dir(mlx_workspace_store(ws));
	char full[PATH_MAX];
	struct stat st;
	if (snprintf(full, sizeof full, "%s/%s", base, member) >= (int)sizeof full)
		return mlx_err_set(err, MLX_ERR_INVALID, ENAMETOOLONG, "%s/%s: path too long", base, member);
	if (lstat(full, &st) != 0)
		return mlx_err_sys(err, errno, "cannot stat %s", full);
	if (!S_ISDIR(st.st_mode))
		return mlx_hash_stat(base, member, objects, now, err);
	struct mlx_filelist sub = {0};
	int rc = mlx_hash_walk(full, objects, 0, &sub, err);
	char path[PATH_MAX];
	for (size_t i = 0; rc == MLX_OK && i < sub.len; i++) {
		const struct mlx_file *f = &sub.items[i];
		if (snprintf(path, sizeof path, "%s/%s", member, f->path) >= (int)sizeof path) {
			rc = mlx_err_set(err, MLX_ERR_INVALID, ENAMETOOLONG, "%s/%s: path too long", full,
			                 f->path);
			break;
		}
		if ((rc = mlx_filelist_push(now, path, f->size, f->mode, f->hex, err)) == MLX_OK) {
			struct mlx_file *g = &now->items[now->len - 1];
			g->mtime_ns = f->mtime_ns;
			g->ctime_ns = f->ctime_ns;
			g->ino = f->ino;
		}
	}
	mlx_filelist_free(&sub);
	return rc;
}

/* The manifest of directory rel whose locked manifest is locked, with the
 * lines at and below each of the n sorted paths replaced by the lines of
 * now (sorted, hashed): its id, files and bytes go to *out (no text);
 * with stage set, it is staged into the store as it is made, never whole
 * in memory. The locked manifest's text is text (text_len bytes) when the
 * caller has read it (not freed here), else it is read. Returns 0; what
 * mlx_store_read returns for the locked manifest (the message names rel
 * and what to do); what mlx_store_writer_* return; MLX_ERR_CORRUPT or
 * MLX_ERR_NOMEM. */
static int merge_manifest(struct mlx_workspace *ws, const char *rel, const char *locked, const char *text,
                          size_t text_len, const char *const *paths, size_t n, const struct mlx_filelist *now,
                          struct mlx_filelist *gone, int stage, struct mlx_artifact *out, struct mlx_err *err)
{
	char *read = NULL, *now_text = NULL, now_id[MLX_HASH_HEX_SIZE];
	const char *old = text;
	size_t old_len = text_len, now_len = 0;
	int rc = mlx_hash_manifest(now, &now_text, &now_len, now_id, err);
	if (rc == MLX_OK && !text &&
	    (rc = mlx_store_read(mlx_workspace_store(ws), locked, &read, &old_len, err)) != MLX_OK) {
		char msg[MLX_ERR_MSG_MAX];
		memcpy(msg, err->msg, sizeof msg);
		mlx_err_set(err, rc, 0, "the manifest of %.200s cannot be read (%.300s); add %.200s whole",
		            rel, msg, rel);
	}
	if (read)
		old = read;
	struct member_merge m = {
	    .members = paths, .nmembers = n, .now = now, .now_text = now_text, .line = old, .gone = gone};
	if (rc == MLX_OK)
		rc = stage ? mlx_store_writer_start(mlx_workspace_store(ws), &m.w, err)
		           : mlx_hash_stream_start(&m.hash, err);
	if (rc == MLX_OK &&
	    (rc = mlx_hash_manifest_walk(old, old_len, merge_line, &m, err)) == MLX_ERR_CORRUPT) {
		char msg[MLX_ERR_MSG_MAX];
		memcpy(msg, err->msg, sizeof msg);
		mlx_err_set(err, MLX_ERR_CORRUPT, 0, "manifest %.64s: %.400s", locked, msg);
	}
	if (rc == MLX_OK && m.failed)
		rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	if (rc == MLX_OK)
		rc = emit_new(&m, NULL, 0, err);
	if (rc == MLX_OK && m.w) {
		rc = mlx_store_writer_finish(m.w, out->hex, err); /* frees it */
		m.w = NULL;
	} else if (rc == MLX_OK) {
		rc = mlx_hash_stream_finish(&m.hash, out->hex, err);
	}
	if (rc == MLX_OK) {
		out->is_dir = 1;
		out->files = m.files;
		out->size = m.size;
	}
	mlx_store_writer_abort(m.w);
	mlx_hash_stream_free(&m.hash);
	free(read);
	free(now_text);
	return rc;
}

int mlx_workspace_put_members(struct mlx_workspace *ws, const char *rel, const char *locked,
                              const char *const *members, size_t n, struct mlx_artifact *out,
                              struct mlx_err *err)
{
	*out = (struct mlx_artifact){0};
	int rc = mlx_workspace_check_relative(rel, 0, err);
	for (size_t i = 0; rc == MLX_OK && i < n; i++)
		if ((rc = mlx_workspace_check_relative(members[i], 0, err)) == MLX_OK)
			rc = mlx_path_check(members[i], strlen(members[i]), err);
	if (rc != MLX_OK)
		return rc;
	char base[PATH_MAX];
	mlx_workspace_full_path(ws, rel, base);
	const char **sorted = malloc((n ? n : 1) * sizeof *sorted);
	if (!sorted)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	memcpy(sorted, members, n * sizeof *sorted);
	qsort(sorted, n, sizeof *sorted, compare_names);
	struct mlx_filelist now = {0}, gone = {0};
	/* What the record of the directory vouches for now holds for the
	 * manifest that follows, once committed. */
	struct mlx_present *present =
	    mlx_hash_is_id(locked) ? mlx_workspace_present_carry(ws, rel, locked) : NULL;
	for (size_t i = 0; rc == MLX_OK && i < n; i++)
		rc = list_member(ws, base, sorted[i], &now, err);
	if (rc == MLX_OK)
		mlx_filelist_sort(&now);
	/* The members' files as an add stores them: through the stat cache
	 * (their rows) and staged into the store. */
	struct mlx_statcache *sc = mlx_workspace_statcache(ws);
	if (rc == MLX_OK && sc)
		mlx_statcache_fill(sc, rel, 0, &now, NULL, NULL);
	if (rc == MLX_OK)
		rc = mlx_store_stage_files(mlx_workspace_store(ws), base, &now, mlx_workspace_jobs(ws), err);
	if (rc == MLX_OK && sc)
		mlx_statcache_store(sc, rel, 0, &now, NULL, NULL);
	if (rc == MLX_OK)
		rc = merge_manifest(ws, rel, locked, NULL, 0, sorted, n, &now, &gone, 1, out, err);
	/* The directory's tree, if it is the locked manifest's, takes the
	 * members as they are now: the next look compares with it instead of
	 * walking the directory. */
	if (rc == MLX_OK && sc)
		mlx_statcache_patch(sc, rel, locked, &now, &gone, out->hex, out->files, NULL); /* an accelerator */
	if (rc == MLX_OK) {
		mlx_workspace_present_keep(ws, present, out->hex);
		present = NULL;
	}
	mlx_workspace_present_free(present);
	free(sorted);
	mlx_filelist_free(&now);
	mlx_filelist_free(&gone);
	return rc;
}

/* More differences than this are left to the full walk, which also writes
 * the directory's tree again, so that the next look compares with it. */
#define TREE_DIFF_MAX 10000

/* The file of sorted list at path, or NULL. */
static const struct mlx_file *find_file(const struct mlx_filelist *list, const char *path)
{
	size_t lo = 0, hi = list->len;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(list->items[mid].path, path);
		if (c == 0)
			return &list->items[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int push_facts(struct mlx_filelist *to, const struct mlx_file *f, struct mlx_err *err)
{
	int rc = push_copy(to, f, err);
	if (rc == MLX_OK) {
		struct mlx_file *g = &to->items[to->len - 1];
		g->mtime_ns = f->mtime_ns;
		g->ctime_ns = f->ctime_ns;
		g->ino = f->ino;
	}
	return rc;
}

/* Fills d from c, the differences of a directory from its tree, which
 * records the locked manifest: the added and changed files are hashed
 * (through the stat cache's rows) into cand, and a changed file whose bytes
 * and mode are as locked is no difference; the tree then takes its facts
 * now (a file touched, or checked out within 100 ms of being recorded), so
 * that the next look compares it with its entry alone. */
static int classify(struct mlx_workspace *ws, const char *rel, const char *base,
                    const struct mlx_statcache_changes *c, struct mlx_filelist *cand, struct mlx_dirdiff *d,
                    struct mlx_err *err)
{
	int rc = MLX_OK;
	for (size_t i = 0; rc == MLX_OK && i < c->added.len; i++)
		rc = push_facts(cand, &c->added.items[i], err);
	for (size_t i = 0; rc == MLX_OK && i < c->changed.len; i++)
		rc = push_facts(cand, &c->changed.items[i], err);
	if (rc != MLX_OK)
		return rc;
	mlx_filelist_sort(cand);
	struct mlx_statcache *sc = mlx_workspace_statcache(ws);
	mlx_statcache_fill(sc, rel, 0, cand, NULL, NULL);
	if ((rc = mlx_hash_files_progress(base, cand, mlx_workspace_jobs(ws),
	                                  mlx_workspace_progress_over(ws, cand), err)) != MLX_OK)
		return rc;
	mlx_statcache_store(sc, rel, 0, cand, NULL, NULL);
	for (size_t i = 0; rc == MLX_OK && i < c->added.len; i++)
		rc = push_copy(&d->added, find_file(cand, c->added.items[i].path), err);
	struct mlx_filelist same = {0};
	for (size_t i = 0; rc == MLX_OK && i < c->changed.len; i++) {
		const struct mlx_file *now = find_file(cand, c->changed.items[i].path),
		                      *was = &c->was.items[i];
		if (strcmp(now->hex, was->hex) == 0 && now->mode == was->mode) {
			if ((rc = push_facts(&same, now, err)) == MLX_OK) {
				same.items[same.len - 1].hashed_ns = now->hashed_ns;
				same.items[same.len - 1].cached_ns = now->cached_ns;
			}
			continue;
		}
		if ((rc = push_copy(&d->modified, now, err)) == MLX_OK)
			rc = push_copy(&d->was, was, err);
	}
	for (size_t i = 0; rc == MLX_OK && i < c->deleted.len; i++)
		rc = push_copy(&d->deleted, &c->deleted.items[i], err);
	if (rc == MLX_OK && same.len > 0)
		mlx_statcache_refresh(sc, rel, &same, NULL); /* only an accelerator */
	mlx_filelist_free(&same);
	return rc;
}

/* mlx_workspace_diff from the stat cache's tree of rel, when that tree
 * records the locked manifest and few files differ from it. Returns 1 with
 * *out (no manifest text) and *d filled; 0 if the tree cannot tell (the
 * caller walks; d is empty); or a failure (a file that changed cannot be
 * read: named). */
int mlx_workspace_diff_from_tree(struct mlx_workspace *ws, const char *rel, const char *locked,
                                 struct mlx_artifact *out, struct mlx_dirdiff *d, struct mlx_err *err)
{
	char base[PATH_MAX];
	struct mlx_statcache *sc = mlx_workspace_tree_dir(ws, rel, base);
	if (!sc)
		return 0;
	struct mlx_statcache_changes c;
	int rc = mlx_statcache_changes(sc, rel, base, TREE_DIFF_MAX, &c);
	if (rc < 0)
		return mlx_err_set(err, rc, EINTR, "interrupted");
	if (rc == 0)
		return 0;
	if (strcmp(c.id, locked) != 0) {
		mlx_statcache_changes_free(&c);
		return 0;
	}
	struct mlx_filelist cand = {0}, now = {0};
	const char **paths = NULL;
	rc = MLX_OK;
	if (c.added.len + c.changed.len + c.deleted.len > 0) /* else no database is opened */
		rc = classify(ws, rel, base, &c, &cand, d, err);
	size_t n = d->modified.len + d->deleted.len;
	if (rc == MLX_OK && d->added.len + n == 0) {
		/* Touched, not changed: the locked record stands. */
		*out = (struct mlx_artifact){.is_dir = 1, .files = c.files, .size = c.bytes};
		memcpy(out->hex, c.id, sizeof out->hex);
		rc = 1;
		goto done;
	}
	/* The id now: the locked manifest with the lines of the files that
	 * differ replaced, in one pass over its text. */
	if (rc == MLX_OK && !(paths = malloc((n ? n : 1) * sizeof *paths)))
		rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	for (size_t i = 0; rc == MLX_OK && i < d->modified.len; i++)
		paths[i] = d->modified.items[i].path;
	for (size_t i = 0; rc == MLX_OK && i < d->deleted.len; i++)
		paths[d->modified.len + i] = d->deleted.items[i].path;
	if (rc == MLX_OK)
		qsort(paths, n, sizeof *paths, compare_names);
	for (size_t i = 0; rc == MLX_OK && i < d->added.len; i++)
		rc = push_copy(&now, &d->added.items[i], err);
	for (size_t i = 0; rc == MLX_OK && i < d->modified.len; i++)
		rc = push_copy(&now, &d->modified.items[i], err);
	if (rc == MLX_OK) {
		mlx_filelist_sort(&now);
		rc = merge_manifest(ws, rel, locked, NULL, 0, paths, n, &now, NULL, 0, out, err);
		/* An unreadable locked manifest: the full walk says so. */
		rc = rc == MLX_OK ? 1 : 0;
	}
done:
	if (rc != 1)
		mlx_dirdiff_free(d);
	free(paths);
	mlx_filelist_free(&now);
	mlx_filelist_free(&cand);
	mlx_statcache_changes_free(&c);
	return rc;
}

/* Facts and hash time of f onto the last file of list. */
static void keep_hashed(struct mlx_filelist *list, const struct mlx_file *f)
{
	struct mlx_file *g = &list->items[list->len - 1];
	g->mtime_ns = f->mtime_ns;
	g->ctime_ns = f->ctime_ns;
	g->ino = f->ino;
	g->hashed_ns = f->hashed_ns;
	g->cached_ns = f->cached_ns;
}

int mlx_workspace_put_tree(struct mlx_workspace *ws, const char *rel, const char *locked,
                           struct mlx_artifact *out, struct mlx_err *err)
{
	*out = (struct mlx_artifact){0};
	char base[PATH_MAX];
	struct mlx_statcache *sc = mlx_workspace_tree_dir(ws, rel, base);
	struct mlx_store *store = mlx_workspace_store(ws);
	if (!sc || !mlx_hash_is_id(locked))
		return 0;
	struct mlx_statcache_changes c;
	int rc = mlx_statcache_changes(sc, rel, base, TREE_DIFF_MAX, &c);
	if (rc < 0)
		return mlx_err_set(err, rc, EINTR, "interrupted");
	if (rc == 0)
		return 0;
	/* The locked manifest, read once: its objects must all be in the
	 * store, as the whole walk's add would leave them (it stages any that
	 * is missing: one quarantined by fsck is restored by adding the
	 * directory again), and it is the base of the new one. */
	char *text = NULL;
	size_t text_len = 0;
	struct mlx_present *present = NULL;
	if (strcmp(c.id, locked) != 0 || mlx_store_read(store, locked, &text, &text_len, NULL) != MLX_OK ||
	    !mlx_workspace_objects_present(ws, rel, locked, text, text_len, &present)) {
		free(text);
		mlx_statcache_changes_free(&c);
		return 0;
	}
	struct mlx_filelist cand = {0}, now = {0}, gone = {0};
	const char **paths = NULL;
	rc = MLX_OK;
	for (size_t i = 0; rc == MLX_OK && i < c.added.len; i++)
		rc = push_facts(&cand, &c.added.items[i], err);
	for (size_t i = 0; rc == MLX_OK && i < c.changed.len; i++)
		rc = push_facts(&cand, &c.changed.items[i], err);
	if (rc == MLX_OK && cand.len > 0) {
		/* Only these are read (unless their rows know them) and stored,
		 * as the whole walk would store them. */
		mlx_filelist_sort(&cand);
		mlx_statcache_fill(sc, rel, 0, &cand, NULL, NULL);
		rc = mlx_store_stage_files(store, base, &cand, mlx_workspace_jobs(ws), err);
		if (rc == MLX_OK)
			mlx_statcache_store(sc, rel, 0, &cand, NULL, NULL);
	}
	/* now: every file whose entry the tree takes (added, changed, and
	 * touched with the same bytes); paths: the locked lines replaced. */
	size_t n = 0, differ = c.added.len + c.deleted.len;
	if (rc == MLX_OK && !(paths = malloc((c.changed.len + c.deleted.len + 1) * sizeof *paths)))
		rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	for (size_t i = 0; rc == MLX_OK && i < cand.len; i++) {
		const struct mlx_file *f = &cand.items[i];
		if ((rc = push_copy(&now, f, err)) == MLX_OK)
			keep_hashed(&now, f);
	}
	for (size_t i = 0; rc == MLX_OK && i < c.changed.len; i++) {
		const struct mlx_file *f = find_file(&cand, c.changed.items[i].path), *was = &c.was.items[i];
		paths[n++] = f->path;
		differ += strcmp(f->hex, was->hex) != 0 || f->mode != was->mode;
	}
	for (size_t i = 0; rc == MLX_OK && i < c.deleted.len; i++) {
		paths[n++] = c.deleted.items[i].path;
		rc = push_copy(&gone, &c.deleted.items[i], err);
	}
	if (rc == MLX_OK && differ == 0) {
		/* Touched, not changed: the locked record stands. */
		*out = (struct mlx_artifact){.is_dir = 1, .files = c.files, .size = c.bytes};
		memcpy(out->hex, locked, sizeof out->hex);
		if (now.len > 0)
			mlx_statcache_refresh(sc, rel, &now, NULL); /* only an accelerator */
		mlx_workspace_present_keep(ws, present, locked);
		present = NULL;
		rc = 1;
		goto done;
	}
	if (rc == MLX_OK) {
		qsort(paths, n, sizeof *paths, compare_names);
		mlx_filelist_sort(&gone);
		/* The new manifest: the locked one with the lines of the files
		 * changed or gone replaced by the files now (a touched one by
		 * its own line, as it was). */
		rc = merge_manifest(ws, rel, locked, text, text_len, paths, n, &cand, NULL, 1, out, err);
	}
	if (rc == MLX_OK) {
		mlx_statcache_patch(sc, rel, locked, &now, &gone, out->hex, out->files, NULL); /* an accelerator */
		mlx_workspace_present_keep(ws, present, out->hex);
		present = NULL;
		rc = 1;
	}
done:
	mlx_workspace_present_free(present);
	free(text);
	free(paths);
	mlx_filelist_free(&cand);
	mlx_filelist_free(&now);
	mlx_filelist_free(&gone);
	mlx_statcache_changes_free(&c);
	return rc;
}
