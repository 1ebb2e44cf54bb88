/* list_fds — prints the file descriptors open in this process, one a line,
 * in increasing order: what a child inherited from mlx. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

static int by_number(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

int main(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return 1;
	int fds[1024], n = 0, own = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d)) && n < 1024) {
		if (e->d_name[0] == '.')
			continue;
		int fd = atoi(e->d_name);
		if (fd != own)
			fds[n++] = fd;
	}
	closedir(d);
	qsort(fds, (size_t)n, sizeof fds[0], by_number);
	for (int i = 0; i < n; i++)
		printf("%d\n", fds[i]);
	return 0;
}
