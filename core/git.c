/* git.c — reading and tagging a git repository with libgit2. */
#include "git.h"

#include <errno.h>
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mlx_git {
	git_repository *repo;
	char *root;
};

/* Fills err with what + libgit2's last message. */
static int git_fail(struct mlx_err *err, int status, const char *what)
{
	const git_error *e = git_error_last();
	return mlx_err_set(err, status, 0, "%s: %s", what, e && e->message ? e->message : "unknown libgit2 error");
}

static int nomem(struct mlx_err *err)
{
	return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
}

void mlx_git_version(char *buf, size_t size)
{
	int major = 0, minor = 0, rev = 0;
	git_libgit2_version(&major, &minor, &rev);
	snprintf(buf, size, "%d.%d.%d", major, minor, rev);
}

int mlx_git_open(const char *path, struct mlx_git **out, struct mlx_err *err)
{
	*out = NULL;
	/* Reference-counted: each handle holds libgit2 open until closed. */
	if (git_libgit2_init() < 0)
		return git_fail(err, MLX_ERR_IO, "cannot initialise libgit2");
	struct mlx_git *g = calloc(1, sizeof *g);
	if (!g) {
		git_libgit2_shutdown();
		return nomem(err);
	}
	int rc = git_repository_open_ext(&g->repo, path, 0, NULL);
	if (rc == GIT_ENOTFOUND) {
		/* Named absolutely when possible: "not a git repository: ." says little. */
		char *abs = realpath(path, NULL);
		rc = mlx_err_set(err, MLX_ERR_NOTFOUND, 0, "not a git repository: %s", abs ? abs : path);
		free(abs);
		goto fail;
	}
	if (rc < 0) {
		char what[600];
		snprintf(what, sizeof what, "cannot open the git repository at %s", path);
		rc = git_fail(err, MLX_ERR_IO, what);
		goto fail;
	}
	const char *dir = git_repository_workdir(g->repo);
	if (!dir)
		dir = git_repository_path(g->repo);
	size_t len = strlen(dir);
	while (len > 1 && dir[len - 1] == '/')
		len--;
	if (!(g->root = strndup(dir, len))) {
		rc = nomem(err);
		goto fail;
	}
	*out = g;
	return MLX_OK;
fail:
	git_repository_free(g->repo);
	free(g);
	git_libgit2_shutdown();
	return rc;
}

void mlx_git_close(struct mlx_git *g)
{
	if (!g)
		return;
	git_repository_free(g->repo);
	free(g->root);
	free(g);
	git_libgit2_shutdown();
}

const char *mlx_git_root(const struct mlx_git *g)
{
	return g->root;
}

void mlx_git_head_free(struct mlx_git_head *head)
{
	free(head->branch);
	memset(head, 0, sizeof *head);
}

/* The branch an unborn HEAD points to: "refs/heads/main" gives "main". */
static int unborn_branch(struct mlx_git *g, struct mlx_git_head *head, struct mlx_err *err)
{
	git_reference *ref = NULL;
	if (git_reference_lookup(&ref, g->repo, "HEAD") < 0)
		return git_fail(err, MLX_ERR_IO, "cannot read HEAD");
	const char *target = git_reference_symbolic_target(ref);
	const char *prefix = "refs/heads/";
	if (target && strncmp(target, prefix, strlen(prefix)) == 0)
		target += strlen(prefix);
	int rc = MLX_OK;
	if (target && !(head->branch = strdup(target)))
		rc = nomem(err);
	git_reference_free(ref);
	head->unborn = true;
	return rc;
}

