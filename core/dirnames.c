/* dirnames.c — the names in small directories, listed once (dirnames.h). */
#include "dirnames.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* Misses in one directory before it is listed: a few stats cost less
 * than reading a directory. */
#define MISSES_BEFORE_LISTING 32
/* Directories larger than this (st_size, about 8,000 entries on ext4), or
 * holding more entries (a file system that gives directories no size),
 * are not listed: their files exist, mostly, and each is stat'ed anyway. */
#define LISTING_MAX_BYTES (256 * 1024)
#define LISTING_MAX_NAMES 16384

struct mlx_dirnames_dir {
	char *path; /* the directory, relative to dfd ("" for dfd itself) */
	size_t path_len;
	unsigned misses;
	int listed;   /* names holds every entry, sorted */
	int unlisted; /* it cannot or should not be listed */
	char **names;
	size_t nnames;
};

/* Names are compared ignoring ASCII case, and a listing holding any other
 * byte is not used: on a case-insensitive file system (ext4's casefold,
 * vfat, SMB) a stat of "out/A" finds "out/a", so only a name that no entry
 * matches even so is surely missing. */
static int compare_names(const void *a, const void *b)
{
	return strcasecmp(*(char *const *)a, *(char *const *)b);
}

static int is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

/* The length of path's directory part (0 for a bare name). */
static size_t dir_len(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? (size_t)(slash - path) : 0;
}

static struct mlx_dirnames_dir *find_dir(const struct mlx_dirnames *d, const char *path, size_t len)
{
	for (size_t i = 0; i < d->ndirs; i++)
		if (d->dirs[i]->path_len == len && memcmp(d->dirs[i]->path, path, len) == 0)
			return d->dirs[i];
	return NULL;
}

static void free_names(struct mlx_dirnames_dir *dir)
{
	for (size_t i = 0; i < dir->nnames; i++)
		free(dir->names[i]);
	free(dir->names);
	dir->names = NULL;
	dir->nnames = 0;
}

/* Reads every entry of dir into its sorted names; 0 when it cannot. */
static int list_dir(int dfd, struct mlx_dirnames_dir *dir)
{
	/* Opened as fstatat walks a path: through symlinks of its directory
	 * part, so that the listing answers as the stat would. */
	int fd = openat(dfd, dir->path_len ? dir->path : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	struct stat st;
	DIR *dp = NULL;
	if (fstat(fd, &st) != 0 || st.st_size > LISTING_MAX_BYTES || !(dp = fdopendir(fd))) {
		close(fd);
		return 0;
	}
	size_t cap = 0;
	struct dirent *e;
	int ok = 1;
	/* readdir says end and failure alike with NULL, a failure with errno. */
	errno = 0;
	while (ok && (e = readdir(dp))) {
		if (dir->nnames == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			char **names = realloc(dir->names, ncap * sizeof *names);
			if (!names) {
				ok = 0;
				break;
			}
			dir->names = names;
			cap = ncap;
		}
		if (dir->nnames >= LISTING_MAX_NAMES || !is_ascii(e->d_name) ||
		    !(dir->names[dir->nnames] = strdup(e->d_name)))
			ok = 0;
		else
			dir->nnames++;
		errno = 0;
	}
	if (errno != 0)
		ok = 0;
	closedir(dp); /* closes fd */
	if (!ok) {
		free_names(dir);
		return 0;
	}
	qsort(dir->names, dir->nnames, sizeof *dir->names, compare_names);
	return 1;
}

void mlx_dirnames_missed(struct mlx_dirnames *d, const char *path)
{
	size_t len = dir_len(path);
	struct mlx_dirnames_dir *dir = find_dir(d, path, len);
	if (!dir) {
		if (d->ndirs == MLX_DIRNAMES_DIRS || !(dir = calloc(1, sizeof *dir)))
			return;
		if (!(dir->path = strndup(path, len))) {
			free(dir);
			return;
		}
		dir->path_len = len;
		d->dirs[d->ndirs++] = dir;
	}
	if (dir->listed || dir->unlisted || ++dir->misses < MISSES_BEFORE_LISTING)
		return;
	if (list_dir(d->dfd, dir))
		dir->listed = 1;
	else
		dir->unlisted = 1;
}

int mlx_dirnames_absent(const struct mlx_dirnames *d, const char *path)
{
	size_t len = dir_len(path);
	const struct mlx_dirnames_dir *dir = find_dir(d, path, len);
	if (!dir || !dir->listed)
		return 0;
	const char *name = path + len + (len > 0);
	if (!is_ascii(name))
		return 0;
	return bsearch(&name, dir->names, dir->nnames, sizeof *dir->names, compare_names) == NULL;
}

void mlx_dirnames_free(struct mlx_dirnames *d)
{
	for (size_t i = 0; i < d->ndirs; i++) {
		free_names(d->dirs[i]);
		free(d->dirs[i]->path);
		free(d->dirs[i]);
	}
	d->ndirs = 0;
}
