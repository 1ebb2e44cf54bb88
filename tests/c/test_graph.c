/* test_graph.c — core/graph.c: producers (directory outs included), links,
 * the topological order, the problems it reports, and a million-step chain
 * ordered without recursion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "graph.h"

/* Declares steps from a compact text: "outs|deps;outs|deps;…", paths
 * separated by ",". */
static struct mlx_graph *declare(const char *spec)
{
	struct mlx_graph *g;
	struct mlx_err err;
	assert_int_equal(mlx_graph_new(&g, &err), MLX_OK);
	const char *p = spec;
	while (*p) {
		assert_int_equal(mlx_graph_add_step(g, &err), MLX_OK);
		int deps = 0;
		for (;;) {
			size_t n = strcspn(p, ",|;");
			if (n) {
				int rc = deps ? mlx_graph_add_dep(g, p, n, &err)
				              : mlx_graph_add_out(g, p, n, &err);
				assert_int_equal(rc, MLX_OK);
			}
			p += n;
			if (*p == '|') {
				deps = 1;
				p++;
			} else if (*p == ',') {
				p++;
			} else {
				break;
			}
		}
		if (*p == ';')
			p++;
	}
	return g;
}

static void assert_list(const uint32_t *items, size_t n, const uint32_t *want, size_t nwant)
{
	assert_int_equal(n, nwant);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(items[i], want[i]);
}

static void assert_path(struct mlx_graph *g, uint32_t id, const char *want)
{
	size_t len;
	const char *p = mlx_graph_path(g, id, &len);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(p, want, len);
}

static void test_links_and_order(void **state)
{
	(void)state;
	/* 0 writes a/ (a directory), 1 reads a/x (inside it) and writes b,
	 * 2 writes c/1 and c/2, 3 reads c/ (a directory holding outs), b and an
	 * input, 4 reads b twice (one link). Declared out of order: 3 first. */
	struct mlx_graph *g = declare("d|c/,b,in.txt;a/|;b|a/x;c/1,c/2|;e|b,b");
	struct mlx_graph_problem problem;
	struct mlx_err err;
	assert_int_equal(mlx_graph_build(g, &problem, &err), MLX_OK);
	assert_int_equal(problem.kind, MLX_GRAPH_OK);
	size_t n;
	const uint32_t *up = mlx_graph_upstream(g, 0, &n);
	assert_list(up, n, (uint32_t[]){3, 2}, 2);
	up = mlx_graph_upstream(g, 2, &n);
	assert_list(up, n, (uint32_t[]){1}, 1);
	up = mlx_graph_upstream(g, 4, &n);
	assert_list(up, n, (uint32_t[]){2}, 1);
	const uint32_t *down = mlx_graph_downstream(g, 2, &n);
	assert_list(down, n, (uint32_t[]){0, 4}, 2);
	mlx_graph_downstream(g, 0, &n);
	assert_int_equal(n, 0);
	const uint32_t *order = mlx_graph_order(g, &n);
	assert_list(order, n, (uint32_t[]){3, 1, 2, 0, 4}, 5);
	const uint32_t *unproduced = mlx_graph_unproduced(g, &n);
	assert_int_equal(n, 1);
	assert_path(g, unproduced[0], "in.txt");
	assert_int_equal(unproduced[1], 0);
	assert_int_equal(mlx_graph_producer(g, "a/", 2), 1);
	assert_int_equal(mlx_graph_producer(g, "a", 1), -1);
	mlx_graph_free(g);
}

static void test_duplicate_out(void **state)
{
	(void)state;
	struct mlx_graph *g = declare("x|;w/y|;w/y|");
	struct mlx_graph_problem problem;
	struct mlx_err err;
	assert_int_equal(mlx_graph_build(g, &problem, &err), MLX_OK);
	assert_int_equal(problem.kind, MLX_GRAPH_DUPLICATE);
	assert_int_equal(problem.step, 2);
	assert_int_equal(problem.other, 1);
	assert_path(g, problem.path, "w/y");
	mlx_graph_free(g);
}

