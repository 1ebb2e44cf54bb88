/* registry.c — the model registry's writes: versions, aliases and the
 * alias history, each change one transaction (see registry.h). The tables
 * are made by migration 2 of rundb.c. */
#include "registry.h"

#include <string.h>

#include "rundb_internal.h"

#define NAME_MAX_BYTES 128

int mlx_registry_check_name(const char *name, int is_alias, struct mlx_err *err)
{
	const char *what = is_alias ? "alias" : "model name";
	size_t len = name ? strlen(name) : 0;
	if (len == 0)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "empty %s", what);
	if (len > NAME_MAX_BYTES)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "%s '%.40s…' is longer than %d bytes", what, name,
		                   NAME_MAX_BYTES);
	int digits_only = 1;
	for (const char *p = name; *p; p++) {
		int alnum = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9');
		if (!alnum && (p == name || (*p != '_' && *p != '-' && *p != '.')))
			return mlx_err_set(
			    err, MLX_ERR_INVALID, 0,
			    "invalid %s '%.130s': use letters, digits, '_', '-' and '.', starting with "
			    "a letter or digit",
			    what, name);
		if (*p < '0' || *p > '9')
			digits_only = 0;
	}
	if (is_alias && digits_only)
		return mlx_err_set(
		    err, MLX_ERR_INVALID, 0,
		    "invalid alias '%s': an alias of digits only would read as a version number", name);
	return MLX_OK;
}

