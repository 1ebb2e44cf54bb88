/* ignore_term [CHILDREN] — ignores SIGTERM, forks CHILDREN processes that
 * ignore it too, prints every pid (its own first) on stdout, then sleeps
 * until killed: only SIGKILL stops this group. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	signal(SIGTERM, SIG_IGN);
	int children = argc > 1 ? atoi(argv[1]) : 0;
	printf("%d\n", (int)getpid());
	fflush(stdout);
	for (int i = 0; i < children; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			for (;;)
				pause();
		}
		printf("%d\n", (int)pid);
		fflush(stdout);
	}
	for (;;)
		pause();
}