static void test_nested_out(void **state)
{
	(void)state;
	/* An out inside another step's directory out, but a file out "w" and
	 * a directory "w/" are different paths. */
	struct mlx_graph *g = declare("w|;w/|;v/a/b|");
	struct mlx_graph_problem problem;
	struct mlx_err err;
	assert_int_equal(mlx_graph_build(g, &problem, &err), MLX_OK);
	assert_int_equal(problem.kind, MLX_GRAPH_OK);
	mlx_graph_free(g);
	g = declare("w/|;x/|;w/a/b|");
	assert_int_equal(mlx_graph_build(g, &problem, &err), MLX_OK);
	assert_int_equal(problem.kind, MLX_GRAPH_NESTED);
	assert_int_equal(problem.step, 2);
	assert_int_equal(problem.other, 0);
	assert_path(g, problem.path, "w/a/b");
	assert_path(g, problem.dir, "w/");
	mlx_graph_free(g);
}

static void test_self_link(void **state)
{
	(void)state;
	/* Step 1 reads a file inside its own directory out; the unproduced dep
	 * of step 0 comes before it, the one of step 2 is never reached. */
	struct mlx_graph *g = declare("a|gone;o/|o/f;z|later");
	struct mlx_graph_problem problem;
	struct mlx_err err;
	assert_int_equal(mlx_graph_build(g, &problem, &err), MLX_OK);
	assert_int_equal(problem.kind, MLX_GRAPH_SELF);
	assert_int_equal(problem.step, 1);
	assert_path(g, problem.path, "o/f");
	size_t n;
	const uint32_t *unproduced = mlx_graph_unproduced(g, &n);
	assert_int_equal(n, 1);
	assert_path(g, unproduced[0], "gone");
	mlx_graph_order(g, &n);
	assert_int_equal(n, 0);
	mlx_graph_free(g);
}

static void test_cycle(void **state)
{
	(void)state;
	struct mlx_graph *g = declare("x|;a|c;b|a;c|b");
	struct mlx_graph_problem problem;
	struct mlx_err err;
	assert_int_equal(mlx_graph_build(g, &problem, &err), MLX_OK);
	assert_int_equal(problem.kind, MLX_GRAPH_CYCLE);
	assert_int_equal(problem.step, 1);
	size_t n;
	const uint32_t *cycle = mlx_graph_cycle(g, &n);
	assert_list(cycle, n, (uint32_t[]){1, 3, 2}, 3);
	mlx_graph_free(g);
}

static void test_empty(void **state)
{
	(void)state;
	struct mlx_graph *g;
	struct mlx_graph_problem problem;
	struct mlx_err err;
	assert_int_equal(mlx_graph_new(&g, &err), MLX_OK);
	assert_int_equal(mlx_graph_add_out(g, "x", 1, &err), MLX_ERR_INVALID);
	assert_int_equal(mlx_graph_build(g, &problem, &err), MLX_OK);
	assert_int_equal(problem.kind, MLX_GRAPH_OK);
	size_t n;
	mlx_graph_order(g, &n);
	assert_int_equal(n, 0);
	assert_int_equal(mlx_graph_build(g, &problem, &err), MLX_ERR_INVALID);
	mlx_graph_free(g);
}

static void test_long_chain(void **state)
{
	(void)state;
	/* A million steps, each reading the one before, declared last first:
	 * the order is the reverse of declaration, found without recursion. */
	enum { N = 1000000 };
	struct mlx_graph *g;
	struct mlx_err err;
	assert_int_equal(mlx_graph_new(&g, &err), MLX_OK);
	char out[32], dep[32];
	for (int i = N; i >= 1; i--) {
		assert_int_equal(mlx_graph_add_step(g, &err), MLX_OK);
		int n = snprintf(out, sizeof out, "out/%d", i);
		assert_int_equal(mlx_graph_add_out(g, out, (size_t)n, &err), MLX_OK);
		n = i > 1 ? snprintf(dep, sizeof dep, "out/%d", i - 1) : snprintf(dep, sizeof dep, "in");
		assert_int_equal(mlx_graph_add_dep(g, dep, (size_t)n, &err), MLX_OK);
	}
	struct mlx_graph_problem problem;
	assert_int_equal(mlx_graph_build(g, &problem, &err), MLX_OK);
	assert_int_equal(problem.kind, MLX_GRAPH_OK);
	size_t n;
	const uint32_t *order = mlx_graph_order(g, &n);
	assert_int_equal(n, N);
	for (size_t k = 0; k < n; k++)
		if (order[k] != N - 1 - k)
			fail_msg("order[%zu] = %u", k, order[k]);
	mlx_graph_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_links_and_order), cmocka_unit_test(test_duplicate_out),
	    cmocka_unit_test(test_nested_out),      cmocka_unit_test(test_self_link),
	    cmocka_unit_test(test_cycle),           cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_long_chain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
