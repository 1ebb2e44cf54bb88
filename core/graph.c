/* graph.c — producers, links and the topological order of a pipeline's
 * steps over interned paths (graph.h). */
#include "graph.h"

#include <stdlib.h>
#include <string.h>

/* An interned path: its bytes in g->text, and the step declaring it as an
 * out (-1: none). Directories above an out are interned too, so a dep's
 * ancestors are found by lookup. */
struct path_entry {
	uint32_t off, len;
	uint32_t hash;
	int32_t producer;
};

struct mlx_graph {
	char *text;
	size_t text_len, text_cap;
	struct path_entry *paths;
	size_t npaths, paths_cap;
	uint32_t *slots; /* open addressing: path id + 1, 0 for empty */
	size_t slot_mask;

	uint32_t nsteps;
	size_t steps_cap;
	uint32_t *out_start, *dep_start; /* per step, then one past the last */
	uint32_t *outs, *deps;
	size_t nouts, outs_cap, ndeps, deps_cap;
	uint32_t *under_pairs; /* (dir id, out id) for each directory above each out */
	size_t nunder, under_cap;

	int built;
	uint32_t *order;
	size_t norder;
	uint32_t *up_start, *ups;
	uint32_t *down_start, *downs;
	uint32_t *unproduced;
	size_t nunproduced;
	uint32_t *cycle;
	size_t ncycle;
};

#define FNV_OFFSET 2166136261u
#define FNV_PRIME 16777619u

/* Grows *p (of elements of size) to hold need, doubling. */
static int grow(void *pp, size_t *cap, size_t need, size_t size, struct mlx_err *err)
{
	void **p = pp;
	if (need <= *cap)
		return MLX_OK;
	size_t n = *cap ? *cap : 16;
	while (n < need)
		n *= 2;
	void *q = realloc(*p, n * size);
	if (!q)
		return mlx_err_set(err, MLX_ERR_NOMEM, 0, "out of memory building the pipeline graph");
	*p = q;
	*cap = n;
	return MLX_OK;
}

static uint32_t hash_bytes(const char *s, size_t len)
{
	uint32_t h = FNV_OFFSET;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * FNV_PRIME;
	return h;
}

/* The id of path s (with hash h), or UINT32_MAX. */
static uint32_t find(const struct mlx_graph *g, const char *s, size_t len, uint32_t h)
{
	if (!g->slots)
		return UINT32_MAX;
	for (size_t i = h & g->slot_mask;; i = (i + 1) & g->slot_mask) {
		uint32_t v = g->slots[i];
		if (!v)
			return UINT32_MAX;
		const struct path_entry *e = &g->paths[v - 1];
		if (e->hash == h && e->len == len && memcmp(g->text + e->off, s, len) == 0)
			return v - 1;
	}
}

/* Doubles the slot table (kept at most half full) and re-inserts every id. */
static int rehash(struct mlx_graph *g, struct mlx_err *err)
{
	size_t n = g->slots ? (g->slot_mask + 1) * 2 : 1024;
	uint32_t *slots = calloc(n, sizeof *slots);
	if (!slots)
		return mlx_err_set(err, MLX_ERR_NOMEM, 0, "out of memory building the pipeline graph");
	for (size_t id = 0; id < g->npaths; id++) {
		size_t i = g->paths[id].hash & (n - 1);
		while (slots[i])
			i = (i + 1) & (n - 1);
		slots[i] = (uint32_t)id + 1;
	}
	free(g->slots);
	g->slots = slots;
	g->slot_mask = n - 1;
	return MLX_OK;
}

/* Sets *id to the id of path s (hash h), adding it when new. s must not
 * point into g->text, which may move. */
