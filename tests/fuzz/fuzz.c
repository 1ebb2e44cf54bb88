/* fuzz.c — the libFuzzer targets of mlx (docs/testing.md), in one binary:
 * the environment variable MLX_FUZZ_TARGET names the one to run.
 *
 *   path      mlx_path_check against an independent reading of its rule,
 *             then, for a path it accepts, mlx_path_check_parents,
 *             mlx_path_open_parent (creating) and mlx_path_remove inside a
 *             project whose symlinks point outside it: nothing outside may
 *             change.
 *   manifest  mlx_hash_manifest_parse: what parses is canonical (written
 *             back by mlx_hash_manifest it is the same text) and parses
 *             again to the same list.
 *   csv       mlx_check_csv: lines split in place (plain lines) and lines
 *             given to libcsv count the same: every count, example, bin,
 *             sample and category agrees with a read that gives every line
 *             to libcsv; mlx_check_jsonl reads the same bytes without harm.
 *   multistatus, s3listing
 *             the readers of remote listings (a WebDAV PROPFIND answer, an
 *             S3 ListObjectsV2 page): every key they hand out is a valid key
 *             below the listed prefix, whatever the server sent.
 *   lock, runcache, events, filter
 *             the Lua parsers, run in a Lua state set up as the mlx binary
 *             sets up its own (the embedded stdlib, the C modules linked in
 *             rather than loaded from mlx_data.so); tests/fuzz/targets.lua
 *             says what each may return.
 *
 * A finding is a crash, a sanitizer report, or a broken property, which
 * aborts with a message on stderr; libFuzzer then keeps the input. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <limits.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "binding.h"
#include "check.h"
#include "embedded.h"
#include "hash.h"
#include "path.h"
#include "remote_curl.h"
#include "remote_http.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* In mlx_data.so, not declared in binding.h: the host never opens them. */
int luaopen_mlx_rundb(lua_State *L);
int luaopen_mlx_store(lua_State *L);

/* libFuzzer calls plain functions, so the state of the one target this
 * process runs lives here. */
static struct {
	const char *target;
	char dir[PATH_MAX]; /* a temporary directory, removed at exit */
	int project_fd;     /* path: dir/project, cleared before each input */
	int outside_fd;     /* path: dir/outside, which must never change */
	lua_State *L;       /* the Lua targets */
	int lua_target;     /* registry reference of the target function */
} fuzz = {.project_fd = -1, .outside_fd = -1};

static void finding(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void finding(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "mlx_fuzz: %s: finding: ", fuzz.target);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

/* Removes everything inside the directory fd, never following a symlink;
 * the harness's own cleaning, independent of the mlx_path_remove under
 * test. */
static void clear_dir(int fd)
{
	int dup_fd = dup(fd);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	if (!d) {
		perror("mlx_fuzz: cannot read a temporary directory");
		exit(2);
	}
	rewinddir(d);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (unlinkat(fd, e->d_name, 0) == 0 || (errno != EISDIR && errno != EPERM))
			continue;
		int sub = openat(fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub >= 0) {
			fchmod(sub, 0755);
			clear_dir(sub);
			close(sub);
		}
		unlinkat(fd, e->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

static void remove_temporary_dir(void)
{
	if (fuzz.dir[0] == '\0')
		return;
	int fd = open(fuzz.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		clear_dir(fd);
		close(fd);
	}
	rmdir(fuzz.dir);
}

static void make_temporary_dir(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(fuzz.dir, sizeof fuzz.dir, "%s/mlx-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(fuzz.dir)) {
		perror("mlx_fuzz: cannot make a temporary directory");
		exit(2);
	}
	atexit(remove_temporary_dir);
}

/* ---- path ------------------------------------------------------------- */

/* The rule of path.h, read independently of path.c. */
static int path_acceptable(const char *p, size_t len)
{
	if (len == 0 || len >= 4096 || p[0] == '/')
		return 0;
	for (size_t i = 0; i < len; i++)
		if (p[i] == '\0' || p[i] == '\n' || p[i] == '\r')
			return 0;
	if (len == 8 && memcmp(p, "mlx.lock", 8) == 0)
		return 0;
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && p[i] != '/')
			continue;
		size_t n = i - start;
		const char *c = p + start;
		if (n == 0 || n >= 256 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return 0;
		if (n == 4 && (strncasecmp(c, ".git", 4) == 0 || strncasecmp(c, ".mlx", 4) == 0))
			return 0;
		start = i + 1;
	}
	return 1;
}

static void write_file(int dirfd, const char *name, const char *text)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || close(fd) != 0) {
		perror("mlx_fuzz: cannot write a file of the test project");
		exit(2);
	}
}