int mlx_git_head(struct mlx_git *g, struct mlx_git_head *head, struct mlx_err *err)
{
	memset(head, 0, sizeof *head);
	git_reference *ref = NULL;
	int rc = git_repository_head(&ref, g->repo);
	if (rc == GIT_EUNBORNBRANCH || rc == GIT_ENOTFOUND)
		return unborn_branch(g, head, err);
	if (rc < 0)
		return git_fail(err, MLX_ERR_IO, "cannot read HEAD");
	const git_oid *oid = git_reference_target(ref);
	if (oid)
		git_oid_tostr(head->commit, sizeof head->commit, oid);
	head->detached = git_repository_head_detached(g->repo) == 1;
	rc = MLX_OK;
	if (!head->detached && !(head->branch = strdup(git_reference_shorthand(ref))))
		rc = nomem(err);
	git_reference_free(ref);
	return rc;
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void sort_list(struct mlx_strlist *list)
{
	if (list->len > 1) /* an empty list has no array: qsort(NULL) is undefined */
		qsort(list->items, list->len, sizeof *list->items, compare_strings);
}

int mlx_git_status(struct mlx_git *g, bool untracked, struct mlx_strlist *changed, struct mlx_err *err)
{
	if (git_repository_is_bare(g->repo))
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "%s is a bare repository: it has no work tree", g->root);
	git_status_options opts;
	git_status_options_init(&opts, GIT_STATUS_OPTIONS_VERSION);
	opts.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
	opts.flags = untracked ? GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS : 0;
	git_status_list *list = NULL;
	if (git_status_list_new(&list, g->repo, &opts) < 0)
		return git_fail(err, MLX_ERR_IO, "cannot read the status of the work tree");
	int rc = MLX_OK;
	size_t n = git_status_list_entrycount(list);
	for (size_t i = 0; i < n && rc == MLX_OK; i++) {
		const git_status_entry *e = git_status_byindex(list, i);
		if (e->status == GIT_STATUS_CURRENT || (e->status & GIT_STATUS_IGNORED))
			continue;
		const git_diff_delta *d = e->head_to_index ? e->head_to_index : e->index_to_workdir;
		if (d && d->new_file.path)
			rc = mlx_strlist_push(changed, d->new_file.path, err);
	}
	git_status_list_free(list);
	if (rc != MLX_OK) {
		mlx_strlist_free(changed);
		return rc;
	}
	sort_list(changed);
	return MLX_OK;
}

/* Resolves rev to an object peeled to type (a commit or a tree). */
static int resolve(struct mlx_git *g, const char *rev, git_object_t type, git_object **out, struct mlx_err *err)
{
	git_object *obj = NULL;
	int rc = git_revparse_single(&obj, g->repo, rev);
	if (rc == GIT_ENOTFOUND || rc == GIT_EAMBIGUOUS || rc == GIT_EINVALIDSPEC || rc == GIT_EUNBORNBRANCH) {
		/* A shallow clone (CI's usual checkout) lacks the history a
		 * baseline such as HEAD~1 or main names: say how to get it. */
		if (git_repository_is_shallow(g->repo) == 1)
			return mlx_err_set(
			    err, MLX_ERR_NOTFOUND, 0,
			    "unknown revision '%s' in %s, a shallow clone; fetch the history with "
			    "'git fetch --unshallow' (or the branch with 'git fetch origin BRANCH')",
			    rev, g->root);
		return mlx_err_set(err, MLX_ERR_NOTFOUND, 0, "unknown revision '%s' in %s", rev, g->root);
	}
	if (rc < 0)
		return git_fail(err, MLX_ERR_IO, "cannot resolve a revision");
	rc = git_object_peel(out, obj, type);
	git_object_free(obj);
	if (rc < 0)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "revision '%s' is not a commit", rev);
	return MLX_OK;
}

int mlx_git_show(struct mlx_git *g, const char *rev, const char *path, char **content, size_t *len,
		 struct mlx_err *err)
{
	*content = NULL;
	*len = 0;
	while (path[0] == '.' && path[1] == '/')
		path += 2;
	git_object *tree = NULL;
	int rc = resolve(g, rev, GIT_OBJECT_TREE, &tree, err);
	if (rc != MLX_OK)
		return rc;
	git_tree_entry *entry = NULL;
	git_blob *blob = NULL;
	rc = git_tree_entry_bypath(&entry, (git_tree *)tree, path);
	if (rc == GIT_ENOTFOUND) {
		rc = mlx_err_set(err, MLX_ERR_NOTFOUND, 0, "%s does not exist in '%s'", path, rev);
		goto done;
	}
	if (rc < 0) {
		rc = git_fail(err, MLX_ERR_IO, "cannot read a tree");
		goto done;
	}
	if (git_tree_entry_type(entry) != GIT_OBJECT_BLOB) {
		rc = mlx_err_set(err, MLX_ERR_INVALID, 0, "%s is not a file in '%s'", path, rev);
		goto done;
	}
	if (git_blob_lookup(&blob, g->repo, git_tree_entry_id(entry)) < 0) {
		rc = git_fail(err, MLX_ERR_IO, "cannot read a blob");
		goto done;
	}
	size_t size = (size_t)git_blob_rawsize(blob);
	char *copy = malloc(size + 1);
	if (!copy) {
		rc = nomem(err);
		goto done;
	}
	memcpy(copy, git_blob_rawcontent(blob), size);
	copy[size] = '\0';
	*content = copy;
	*len = size;
	rc = MLX_OK;
done:
	git_blob_free(blob);
	git_tree_entry_free(entry);
	git_object_free(tree);
	return rc;
}