static int intern(struct mlx_graph *g, const char *s, size_t len, uint32_t h, uint32_t *id,
                  struct mlx_err *err)
{
	uint32_t found = find(g, s, len, h);
	if (found != UINT32_MAX) {
		*id = found;
		return MLX_OK;
	}
	if (len > UINT32_MAX || g->text_len + len > UINT32_MAX || g->npaths >= UINT32_MAX - 1)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "pipeline graph: too many or too long paths");
	int rc;
	if (!g->slots || (g->npaths + 1) * 2 > g->slot_mask + 1) {
		if ((rc = rehash(g, err)) != MLX_OK)
			return rc;
	}
	if ((rc = grow(&g->text, &g->text_cap, g->text_len + len, 1, err)) != MLX_OK ||
	    (rc = grow(&g->paths, &g->paths_cap, g->npaths + 1, sizeof *g->paths, err)) != MLX_OK)
		return rc;
	memcpy(g->text + g->text_len, s, len);
	struct path_entry *e = &g->paths[g->npaths];
	e->off = (uint32_t)g->text_len;
	e->len = (uint32_t)len;
	e->hash = h;
	e->producer = -1;
	g->text_len += len;
	size_t i = h & g->slot_mask;
	while (g->slots[i])
		i = (i + 1) & g->slot_mask;
	g->slots[i] = (uint32_t)g->npaths + 1;
	*id = (uint32_t)g->npaths++;
	return MLX_OK;
}

int mlx_graph_new(struct mlx_graph **out, struct mlx_err *err)
{
	*out = calloc(1, sizeof **out);
	if (!*out)
		return mlx_err_set(err, MLX_ERR_NOMEM, 0, "out of memory building the pipeline graph");
	return MLX_OK;
}

void mlx_graph_free(struct mlx_graph *g)
{
	if (!g)
		return;
	free(g->text);
	free(g->paths);
	free(g->slots);
	free(g->out_start);
	free(g->dep_start);
	free(g->outs);
	free(g->deps);
	free(g->under_pairs);
	free(g->order);
	free(g->up_start);
	free(g->ups);
	free(g->down_start);
	free(g->downs);
	free(g->unproduced);
	free(g->cycle);
	free(g);
}

int mlx_graph_add_step(struct mlx_graph *g, struct mlx_err *err)
{
	if (g->built || g->nsteps >= INT32_MAX - 1)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "pipeline graph: cannot add a step");
	size_t cap = g->steps_cap;
	int rc = grow(&g->out_start, &cap, (size_t)g->nsteps + 2, sizeof *g->out_start, err);
	if (rc == MLX_OK && cap != g->steps_cap) {
		uint32_t *q = realloc(g->dep_start, cap * sizeof *q);
		if (!q)
			return mlx_err_set(err, MLX_ERR_NOMEM, 0,
			                   "out of memory building the pipeline graph");
		g->dep_start = q;
		g->steps_cap = cap;
	}
	if (rc != MLX_OK)
		return rc;
	g->out_start[g->nsteps] = (uint32_t)g->nouts;
	g->dep_start[g->nsteps] = (uint32_t)g->ndeps;
	g->nsteps++;
	return MLX_OK;
}

/* Adds path to the list (*list, *n, *cap) of the current step; returns its
 * id in *id. */
static int add_path(struct mlx_graph *g, const char *path, size_t len, uint32_t **list, size_t *n,
                    size_t *cap, uint32_t *id, struct mlx_err *err)
{
	if (!g->nsteps || g->built)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "pipeline graph: a path needs a step");
	int rc = intern(g, path, len, hash_bytes(path, len), id, err);
	if (rc == MLX_OK)
		rc = grow(list, cap, *n + 1, sizeof **list, err);
	if (rc != MLX_OK)
		return rc;
	(*list)[(*n)++] = *id;
	return MLX_OK;
}

int mlx_graph_add_out(struct mlx_graph *g, const char *path, size_t len, struct mlx_err *err)
{
	uint32_t id;
	int rc = add_path(g, path, len, &g->outs, &g->nouts, &g->outs_cap, &id, err);
	if (rc != MLX_OK)
		return rc;
	/* Each directory above the out ("a/" and "a/b/" of "a/b/c"; not the
	 * out itself when it is a directory), hashed as the walk goes. */
	uint32_t h = FNV_OFFSET;
	for (size_t i = 0; i + 1 < len; i++) {
		h = (h ^ (unsigned char)path[i]) * FNV_PRIME;
		if (path[i] != '/')
			continue;
		uint32_t dir;
		if ((rc = intern(g, path, i + 1, h, &dir, err)) != MLX_OK ||
		    (rc = grow(&g->under_pairs, &g->under_cap, 2 * (g->nunder + 1), sizeof *g->under_pairs,
		               err)) != MLX_OK)
			return rc;
		g->under_pairs[2 * g->nunder] = dir;
		g->under_pairs[2 * g->nunder + 1] = id;
		g->nunder++;
	}
	return MLX_OK;
}

