/* print_slowly COUNT INTERVAL_MS [PREFIX] — prints "PREFIX 1" … "PREFIX COUNT"
 * on stdout, one line every INTERVAL_MS milliseconds, each flushed at once:
 * a child whose output must reach mlx while it runs. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fputs("usage: print_slowly COUNT INTERVAL_MS [PREFIX]\n", stderr);
		return 2;
	}
	int count = atoi(argv[1]);
	long ms = atol(argv[2]);
	const char *prefix = argc > 3 ? argv[3] : "line";
	struct timespec pause = {ms / 1000, (ms % 1000) * 1000000};
	for (int i = 1; i <= count; i++) {
		printf("%s %d\n", prefix, i);
		fflush(stdout);
		if (i < count)
			nanosleep(&pause, NULL);
	}
	return 0;
}
