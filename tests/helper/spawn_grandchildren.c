/* spawn_grandchildren N MODE — forks N children that sleep for a minute,
 * prints their pids on stdout, one a line, and exits at once, leaving them
 * behind. MODE says what the children do with the output pipes:
 *   keep    keep stdout and stderr open (the parent's reader sees no end)
 *   close   close them (only the process group tells they still run)
 *   escape  keep them, but leave the process group (setsid) first */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fputs("usage: spawn_grandchildren N keep|close|escape\n", stderr);
		return 2;
	}
	int n = atoi(argv[1]);
	const char *mode = argv[2];
	for (int i = 0; i < n; i++) {
		int ready[2];
		if (pipe(ready) != 0)
			return 1;
		pid_t pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			close(ready[0]);
			if (strcmp(mode, "close") == 0) {
				close(1);
				close(2);
			} else if (strcmp(mode, "escape") == 0) {
				setsid();
			}
			close(ready[1]); /* set up: the parent may go on */
			sleep(60);
			_exit(0);
		}
		close(ready[1]);
		char c;
		while (read(ready[0], &c, 1) > 0)
			;
		close(ready[0]);
		printf("%d\n", (int)pid);
	}
	fflush(stdout);
	return 0;
}