int mlx_graph_add_dep(struct mlx_graph *g, const char *path, size_t len, struct mlx_err *err)
{
	uint32_t id;
	return add_path(g, path, len, &g->deps, &g->ndeps, &g->deps_cap, &id, err);
}

/* The state of one build, freed at its end. */
struct build {
	uint32_t *under_start, *under_outs; /* directory id → outs inside it */
	uint32_t *mark;                     /* producer → the step it was last linked to */
	unsigned char *seen;                /* path id → already listed as unproduced */
	size_t ups_cap, unproduced_cap;
};

static int nomem(struct mlx_err *err)
{
	return mlx_err_set(err, MLX_ERR_NOMEM, 0, "out of memory building the pipeline graph");
}

/* Records that step s needs producer p; returns 1 (and fills problem)
 * when p is s itself. */
static int link_step(struct mlx_graph *g, struct build *b, uint32_t s, int32_t p, uint32_t dep,
                     struct mlx_graph_problem *problem, struct mlx_err *err, int *rc)
{
	if ((uint32_t)p == s) {
		problem->kind = MLX_GRAPH_SELF;
		problem->step = s;
		problem->path = dep;
		return 1;
	}
	if (b->mark[p] == s)
		return 0;
	b->mark[p] = s;
	size_t n = g->up_start[s + 1];
	if ((*rc = grow(&g->ups, &b->ups_cap, n + 1, sizeof *g->ups, err)) != MLX_OK)
		return 1;
	g->ups[n] = (uint32_t)p;
	g->up_start[s + 1] = (uint32_t)n + 1;
	return 0;
}

/* Producers: an out declared twice, or inside another step's directory. */
static void find_producers(struct mlx_graph *g, struct mlx_graph_problem *problem)
{
	for (uint32_t s = 0; s < g->nsteps; s++) {
		for (uint32_t k = g->out_start[s]; k < g->out_start[s + 1]; k++) {
			struct path_entry *e = &g->paths[g->outs[k]];
			if (e->producer >= 0) {
				problem->kind = MLX_GRAPH_DUPLICATE;
				problem->step = s;
				problem->other = (uint32_t)e->producer;
				problem->path = g->outs[k];
				return;
			}
			e->producer = (int32_t)s;
		}
	}
	for (size_t k = 0; k < g->nunder; k++) {
		uint32_t dir = g->under_pairs[2 * k], out = g->under_pairs[2 * k + 1];
		int32_t outer = g->paths[dir].producer, inner = g->paths[out].producer;
		if (outer >= 0 && inner != outer) {
			problem->kind = MLX_GRAPH_NESTED;
			problem->step = (uint32_t)inner;
			problem->other = (uint32_t)outer;
			problem->path = out;
			problem->dir = dir;
			return;
		}
	}
}

/* The outs inside each directory, in declaration order (a stable counting
 * sort of the pairs by directory). */
static int index_under(struct mlx_graph *g, struct build *b, struct mlx_err *err)
{
	b->under_start = calloc(g->npaths + 1, sizeof *b->under_start);
	b->under_outs = malloc((g->nunder ? g->nunder : 1) * sizeof *b->under_outs);
	if (!b->under_start || !b->under_outs)
		return nomem(err);
	for (size_t k = 0; k < g->nunder; k++)
		b->under_start[g->under_pairs[2 * k] + 1]++;
	for (size_t i = 0; i < g->npaths; i++)
		b->under_start[i + 1] += b->under_start[i];
	uint32_t *fill = malloc((g->npaths ? g->npaths : 1) * sizeof *fill);
	if (!fill)
		return nomem(err);
	memcpy(fill, b->under_start, g->npaths * sizeof *fill);
	for (size_t k = 0; k < g->nunder; k++)
		b->under_outs[fill[g->under_pairs[2 * k]]++] = g->under_pairs[2 * k + 1];
	free(fill);
	return MLX_OK;
}

/* Links each step to the producers of its deps; lists the deps nobody
 * produces. Returns MLX_OK with problem->kind set on a self-link. */
