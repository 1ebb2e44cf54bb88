#!/usr/bin/env bash
# The store's own walks (mlx gc, mlx fsck) never follow a symbolic link in
# .mlx/cache/objects: a symlinked shard directory or object is named, never
# read through, and nothing outside the store is moved or deleted.
. "$(dirname "$0")/tap.sh"

# An id-shaped name, as the files in a shard directory are named.
rest=$(printf 'rest' | sha256sum | cut -c3-64)

# A project with one tracked file, and a directory outside it whose files
# a symlink in the store points at.
setup() { # NAME
	mkdir "$1" && cd "$1" || exit 1
	"$MLX" init >/dev/null
	printf 'tracked\n' >kept.txt
	"$MLX" add kept.txt >/dev/null
	mkdir ../"$1"-outside
	printf 'not yours\n' >../"$1"-outside/"$rest"
	printf 'nor this\n' >../"$1"-outside/victim.txt
	(cd ../"$1"-outside && sha256sum "$rest" victim.txt) >../"$1".sha
}

outside_intact() { # NAME — every file outside is there with its bytes
	(cd ../"$1"-outside && sha256sum --quiet -c ../"$1".sha) >/dev/null 2>&1 &&
		[ "$(ls ../"$1"-outside | wc -l)" -eq 2 ]
}

# ---- a symlinked shard directory ----------------------------------------
setup shard
ln -s "$(cd ../shard-outside && pwd)" .mlx/cache/objects/ee

mlx fsck
is "$RC" 1 "fsck with a symlinked shard directory fails (exit 1)"
like "$OUT" "^not an object \.mlx/cache/objects/ee: a symbolic link, never followed; mlx gc removes it$" \
	"naming the link as not a store object"
like "$OUT" "^checked 1 object: 0 corrupt, 0 missing, 1 symbolic link$" "and counting only the real object"
outside_intact shard
is "$?" 0 "the files it points at are untouched"
is "$(ls .mlx/cache/quarantine 2>/dev/null | wc -l)" 0 "and nothing was moved into quarantine"
[ -L .mlx/cache/objects/ee ]
is "$?" 0 "fsck leaves the link in place"

mlx gc --dry-run
is "$RC" 0 "gc --dry-run with a symlinked shard directory succeeds"
like "$OUT" "^would remove symbolic link \.mlx/cache/objects/ee \(not a store object, never followed\)$" \
	"and names the link it would remove"
[ -L .mlx/cache/objects/ee ]
is "$?" 0 "without removing it"

mlx gc
is "$RC" 0 "gc with a symlinked shard directory succeeds"
like "$OUT" "^removed symbolic link \.mlx/cache/objects/ee \(not a store object, never followed\)$" \
	"naming the link it removed"
like "$OUT" "^removed 0 objects, 0 B; kept 1$" "and keeping the one object"
[ ! -e .mlx/cache/objects/ee ] && [ ! -L .mlx/cache/objects/ee ]
is "$?" 0 "the link itself is gone"
outside_intact shard
is "$?" 0 "the directory it pointed at and its files are untouched"
mlx fsck
is "$RC" 0 "the next fsck finds the store sound"
cd ..

# ---- a symlinked object ----------------------------------------------------
setup object
# The link has the name of the very object mlx.lock needs: fsck must not
# count it as present, gc must not keep it.
id=$(sha256sum kept.txt | cut -d' ' -f1)
shard=.mlx/cache/objects/${id:0:2}
rm -f "$shard/${id:2}"
ln -s "$(cd ../object-outside && pwd)/victim.txt" "$shard/${id:2}"
# And one more, under a name nothing refers to.
ln -s "$(cd ../object-outside && pwd)/$rest" "$shard/$rest"

mlx fsck
is "$RC" 1 "fsck with symlinked objects fails (exit 1)"
like "$OUT" "^not an object \.mlx/cache/objects/${id:0:2}/${id:2}: a symbolic link, never followed; mlx gc removes it$" \
	"naming the link that has the name of a needed object"
like "$OUT" "^not an object \.mlx/cache/objects/${id:0:2}/$rest: a symbolic link, never followed; mlx gc removes it$" \
	"and the other link"
like "$OUT" "^missing   $id \(needed by mlx.lock\)$" "the object the link stands in for counts as missing"
like "$OUT" "^checked 0 objects: 0 corrupt, 1 missing, 2 symbolic links$" "and no link counts as an object"
outside_intact object
is "$?" 0 "the files they point at are untouched"
is "$(ls .mlx/cache/quarantine 2>/dev/null | wc -l)" 0 "and nothing was moved into quarantine"

mlx status
like "$ERR" "kept.txt: its objects are not in the store" "status does not take the link for the object"
outside_intact object
is "$?" 0 "nor changes the file it points at"

mlx gc
is "$RC" 0 "gc with symlinked objects succeeds"
like "$OUT" "^removed symbolic link \.mlx/cache/objects/${id:0:2}/${id:2} \(not a store object, never followed\)$" \
	"removing the link with a needed object's name"
like "$OUT" "^removed symbolic link \.mlx/cache/objects/${id:0:2}/$rest \(not a store object, never followed\)$" \
	"and the other link"
is "$(find .mlx/cache/objects -type l | wc -l)" 0 "no link is left in the store"
outside_intact object
is "$?" 0 "the files they pointed at are untouched"

"$MLX" add kept.txt >/dev/null
is "$?" 0 "the next add stores the object again"
mlx fsck
is "$RC" 0 "and the store is sound"
cd ..

done_testing
