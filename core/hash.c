/* hash.c — SHA-256 through the SHA-NI blocks of sha256.c where the CPU has
 * them, else through OpenSSL's EVP interface, which picks the AVX2 or plain
 * code path for this CPU at run time.
 *
 * libcrypto is loaded on first use (dlopen), not linked: mapping and
 * relocating it costs about a millisecond at every start of the object
 * that links it (more on a loaded machine), and on a CPU with SHA-NI a
 * command hashes without it. */
#include "hash.h"
#include "dirnames.h"
#include "path.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "pool.h"
#include "sha256.h"

/* Large reads keep the syscall count negligible next to hashing cost; 1 MiB
 * measured as fast as mmap here without mmap's SIGBUS on a shrinking file. */
#define READ_CHUNK (1u << 20)

/* ---- OpenSSL, loaded on first use -------------------------------------- */

#define STRINGIFY(x) #x
#define SONAME(v) "libcrypto.so." STRINGIFY(v)
/* The libcrypto of the headers built against: "libcrypto.so.3". */
#define LIBCRYPTO SONAME(OPENSSL_SHLIB_VERSION)

/* Its functions this file calls, resolved once per process; the types are
 * the headers' own, so a call is checked as a direct one would be. */
static struct {
	__typeof__(EVP_MD_CTX_new) *ctx_new;
	__typeof__(EVP_MD_CTX_free) *ctx_free;
	__typeof__(EVP_sha256) *sha256;
	__typeof__(EVP_DigestInit_ex2) *init;
	__typeof__(EVP_DigestUpdate) *update;
	__typeof__(EVP_DigestFinal_ex) *final;
	__typeof__(OpenSSL_version) *version;
} ossl;
static int ossl_loaded;
static char ossl_error[256];
static pthread_once_t ossl_once = PTHREAD_ONCE_INIT;

