/* sqlite_metrics.c — the baseline of bench/metrics.sh: the least a C
 * program must do to put N metric points into SQLite, in batched
 * transactions through one prepared INSERT, into a table shaped as mlx's
 * metrics table (WITHOUT ROWID, primary key (run_id, key, step)), with the
 * same settings (WAL, synchronous = NORMAL). It writes the same rows mlx
 * logs in bench/metrics.sh: KEYS metrics, each with steps 0…N/KEYS-1.
 *
 * usage: sqlite_metrics DB N KEYS BATCH      prints the seconds it took */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void check(sqlite3 *db, int rc, const char *what)
{
	if (rc != SQLITE_OK && rc != SQLITE_DONE) {
		fprintf(stderr, "sqlite_metrics: %s: %s\n", what, sqlite3_errmsg(db));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: sqlite_metrics DB N KEYS BATCH\n");
		return 2;
	}
	long n = atol(argv[2]), nkeys = atol(argv[3]), batch = atol(argv[4]);
	sqlite3 *db;
	check(db, sqlite3_open(argv[1], &db), "open");
	check(db,
	      sqlite3_exec(db,
	                   "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
	                   "CREATE TABLE metrics (run_id TEXT NOT NULL, key TEXT NOT NULL,"
	                   " step INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL,"
	                   " PRIMARY KEY (run_id, key, step)) WITHOUT ROWID",
	                   NULL, NULL, NULL),
	      "create");
	char keys[64][16];
	for (long k = 0; k < nkeys && k < 64; k++)
		snprintf(keys[k], sizeof keys[k], "metric%ld", k);
	const char *run = "06h1c47j18d3epw2";
	sqlite3_stmt *insert;
	check(db,
	      sqlite3_prepare_v2(db, "INSERT INTO metrics VALUES (?1, ?2, ?3, ?4, ?5)", -1, &insert, NULL),
	      "prepare");
	double start = now();
	for (long i = 0; i < n; i++) {
		if (i % batch == 0)
			check(db, sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), "begin");
		sqlite3_bind_text(insert, 1, run, -1, SQLITE_STATIC);
		sqlite3_bind_text(insert, 2, keys[i % nkeys], -1, SQLITE_STATIC);
		sqlite3_bind_int64(insert, 3, i / nkeys);
		sqlite3_bind_int64(insert, 4, now_ms());
		sqlite3_bind_double(insert, 5, 1.0 / (double)(i + 1));
		check(db, sqlite3_step(insert), "insert");
		sqlite3_reset(insert);
		if (i % batch == batch - 1 || i == n - 1)
			check(db, sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), "commit");
	}
	double elapsed = now() - start;
	sqlite3_finalize(insert);
	sqlite3_close(db);
	printf("%.6f\n", elapsed);
	return 0;
}
