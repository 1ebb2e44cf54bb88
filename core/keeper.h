/* keeper.h — a process that stops mlx's children when mlx itself dies.
 *
 * Every child runs in its own process group, which mlx stops however it
 * ends in order (proc.h). A SIGKILL leaves mlx no chance to, so one more
 * process does it: the keeper, forked on the first spawn. It holds one end
 * of a socket pair whose other end only mlx holds (close-on-exec, and
 * closed in every child), and nothing else: no other descriptor (no flock,
 * pipe or database of mlx's), not the working directory, not mlx's process
 * group (so a signal to that group, or a terminal's Ctrl-C, does not reach
 * it). It learns of each process group in a fixed-size message: the child
 * sends "started G" itself, between setpgid and exec, so that no program
 * runs before the keeper knows its group; mlx sends "ended G" once it has
 * reaped every process of G. When the socket reaches end of file — mlx is
 * gone, by whatever signal, or exited — the keeper sends SIGKILL to every
 * group still registered and exits.
 *
 * A group's id can be reused only after its last process has been reaped,
 * and mlx (a child subreaper) reaps them and sends "ended" in the same
 * look at the child; the kernel hands out pids in a cycle, so the id would
 * have to come round the whole pid space in that moment. A keeper that has
 * died (someone killed it) is noticed at the next spawn, reaped and started
 * again, and told every group still running.
 *
 * One keeper per struct mlx_keeper, meant as one per mlx process: a
 * pipeline of 1,000 steps costs one fork and 2,000 small messages.
 *
 * Ownership: mlx_keeper_new allocates a struct mlx_keeper that the caller
 * releases with mlx_keeper_free, which ends the keeper (killing the groups
 * still registered, as if mlx had died) and reaps it. */
#ifndef MLX_KEEPER_H
#define MLX_KEEPER_H

#include <sys/types.h>

#include "err.h"

struct mlx_keeper;

/* Allocates a keeper; its process starts at the first mlx_keeper_ready.
 * Returns 0 and sets *out, or MLX_ERR_NOMEM. */
int mlx_keeper_new(struct mlx_keeper **out, struct mlx_err *err);

/* Makes sure the keeper process runs (starting it, or starting it again if
 * it died, and telling it every group registered) and returns the
 * descriptor a child sends its "started" message on (mlx_keeper_child_started);
 * the descriptor stays owned by k. Returns MLX_ERR_IO if the process or
 * the socket pair cannot be created: the message names why. */
int mlx_keeper_ready(struct mlx_keeper *k, struct mlx_err *err);

/* In the child, after it became leader of its own group and before exec:
 * tells the keeper on fd (from mlx_keeper_ready) to kill this group if mlx
 * dies. Only makes a system call, so it is safe after vfork. */
void mlx_keeper_child_started(int fd);

/* In mlx, once the child whose pid is pgid runs: remembers the group, so a
 * keeper started again is told of it. */
void mlx_keeper_started(struct mlx_keeper *k, pid_t pgid);

/* In mlx, once no process of group pgid is left and every one of them has
 * been reaped: the keeper forgets the group, so it never signals the id
 * again, even if the kernel gives it to another group. */
void mlx_keeper_ended(struct mlx_keeper *k, pid_t pgid);

/* The keeper's process id, or 0 if it is not running. */
pid_t mlx_keeper_pid(const struct mlx_keeper *k);

/* Closes mlx's end of the socket, so the keeper kills the groups still
 * registered (none, after an orderly end) and exits; waits up to 1 s for it
 * and reaps it; frees k. NULL is fine. */
void mlx_keeper_free(struct mlx_keeper *k);

#endif