static int is_id(const char *s)
{
	if (!s || strlen(s) != 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

/* ---- statements ------------------------------------------------------- */

/* These run a few times per command: prepared per call, not kept. */
static int prepare(struct mlx_rundb *db, const char *sql, sqlite3_stmt **st, struct mlx_err *err)
{
	int rc = sqlite3_prepare_v2(db->sql, sql, -1, st, NULL);
	return rc == SQLITE_OK ? MLX_OK : rundb_fail(db, rc, err, "cannot prepare a registry statement");
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* Binds version to i, or NULL for 0. */
static void bind_version(sqlite3_stmt *st, int i, int64_t version)
{
	if (version > 0)
		sqlite3_bind_int64(st, i, version);
	else
		sqlite3_bind_null(st, i);
}

/* Runs a statement that returns no rows, then finalizes it. */
static int run(struct mlx_rundb *db, sqlite3_stmt *st, struct mlx_err *err, const char *doing)
{
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? MLX_OK : rundb_fail(db, rc, err, doing);
}

/* Steps st to its first row: 1 with a row, 0 without, or an error. The
 * caller finalizes st. */
static int first_row(struct mlx_rundb *db, sqlite3_stmt *st, struct mlx_err *err, const char *doing)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : rundb_fail(db, rc, err, doing);
}

/* The version alias of name names now, in *version (0: none). */
static int alias_version(struct mlx_rundb *db, const char *name, const char *alias, int64_t *version,
                         struct mlx_err *err)
{
	sqlite3_stmt *st;
	int rc = prepare(db, "SELECT version FROM model_aliases WHERE name = ?1 AND alias = ?2", &st, err);
	if (rc != MLX_OK)
		return rc;
	bind_text(st, 1, name);
	bind_text(st, 2, alias);
	*version = 0;
	rc = first_row(db, st, err, "cannot read an alias");
	if (rc == 1)
		*version = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc < 0 ? rc : MLX_OK;
}

/* Points alias at version (0: removes it). */
static int write_alias(struct mlx_rundb *db, const char *name, const char *alias, int64_t version,
                       int64_t now, struct mlx_err *err)
{
	sqlite3_stmt *st;
	const char *sql = version > 0 ? "INSERT INTO model_aliases (name, alias, version, updated)"
	                                " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name, alias) DO UPDATE"
	                                " SET version = excluded.version, updated = excluded.updated"
	                              : "DELETE FROM model_aliases WHERE name = ?1 AND alias = ?2";
	int rc = prepare(db, sql, &st, err);
	if (rc != MLX_OK)
		return rc;
	bind_text(st, 1, name);
	bind_text(st, 2, alias);
	if (version > 0) {
		sqlite3_bind_int64(st, 3, version);
		sqlite3_bind_int64(st, 4, now);
	}
	return run(db, st, err, "cannot write an alias");
}

struct change {
	const char *action;                 /* "set", "delete" or "rollback" */
	int64_t version, previous, reverts; /* 0: NULL */
	const char *run_id;
};

static int record_change(struct mlx_rundb *db, const char *name, const char *alias, const struct change *c,
                         int64_t now, struct mlx_err *err)
{
	sqlite3_stmt *st;
	int rc =
	    prepare(db,
	            "INSERT INTO model_alias_history (name, alias, action, version, previous, reverts, time,"
	            " user, run_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	            &st, err);
	if (rc != MLX_OK)
		return rc;
	bind_text(st, 1, name);
	bind_text(st, 2, alias);
	bind_text(st, 3, c->action);
	bind_version(st, 4, c->version);
	bind_version(st, 5, c->previous);
	bind_version(st, 6, c->reverts);
	sqlite3_bind_int64(st, 7, now);
	bind_text(st, 8, db->user);
	bind_text(st, 9, c->run_id);
	return run(db, st, err, "cannot record an alias change");
}

/* Takes the handle's lock (the flush thread shares the connection) and
 * starts a write transaction. */
static int begin(struct mlx_rundb *db, struct mlx_err *err)
{
	pthread_mutex_lock(&db->lock);
	int rc = rundb_begin(db, err);
	if (rc != MLX_OK)
		pthread_mutex_unlock(&db->lock);
	return rc;
}

/* Ends what begin started: commits if rc is MLX_OK, else rolls back; then
 * releases the lock. Returns rc, or the error of the commit. */
static int end(struct mlx_rundb *db, int rc, struct mlx_err *err)
{
	if (rc == MLX_OK)
		rc = rundb_commit(db, err);
	if (rc != MLX_OK)
		rundb_rollback(db);
	pthread_mutex_unlock(&db->lock);
	return rc;
}

/* ---- versions ---------------------------------------------------------- */

static int check_version(const struct mlx_model_version *v, struct mlx_err *err)
{
	int rc = mlx_registry_check_name(v->name, 0, err);
	if (rc != MLX_OK)
		return rc;
	if (!is_id(v->hash))
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "model %s: the object id must be 64 lowercase hex digits", v->name);
	if (!v->type || (strcmp(v->type, "file") != 0 && strcmp(v->type, "dir") != 0))
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "model %s: type must be \"file\" or \"dir\"",
		                   v->name);
	if (v->size < 0)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "model %s: size must not be negative", v->name);
	for (size_t i = 0; i < v->ntags; i++)
		if (!v->tags[2 * i] || !*v->tags[2 * i] || !v->tags[2 * i + 1])
			return mlx_err_set(err, MLX_ERR_INVALID, 0,
			                   "model %s: a tag needs a name and a value", v->name);
	return MLX_OK;
}