/* The commit a tag name leads to, through annotated tags. */
static bool tag_commit(struct mlx_git *g, const char *name, git_oid *out)
{
	char ref[1024];
	git_object *obj = NULL, *commit = NULL;
	snprintf(ref, sizeof ref, "refs/tags/%s", name);
	bool ok = git_revparse_single(&obj, g->repo, ref) == 0 &&
		  git_object_peel(&commit, obj, GIT_OBJECT_COMMIT) == 0;
	if (ok)
		git_oid_cpy(out, git_object_id(commit));
	git_object_free(commit);
	git_object_free(obj);
	return ok;
}

int mlx_git_tags(struct mlx_git *g, const char *points_at, struct mlx_strlist *names, struct mlx_err *err)
{
	git_oid want;
	if (points_at) {
		git_object *commit = NULL;
		int rc = resolve(g, points_at, GIT_OBJECT_COMMIT, &commit, err);
		if (rc != MLX_OK)
			return rc;
		git_oid_cpy(&want, git_object_id(commit));
		git_object_free(commit);
	}
	git_strarray all = {0};
	if (git_tag_list(&all, g->repo) < 0)
		return git_fail(err, MLX_ERR_IO, "cannot list tags");
	int rc = MLX_OK;
	for (size_t i = 0; i < all.count && rc == MLX_OK; i++) {
		git_oid at;
		if (points_at && !(tag_commit(g, all.strings[i], &at) && git_oid_equal(&at, &want)))
			continue;
		rc = mlx_strlist_push(names, all.strings[i], err);
	}
	git_strarray_dispose(&all);
	if (rc != MLX_OK) {
		mlx_strlist_free(names);
		return rc;
	}
	sort_list(names);
	return MLX_OK;
}

/* The tagger, as git chooses it: GIT_COMMITTER_NAME and _EMAIL override
 * user.name and user.email. */
static int tagger(struct mlx_git *g, git_signature **out, struct mlx_err *err)
{
	const char *name = getenv("GIT_COMMITTER_NAME"), *email = getenv("GIT_COMMITTER_EMAIL");
	git_signature *config = NULL;
	git_signature_default(&config, g->repo); /* fails when unset: fine */
	if (!(name && *name))
		name = config ? config->name : NULL;
	if (!(email && *email))
		email = config ? config->email : NULL;
	int rc = MLX_OK;
	if (!name || !email)
		rc = mlx_err_set(err, MLX_ERR_INVALID, 0,
				 "cannot tag in %s: who is tagging? Set user.name and user.email (git config), "
				 "or GIT_COMMITTER_NAME and GIT_COMMITTER_EMAIL", g->root);
	else if (git_signature_now(out, name, email) < 0)
		rc = git_fail(err, MLX_ERR_INVALID, "bad tagger identity");
	git_signature_free(config);
	return rc;
}

int mlx_git_tag(struct mlx_git *g, const char *name, const char *rev, const char *message,
		char commit_hex[MLX_GIT_OID_HEX], struct mlx_err *err)
{
	int valid = 0;
	if (git_tag_name_is_valid(&valid, name) < 0 || !valid)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "'%s' is not a valid tag name", name);
	git_object *commit = NULL;
	git_signature *sig = NULL;
	git_buf text = GIT_BUF_INIT;
	git_oid oid;
	int rc = resolve(g, rev ? rev : "HEAD", GIT_OBJECT_COMMIT, &commit, err);
	if (rc != MLX_OK)
		return rc;
	if (message) {
		if ((rc = tagger(g, &sig, err)) != MLX_OK)
			goto done;
		if (git_message_prettify(&text, message, 0, '#') < 0) {
			rc = git_fail(err, MLX_ERR_INVALID, "bad tag message");
			goto done;
		}
		rc = git_tag_create(&oid, g->repo, name, commit, sig, text.ptr, 0);
	} else {
		rc = git_tag_create_lightweight(&oid, g->repo, name, commit, 0);
	}
	if (rc == GIT_EEXISTS) {
		rc = mlx_err_set(err, MLX_ERR_INVALID, EEXIST, "tag '%s' already exists in %s", name, g->root);
	} else if (rc < 0) {
		rc = git_fail(err, MLX_ERR_IO, "cannot create the tag");
	} else {
		git_oid_tostr(commit_hex, MLX_GIT_OID_HEX, git_object_id(commit));
		rc = MLX_OK;
	}