static int link_steps(struct mlx_graph *g, struct build *b, struct mlx_graph_problem *problem,
                      struct mlx_err *err)
{
	int rc = MLX_OK;
	g->up_start = calloc((size_t)g->nsteps + 1, sizeof *g->up_start);
	b->mark = malloc(((size_t)g->nsteps + 1) * sizeof *b->mark);
	b->seen = calloc(g->npaths + 1, 1);
	if (!g->up_start || !b->mark || !b->seen)
		return nomem(err);
	memset(b->mark, 0xff, ((size_t)g->nsteps + 1) * sizeof *b->mark);
	for (uint32_t s = 0; s < g->nsteps; s++) {
		g->up_start[s + 1] = g->up_start[s];
		for (uint32_t k = g->dep_start[s]; k < g->dep_start[s + 1]; k++) {
			uint32_t dep = g->deps[k];
			const struct path_entry *e = &g->paths[dep];
			const char *text = g->text + e->off;
			int found = 0;
			if (e->producer >= 0) {
				if (link_step(g, b, s, e->producer, dep, problem, err, &rc))
					return rc;
				found = 1;
			}
			/* A dep inside a directory out. */
			uint32_t h = FNV_OFFSET;
			for (size_t i = 0; i + 1 < e->len; i++) {
				h = (h ^ (unsigned char)text[i]) * FNV_PRIME;
				if (text[i] != '/')
					continue;
				uint32_t dir = find(g, text, i + 1, h);
				if (dir != UINT32_MAX && g->paths[dir].producer >= 0) {
					if (link_step(g, b, s, g->paths[dir].producer, dep, problem, err,
					              &rc))
						return rc;
					found = 1;
				}
			}
			/* A directory dep holding outs. */
			if (e->len && text[e->len - 1] == '/') {
				for (uint32_t j = b->under_start[dep]; j < b->under_start[dep + 1]; j++) {
					if (link_step(g, b, s, g->paths[b->under_outs[j]].producer, dep,
					              problem, err, &rc))
						return rc;
					found = 1;
				}
			}
			if (!found && !b->seen[dep]) {
				b->seen[dep] = 1;
				if ((rc = grow(&g->unproduced, &b->unproduced_cap, 2 * (g->nunproduced + 1),
				               sizeof *g->unproduced, err)) != MLX_OK)
					return rc;
				g->unproduced[2 * g->nunproduced] = dep;
				g->unproduced[2 * g->nunproduced + 1] = s;
				g->nunproduced++;
			}
		}
	}
	return MLX_OK;
}

/* The downstream lists: the links grouped by producer, in step order. */
static int index_downstream(struct mlx_graph *g, struct mlx_err *err)
{
	size_t n = g->nsteps, links = g->up_start[n];
	g->down_start = calloc(n + 1, sizeof *g->down_start);
	g->downs = malloc((links ? links : 1) * sizeof *g->downs);
	uint32_t *fill = malloc((n ? n : 1) * sizeof *fill);
	if (!g->down_start || !g->downs || !fill) {
		free(fill);
		return nomem(err);
	}
	for (size_t k = 0; k < links; k++)
		g->down_start[g->ups[k] + 1]++;
	for (size_t i = 0; i < n; i++)
		g->down_start[i + 1] += g->down_start[i];
	memcpy(fill, g->down_start, n * sizeof *fill);
	for (uint32_t s = 0; s < n; s++)
		for (uint32_t k = g->up_start[s]; k < g->up_start[s + 1]; k++)
			g->downs[fill[g->ups[k]]++] = s;
	free(fill);
	return MLX_OK;
}

/* Depth-first topological order, visiting steps and their upstream in
 * declaration order so the order is stable; a grey step met again closes a
 * cycle. Its own stack: a chain of a million steps is deeper than the C
 * stack may grow. */
