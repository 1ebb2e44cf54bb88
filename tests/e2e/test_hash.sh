#!/usr/bin/env bash
# mlx hash agrees with sha256sum byte for byte.
. "$(dirname "$0")/tap.sh"

printf 'sepal_length,species\n5.1,setosa\n' >iris.csv
: >empty
head -c 5000000 /dev/urandom >big.bin
printf 'x' >'name with spaces'
printf 'y' >'back\slash'
printf 'z' >'new
line'

mlx hash iris.csv empty big.bin 'name with spaces' 'back\slash' 'new
line'
is "$RC" 0 "hash exits 0"
is "$OUT" "$(sha256sum iris.csv empty big.bin 'name with spaces' 'back\slash' 'new
line')" "output is identical to sha256sum's, escapes included"

"$MLX" hash iris.csv | sha256sum --check --status
is "$?" 0 "sha256sum --check accepts mlx output"

mlx hash missing.csv iris.csv
is "$RC" 2 "a missing file exits 2"
is "$ERR" "mlx: error: cannot open missing.csv: No such file or directory" "and is named"
like "$OUT" "  iris.csv$" "the other files are still hashed"

mkfifo pipe
mlx hash pipe
is "$RC" 2 "a fifo is refused, not waited on"
like "$ERR" "pipe: not a regular file" "and named"

done_testing
