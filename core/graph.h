/* graph.h — the DAG of a pipeline's steps over interned paths, in flat
 * arrays.
 *
 * A recipe of 100,000 steps names 200,000 paths and as many links; as Lua
 * tables (a list of upstream and of downstream steps per step, maps keyed
 * by path) that is most of a plan's memory and a large share of its time.
 * Here a path is a 32-bit id in one hash map, a step is its index, and the
 * links and the topological order are arrays of indices.
 *
 * Steps are added in declaration order with their outs and deps (paths in
 * normal form: relative, "/" between parts, a trailing "/" for a
 * directory); mlx_graph_build then finds each dep's producers (the step
 * that declares it, one declaring a directory above it, and, for a
 * directory dep, those declaring outs inside it), links the steps and
 * orders them. What it finds wrong is returned as a problem naming steps
 * and paths, which the caller words for the user.
 *
 * A graph owns all its memory; mlx_graph_free releases it. It is used by
 * one thread at a time. */
#ifndef MLX_GRAPH_H
#define MLX_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct mlx_graph;

/* What mlx_graph_build found wrong; steps and paths are indices and ids. */
enum mlx_graph_kind {
	MLX_GRAPH_OK = 0,
	MLX_GRAPH_DUPLICATE, /* steps other and step both declare out path */
	MLX_GRAPH_NESTED,    /* step's out path is inside other's directory out dir */
	MLX_GRAPH_SELF,      /* step depends on its own out: its dep path */
	MLX_GRAPH_CYCLE,     /* mlx_graph_cycle lists the steps of a cycle */
};

struct mlx_graph_problem {
	int kind; /* enum mlx_graph_kind */
	uint32_t step, other;
	uint32_t path, dir;
};

/* Creates an empty graph in *out. Returns 0 or MLX_ERR_NOMEM. */
int mlx_graph_new(struct mlx_graph **out, struct mlx_err *err);

/* Frees g and everything it holds; NULL is allowed. */
void mlx_graph_free(struct mlx_graph *g);

/* Starts the next step (index 0, 1, … in call order); the outs and deps
 * added next are its own. Returns 0 or MLX_ERR_NOMEM. */
int mlx_graph_add_step(struct mlx_graph *g, struct mlx_err *err);

/* Adds path (len bytes, normal form) as an out of the current step.
 * Returns 0, MLX_ERR_INVALID (no step started; a path over 4 GiB) or
 * MLX_ERR_NOMEM. Two steps declaring the same out is found by build. */
int mlx_graph_add_out(struct mlx_graph *g, const char *path, size_t len, struct mlx_err *err);

/* Adds path as a dep of the current step; as mlx_graph_add_out. */
int mlx_graph_add_dep(struct mlx_graph *g, const char *path, size_t len, struct mlx_err *err);

/* Finds producers, links steps and orders them. Returns 0 with
 * problem->kind MLX_GRAPH_OK, or 0 with the first problem found (in the
 * order of declaration: outs declared twice, outs nested in another step's
 * directory out, then links, then cycles; a dep without producer before
 * the first self-link is left to the caller, see mlx_graph_unproduced), or
 * MLX_ERR_NOMEM. Called once. */
int mlx_graph_build(struct mlx_graph *g, struct mlx_graph_problem *problem, struct mlx_err *err);

/* The number of steps added. */
uint32_t mlx_graph_steps(const struct mlx_graph *g);

/* The path of id, its length in *len (not NUL-terminated). */
const char *mlx_graph_path(const struct mlx_graph *g, uint32_t id, size_t *len);

/* The step producing path (as declared: the out itself), or -1. */
int64_t mlx_graph_producer(const struct mlx_graph *g, const char *path, size_t len);

/* After a build: the steps in topological order (upstream first, else
 * declaration order), *n of them; empty after a problem. */
const uint32_t *mlx_graph_order(const struct mlx_graph *g, size_t *n);

/* After a build: the steps step depends on, each once, in the order its
 * deps found them. */
const uint32_t *mlx_graph_upstream(const struct mlx_graph *g, uint32_t step, size_t *n);

/* After a build: the steps depending on step, in declaration order. */
const uint32_t *mlx_graph_downstream(const struct mlx_graph *g, uint32_t step, size_t *n);

/* After a build: the deps no step produces, each path once, in the order
 * first declared, as pairs (path id, first step naming it); *n pairs. The
 * caller checks these exist in the workspace. */
const uint32_t *mlx_graph_unproduced(const struct mlx_graph *g, size_t *n);

/* After a build that found MLX_GRAPH_CYCLE: the steps of the cycle, the
 * step met again first and last is not repeated (a, b for a -> b -> a). */
const uint32_t *mlx_graph_cycle(const struct mlx_graph *g, size_t *n);

#endif