/* dir/project: files, directories, a .git and .mlx, and symlinks to
 * dir/outside, relative, absolute, and one inside a subdirectory. */
static void project_reset(void)
{
	int fd = fuzz.project_fd;
	clear_dir(fd);
	char outside[PATH_MAX + 16];
	snprintf(outside, sizeof outside, "%s/outside", fuzz.dir);
	if (mkdirat(fd, "dir", 0755) || mkdirat(fd, "dir/sub", 0755) || mkdirat(fd, ".git", 0755) ||
	    mkdirat(fd, ".mlx", 0755) || symlinkat("../outside", fd, "link") ||
	    symlinkat(outside, fd, "abs") || symlinkat("../../outside", fd, "dir/up") ||
	    symlinkat("outside/canary", fd, "dangling")) {
		perror("mlx_fuzz: cannot make the test project");
		exit(2);
	}
	write_file(fd, "file", "file\n");
	write_file(fd, "dir/file", "file\n");
	write_file(fd, "dir/sub/file", "file\n");
	write_file(fd, ".git/config", "[core]\n");
}

static void path_init(void)
{
	make_temporary_dir();
	int top = open(fuzz.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (top < 0 || mkdirat(top, "project", 0755) || mkdirat(top, "outside", 0755)) {
		perror("mlx_fuzz: cannot make the test directories");
		exit(2);
	}
	fuzz.project_fd = openat(top, "project", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fuzz.outside_fd = openat(top, "outside", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(top);
	write_file(fuzz.outside_fd, "canary", "canary\n");
}

/* Fails unless dir/outside holds exactly the file canary, unchanged. */
static void outside_unchanged(const char *path, size_t len)
{
	DIR *d = fdopendir(dup(fuzz.outside_fd));
	if (!d)
		finding("cannot read the outside directory");
	rewinddir(d);
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "canary"))
			finding("'%.*s' created %s outside the project", (int)len, path, e->d_name);
	closedir(d);
	char buf[16] = "";
	int fd = openat(fuzz.outside_fd, "canary", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n != 7 || memcmp(buf, "canary\n", 7) != 0)
		finding("'%.*s' removed or changed a file outside the project", (int)len, path);
}

static void fuzz_path(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct mlx_err err;
	int rc = mlx_path_check(p, size, &err);
	if (rc != MLX_OK && rc != MLX_ERR_INVALID)
		finding("mlx_path_check returned %d", rc);
	if ((rc == MLX_OK) != path_acceptable(p, size))
		finding("mlx_path_check %s '%.*s'", rc == MLX_OK ? "accepted" : "refused", (int)size, p);
	if (rc != MLX_OK) {
		if (err.msg[0] == '\0' || strchr(err.msg, '\n') || strchr(err.msg, '\r'))
			finding("the message is not one line: '%s'", err.msg);
		return;
	}
	/* A checked path is a C string from here on, as callers pass it. */
	char rel[4096];
	memcpy(rel, p, size);
	rel[size] = '\0';
	project_reset();
	mlx_path_check_parents(fuzz.project_fd, rel, &err);
	int fd;
	const char *name;
	if (mlx_path_open_parent(fuzz.project_fd, rel, 1, &fd, &name, &err) == MLX_OK) {
		int file = openat(fd, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (file >= 0)
			close(file);
		close(fd);
	}
	outside_unchanged(rel, size);
	if (mlx_path_remove(fuzz.project_fd, rel, &err) == MLX_OK) {
		struct stat st;
		if (fstatat(fuzz.project_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0)
			finding("mlx_path_remove returned 0 but '%s' is still there", rel);
	}
	outside_unchanged(rel, size);
}

/* ---- manifest ----------------------------------------------------------- */

static void fuzz_manifest(const uint8_t *data, size_t size)
{
	struct mlx_filelist list = {0}, again = {0};
	struct mlx_err err;
	int rc = mlx_hash_manifest_parse((const char *)data, size, &list, &err);
	if (rc != MLX_OK) {
		if (rc != MLX_ERR_CORRUPT)
			finding("mlx_hash_manifest_parse returned %d: %s", rc, err.msg);
		if (list.len != 0)
			finding("a refused manifest left %zu items", list.len);
		return;
	}
	char *text, hex[MLX_HASH_HEX_SIZE];
	size_t len;
	if (mlx_hash_manifest(&list, &text, &len, hex, &err) != MLX_OK)
		finding("a parsed manifest cannot be written back: %s", err.msg);
	if (len != size || memcmp(text, data, size) != 0)
		finding("a parsed manifest written back is other text (%zu bytes, not %zu)", len, size);
	if (mlx_hash_manifest_parse(text, len, &again, &err) != MLX_OK)
		finding("a manifest written back does not parse: %s", err.msg);
	if (again.len != list.len)
		finding("%zu items parsed again, not %zu", again.len, list.len);
	for (size_t i = 0; i < list.len; i++) {
		const struct mlx_file *a = &list.items[i], *b = &again.items[i];
		if (strcmp(a->path, b->path) || a->size != b->size || a->mode != b->mode ||
		    strcmp(a->hex, b->hex))
			finding("item %zu differs when parsed again: '%s'", i, a->path);
	}
	free(text);
	mlx_filelist_free(&list);
	mlx_filelist_free(&again);
}

/* ---- the Lua targets ------------------------------------------------------ */

static int load_embedded(lua_State *L)
{
	const struct mlx_embedded_module *m = lua_touserdata(L, lua_upvalueindex(1));
	if (luaL_loadbufferx(L, m->source, m->size, m->chunkname, "bt") != LUA_OK)
		return lua_error(L);
	lua_pushstring(L, m->name);
	lua_call(L, 1, 1);
	return 1;
}

/* The Lua library is the system's, not built with coverage, so libFuzzer
 * would see only the C code: a line hook counts each step from one line of
 * Lua to the next in counters libFuzzer reads along with its own (the
 * extra-counters section), which lets it find inputs that reach new Lua
 * code too. */
#define LUA_EDGES (1 << 16)
__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t lua_edges[LUA_EDGES];

static void count_line(lua_State *L, lua_Debug *ar)
{
	static uintptr_t previous;
	if (!lua_getinfo(L, "S", ar))
		return;
	/* A chunk's source string lives as long as its functions. */
	uintptr_t here = ((uintptr_t)ar->source * 2654435761u) ^ (uintptr_t)ar->currentline;
	lua_edges[(here ^ previous) % LUA_EDGES]++;
	previous = here >> 1;
}

static int traceback_handler(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
	return 1;
}

/* As lua/main.c: the stdlib in package.preload; the C modules that the
 * binary loads from mlx_data.so are linked in instead. */
static void lua_init(void)
{
	static const luaL_Reg modules[] = {
	    {"mlx.core", luaopen_mlx_core},       {"mlx.fs", luaopen_mlx_fs},
	    {"mlx.proc", luaopen_mlx_proc},       {"mlx.data", luaopen_mlx_data},
	    {"mlx.hash", luaopen_mlx_hash},       {"mlx.json", luaopen_mlx_json},
	    {"mlx.rundb", luaopen_mlx_rundb},     {"mlx.store", luaopen_mlx_store},
	    {"mlx.modeldb", luaopen_mlx_modeldb}, {"mlx.stepgraph", luaopen_mlx_stepgraph},
	    {NULL, NULL},
	};
	make_temporary_dir();
	lua_State *L = fuzz.L = luaL_newstate();
	if (!L) {
		fputs("mlx_fuzz: cannot create the Lua state\n", stderr);
		exit(2);
	}
	luaL_openlibs(L);
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	for (const struct mlx_embedded_module *m = mlx_embedded_modules; m->name; m++) {
		lua_pushlightuserdata(L, (void *)m);
		lua_pushcclosure(L, load_embedded, 1);
		lua_setfield(L, -2, m->name);
	}
	for (const luaL_Reg *r = modules; r->name; r++) {
		lua_pushcfunction(L, r->func);
		lua_setfield(L, -2, r->name);
	}
	lua_pop(L, 1);
	/* targets.lua returns function(target, dir) -> the function to fuzz. */
	lua_pushcfunction(L, traceback_handler);
	if (luaL_loadfile(L, MLX_FUZZ_TARGETS) != LUA_OK || lua_pcall(L, 0, 1, 1) != LUA_OK) {
		fprintf(stderr, "mlx_fuzz: %s\n", lua_tostring(L, -1));
		exit(2);
	}
	lua_pushstring(L, fuzz.target);
	lua_pushstring(L, fuzz.dir);
	if (lua_pcall(L, 2, 1, 1) != LUA_OK) {
		fprintf(stderr, "mlx_fuzz: %s\n", lua_tostring(L, -1));
		exit(2);
	}
	fuzz.lua_target = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pop(L, 1);
	lua_sethook(L, count_line, LUA_MASKLINE, 0);
}

static void fuzz_lua(const uint8_t *data, size_t size)
{
	lua_State *L = fuzz.L;
	lua_pushcfunction(L, traceback_handler);
	lua_rawgeti(L, LUA_REGISTRYINDEX, fuzz.lua_target);
	lua_pushlstring(L, (const char *)data, size);
	if (lua_pcall(L, 1, 0, -3) != LUA_OK)
		finding("%s", lua_tostring(L, -1));
	lua_pop(L, 1);
	/* Memory of one input is freed before the next, so that libFuzzer's
	 * leak check, which runs when an input mallocs more than it frees,
	 * does not run after every input. */
	lua_gc(L, LUA_GCCOLLECT);
}

/* ---- csv ---------------------------------------------------------------- */

static char csv_path[PATH_MAX];

static void csv_init(void)
{
	make_temporary_dir();
	snprintf(csv_path, sizeof csv_path, "%s/input.csv", fuzz.dir);
}

static const double csv_edges[] = {-1, 0, 10};
static const char *const csv_allowed[] = {"x", "y"};
static const char *const csv_na[] = {"NA", ""};
static const struct mlx_check_spec csv_specs[] = {
    {.name = "a",
     .type = MLX_CHECK_INT,
     .nulls_allowed = 1,
     .unique = 1,
     .categories = 64,
     .edges = csv_edges,
     .nedges = 3},
    {.name = "b", .type = MLX_CHECK_NUMBER, .has_min = 1, .min = 0, .has_max = 1, .max = 100, .sample = 8},
    {.name = "c", .type = MLX_CHECK_STRING, .allowed = csv_allowed, .nallowed = 2},
    {.name = "d", .type = MLX_CHECK_BOOL, .nulls_allowed = 1},
};
#define CSV_NSPECS (sizeof csv_specs / sizeof csv_specs[0])

static void same_count(const char *what, const struct mlx_check_count *x, const struct mlx_check_count *y)
{
	if (x->count != y->count || x->nexamples != y->nexamples)
		finding("%s: %llu (%zu examples) split in place, %llu (%zu) by libcsv", what,
		        (unsigned long long)x->count, x->nexamples, (unsigned long long)y->count,
		        y->nexamples);
	for (size_t i = 0; i < x->nexamples; i++)
		if (x->examples[i].row != y->examples[i].row ||
		    strcmp(x->examples[i].value, y->examples[i].value))
			finding("%s: example %zu is row %llu '%s' split in place, row %llu '%s' by libcsv",
			        what, i, (unsigned long long)x->examples[i].row, x->examples[i].value,
			        (unsigned long long)y->examples[i].row, y->examples[i].value);
}

static void csv_compare(const struct mlx_check *x, const struct mlx_check *y)
{
	const struct mlx_check_rows *rx = mlx_check_rows(x), *ry = mlx_check_rows(y);
	if (rx->rows != ry->rows)
		finding("%llu rows split in place, %llu by libcsv", (unsigned long long)rx->rows,
		        (unsigned long long)ry->rows);
	same_count("ragged rows", &rx->ragged, &ry->ragged);
	if (rx->nheader != ry->nheader)
		finding("header of %zu names, not %zu", rx->nheader, ry->nheader);
	for (size_t i = 0; i < CSV_NSPECS; i++) {
		const struct mlx_check_stats *a = mlx_check_stats(x, i), *b = mlx_check_stats(y, i);
		const char *name = csv_specs[i].name;
		if (a->present != b->present || a->nulls != b->nulls || a->numbers != b->numbers ||
		    memcmp(&a->sum, &b->sum, sizeof a->sum) || memcmp(&a->min, &b->min, sizeof a->min) ||
		    memcmp(&a->max, &b->max, sizeof a->max))
			finding("column %s: nulls %llu/%llu, numbers %llu/%llu, sum %g/%g differ", name,
			        (unsigned long long)a->nulls, (unsigned long long)b->nulls,
			        (unsigned long long)a->numbers, (unsigned long long)b->numbers, a->sum,
			        b->sum);
		for (int r = 0; r < MLX_CHECK_NRULES; r++)
			same_count(name, &a->rules[r], &b->rules[r]);
		if (a->nbins != b->nbins ||
		    (a->nbins && memcmp(a->bins, b->bins, a->nbins * sizeof *a->bins)))
			finding("column %s: bins differ", name);
		if (a->nsample != b->nsample ||
		    (a->nsample && memcmp(a->sample, b->sample, a->nsample * sizeof *a->sample)))
			finding("column %s: samples differ", name);
		if (a->ncategories != b->ncategories || a->categories_other != b->categories_other)
			finding("column %s: %zu categories split in place, %zu by libcsv", name,
			        a->ncategories, b->ncategories);
		for (size_t j = 0; j < a->ncategories; j++) {
			const char *va, *vb;
			size_t la, lb;
			uint64_t ca, cb;
			mlx_check_category(x, i, j, &va, &la, &ca);
			mlx_check_category(y, i, j, &vb, &lb, &cb);
			if (la != lb || memcmp(va, vb, la) || ca != cb)
				finding("column %s: category %zu differs", name, j);
		}
	}
}

static void fuzz_csv(const uint8_t *data, size_t size)
{
	int fd = open(csv_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size || close(fd) != 0)
		finding("cannot write %s: %s", csv_path, strerror(errno));
	struct mlx_err err;
	struct mlx_check *x = mlx_check_new(csv_specs, CSV_NSPECS, &err);
	struct mlx_check *y = mlx_check_new(csv_specs, CSV_NSPECS, &err);
	if (!x || !y)
		finding("mlx_check_new: %s", err.msg);
	struct mlx_check_options o = {.delimiter = ',', .na = csv_na, .nna = 2};
	struct mlx_err errx, erry;
	int rcx = mlx_check_csv(x, csv_path, &o, &errx);
	o.libcsv_only = 1;
	int rcy = mlx_check_csv(y, csv_path, &o, &erry);
	if (rcx != rcy)
		finding("split in place: %d (%s), by libcsv: %d (%s)", rcx, errx.msg, rcy, erry.msg);
	if (rcx == MLX_OK)
		csv_compare(x, y);
	else if (rcx != MLX_ERR_INVALID || strchr(errx.msg, '\n'))
		finding("mlx_check_csv returned %d: %s", rcx, errx.msg);
	mlx_check_free(x);
	mlx_check_free(y);
	struct mlx_check *j = mlx_check_new(csv_specs, CSV_NSPECS, &err);
	if (!j)
		finding("mlx_check_new: %s", err.msg);
	size_t lines = 1;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (mlx_check_jsonl(j, csv_path, &o, &err) != MLX_OK)
		finding("mlx_check_jsonl failed on a readable file: %s", err.msg);
	if (mlx_check_rows(j)->rows > lines)
		finding("%llu JSON Lines rows in %zu lines", (unsigned long long)mlx_check_rows(j)->rows,
		        lines);
	mlx_check_free(j);
}

/* ---- remote listings ------------------------------------------------------ */

static int multistatus_entry(void *ctx, const char *key, int collection, uint64_t size)
{
	(void)ctx;
	(void)size;
	size_t n = strlen(key);
	if (!mlx_remote_key_valid(key, collection) || strncmp(key, "objects/", 8) != 0 || n <= 8 ||
	    (collection && key[n - 1] != '/'))
		finding("a PROPFIND answer gave a key that is not below objects/: '%s'", key);
	return 0;
}

static void fuzz_multistatus(const uint8_t *data, size_t size)
{
	struct mlx_err err;
	int rc = mlx_webdav_parse_multistatus("fuzz", "/base/", "objects/", (const char *)data, size,
	                                      multistatus_entry, NULL, &err);
	if (rc != MLX_OK && rc != MLX_ERR_IO && rc != MLX_ERR_NOMEM)
		finding("mlx_webdav_parse_multistatus returned %d", rc);
}

static int listing_key(void *ctx, const char *key, uint64_t size)
{
	(void)ctx;
	(void)size;
	if (!mlx_remote_key_valid(key, false))
		finding("an S3 listing gave a key that is not a key: '%s'", key);
	return 0;
}

static void fuzz_s3listing(const uint8_t *data, size_t size)
{
	struct mlx_err err;
	char *token = NULL;
	int rc =
	    mlx_s3_parse_listing("fuzz", "p/", (const char *)data, size, listing_key, NULL, &token, &err);
	if (rc != MLX_OK && rc != MLX_ERR_IO && rc != MLX_ERR_NOMEM)
		finding("mlx_s3_parse_listing returned %d", rc);
	if (rc != MLX_OK && token)
		finding("mlx_s3_parse_listing failed and still gave a token");
	free(token);
}

/* ---- libFuzzer ---------------------------------------------------------- */

static const struct {
	const char *name;
	void (*init)(void);
	void (*run)(const uint8_t *data, size_t size);
} targets[] = {
    {"path", path_init, fuzz_path},      {"manifest", NULL, fuzz_manifest},
    {"lock", lua_init, fuzz_lua},        {"runcache", lua_init, fuzz_lua},
    {"events", lua_init, fuzz_lua},      {"filter", lua_init, fuzz_lua},
    {"csv", csv_init, fuzz_csv},         {"multistatus", NULL, fuzz_multistatus},
    {"s3listing", NULL, fuzz_s3listing},
};
#define NTARGETS (sizeof targets / sizeof targets[0])

static size_t chosen;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz.target = getenv("MLX_FUZZ_TARGET");
	for (chosen = 0; chosen < NTARGETS; chosen++)
		if (fuzz.target && strcmp(fuzz.target, targets[chosen].name) == 0)
			break;
	if (chosen == NTARGETS) {
		fputs("mlx_fuzz: set MLX_FUZZ_TARGET to one of:", stderr);
		for (size_t i = 0; i < NTARGETS; i++)
			fprintf(stderr, " %s", targets[i].name);
		fputc('\n', stderr);
		exit(2);
	}
	if (targets[chosen].init)
		targets[chosen].init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	targets[chosen].run(data, size);
	return 0;
}