static int insert_version(struct mlx_rundb *db, const struct mlx_model_version *v, int force,
                          int64_t *version, int *existed, struct mlx_err *err)
{
	int64_t now = v->created_ms > 0 ? v->created_ms : rundb_now_ms();
	sqlite3_stmt *st;
	int rc = prepare(db, "INSERT OR IGNORE INTO models (name, created) VALUES (?1, ?2)", &st, err);
	if (rc != MLX_OK)
		return rc;
	bind_text(st, 1, v->name);
	sqlite3_bind_int64(st, 2, now);
	if ((rc = run(db, st, err, "cannot record a model")) != MLX_OK)
		return rc;

	/* The same bytes again: the version that has them, unless forced. */
	const char *sql =
	    force ? "SELECT NULL, coalesce(max(version), 0) + 1 FROM model_versions WHERE name = ?1"
	          : "SELECT (SELECT max(version) FROM model_versions WHERE name = ?1"
	            " AND artifact_hash = ?2), coalesce(max(version), 0) + 1"
	            " FROM model_versions WHERE name = ?1";
	if ((rc = prepare(db, sql, &st, err)) != MLX_OK)
		return rc;
	bind_text(st, 1, v->name);
	if (!force)
		bind_text(st, 2, v->hash);
	rc = first_row(db, st, err, "cannot number a model version");
	if (rc == 1) {
		*existed = sqlite3_column_type(st, 0) != SQLITE_NULL;
		*version = sqlite3_column_int64(st, *existed ? 0 : 1);
	}
	sqlite3_finalize(st);
	if (rc < 0)
		return rc;
	if (*existed)
		return MLX_OK;

	if ((rc = prepare(
	         db,
	         "INSERT INTO model_versions (name, version, artifact_hash, type, size, files, mode, path,"
	         " run_id, created, description) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
	         &st, err)) != MLX_OK)
		return rc;
	bind_text(st, 1, v->name);
	sqlite3_bind_int64(st, 2, *version);
	bind_text(st, 3, v->hash);
	bind_text(st, 4, v->type);
	sqlite3_bind_int64(st, 5, v->size);
	if (v->files > 0)
		sqlite3_bind_int64(st, 6, v->files);
	bind_text(st, 7, v->mode);
	bind_text(st, 8, v->path);
	bind_text(st, 9, v->run_id);
	sqlite3_bind_int64(st, 10, now);
	bind_text(st, 11, v->description);
	if ((rc = run(db, st, err, "cannot record a model version")) != MLX_OK)
		return rc;
	for (size_t i = 0; i < v->ntags; i++) {
		if ((rc = prepare(db,
		                  "INSERT OR REPLACE INTO model_version_tags (name, version, key, value)"
		                  " VALUES (?1, ?2, ?3, ?4)",
		                  &st, err)) != MLX_OK)
			return rc;
		bind_text(st, 1, v->name);
		sqlite3_bind_int64(st, 2, *version);
		bind_text(st, 3, v->tags[2 * i]);
		bind_text(st, 4, v->tags[2 * i + 1]);
		if ((rc = run(db, st, err, "cannot record a model version's tag")) != MLX_OK)
			return rc;
	}
	return MLX_OK;
}

int mlx_registry_register(struct mlx_rundb *db, const struct mlx_model_version *v, int force,
                          int64_t *version, int *existed, struct mlx_err *err)
{
	*version = 0;
	*existed = 0;
	int rc = check_version(v, err);
	if (rc != MLX_OK)
		return rc;
	if ((rc = begin(db, err)) != MLX_OK)
		return rc;
	return end(db, insert_version(db, v, force, version, existed, err), err);
}

/* ---- aliases ----------------------------------------------------------- */

static int check_names(const char *name, const char *alias, struct mlx_err *err)
{
	int rc = mlx_registry_check_name(name, 0, err);
	return rc != MLX_OK ? rc : mlx_registry_check_name(alias, 1, err);
}

