/* slow_mkdtemp.so — preloaded into mlx by tests (LD_PRELOAD): mkdtemp, then
 * a sleep of $MLX_TEST_MKDTEMP_DELAY_MS milliseconds when the directory is
 * in a .mlx/tmp/. It holds a store's new temp directory open in the window
 * between its creation and its lock, where another process's clean-up of
 * stale temp directories must leave it alone. */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

char *mkdtemp(char *tmpl)
{
	char *(*real)(char *) = (char *(*)(char *))dlsym(RTLD_NEXT, "mkdtemp");
	char *dir = real ? real(tmpl) : NULL;
	const char *ms = getenv("MLX_TEST_MKDTEMP_DELAY_MS");
	if (dir && ms && strstr(dir, "/.mlx/tmp/")) {
		long n = atol(ms);
		struct timespec ts = {n / 1000, (n % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) != 0)
			;
	}
	return dir;
}
