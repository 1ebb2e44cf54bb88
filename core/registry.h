/* registry.h — the model registry, in the tracking database (DESIGN §5).
 *
 * A model is a name; its versions are numbered 1, 2, … in the order they
 * are registered, each naming one object of the store (a file, or a
 * directory's manifest) by its id in model_versions.artifact_hash, which
 * `mlx gc` keeps. An alias ("production", "staging") names one version of
 * a model; every change of an alias is appended to model_alias_history, so
 * that it can be rolled back and audited.
 *
 * Each function here is one BEGIN IMMEDIATE transaction on the handle's
 * connection: concurrent registrations of one model get distinct, increasing
 * versions, and an alias never moves without its history row. Reading is
 * done with mlx_rundb_query_open. Strings passed in are used only during the
 * call. */
#ifndef MLX_REGISTRY_H
#define MLX_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "rundb.h"

/* What is recorded of a new version. name is required, as are hash (64
 * lowercase hex digits), type and size; the rest may be NULL / 0. */
struct mlx_model_version {
	const char *name;
	const char *hash;   /* the object: a file's SHA-256 or a manifest id */
	const char *type;   /* "file" or "dir" */
	int64_t size;       /* bytes (all files of a directory) */
	int64_t files;      /* files of a directory; 1 for a file */
	const char *mode;   /* a file's "644" or "755"; NULL for a directory */
	const char *path;   /* where it was registered from, relative to the project */
	const char *run_id; /* the run that produced it */
	const char *description;
	const char *const *tags; /* ntags pairs: key, value, key, value, … */
	size_t ntags;
	int64_t created_ms; /* 0: now */
};

/* Returns 0 if name can name a model or an alias: 1 to 128 bytes of
 * letters, digits, '_', '-' and '.', starting with a letter or a digit;
 * an alias may not be only digits (those are version numbers). Otherwise
 * MLX_ERR_INVALID with a message saying why. */
int mlx_registry_check_name(const char *name, int is_alias, struct mlx_err *err);

/* Records a version of v->name (the model is created on its first version)
 * with the next number, and writes it to *version; *existed is 0. Unless
 * force, if a version of that model already names v->hash, records nothing
 * and returns that version (the newest such) with *existed set to 1.
 * Returns 0, MLX_ERR_INVALID (a bad name, hash, type or size), or an error
 * of the database (MLX_ERR_BUSY, MLX_ERR_IO). */
int mlx_registry_register(struct mlx_rundb *db, const struct mlx_model_version *v, int force,
                          int64_t *version, int *existed, struct mlx_err *err);

/* Points alias of model name at version, recording the change (with the
 * user, and run_id if not NULL: the run that made it) in the history.
 * *previous gets the version it named before, 0 if none; an alias that
 * already names version is left as it is and nothing is recorded. Returns
 * 0, MLX_ERR_NOTFOUND (no such model or version), MLX_ERR_INVALID (a bad
 * alias name), or an error of the database. */
int mlx_registry_set_alias(struct mlx_rundb *db, const char *name, const char *alias, int64_t version,
                           const char *run_id, int64_t *previous, struct mlx_err *err);

/* Removes alias of model name, recording it; *previous gets the version it
 * named. Returns 0, MLX_ERR_NOTFOUND (no such alias), or an error as above. */
int mlx_registry_delete_alias(struct mlx_rundb *db, const char *name, const char *alias, const char *run_id,
                              int64_t *previous, struct mlx_err *err);

/* Undoes the latest change of alias that was not undone already: the alias
 * names again the version it named before that change (or is removed, if it
 * did not exist then), and the rollback is recorded. Rolling back again
 * undoes the change before, and so on. *version gets the version it names
 * now (0: removed), *previous the one it named before the rollback (0:
 * none). Returns 0, MLX_ERR_NOTFOUND if there is no change left to undo, or
 * an error as above. */
int mlx_registry_rollback(struct mlx_rundb *db, const char *name, const char *alias, const char *run_id,
                          int64_t *version, int64_t *previous, struct mlx_err *err);

#endif