done:
	git_buf_dispose(&text);
	git_signature_free(sig);
	git_object_free(commit);
	return rc;
}

void mlx_git_log_free(struct mlx_git_log *log)
{
	for (size_t i = 0; i < log->len; i++) {
		free(log->items[i].author);
		free(log->items[i].email);
		free(log->items[i].summary);
	}
	free(log->items);
	memset(log, 0, sizeof *log);
}

/* The id of what path is in commit (a blob or a tree); false if absent. */
static bool path_id(git_commit *commit, const char *path, git_oid *out)
{
	git_tree *tree = NULL;
	git_tree_entry *entry = NULL;
	bool found = git_commit_tree(&tree, commit) == 0 && git_tree_entry_bypath(&entry, tree, path) == 0;
	if (found)
		git_oid_cpy(out, git_tree_entry_id(entry));
	git_tree_entry_free(entry);
	git_tree_free(tree);
	return found;
}

/* Whether commit changed path: it differs from every parent (a merge that
 * took one side's version unchanged did not change it), as git log shows. */
static bool changes_path(git_commit *commit, const char *path)
{
	git_oid mine, theirs;
	bool has = path_id(commit, path, &mine);
	unsigned int n = git_commit_parentcount(commit);
	if (n == 0)
		return has;
	for (unsigned int i = 0; i < n; i++) {
		git_commit *parent = NULL;
		if (git_commit_parent(&parent, commit, i) < 0)
			continue;
		bool parent_has = path_id(parent, path, &theirs);
		git_commit_free(parent);
		if (has == parent_has && (!has || git_oid_equal(&mine, &theirs)))
			return false;
	}
	return true;
}

static int push_commit(struct mlx_git_log *log, git_commit *commit, struct mlx_err *err)
{
	if (log->len == log->cap) {
		size_t cap = log->cap ? log->cap * 2 : 32;
		struct mlx_git_commit *items = realloc(log->items, cap * sizeof *items);
		if (!items)
			return nomem(err);
		log->items = items;
		log->cap = cap;
	}
	struct mlx_git_commit *c = &log->items[log->len];
	const git_signature *author = git_commit_author(commit);
	const char *summary = git_commit_summary(commit);
	git_oid_tostr(c->id, sizeof c->id, git_commit_id(commit));
	c->author = strdup(author->name ? author->name : "");
	c->email = strdup(author->email ? author->email : "");
	c->summary = strdup(summary ? summary : "");
	c->time = (int64_t)author->when.time;
	log->len++; /* counted now, so that log_free releases what was made */
	if (!c->author || !c->email || !c->summary)
		return nomem(err);
	return MLX_OK;
}

int mlx_git_log(struct mlx_git *g, const char *rev, const char *path, size_t limit, struct mlx_git_log *log,
		struct mlx_err *err)
{
	git_revwalk *walk = NULL;
	if (git_revwalk_new(&walk, g->repo) < 0)
		return git_fail(err, MLX_ERR_IO, "cannot walk the history");
	git_revwalk_sorting(walk, GIT_SORT_TIME);
	int rc;
	if (!rev) {
		if (git_repository_head_unborn(g->repo) == 1) { /* no commit yet */
			git_revwalk_free(walk);
			return MLX_OK;
		}
		rc = git_revwalk_push_head(walk) < 0 ? git_fail(err, MLX_ERR_IO, "cannot walk the history") : MLX_OK;
	} else {
		git_object *start = NULL;
		rc = resolve(g, rev, GIT_OBJECT_COMMIT, &start, err);
		if (rc == MLX_OK && git_revwalk_push(walk, git_object_id(start)) < 0)
			rc = git_fail(err, MLX_ERR_IO, "cannot walk the history");
		git_object_free(start);
	}
	while (path && path[0] == '.' && path[1] == '/')
		path += 2;
	git_oid oid;
	while (rc == MLX_OK && (limit == 0 || log->len < limit) && git_revwalk_next(&oid, walk) == 0) {
		git_commit *commit = NULL;
		if (git_commit_lookup(&commit, g->repo, &oid) < 0) {
			rc = git_fail(err, MLX_ERR_IO, "cannot read a commit");
			break;
		}
		if (!path || changes_path(commit, path))
			rc = push_commit(log, commit, err);
		git_commit_free(commit);
	}
	git_revwalk_free(walk);
	if (rc != MLX_OK)
		mlx_git_log_free(log);
	return rc;
}