/* MLX_OK if model name has version, else MLX_ERR_NOTFOUND saying what is missing. */
static int version_exists(struct mlx_rundb *db, const char *name, int64_t version, struct mlx_err *err)
{
	sqlite3_stmt *st;
	int rc = prepare(db,
	                 "SELECT (SELECT count(*) FROM models WHERE name = ?1),"
	                 " (SELECT count(*) FROM model_versions WHERE name = ?1 AND version = ?2)",
	                 &st, err);
	if (rc != MLX_OK)
		return rc;
	bind_text(st, 1, name);
	sqlite3_bind_int64(st, 2, version);
	rc = first_row(db, st, err, "cannot look up a model version");
	if (rc == 1) {
		if (sqlite3_column_int64(st, 0) == 0)
			rc = mlx_err_set(err, MLX_ERR_NOTFOUND, 0, "no model named %s", name);
		else if (sqlite3_column_int64(st, 1) == 0)
			rc = mlx_err_set(err, MLX_ERR_NOTFOUND, 0, "model %s has no version %lld", name,
			                 (long long)version);
		else
			rc = MLX_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

static int set_alias(struct mlx_rundb *db, const char *name, const char *alias, int64_t version,
                     const char *run_id, int64_t *previous, struct mlx_err *err)
{
	int rc = version_exists(db, name, version, err);
	if (rc == MLX_OK)
		rc = alias_version(db, name, alias, previous, err);
	if (rc != MLX_OK || *previous == version)
		return rc;
	int64_t now = rundb_now_ms();
	struct change c = {"set", version, *previous, 0, run_id};
	if ((rc = write_alias(db, name, alias, version, now, err)) != MLX_OK)
		return rc;
	return record_change(db, name, alias, &c, now, err);
}

int mlx_registry_set_alias(struct mlx_rundb *db, const char *name, const char *alias, int64_t version,
                           const char *run_id, int64_t *previous, struct mlx_err *err)
{
	*previous = 0;
	int rc = check_names(name, alias, err);
	if (rc != MLX_OK)
		return rc;
	if (version <= 0)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "model %s: versions are numbered from 1", name);
	if ((rc = begin(db, err)) != MLX_OK)
		return rc;
	return end(db, set_alias(db, name, alias, version, run_id, previous, err), err);
}

static int delete_alias(struct mlx_rundb *db, const char *name, const char *alias, const char *run_id,
                        int64_t *previous, struct mlx_err *err)
{
	int rc = alias_version(db, name, alias, previous, err);
	if (rc != MLX_OK)
		return rc;
	if (*previous == 0)
		return mlx_err_set(err, MLX_ERR_NOTFOUND, 0, "model %s has no alias %s", name, alias);
	int64_t now = rundb_now_ms();
	struct change c = {"delete", 0, *previous, 0, run_id};
	if ((rc = write_alias(db, name, alias, 0, now, err)) != MLX_OK)
		return rc;
	return record_change(db, name, alias, &c, now, err);
}

int mlx_registry_delete_alias(struct mlx_rundb *db, const char *name, const char *alias, const char *run_id,
                              int64_t *previous, struct mlx_err *err)
{
	*previous = 0;
	int rc = check_names(name, alias, err);
	if (rc != MLX_OK)
		return rc;
	if ((rc = begin(db, err)) != MLX_OK)
		return rc;
	return end(db, delete_alias(db, name, alias, run_id, previous, err), err);
}

/* The history is a log of changes; a rollback row says which change it
 * undid (reverts), so the changes not undone form a stack whose top is the
 * alias's present state, and a rollback pops it. */
static int rollback(struct mlx_rundb *db, const char *name, const char *alias, const char *run_id,
                    int64_t *version, int64_t *previous, struct mlx_err *err)
{
	int rc = alias_version(db, name, alias, previous, err);
	if (rc != MLX_OK)
		return rc;
	sqlite3_stmt *st;
	if ((rc = prepare(db,
	                  "SELECT id, previous FROM model_alias_history h WHERE name = ?1 AND alias = ?2"
	                  " AND action != 'rollback' AND NOT EXISTS (SELECT 1 FROM model_alias_history r"
	                  "   WHERE r.name = ?1 AND r.alias = ?2 AND r.reverts = h.id)"
	                  " ORDER BY id DESC LIMIT 1",
	                  &st, err)) != MLX_OK)
		return rc;
	bind_text(st, 1, name);
	bind_text(st, 2, alias);
	int64_t undone = 0;
	rc = first_row(db, st, err, "cannot read the history of an alias");
	if (rc == 1) {
		undone = sqlite3_column_int64(st, 0);
		*version = sqlite3_column_int64(st, 1); /* NULL reads as 0: the alias did not exist */
	}
	sqlite3_finalize(st);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return mlx_err_set(err, MLX_ERR_NOTFOUND, 0,
		                   "alias %s of model %s has no earlier version to go back to", alias, name);
	int64_t now = rundb_now_ms();
	struct change c = {"rollback", *version, *previous, undone, run_id};
	if ((rc = write_alias(db, name, alias, *version, now, err)) != MLX_OK)
		return rc;
	return record_change(db, name, alias, &c, now, err);
}

int mlx_registry_rollback(struct mlx_rundb *db, const char *name, const char *alias, const char *run_id,
                          int64_t *version, int64_t *previous, struct mlx_err *err)
{
	*version = *previous = 0;
	int rc = check_names(name, alias, err);
	if (rc != MLX_OK)
		return rc;
	if ((rc = begin(db, err)) != MLX_OK)
		return rc;
	return end(db, rollback(db, name, alias, run_id, version, previous, err), err);
}