static int order_steps(struct mlx_graph *g, struct mlx_graph_problem *problem, struct mlx_err *err)
{
	size_t n = g->nsteps;
	unsigned char *color = calloc(n + 1, 1); /* 0 white, 1 grey, 2 black */
	uint32_t *stack = malloc((n + 1) * sizeof *stack);
	uint32_t *next = malloc((n + 1) * sizeof *next);
	g->order = malloc((n + 1) * sizeof *g->order);
	int rc = MLX_OK;
	if (!color || !stack || !next || !g->order) {
		rc = nomem(err);
		goto done;
	}
	for (uint32_t root = 0; root < n; root++) {
		if (color[root])
			continue;
		color[root] = 1;
		size_t depth = 1;
		stack[0] = root;
		next[0] = g->up_start[root];
		while (depth > 0) {
			uint32_t s = stack[depth - 1];
			uint32_t k = next[depth - 1];
			if (k < g->up_start[s + 1]) {
				uint32_t up = g->ups[k];
				next[depth - 1] = k + 1;
				if (color[up] == 1) {
					size_t j = 0;
					while (stack[j] != up)
						j++;
					g->cycle = malloc((depth - j) * sizeof *g->cycle);
					if (!g->cycle) {
						rc = nomem(err);
						goto done;
					}
					memcpy(g->cycle, stack + j, (depth - j) * sizeof *g->cycle);
					g->ncycle = depth - j;
					problem->kind = MLX_GRAPH_CYCLE;
					problem->step = up;
					g->norder = 0;
					goto done;
				} else if (!color[up]) {
					color[up] = 1;
					stack[depth] = up;
					next[depth] = g->up_start[up];
					depth++;
				}
			} else {
				color[s] = 2;
				g->order[g->norder++] = s;
				depth--;
			}
		}
	}
done:
	free(color);
	free(stack);
	free(next);
	return rc;
}

int mlx_graph_build(struct mlx_graph *g, struct mlx_graph_problem *problem, struct mlx_err *err)
{
	memset(problem, 0, sizeof *problem);
	if (g->built)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "pipeline graph: built twice");
	g->built = 1;
	/* Close the last step's ranges. */
	if (!g->out_start) {
		g->out_start = calloc(1, sizeof *g->out_start);
		g->dep_start = calloc(1, sizeof *g->dep_start);
		if (!g->out_start || !g->dep_start)
			return nomem(err);
		g->steps_cap = 1;
	}
	g->out_start[g->nsteps] = (uint32_t)g->nouts;
	g->dep_start[g->nsteps] = (uint32_t)g->ndeps;

	find_producers(g, problem);
	if (problem->kind != MLX_GRAPH_OK)
		return MLX_OK;
	struct build b = {0};
	int rc = index_under(g, &b, err);
	if (rc == MLX_OK)
		rc = link_steps(g, &b, problem, err);
	free(b.under_start);
	free(b.under_outs);
	free(b.mark);
	free(b.seen);
	if (rc != MLX_OK || problem->kind != MLX_GRAPH_OK)
		return rc;
	if ((rc = index_downstream(g, err)) != MLX_OK)
		return rc;
	return order_steps(g, problem, err);
}

uint32_t mlx_graph_steps(const struct mlx_graph *g)
{
	return g->nsteps;
}

const char *mlx_graph_path(const struct mlx_graph *g, uint32_t id, size_t *len)
{
	*len = g->paths[id].len;
	return g->text + g->paths[id].off;
}

int64_t mlx_graph_producer(const struct mlx_graph *g, const char *path, size_t len)
{
	uint32_t id = find(g, path, len, hash_bytes(path, len));
	return id == UINT32_MAX ? -1 : g->paths[id].producer;
}

const uint32_t *mlx_graph_order(const struct mlx_graph *g, size_t *n)
{
	*n = g->norder;
	return g->order;
}

const uint32_t *mlx_graph_upstream(const struct mlx_graph *g, uint32_t step, size_t *n)
{
	if (!g->up_start || step >= g->nsteps) {
		*n = 0;
		return NULL;
	}
	*n = g->up_start[step + 1] - g->up_start[step];
	return g->ups ? g->ups + g->up_start[step] : NULL;
}

const uint32_t *mlx_graph_downstream(const struct mlx_graph *g, uint32_t step, size_t *n)
{
	if (!g->down_start || step >= g->nsteps) {
		*n = 0;
		return NULL;
	}
	*n = g->down_start[step + 1] - g->down_start[step];
	return g->downs + g->down_start[step];
}

const uint32_t *mlx_graph_unproduced(const struct mlx_graph *g, size_t *n)
{
	*n = g->nunproduced;
	return g->unproduced;
}

const uint32_t *mlx_graph_cycle(const struct mlx_graph *g, size_t *n)
{
	*n = g->ncycle;
	return g->cycle;
}
