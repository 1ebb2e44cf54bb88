/* flood LINES — writes LINES numbered lines to stdout ("out 00000001") and
 * as many to stderr ("err 00000001"), alternating in bursts of 1,000 lines
 * (11 KB) so that both pipes fill up while the other is being written: a
 * parent reading one stream to its end before the other deadlocks. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int burst(int fd, const char *tag, long from, long to)
{
	static char buf[1000 * 16];
	size_t len = 0;
	for (long i = from; i < to; i++)
		len += (size_t)sprintf(buf + len, "%s %08ld\n", tag, i);
	return write_all(fd, buf, len);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs("usage: flood LINES\n", stderr);
		return 2;
	}
	long lines = atol(argv[1]);
	for (long i = 1; i <= lines; i += 1000) {
		long end = i + 1000 <= lines + 1 ? i + 1000 : lines + 1;
		if (burst(1, "out", i, end) != 0 || burst(2, "err", i, end) != 0)
			return 1;
	}
	return 0;
}
