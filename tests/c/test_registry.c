/* test_registry.c — core/registry.c: model versions, aliases, the alias
 * history and rollback, concurrent registration and the migration of an
 * older database, on real SQLite files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "registry.h"
#include "rundb.h"

#define HASH_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HASH_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HASH_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

struct fixture {
	char dir[64];
	char path[128];
	struct mlx_rundb *db;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	strcpy(f->dir, "/tmp/mlx-test-registry-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof f->path, "%s/runs.db", f->dir);
	struct mlx_err err;
	if (mlx_rundb_open(f->path, NULL, &f->db, &err) != MLX_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	mlx_rundb_close(f->db, NULL);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	int rc = system(cmd);
	free(f);
	return rc == 0 ? 0 : -1;
}

/* One value of a query, as text, through another connection (as another
 * process sees the file); "" for NULL or no row. */
static const char *peek(const char *path, const char *sql)
{
	static char out[256];
	sqlite3 *raw;
	sqlite3_stmt *st;
	out[0] = '\0';
	assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
	sqlite3_busy_timeout(raw, 5000);
	assert_int_equal(sqlite3_prepare_v2(raw, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		snprintf(out, sizeof out, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(raw);
	return out;
}

static void raw_exec(const char *path, const char *sql)
{
	sqlite3 *raw;
	assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
	sqlite3_busy_timeout(raw, 5000);
	assert_int_equal(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(raw);
}

static int64_t reg(struct mlx_rundb *db, const char *name, const char *hash, int force, int *existed)
{
	struct mlx_model_version v = {
	    .name = name, .hash = hash, .type = "file", .size = 10, .files = 1, .mode = "644"};
	int64_t version = -1;
	int dummy;
	struct mlx_err err;
	int rc = mlx_registry_register(db, &v, force, &version, existed ? existed : &dummy, &err);
	if (rc != MLX_OK)
		fail_msg("register %s: %s", name, err.msg);
	return version;
}

static void versions_are_numbered_per_model_and_the_same_bytes_reuse_one(void **state)
{
	struct fixture *f = *state;
	int existed;
	assert_int_equal(reg(f->db, "iris", HASH_A, 0, &existed), 1);
	assert_int_equal(existed, 0);
	assert_int_equal(reg(f->db, "iris", HASH_B, 0, &existed), 2);
	assert_int_equal(reg(f->db, "wine", HASH_A, 0, &existed), 1);
	assert_int_equal(existed, 0); /* the same bytes under another name are its own version */
	assert_int_equal(reg(f->db, "iris", HASH_A, 0, &existed), 1);
	assert_int_equal(existed, 1);
	assert_int_equal(reg(f->db, "iris", HASH_A, 1, &existed), 3);
	assert_int_equal(existed, 0);
	assert_int_equal(reg(f->db, "iris", HASH_A, 0, &existed), 3); /* the newest with those bytes */
	assert_int_equal(existed, 1);
	assert_string_equal(peek(f->path, "SELECT count(*) FROM model_versions"), "4");
	assert_string_equal(peek(f->path, "SELECT count(*) FROM models"), "2");
}

static void a_version_records_what_it_was_given(void **state)
{
	struct fixture *f = *state;
	const char *tags[] = {"team", "vision", "stage", "dev"};
	struct mlx_model_version v = {
	    .name = "resnet",
	    .hash = HASH_C,
	    .type = "dir",
	    .size = 4096,
	    .files = 3,
	    .path = "work/model",
	    .run_id = "06h1c547aaaaaaaa",
	    .description = "first try",
	    .tags = tags,
	    .ntags = 2,
	    .created_ms = 1234,
	};
	int64_t version;
	int existed;
	struct mlx_err err;
	assert_int_equal(mlx_registry_register(f->db, &v, 0, &version, &existed, &err), MLX_OK);
	assert_int_equal(version, 1);
	assert_string_equal(peek(f->path,
	                         "SELECT artifact_hash || ' ' || type || ' ' || size || ' ' || files || ' '"
	                         " || path || ' ' || run_id || ' ' || created || ' ' || description"
	                         " FROM model_versions WHERE name = 'resnet' AND version = 1"),
	                    HASH_C " dir 4096 3 work/model 06h1c547aaaaaaaa 1234 first try");
	assert_string_equal(peek(f->path, "SELECT mode IS NULL FROM model_versions"), "1");
	assert_string_equal(peek(f->path, "SELECT group_concat(key || '=' || value, ',') FROM"
	                                  " (SELECT * FROM model_version_tags ORDER BY key)"),
	                    "stage=dev,team=vision");
}

static void bad_names_and_records_are_refused(void **state)
{
	struct fixture *f = *state;
	struct mlx_err err;
	int64_t version;
	int existed;
	const char *bad_names[] = {"", "-x", "a b", "iris@prod", "iris:3", "a/b", "é"};
	for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
		struct mlx_model_version v = {
		    .name = bad_names[i], .hash = HASH_A, .type = "file", .size = 1};
		assert_int_equal(mlx_registry_register(f->db, &v, 0, &version, &existed, &err),
		                 MLX_ERR_INVALID);
	}
	assert_int_equal(mlx_registry_check_name("iris-v2.1_x", 0, &err), MLX_OK);
	assert_int_equal(mlx_registry_check_name("42", 0, &err), MLX_OK);
	assert_int_equal(mlx_registry_check_name("42", 1, &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "version number"));
	char long_name[200];
	memset(long_name, 'a', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = '\0';
	assert_int_equal(mlx_registry_check_name(long_name, 0, &err), MLX_ERR_INVALID);

	struct mlx_model_version v = {.name = "iris", .hash = "ABC", .type = "file", .size = 1};
	assert_int_equal(mlx_registry_register(f->db, &v, 0, &version, &existed, &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "64 lowercase hex"));
	v.hash = HASH_A;
	v.type = "link";
	assert_int_equal(mlx_registry_register(f->db, &v, 0, &version, &existed, &err), MLX_ERR_INVALID);
	v.type = "file";
	v.size = -1;
	assert_int_equal(mlx_registry_register(f->db, &v, 0, &version, &existed, &err), MLX_ERR_INVALID);
	assert_string_equal(peek(f->path, "SELECT count(*) FROM model_versions"), "0");
}

static void aliases_move_and_every_move_is_recorded(void **state)
{
	struct fixture *f = *state;
	struct mlx_err err;
	int64_t previous;
	reg(f->db, "iris", HASH_A, 0, NULL);
	reg(f->db, "iris", HASH_B, 0, NULL);

	assert_int_equal(mlx_registry_set_alias(f->db, "iris", "production", 1, "runid1", &previous, &err),
	                 MLX_OK);
	assert_int_equal(previous, 0);
	assert_int_equal(mlx_registry_set_alias(f->db, "iris", "production", 2, NULL, &previous, &err),
	                 MLX_OK);
	assert_int_equal(previous, 1);
	assert_int_equal(mlx_registry_set_alias(f->db, "iris", "production", 2, NULL, &previous, &err),
	                 MLX_OK);
	assert_int_equal(previous, 2); /* already there: nothing recorded */
	assert_string_equal(peek(f->path, "SELECT version FROM model_aliases WHERE alias = 'production'"),
	                    "2");
	assert_string_equal(peek(f->path,
	                         "SELECT group_concat(action || ':' || coalesce(previous, '-') || '>'"
	                         " || coalesce(version, '-') || ':' || coalesce(run_id, ''), ' ')"
	                         " FROM (SELECT * FROM model_alias_history ORDER BY id)"),
	                    "set:->1:runid1 set:1>2:");
	assert_string_equal(peek(f->path, "SELECT count(*) FROM model_alias_history WHERE user IS NOT NULL"),
	                    "2");

	assert_int_equal(mlx_registry_set_alias(f->db, "iris", "production", 3, NULL, &previous, &err),
	                 MLX_ERR_NOTFOUND);
	assert_string_equal(err.msg, "model iris has no version 3");
	assert_int_equal(mlx_registry_set_alias(f->db, "wine", "production", 1, NULL, &previous, &err),
	                 MLX_ERR_NOTFOUND);
	assert_string_equal(err.msg, "no model named wine");
	assert_int_equal(mlx_registry_set_alias(f->db, "iris", "7", 1, NULL, &previous, &err),
	                 MLX_ERR_INVALID);

	assert_int_equal(mlx_registry_delete_alias(f->db, "iris", "production", NULL, &previous, &err),
	                 MLX_OK);
	assert_int_equal(previous, 2);
	assert_string_equal(peek(f->path, "SELECT count(*) FROM model_aliases"), "0");
	assert_int_equal(mlx_registry_delete_alias(f->db, "iris", "production", NULL, &previous, &err),
	                 MLX_ERR_NOTFOUND);
	assert_string_equal(err.msg, "model iris has no alias production");
	assert_string_equal(peek(f->path,
	                         "SELECT action || ':' || previous || ':' || coalesce(version, 'null')"
	                         " FROM model_alias_history ORDER BY id DESC LIMIT 1"),
	                    "delete:2:null");
}

static int64_t rollback(struct mlx_rundb *db, int64_t *previous)
{
	int64_t version;
	struct mlx_err err;
	int rc = mlx_registry_rollback(db, "iris", "production", NULL, &version, previous, &err);
	if (rc != MLX_OK)
		fail_msg("rollback: %s", err.msg);
	return version;
}

static void rollback_undoes_changes_one_after_the_other(void **state)
{
	struct fixture *f = *state;
	struct mlx_err err;
	int64_t previous, version;
	reg(f->db, "iris", HASH_A, 0, NULL);
	reg(f->db, "iris", HASH_B, 0, NULL);
	reg(f->db, "iris", HASH_C, 0, NULL);
	assert_int_equal(mlx_registry_rollback(f->db, "iris", "production", NULL, &version, &previous, &err),
	                 MLX_ERR_NOTFOUND);
	assert_string_equal(err.msg, "alias production of model iris has no earlier version to go back to");
	for (int64_t v = 1; v <= 3; v++)
		assert_int_equal(
		    mlx_registry_set_alias(f->db, "iris", "production", v, NULL, &previous, &err), MLX_OK);
	assert_int_equal(rollback(f->db, &previous), 2);
	assert_int_equal(previous, 3);
	assert_int_equal(rollback(f->db, &previous), 1);
	assert_int_equal(previous, 2);
	/* A new change after rollbacks: undoing it goes back to 1, not to 2. */
	assert_int_equal(mlx_registry_set_alias(f->db, "iris", "production", 3, NULL, &previous, &err),
	                 MLX_OK);
	assert_int_equal(rollback(f->db, &previous), 1);
	assert_int_equal(previous, 3);
	assert_int_equal(rollback(f->db, &previous), 0); /* before the first change: no alias */
	assert_int_equal(previous, 1);
	assert_string_equal(peek(f->path, "SELECT count(*) FROM model_aliases"), "0");
	assert_int_equal(mlx_registry_rollback(f->db, "iris", "production", NULL, &version, &previous, &err),
	                 MLX_ERR_NOTFOUND);
	/* A deleted alias comes back. */
	assert_int_equal(mlx_registry_set_alias(f->db, "iris", "production", 2, NULL, &previous, &err),
	                 MLX_OK);
	assert_int_equal(mlx_registry_delete_alias(f->db, "iris", "production", NULL, &previous, &err),
	                 MLX_OK);
	assert_int_equal(rollback(f->db, &previous), 2);
	assert_int_equal(previous, 0);
	assert_string_equal(peek(f->path, "SELECT version FROM model_aliases WHERE alias = 'production'"),
	                    "2");
	assert_string_equal(peek(f->path, "SELECT count(*) FROM model_alias_history WHERE action = 'rollback'"
	                                  " AND reverts IS NOT NULL"),
	                    "5");
}

static void concurrent_registrations_get_distinct_versions(void **state)
{
	struct fixture *f = *state;
	enum { WRITERS = 4, EACH = 25 };
	mlx_rundb_close(f->db, NULL); /* no connection crosses a fork */
	f->db = NULL;
	pid_t pids[WRITERS];
	for (int w = 0; w < WRITERS; w++) {
		if ((pids[w] = fork()) == 0) {
			struct mlx_rundb *db;
			if (mlx_rundb_open(f->path, NULL, &db, NULL) != MLX_OK)
				_exit(1);
			for (int i = 0; i < EACH; i++) {
				char hash[65];
				snprintf(hash, sizeof hash, "%064x", w * 1000 + i);
				struct mlx_model_version v = {
				    .name = "iris", .hash = hash, .type = "file", .size = 1};
				int64_t version;
				int existed;
				if (mlx_registry_register(db, &v, 0, &version, &existed, NULL) != MLX_OK ||
				    existed)
					_exit(2);
			}
			mlx_rundb_close(db, NULL);
			_exit(0);
		}
	}
	for (int w = 0; w < WRITERS; w++) {
		int status;
		waitpid(pids[w], &status, 0);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_string_equal(
	    peek(f->path, "SELECT count(DISTINCT version) || ' ' || min(version) || ' ' || max(version)"
	                  " FROM model_versions"),
	    "100 1 100");
}

static void an_older_database_gains_the_registry(void **state)
{
	struct fixture *f = *state;
	char id[MLX_RUN_ID_SIZE];
	struct mlx_run_start start = {.recipe = "train.lua", .git_dirty = -1};
	assert_int_equal(mlx_rundb_start(f->db, &start, id, NULL), MLX_OK);
	mlx_rundb_close(f->db, NULL);
	/* Schema 1, as the first mlx releases wrote it (without migrations 2
	 * and 3). */
	raw_exec(f->path, "DROP TABLE models; DROP TABLE model_versions; DROP TABLE model_version_tags;"
	                  " DROP TABLE model_aliases; DROP TABLE model_alias_history;"
	                  " DROP INDEX artifacts_by_hash; ALTER TABLE runs DROP COLUMN pgid;"
	                  " ALTER TABLE runs DROP COLUMN pgid_start; PRAGMA user_version = 1");
	struct mlx_err err;
	assert_int_equal(mlx_rundb_open(f->path, NULL, &f->db, &err), MLX_OK);
	assert_int_equal(mlx_rundb_schema_version(f->db), mlx_rundb_schema_latest());
	assert_int_equal(reg(f->db, "iris", HASH_A, 0, NULL), 1);
	assert_string_equal(peek(f->path, "SELECT recipe FROM runs"), "train.lua");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(versions_are_numbered_per_model_and_the_same_bytes_reuse_one,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(a_version_records_what_it_was_given, setup, teardown),
	    cmocka_unit_test_setup_teardown(bad_names_and_records_are_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(aliases_move_and_every_move_is_recorded, setup, teardown),
	    cmocka_unit_test_setup_teardown(rollback_undoes_changes_one_after_the_other, setup, teardown),
	    cmocka_unit_test_setup_teardown(concurrent_registrations_get_distinct_versions, setup, teardown),
	    cmocka_unit_test_setup_teardown(an_older_database_gains_the_registry, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
