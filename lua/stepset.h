/* stepset.h — the step set of a pipeline (mlx.stepgraph.stepset), shared
 * by l_steps.c (the set, its steps' views and the declaration of a step)
 * and l_steplists.c (its pool of path lists). */
#ifndef MLX_STEPSET_H
#define MLX_STEPSET_H

#include <lua.h>
#include <stdint.h>

#define STEPSET_MT "mlx.StepSet"

/* What a step is, as ids into its set's pools. */
struct step_row {
	uint32_t where;      /* value id of "file:line: " */
	uint32_t action;     /* value id of its cmd or run */
	uint32_t deps, outs; /* list ids */
	uint8_t flags;
};

enum { STEP_RUN = 1, STEP_OWN = 2 }; /* action is run (not cmd); has a table of its own */

/* The uservalues of a set: its pools and the metatable of its steps. */
enum { UV_NAMES = 1, UV_VALUES, UV_VALUE_IDS, UV_LISTS, UV_OWN, UV_META, UV_COUNT = UV_META };

struct stepset {
	struct step_row *rows;
	uint32_t n, cap;
	uint32_t nvalues, nlists;
	/* Equal lists are found by the hash of their paths: open addressing
	 * over list id + 1 (0 empty), at most half full. */
	uint32_t *slots;
	uint32_t mask;
	uint32_t *list_hash; /* list id - 1 → hash */
	uint8_t *list_plain; /* list id - 1 → 1 if json writes its paths as they are */
	uint32_t hash_cap;
	/* The value id of the recipe line of the last step declared, and that
	 * line's number (its function is values[0]). */
	uint32_t where_id;
	int where_line;
};

/* The id of the list of the n strings at first…: an equal list of the
 * pool's, else the table at index given (0: a new table), added to the
 * pool. Raises when out of memory. */
uint32_t stepset_intern_list(lua_State *L, struct stepset *set, int setidx, int first, int n, int given);

/* The list at index idx (a table of strings, as Pipeline:declare checked
 * it) as a list id of the set. */
uint32_t stepset_intern_table(lua_State *L, struct stepset *set, int setidx, int idx);

/* The row of the step at idx, and its index in *index, when it is a view
 * of a step set without a table of its own (whose deps or outs might have
 * been set there); NULL for any other value. meta and lists are stack
 * slots (nil at first) holding the metatable of the last set's views and
 * that set's lists table, and *set that set: updated when the step is of
 * another set, so that a walk over one pipeline's steps looks its set up
 * once. Leaves the stack as it was but for those slots. */
const struct step_row *stepset_row_of(lua_State *L, int idx, int meta, int lists, const struct stepset **set,
                                      uint32_t *index);

#endif
