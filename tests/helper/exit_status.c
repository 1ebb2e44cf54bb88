/* exit_status code N | signal N | stop — ends in the way asked: exit(N),
 * killed by signal N (its default action), or stopped by SIGSTOP and, once
 * continued, exit 0. Prints "exiting" on stderr first. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs("usage: exit_status code N | signal N | stop\n", stderr);
		return 2;
	}
	fputs("exiting\n", stderr);
	if (strcmp(argv[1], "stop") == 0) {
		raise(SIGSTOP);
		return 0;
	}
	if (argc < 3)
		return 2;
	int n = atoi(argv[2]);
	if (strcmp(argv[1], "code") == 0)
		exit(n);
	/* No core files from the tests. */
	struct rlimit none = {0, 0};
	setrlimit(RLIMIT_CORE, &none);
	signal(n, SIG_DFL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, n);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(n);
	return 100; /* not reached unless the signal's default is to ignore */
}