static void ossl_load(void)
{
	/* Never closed: the process keeps it, as it would a linked one. */
	void *lib = dlopen(LIBCRYPTO, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		snprintf(ossl_error, sizeof ossl_error, "%s", dlerror());
		return;
	}
	const char *missing = NULL;
#define RESOLVE(field, name)                                                                                 \
	if (!missing && !(*(void **)&ossl.field = dlsym(lib, #name)))                                        \
		missing = #name;
	RESOLVE(ctx_new, EVP_MD_CTX_new)
	RESOLVE(ctx_free, EVP_MD_CTX_free)
	RESOLVE(sha256, EVP_sha256)
	RESOLVE(init, EVP_DigestInit_ex2)
	RESOLVE(update, EVP_DigestUpdate)
	RESOLVE(final, EVP_DigestFinal_ex)
	RESOLVE(version, OpenSSL_version)
#undef RESOLVE
	if (missing)
		snprintf(ossl_error, sizeof ossl_error, "%s has no %s", LIBCRYPTO, missing);
	else
		ossl_loaded = 1;
}

static int ossl_ready(struct mlx_err *err)
{
	pthread_once(&ossl_once, ossl_load);
	if (ossl_loaded)
		return MLX_OK;
	return mlx_err_set(err, MLX_ERR_CRYPTO, 0, "cannot load OpenSSL for SHA-256: %s", ossl_error);
}

const char *mlx_hash_openssl_version(void)
{
	return ossl_ready(NULL) == MLX_OK ? ossl.version(OPENSSL_VERSION) : NULL;
}

void mlx_hex_encode(const unsigned char *md, size_t n, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[2 * n] = '\0';
}

int mlx_hash_stream_start(struct mlx_hash_stream *h, struct mlx_err *err)
{
	if (!h->openssl && mlx_sha256_available()) {
		h->ni = 1;
		mlx_sha256_init(h->state);
		h->fill = 0;
		h->total = 0;
		return MLX_OK;
	}
	h->ni = 0;
	/* EVP_sha256(): OpenSSL's own static method, which it fetches and
	 * caches itself; an EVP_MD_fetch'ed one would have to be freed by
	 * someone, and a process-wide one never is. */
	int rc = ossl_ready(err);
	if (rc != MLX_OK)
		return rc;
	if (!h->ctx && !(h->ctx = ossl.ctx_new()))
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	if (!ossl.init(h->ctx, ossl.sha256(), NULL))
		return mlx_err_set(err, MLX_ERR_CRYPTO, 0, "SHA-256 failed in OpenSSL");
	return MLX_OK;
}

int mlx_hash_stream_update(struct mlx_hash_stream *h, const void *buf, size_t len, struct mlx_err *err)
{
	if (!h->ni) {
		if (!ossl.update(h->ctx, buf, len))
			return mlx_err_set(err, MLX_ERR_CRYPTO, 0, "SHA-256 failed in OpenSSL");
		return MLX_OK;
	}
	const unsigned char *p = buf;
	h->total += len;
	if (h->fill > 0) {
		size_t take = MLX_SHA256_BLOCK - h->fill < len ? MLX_SHA256_BLOCK - h->fill : len;
		memcpy(h->block + h->fill, p, take);
		h->fill += take;
		p += take;
		len -= take;
		if (h->fill < MLX_SHA256_BLOCK)
			return MLX_OK;
		mlx_sha256_blocks(h->state, h->block, 1);
		h->fill = 0;
	}
	size_t full = len / MLX_SHA256_BLOCK;
	mlx_sha256_blocks(h->state, p, full);
	h->fill = len % MLX_SHA256_BLOCK;
	memcpy(h->block, p + full * MLX_SHA256_BLOCK, h->fill);
	return MLX_OK;
}

int mlx_hash_stream_finish(struct mlx_hash_stream *h, char hex[MLX_HASH_HEX_SIZE], struct mlx_err *err)
{
	if (h->ni) {
		unsigned char last[2 * MLX_SHA256_BLOCK];
		memcpy(last, h->block, h->fill);
		mlx_sha256_blocks(h->state, last, mlx_sha256_pad(last, h->fill, h->total));
		mlx_sha256_hex(h->state, hex);
		h->ni = 0;
		return MLX_OK;
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (!ossl.final(h->ctx, md, &mdlen) || mdlen != 32)
		return mlx_err_set(err, MLX_ERR_CRYPTO, 0, "SHA-256 failed in OpenSSL");
	mlx_hex_encode(md, mdlen, hex);
	return MLX_OK;
}

void mlx_hash_stream_free(struct mlx_hash_stream *h)
{
	if (h->ctx) /* only made once libcrypto was loaded */
		ossl.ctx_free(h->ctx);
	h->ctx = NULL;
	h->ni = 0;
}

int mlx_hash_bytes(const void *buf, size_t len, char hex[MLX_HASH_HEX_SIZE], struct mlx_err *err)
{
	/* Also spares a status that hashes nothing but manifests the cost of
	 * setting OpenSSL up. */
	if (mlx_sha256_available()) {
		mlx_sha256_bytes(buf, len, hex);
		return MLX_OK;
	}
	struct mlx_hash_stream h = {0};
	int rc = mlx_hash_stream_start(&h, err);
	if (rc == MLX_OK && (rc = mlx_hash_stream_update(&h, buf, len, err)) == MLX_OK)
		rc = mlx_hash_stream_finish(&h, hex, err);
	mlx_hash_stream_free(&h);
	return rc;
}

int mlx_hash_fd(int fd, const char *name, char hex[MLX_HASH_HEX_SIZE], uint64_t *size, struct mlx_err *err)
{
	uint64_t total = 0;
	struct mlx_hash_stream h = {0};
	unsigned char *chunk = malloc(READ_CHUNK);
	int rc = chunk ? mlx_hash_stream_start(&h, err)
	               : mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory hashing %s", name);
	while (rc == MLX_OK) {
		ssize_t n = read(fd, chunk, READ_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = mlx_err_sys(err, errno, "cannot read %s", name);
		else if (n == 0)
			break;
		else if ((rc = mlx_hash_stream_update(&h, chunk, (size_t)n, err)) == MLX_OK)
			total += (uint64_t)n;
	}
	if (rc == MLX_OK && (rc = mlx_hash_stream_finish(&h, hex, err)) == MLX_OK && size)
		*size = total;
	mlx_hash_stream_free(&h);
	free(chunk);
	return rc;
}

int mlx_hash_file(const char *path, char hex[MLX_HASH_HEX_SIZE], uint64_t *size, struct mlx_err *err)
{
	/* O_NONBLOCK so that opening a fifo cannot hang; the type check below
	 * then rejects it. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return mlx_err_sys(err, errno, "cannot open %s", path);
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return mlx_err_sys(err, e, "cannot stat %s", path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "%s: %s", path,
				   S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
	}
	/* Back to blocking reads for a regular file. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	int rc = mlx_hash_fd(fd, path, hex, size, err);
	close(fd);
	return rc;
}

/* ---- directories ------------------------------------------------------ */

int64_t mlx_hash_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int mlx_hash_is_id(const char *s)
{
	/* Without a branch per digit: in random hex, digit or letter is a coin
	 * toss the branch predictor loses, and a manifest of a million lines
	 * checks a million ids. The compiler vectorizes this loop. The length
	 * comes first: a shorter string must not be read past its end. */
	if (strnlen(s, 65) != 64)
		return 0;
	unsigned bad = 0;
	for (int i = 0; i < 64; i++) {
		unsigned c = (unsigned char)s[i];
		bad |= (unsigned)((c - '0' > 9u) & (c - 'a' > 5u));
	}
	return !bad;
}

struct mlx_pathblock {
	struct mlx_pathblock *next;
	size_t used, size;
	char data[];
};

#define PATHBLOCK_MIN 1024
#define PATHBLOCK_MAX (64u << 10)

void mlx_filelist_free(struct mlx_filelist *list)
{
	while (list->blocks) {
		struct mlx_pathblock *next = list->blocks->next;
		free(list->blocks);
		list->blocks = next;
	}
	free(list->items);
	list->items = NULL;
	list->len = list->cap = 0;
}

/* A copy of path in the list's blocks: a walk of 20,000 files makes a few
 * dozen allocations for their paths instead of 20,000, and frees as few. */
static char *copy_path(struct mlx_filelist *list, const char *path)
{
	size_t n = strlen(path) + 1;
	struct mlx_pathblock *b = list->blocks;
	if (!b || b->size - b->used < n) {
		size_t size = b ? 2 * b->size : PATHBLOCK_MIN;
		if (size > PATHBLOCK_MAX)
			size = PATHBLOCK_MAX;
		if (size < n)
			size = n;
		struct mlx_pathblock *nb = malloc(sizeof *nb + size);
		if (!nb)
			return NULL;
		nb->next = b;
		nb->used = 0;
		nb->size = size;
		list->blocks = b = nb;
	}
	char *copy = b->data + b->used;
	memcpy(copy, path, n);
	b->used += n;
	return copy;
}

/* Moves the paths of from into to (whose items now point at them). */
static void take_paths(struct mlx_filelist *to, struct mlx_filelist *from)
{
	struct mlx_pathblock **tail = &from->blocks;
	if (!*tail)
		return;
	while (*tail)
		tail = &(*tail)->next;
	*tail = to->blocks;
	to->blocks = from->blocks;
	from->blocks = NULL;
}

int mlx_filelist_push(struct mlx_filelist *list, const char *path, uint64_t size, uint32_t mode,
		      const char *hex, struct mlx_err *err)
{
	if (list->len == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 64;
		struct mlx_file *items = realloc(list->items, cap * sizeof *items);
		if (!items)
			return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
		list->items = items;
		list->cap = cap;
	}
	struct mlx_file *f = &list->items[list->len];
	memset(f, 0, sizeof *f);
	if (!(f->path = copy_path(list, path)))
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	f->size = size;
	f->mode = mode;
	if (hex)
		snprintf(f->hex, sizeof f->hex, "%s", hex);
	list->len++;
	return MLX_OK;
}

static int compare_paths(const void *a, const void *b)
{
	return strcmp(((const struct mlx_file *)a)->path, ((const struct mlx_file *)b)->path);
}

void mlx_filelist_sort(struct mlx_filelist *list)
{
	/* A walk lists each directory in order already: one pass proves it,
	 * where a sort would move every item (a hundred bytes each). */
	size_t i = 1;
	while (i < list->len && strcmp(list->items[i - 1].path, list->items[i].path) < 0)
		i++;
	if (i < list->len)
		qsort(list->items, list->len, sizeof *list->items, compare_paths);
}

static uint32_t manifest_mode(mode_t mode)
{
	return (mode & 0111) ? 0755 : 0644;
}

struct walk {
	int flags;
	const char *top;	/* for messages */
	const char *link_dir;	/* objects directory, or NULL */
	size_t link_dir_len;
	struct mlx_filelist *out;
	struct mlx_err *err;
};

/* A symlink made by the symlink link strategy names an object:
 * <link_dir>/ab/cdef…; returns 1 and fills f's facts if it does. */
static int store_link(struct walk *w, int dfd, const char *name, struct mlx_file *f)
{
	if (!w->link_dir)
		return 0;
	char target[PATH_MAX];
	ssize_t n = readlinkat(dfd, name, target, sizeof target - 1);
	if (n <= 0)
		return 0;
	target[n] = '\0';
	const char *rest = target + w->link_dir_len;
	if ((size_t)n != w->link_dir_len + 66 || strncmp(target, w->link_dir, w->link_dir_len) != 0 ||
	    rest[0] != '/' || rest[3] != '/')
		return 0;
	char hex[MLX_HASH_HEX_SIZE];
	memcpy(hex, rest + 1, 2);
	memcpy(hex + 2, rest + 4, 62);
	hex[64] = '\0';
	struct stat st;
	if (!mlx_hash_is_id(hex) || stat(target, &st) != 0 || !S_ISREG(st.st_mode))
		return 0;
	memcpy(f->hex, hex, sizeof hex);
	f->size = (uint64_t)st.st_size;
	f->mode = 0644;
	return 1;
}

static int walk_dir(struct walk *w, int dfd, const char *rel);

/* Adds dfd/name (known to the user as path) by the rules of mlx_hash_walk;
 * recurses into directories if recurse is set, else refuses them. */
/* Appends the regular file path with its stat facts. */
static int push_regular(struct walk *w, const char *path, const struct stat *st)
{
	int rc = mlx_filelist_push(w->out, path, (uint64_t)st->st_size, manifest_mode(st->st_mode), NULL, w->err);
	if (rc != MLX_OK)
		return rc;
	struct mlx_file *f = &w->out->items[w->out->len - 1];
	f->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	f->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
	f->ino = (uint64_t)st->st_ino;
	return MLX_OK;
}

static int visit(struct walk *w, int dfd, const char *name, const char *path, int recurse, int d_type)
{
	if (strchr(name, '\n'))
		return mlx_err_set(w->err, MLX_ERR_INVALID, 0,
				   "%s%s%s: a file name with a newline cannot be tracked; rename it", w->top,
				   *path ? "/" : "", path);
	struct stat st;
	if ((w->flags & MLX_WALK_TYPES_ONLY) && d_type == DT_REG)
		return mlx_filelist_push(w->out, path, 0, 0644, NULL, w->err);
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return mlx_err_sys(w->err, errno, "cannot stat %s/%s", w->top, path);
	if (S_ISDIR(st.st_mode)) {
		if (!recurse)
			return mlx_err_set(w->err, MLX_ERR_INVALID, 0, "%s/%s: is a directory", w->top, path);
		int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			return mlx_err_sys(w->err, errno, "cannot open directory %s/%s", w->top, path);
		return walk_dir(w, sub, path);
	}
	if (S_ISREG(st.st_mode))
		return push_regular(w, path, &st);
	if (S_ISLNK(st.st_mode)) {
		struct mlx_file link = {0};
		if (store_link(w, dfd, name, &link))
			return mlx_filelist_push(w->out, path, link.size, link.mode, link.hex, w->err);
		return mlx_err_set(w->err, MLX_ERR_INVALID, 0,
				   "%s/%s: is a symbolic link; mlx tracks regular files only "
				   "(replace it with the file it points to)",
				   w->top, path);
	}
	return mlx_err_set(w->err, MLX_ERR_INVALID, 0, "%s/%s: is a %s; mlx tracks regular files only", w->top, path,
			   S_ISFIFO(st.st_mode)	  ? "fifo"
			   : S_ISSOCK(st.st_mode) ? "socket"
						  : "device");
}

/* Walks directory dfd (rel below the top), visiting its entries in path
 * order, so that the files come out sorted without moving them after. */
static int walk_dir(struct walk *w, int dfd, const char *rel)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		int e = errno;
		close(dfd);
		return mlx_err_sys(w->err, e, "cannot list %s/%s", w->top, rel);
	}
	char path[PATH_MAX];
	size_t rlen = strlen(rel);
	if (rlen + 1 >= sizeof path) {
		closedir(d);
		return mlx_err_set(w->err, MLX_ERR_INVALID, ENAMETOOLONG, "%s/%s: path too long", w->top, rel);
	}
	memcpy(path, rel, rlen);
	if (rlen)
		path[rlen++] = '/';
	/* An entry of unknown type sorts as a file; should it be a
	 * directory, the walk's list is then sorted whole instead
	 * (mlx_filelist_sort finds it out of order). */
	struct mlx_dirlist l = {0};
	int rc = mlx_fs_list_walk(d, 0, &l, w->top, rel, w->err);
	for (size_t i = 0; rc == MLX_OK && i < l.len; i++) {
		const char *n = l.names + l.items[i].off;
		if (rlen + l.items[i].len >= sizeof path) {
			rc = mlx_err_set(w->err, MLX_ERR_INVALID, ENAMETOOLONG, "%s/%s/%s: path too long",
					 w->top, rel, n);
			break;
		}
		memcpy(path + rlen, n, l.items[i].len + 1);
		rc = visit(w, dirfd(d), n, path, 1, l.items[i].type);
	}
	mlx_dirlist_free(&l);
	closedir(d);
	return rc;
}

int mlx_hash_stat(const char *dir, const char *name, const char *link_dir, struct mlx_filelist *out,
		  struct mlx_err *err)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return mlx_err_sys(err, errno, "cannot open directory %s", dir);
	struct walk w = {.top = dir, .link_dir = link_dir, .out = out, .err = err};
	w.link_dir_len = link_dir ? strlen(link_dir) : 0;
	int rc = visit(&w, dfd, name, name, 0, DT_UNKNOWN);
	close(dfd);
	return rc;
}

int mlx_hash_stat_many(const char *dir, const char *const *names, size_t n, const char *link_dir,
		       struct mlx_filelist *out, unsigned char *found, struct mlx_err *err)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return mlx_err_sys(err, errno, "cannot open directory %s", dir);
	struct walk w = {.top = dir, .link_dir = link_dir, .out = out, .err = err};
	w.link_dir_len = link_dir ? strlen(link_dir) : 0;
	/* Many missing paths in one small directory (the outs of a fresh
	 * project) are answered from its listing instead of a stat each. */
	struct mlx_dirnames listed = {.dfd = dfd};
	int rc = MLX_OK;
	for (size_t i = 0; i < n && rc == MLX_OK; i++) {
		struct stat st;
		found[i] = 0;
		if (mlx_dirnames_absent(&listed, names[i])) {
			found[i] = 2;
			continue;
		}
		if (fstatat(dfd, names[i], &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno == ENOENT) {
				found[i] = 2;
				mlx_dirnames_missed(&listed, names[i]);
			} else if (errno != ENOTDIR)
				rc = mlx_err_sys(err, errno, "cannot stat %s/%s", dir, names[i]);
			continue;
		}
		if (S_ISDIR(st.st_mode))
			continue;
		/* A regular file is taken from this stat; the rest (a symlink of
		 * the store, a fifo) goes through the walk's rules. */
		if (S_ISREG(st.st_mode) && !strchr(names[i], '\n'))
			rc = push_regular(&w, names[i], &st);
		else
			rc = visit(&w, dfd, names[i], names[i], 0, DT_UNKNOWN);
		if (rc == MLX_OK)
			found[i] = 1;
	}
	mlx_dirnames_free(&listed);
	close(dfd);
	return rc;
}

#define WALK_THREADS 16 /* the fewest threads of a walk (see mlx_hash_walk) */

/* A top-level subdirectory walked by one thread of mlx_hash_walk. */
struct subwalk {
	char *name;
	struct mlx_filelist list;
	size_t at; /* where its items go in the merged list */
};

struct walk_job {
	const struct walk *proto;
	int dfd;
	struct subwalk *subs;
};

static int walk_sub(void *vjob, size_t i, struct mlx_err *err)
{
	struct walk_job *job = vjob;
	struct walk w = *job->proto;
	w.out = &job->subs[i].list;
	w.err = err;
	int rc = visit(&w, job->dfd, job->subs[i].name, job->subs[i].name, 1, DT_DIR);
	if (rc == MLX_OK)
		mlx_filelist_sort(w.out); /* here, in parallel; merged below */
	return rc;
}

/* Orders subdirectories as their files' paths sort: by name followed by
 * '/' ("a-b/" before "a/"), which is not the order of the bare names. */
static int compare_subs(const void *va, const void *vb)
{
	const unsigned char *a = (const unsigned char *)((const struct subwalk *)va)->name;
	const unsigned char *b = (const unsigned char *)((const struct subwalk *)vb)->name;
	while (*a && *a == *b)
		a++, b++;
	return (*a ? *a : '/') - (*b ? *b : '/');
}

struct merge_job {
	struct mlx_file *items;
	struct subwalk *subs;
};

static int copy_sub(void *vjob, size_t i, struct mlx_err *err)
{
	(void)err;
	struct merge_job *job = vjob;
	struct mlx_filelist *l = &job->subs[i].list;
	if (l->len > 0)
		memcpy(job->items + job->subs[i].at, l->items, l->len * sizeof *l->items);
	return MLX_OK;
}

/* Replaces out (the sorted files at the top) by the sorted union of out and
 * the sorted lists of subs, moving the items (and their paths). The paths
 * of one subdirectory all start with "name/", so each list goes in whole,
 * after the top files that sort before its first path; the lists are
 * copied into place by the pool's threads, which also share the cost of
 * faulting in the new array (megabytes for tens of thousands of files). */
static int merge_subs(struct mlx_filelist *out, struct subwalk *subs, size_t nsubs, struct mlx_err *err)
{
	size_t total = out->len;
	for (size_t i = 0; i < nsubs; i++)
		total += subs[i].list.len;
	struct mlx_file *items = malloc((total ? total : 1) * sizeof *items);
	if (!items)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	if (nsubs > 1)
		qsort(subs, nsubs, sizeof *subs, compare_subs);
	size_t n = 0, top = 0;
	for (size_t i = 0; i < nsubs; i++) {
		struct mlx_filelist *l = &subs[i].list;
		if (l->len == 0)
			continue;
		while (top < out->len && strcmp(out->items[top].path, l->items[0].path) < 0)
			items[n++] = out->items[top++];
		subs[i].at = n;
		n += l->len;
	}
	while (top < out->len)
		items[n++] = out->items[top++];
	struct merge_job job = {.items = items, .subs = subs};
	int rc = mlx_pool_run(nsubs, 0, copy_sub, &job, err);
	if (rc != MLX_OK) {
		free(items);
		return rc;
	}
	for (size_t i = 0; i < nsubs; i++) {
		subs[i].list.len = 0; /* moved, with the paths */
		take_paths(out, &subs[i].list);
	}
	free(out->items);
	out->items = items;
	out->len = out->cap = total;
	return MLX_OK;
}

int mlx_hash_walk(const char *dir, const char *link_dir, int flags, struct mlx_filelist *out, struct mlx_err *err)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return mlx_err_sys(err, errno, "cannot open directory %s", dir);
	struct walk w = {.flags = flags, .top = dir, .link_dir = link_dir, .out = out, .err = err};
	w.link_dir_len = link_dir ? strlen(link_dir) : 0;
	/* The files at the top are taken here; each subdirectory below it is
	 * walked by a thread of its own, as stat calls dominate a walk. */
	DIR *d = fdopendir(dup(dfd));
	if (!d) {
		close(dfd);
		return mlx_err_sys(err, errno, "cannot list %s", dir);
	}
	struct subwalk *subs = NULL;
	size_t nsubs = 0, cap = 0;
	int rc = MLX_OK;
	struct dirent *ent;
	for (errno = 0; (ent = readdir(d)) != NULL; errno = 0) {
		const char *n = ent->d_name;
		if (mlx_path_walk_skips(n))
			continue;
		if (ent->d_type == DT_DIR && !strchr(n, '\n')) {
			if (nsubs == cap) {
				cap = cap ? cap * 2 : 16;
				struct subwalk *p = realloc(subs, cap * sizeof *p);
				if (!p) {
					rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
					break;
				}
				subs = p;
			}
			subs[nsubs] = (struct subwalk){.name = strdup(n)};
			if (!subs[nsubs++].name) {
				rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
				break;
			}
			continue;
		}
		if ((rc = visit(&w, dfd, n, n, 1, ent->d_type)) != MLX_OK)
			break;
	}
	if (rc == MLX_OK && errno != 0)
		rc = mlx_err_sys(err, errno, "cannot list %s", dir);
	closedir(d);
	if (rc == MLX_OK && nsubs > 0) {
		/* More threads than CPUs: a stat waits on the inode cache (on
		 * disk, when it is cold) and, on a busy machine, on the
		 * scheduler, which shares CPU time among threads. git's
		 * preload of its index does the same (up to 20 threads,
		 * whatever the CPU count). */
		struct walk_job job = {.proto = &w, .dfd = dfd, .subs = subs};
		int threads = mlx_pool_default_jobs() * 4;
		rc = mlx_pool_run(nsubs, threads > WALK_THREADS ? threads : WALK_THREADS, walk_sub, &job, err);
	}
	if (rc == MLX_OK) {
		mlx_filelist_sort(out);
		rc = merge_subs(out, subs, nsubs, err);
	}
	for (size_t i = 0; i < nsubs; i++) {
		mlx_filelist_free(&subs[i].list);
		free(subs[i].name);
	}
	free(subs);
	close(dfd);
	if (rc != MLX_OK)
		mlx_filelist_free(out);
	return rc;
}

/* Writes v in base (8 or 10) at p; returns the end. */
static char *put_number(char *p, uint64_t v, unsigned base)
{
	char digits[24];
	int n = 0;
	do {
		digits[n++] = (char)('0' + v % base);
		v /= base;
	} while (v);
	while (n)
		*p++ = digits[--n];
	return p;
}

int mlx_hash_manifest(const struct mlx_filelist *list, char **text, size_t *len, char hex[MLX_HASH_HEX_SIZE],
		      struct mlx_err *err)
{
	size_t cap = 1;
	for (size_t i = 0; i < list->len; i++) {
		if (!list->items[i].hex[0])
			return mlx_err_set(err, MLX_ERR_INVALID, 0, "%s has not been hashed", list->items[i].path);
		cap += 64 + 1 + 20 + 1 + 11 + 1 + strlen(list->items[i].path) + 1;
	}
	char *buf = malloc(cap);
	if (!buf)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	/* "<hex> <size> <mode in octal> <path>\n", built by hand: this runs
	 * on every status of every tracked directory, and printf costs ten
	 * times as much per line. */
	char *p = buf;
	for (size_t i = 0; i < list->len; i++) {
		const struct mlx_file *f = &list->items[i];
		memcpy(p, f->hex, 64);
		p[64] = ' ';
		p = put_number(p + 65, f->size, 10);
		*p++ = ' ';
		p = put_number(p, f->mode, 8);
		*p++ = ' ';
		size_t plen = strlen(f->path);
		memcpy(p, f->path, plen);
		p += plen;
		*p++ = '\n';
	}
	*p = '\0';
	size_t n = (size_t)(p - buf);
	int rc = mlx_hash_bytes(buf, n, hex, err);
	if (rc != MLX_OK) {
		free(buf);
		return rc;
	}
	*text = buf;
	*len = n;
	return MLX_OK;
}

int mlx_hash_dir(const char *dir, int jobs, const struct mlx_progress *progress, struct mlx_filelist *out,
		 char **text, size_t *len, char hex[MLX_HASH_HEX_SIZE], struct mlx_err *err)
{
	*text = NULL;
	int rc = mlx_hash_walk(dir, NULL, MLX_WALK_TYPES_ONLY, out, err);
	if (rc == MLX_OK)
		rc = mlx_hash_files_progress(dir, out, jobs, progress, err);
	if (rc == MLX_OK)
		rc = mlx_hash_manifest(out, text, len, hex, err);
	if (rc != MLX_OK)
		mlx_filelist_free(out);
	return rc;
}

int mlx_hash_manifest_walk_part(struct mlx_manifest_walk *w, const char *text, size_t len,
                                mlx_manifest_line_fn fn, void *ctx, struct mlx_err *err)
{
	const char *p = text, *end = text + len;
	while (p < end) {
		w->line++;
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			goto corrupt;
		/* <64 hex> SP <size> SP <644|755> SP <path> */
		if (nl - p < 64 + 1 + 1 + 1 + 3 + 1 + 1 || p[64] != ' ')
			goto corrupt;
		char hex[MLX_HASH_HEX_SIZE];
		memcpy(hex, p, 64);
		hex[64] = '\0';
		if (!mlx_hash_is_id(hex))
			goto corrupt;
		const char *q = p + 65;
		uint64_t size = 0;
		if (q >= nl || *q < '0' || *q > '9')
			goto corrupt;
		/* Canonical decimal, as mlx_hash_manifest writes it: no leading
		 * zero, and no more than a file can hold (off_t, and a Lua
		 * integer), rather than wrapping around. */
		if (q[0] == '0' && q + 1 < nl && q[1] >= '0' && q[1] <= '9')
			goto corrupt;
		while (q < nl && *q >= '0' && *q <= '9') {
			uint64_t digit = (uint64_t)(*q++ - '0');
			if (size > ((uint64_t)INT64_MAX - digit) / 10)
				goto corrupt;
			size = size * 10 + digit;
		}
		if (nl - q < 6 || q[0] != ' ' || q[4] != ' ')
			goto corrupt;
		uint32_t mode;
		if (memcmp(q + 1, "644", 3) == 0)
			mode = 0644;
		else if (memcmp(q + 1, "755", 3) == 0)
			mode = 0755;
		else
			goto corrupt;
		const char *path = q + 5;
		size_t plen = (size_t)(nl - path);
		/* A manifest is data: its paths obey the rule of core/path.c, so
		 * no line can lead a checkout out of its directory. */
		struct mlx_err why;
		if (mlx_path_check(path, plen, &why) != MLX_OK)
			return mlx_err_set(err, MLX_ERR_CORRUPT, 0, "manifest line %zu: %s", w->line,
			                   why.msg);
		if (plen >= sizeof w->prev)
			goto corrupt; /* not reached: the check refuses such a path */
		/* Sorted and unique, as written: anything else was not made by mlx. */
		if (w->line > 1) {
			int c = memcmp(w->prev, path, w->prev_len < plen ? w->prev_len : plen);
			if (c > 0 || (c == 0 && w->prev_len >= plen))
				goto corrupt;
		}
		int rc = fn ? fn(ctx, hex, size, mode, path, plen, err) : MLX_OK;
		if (rc != MLX_OK)
			return rc;
		memcpy(w->prev, path, plen);
		w->prev_len = plen;
		p = nl + 1;
	}
	return MLX_OK;
corrupt:
	return mlx_err_set(err, MLX_ERR_CORRUPT, 0, "manifest line %zu is malformed", w->line);
}

int mlx_hash_manifest_walk(const char *text, size_t len, mlx_manifest_line_fn fn, void *ctx,
                           struct mlx_err *err)
{
	struct mlx_manifest_walk *w = malloc(sizeof *w);
	if (!w)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	w->line = 0;
	w->prev_len = 0;
	int rc = mlx_hash_manifest_walk_part(w, text, len, fn, ctx, err);
	free(w);
	return rc;
}

static int push_line(void *ctx, const char *hex, uint64_t size, uint32_t mode, const char *path, size_t plen,
                     struct mlx_err *err)
{
	char *copy = strndup(path, plen);
	if (!copy)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	int rc = mlx_filelist_push(ctx, copy, size, mode, hex, err);
	free(copy);
	return rc;
}

int mlx_hash_manifest_parse(const char *text, size_t len, struct mlx_filelist *out, struct mlx_err *err)
{
	int rc = mlx_hash_manifest_walk(text, len, push_line, out, err);
	if (rc != MLX_OK)
		mlx_filelist_free(out);
	return rc;
}
