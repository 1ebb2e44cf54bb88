/* spawn_true N [PROGRAM] — starts PROGRAM (default /bin/true) N times, one
 * after the other, with posix_spawn and waitpid: the least a program can do
 * to run a command. The baseline of bench/spawn.sh. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs("usage: spawn_true N [PROGRAM]\n", stderr);
		return 2;
	}
	long n = atol(argv[1]);
	char *program = argc > 2 ? argv[2] : "/bin/true";
	char *child_argv[] = {program, NULL};
	for (long i = 0; i < n; i++) {
		pid_t pid;
		int status;
		if (posix_spawn(&pid, program, NULL, NULL, child_argv, environ) != 0 ||
		    waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "spawn_true: run %ld failed\n", i + 1);
			return 1;
		}
	}
	return 0;
}
